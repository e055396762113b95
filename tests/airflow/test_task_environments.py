"""The task-environments example DAG: env tasks inside a real ``dag.test()`` run."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import neve
from tools.demo.metadata import read_xcom

CSV = Path(__file__).resolve().parents[2] / "data" / "nyc_taxi" / "yellow_tripdata_sample_2019-01.csv"


@pytest.fixture(scope="module")
def envs_run(dagbag, task_envs):
    run = dagbag.dags["task_environments"].test()
    assert str(run.state).endswith("success"), run.state
    return run


def test_the_example_dag_puts_each_task_in_its_env(dagbag):
    dag = dagbag.dags["task_environments"]
    repo = Path(__file__).resolve().parents[2]
    assert dag.get_task("trips_by_hour").python == neve.envs.python("taxi", project=repo)
    assert dag.get_task("hours_report").python == neve.envs.python("legacy", project=repo)


@pytest.mark.slow
def test_an_env_task_returns_a_table_ref_that_a_neve_task_reads(envs_run, metadata_db, taxi_db):
    made = read_xcom(metadata_db, envs_run.run_id, "trips_by_hour", dag_id="task_environments")
    assert made == {"kind": "neve.table/1", "name": "TRIPS_BY_HOUR", "rows": 24}
    busiest = read_xcom(metadata_db, envs_run.run_id, "busiest_hours", dag_id="task_environments")
    assert busiest["table"] == "TRIPS_BY_HOUR"
    assert busiest["ref"] == "TableRef"  # XCom's plain dict came back as a TableRef
    # pandas as the oracle for what the env task computed in SQL
    hours = pd.to_datetime(pd.read_csv(CSV).pickup_datetime).dt.hour.value_counts()
    expected = sorted(hours.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
    assert busiest["rows"] == [[int(h), int(n)] for h, n in expected]
    with neve.connect(f"duckdb://{taxi_db}") as session:
        assert session.table("TRIPS_BY_HOUR").TRIPS.sum().execute() == len(pd.read_csv(CSV))


@pytest.mark.slow
def test_a_task_runs_on_the_legacy_envs_python_310(envs_run, metadata_db):
    result = read_xcom(metadata_db, envs_run.run_id, "hours_report", dag_id="task_environments")
    assert result["python"].startswith("3.10."), result
    assert result["report"].splitlines()[0].split() == ["hour", "trips"]
