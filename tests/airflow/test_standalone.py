"""End to end: ``airflow standalone`` on loopback, the DAG triggered through the REST API.

Slow (a minute or more to become healthy, then one LocalExecutor run), so marked slow;
CI runs it.
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import pytest

import neve
from tools.demo.runner import (
    _free_port,
    admin_password,
    api,
    group_members,
    standalone_env,
    stop,
    wait_for_dag,
    wait_healthy,
)

REPO = Path(__file__).resolve().parents[2]
DAG_ID = "taxi_trip_duration"


def tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_standalone_runs_the_dag_triggered_through_the_rest_api(tmp_path, task_envs):
    home = tmp_path / "airflow"
    home.mkdir()
    db = tmp_path / "e2e.duckdb"
    port = _free_port()
    env = standalone_env(home, f"duckdb://{db}", REPO / "dags", port)
    env["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "INFO"
    log_path = tmp_path / "standalone.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "airflow", "standalone"], env=env, cwd=tmp_path,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        assert wait_healthy(port, proc, timeout=600), tail(log_path)
        password = admin_password(home)
        assert password, "standalone wrote no admin password"
        token = api(port, "/auth/token", body={"username": "admin", "password": password})["access_token"]
        assert wait_for_dag(port, token, proc, timeout=300), tail(log_path)
        run = api(port, f"/api/v2/dags/{DAG_ID}/dagRuns", token, {"logical_date": None})
        run_path = f"/api/v2/dags/{DAG_ID}/dagRuns/{urllib.parse.quote(run['dag_run_id'])}"
        deadline = time.monotonic() + 900
        state = run["state"]
        while state not in ("success", "failed") and time.monotonic() < deadline:
            time.sleep(3)
            state = api(port, run_path, token)["state"]
        tasks = api(port, f"{run_path}/taskInstances", token)["task_instances"]
        summary = {t["task_id"]: t["state"] for t in tasks}
        assert state == "success", f"{summary}\n{tail(log_path)}"
        assert set(summary) == {
            "setup_registry", "load.load_2019_01", "load.load_2019_02", "transform",
            "feature_engineering", "train", "register_model", "score_data", "predict", "drift_gate",
        }
    finally:
        stop(proc)
    assert proc.returncode is not None
    assert group_members(proc.pid) == []  # nothing of standalone's process group is left
    with neve.connect(f"duckdb://{db}?read_only=true") as session:
        assert session.table("TAXI_PRED").count().execute() == session.table("TAXI_DATA").count().execute()
