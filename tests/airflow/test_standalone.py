"""End to end: ``airflow standalone`` on loopback, the DAG triggered through the REST API, its
promotion approved through it, and ``taxi_scoring`` started by the alias move's Asset event.

Slow (a minute or more to become healthy, then one LocalExecutor run), so marked slow;
CI runs it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
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
def test_standalone_runs_the_dag_a_person_approves_through_the_rest_api_and_scoring_follows(tmp_path, task_envs):
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
        # No auto_approve: the promotion waits for a person, under Required Actions.
        hitl = f"{run_path}/taskInstances/approve_promotion/-1/hitlDetails"
        request = until(lambda: _pending(port, hitl, token), timeout=900, what="the approval request", log=log_path)
        assert request["subject"] == "Promote trip_duration_estimator v1 to production?"
        assert "/neve/models/trip_duration_estimator/versions/v1" in request["body"]
        # As a person reads the request before answering. An answer given in the seconds before
        # the executor reports the parked try's workload finished is lost: Airflow 3.3 takes that
        # report for a failure of the resumed task, retries it, and the retry asks again.
        time.sleep(15)
        answered = _patch(port, hitl, token, {"chosen_options": ["Approve"], "params_input": {}})
        assert answered["responded_by"]["name"] == "admin"

        def task_states() -> dict[str, str]:
            return {t["task_id"]: t["state"] for t in api(port, f"{run_path}/taskInstances", token)["task_instances"]}

        state = until(lambda: _finished(port, run_path, token), timeout=900, what="the run", log=log_path,
                      detail=task_states)
        summary = task_states()
        assert state == "success", f"{summary}\n{tail(log_path)}"
        assert summary == {task: "success" for task in (
            "setup_registry", "load.load_2019_01", "load.load_2019_02", "transform", "feature_engineering",
            "train", "score_data", "predict", "drift_gate", "compare_to_production", "approve_promotion",
            "promote_to_production",
        )}
        # The alias move's Asset event started taxi_scoring, which scored with the new production.
        scoring = until(lambda: _asset_triggered_run(port, token), timeout=600, what="taxi_scoring", log=log_path)
        scoring_path = f"/api/v2/dags/taxi_scoring/dagRuns/{urllib.parse.quote(scoring['dag_run_id'])}"
        assert until(lambda: _finished(port, scoring_path, token), timeout=900, what="taxi_scoring's run",
                     log=log_path) == "success"
    finally:
        stop(proc)
    assert proc.returncode is not None
    assert group_members(proc.pid) == []  # nothing of standalone's process group is left
    with neve.connect(f"duckdb://{db}?read_only=true") as session:
        assert session.table("TAXI_PRED").count().execute() == session.table("TAXI_DATA").count().execute()
        assert session.table("TAXI_PRED_LATEST").count().execute() == session.table("TAXI_LATEST").count().execute()
        model = neve.Registry(session).get_model("trip_duration_estimator")
        assert model.aliases["production"] == "v1"
        assert model.alias_history("production").iloc[0]["created_by"] == "admin"  # the approver


def until(check, *, timeout: float, what: str, log: Path, detail=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if (found := check()) is not None:
                return found
        except (TimeoutError, urllib.error.URLError) as exc:  # a loaded api-server answers late: ask again
            print(f"waiting for {what}: {exc}")
        time.sleep(3)
    pytest.fail(f"timed out waiting for {what}{f' ({detail()})' if detail else ''}\n{tail(log)}")


def _pending(port: int, path: str, token: str):
    """The request once the task waits for it. Its details are written a moment before the
    task parks in ``awaiting_input``; an answer given in between is stored but resumes
    nothing (Airflow resumes only a parked task), so a person answers what the UI lists."""
    try:
        detail = api(port, path, token)
        state = api(port, path.removesuffix("/-1/hitlDetails"), token)["state"]
    except urllib.error.HTTPError:  # not asked yet
        return None
    return None if detail["response_received"] or state != "awaiting_input" else detail


def _patch(port: int, path: str, token: str, body: dict):
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(), method="PATCH",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def _finished(port: int, path: str, token: str):
    state = api(port, path, token)["state"]
    return state if state in ("success", "failed") else None


def _asset_triggered_run(port: int, token: str):
    runs = api(port, "/api/v2/dags/taxi_scoring/dagRuns", token)["dag_runs"]
    return next((r for r in runs if r["run_type"] == "asset_triggered"), None)
