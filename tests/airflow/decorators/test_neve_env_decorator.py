"""@task.neve(env=...): a task in a neve task environment, run for real in the project's taxi env.

Each task here is executed through its operator (the env's interpreter as a subprocess,
Airflow's run context in the environment it inherits), on a DuckDB file reached through
``AIRFLOW_CONN_<ID>`` as a deployed task reaches it.
"""

from __future__ import annotations

import json
import types
from pathlib import Path

import pandas as pd
import pendulum
import pytest
from airflow.sdk import DAG, task
from airflow.sdk.exceptions import AirflowException, AirflowFailException
from airflow.sdk.execution_time.context import OutletEventAccessors

import neve
import neve.envs
from neve import Registry
from neve.airflow import MODEL_ALIAS, TableRef
from neve.airflow.decorators.neve_env import NeveEnvDecoratedOperator

REPO = Path(__file__).resolve().parents[3]
START = pendulum.datetime(2024, 1, 1)

pytestmark = pytest.mark.slow  # each execution starts the env's interpreter


@pytest.fixture
def warehouse(tmp_path, monkeypatch) -> Path:
    db = tmp_path / "env.duckdb"
    monkeypatch.setenv("AIRFLOW_CONN_ENV_TEST", json.dumps({"conn_type": "neve", "extra": {"url": f"duckdb://{db}"}}))
    with neve.connect(f"duckdb://{db}") as session:
        session.create_table("POINTS", pd.DataFrame({"x": [float(i) for i in range(10)],
                                                     "y": [2.0 * i + 1 for i in range(10)]}))
    return db


def run(op, monkeypatch, *, run_id: str = "manual__1", try_number: int = 1):
    """Execute ``op`` as Airflow's task runner would: its run context exported to the environment."""
    for var, value in (("DAG_ID", op.dag_id), ("DAG_RUN_ID", run_id), ("TASK_ID", op.task_id),
                       ("TRY_NUMBER", str(try_number))):
        monkeypatch.setenv(f"AIRFLOW_CTX_{var}", value)
    context = {"ti": types.SimpleNamespace(), "run_id": run_id, "task": op, "outlet_events": OutletEventAccessors()}
    return op.execute(context), context


def test_the_author_writes_the_task_without_session_and_gets_the_envs_python():
    with DAG("neve_env_shape", schedule=None, start_date=START) as dag:

        @task.neve(conn_id="warehouse", env="taxi")
        def train(session, data: TableRef, alpha: float = 1.0) -> dict:
            return {}

        train({"kind": "neve.table/1", "name": "T"})
        with pytest.raises(TypeError, match="data"):
            train()

    op = dag.get_task("train")
    assert isinstance(op, NeveEnvDecoratedOperator)
    assert op.python == neve.envs.python("taxi", project=REPO)
    assert (op.env, op.conn_id, op.expect_airflow) == ("taxi", "warehouse", False)
    assert MODEL_ALIAS in op.outlets
    source = op.get_python_source()
    assert "@task.neve" not in source and source.rstrip().endswith("train = _neve_in_env(train, 'warehouse')")


def test_the_function_gets_a_session_and_refs_and_returns_json(task_envs, warehouse, monkeypatch):
    with DAG("neve_env_refs", schedule=None, start_date=START):

        @task.neve(conn_id="env_test", env="taxi")
        def summarise(data: TableRef, session, refs: list, label: str = "x") -> dict:
            import sys

            from neve.airflow import TableRef

            session.create_table("POINTS_2", data.table(session).filter(lambda t: t.x > 4), overwrite=True)
            return {
                "python": sys.prefix,
                "session": type(session).__name__,
                "types": [type(data).__name__, *(type(r).__name__ for r in refs)],
                "label": label,
                "rows": int(data.table(session).count().execute()),
                "made": TableRef.of(session, "POINTS_2"),
                "nested": {"back": refs},
            }

        op = summarise({"kind": "neve.table/1", "name": "POINTS"}, refs=[TableRef("POINTS", rows=10)]).operator
    result, _ = run(op, monkeypatch)
    assert result["python"].startswith(str(REPO / ".neve" / "envs"))  # the env's interpreter, not Airflow's
    assert result["session"] == "Session"
    assert result["types"] == ["TableRef", "TableRef"]  # plain dicts from XCom came in as refs
    assert (result["label"], result["rows"]) == ("x", 10)
    assert result["made"] == {"kind": "neve.table/1", "name": "POINTS_2", "rows": 5}
    assert type(result["made"]) is dict and type(result["nested"]["back"][0]) is dict  # JSON on the way out
    assert result["nested"]["back"] == [{"kind": "neve.table/1", "name": "POINTS", "rows": 10}]


def test_a_retry_after_log_model_returns_the_version_the_first_try_logged(task_envs, warehouse, monkeypatch):
    with DAG("neve_env_retry", schedule=None, start_date=START):

        @task.neve(conn_id="env_test", env="taxi", retries=2)
        def fit(session, data: TableRef):
            import os

            from sklearn.linear_model import LinearRegression

            from neve import Registry

            table = data.table(session)
            frame = table.to_pandas()
            model = LinearRegression().fit(frame[["x"]], frame["y"])
            mv = Registry(session).log_model(model, model_name="env_model", training_data=table.select("x"),
                                              metrics={"rows": len(frame)})
            if os.environ["AIRFLOW_CTX_TRY_NUMBER"] == "1":
                raise RuntimeError("the worker was lost after log_model")
            return mv

        op = fit({"kind": "neve.table/1", "name": "POINTS"}).operator
    with pytest.raises(AirflowException, match="the worker was lost") as first:
        run(op, monkeypatch, try_number=1)
    assert not isinstance(first.value, AirflowFailException)  # an ordinary failure: Airflow retries it
    ref, context = run(op, monkeypatch, try_number=2)
    assert (ref["model"], ref["version"]) == ("env_model", "v1")
    (event,) = context["outlet_events"][MODEL_ALIAS].asset_alias_events
    assert event.dest_asset_key.uri == "neve://env/env_model" and event.extra["version"] == "v1"
    with neve.connect(f"duckdb://{warehouse}") as session:
        assert [v.version_name for v in Registry(session).get_model("env_model").versions()] == ["v1"]
    # Another DAG run's first try logs its own version: the lookup is by run and task.
    with pytest.raises(AirflowException, match="the worker was lost"):
        run(op, monkeypatch, run_id="manual__2", try_number=1)
    with neve.connect(f"duckdb://{warehouse}") as session:
        model = Registry(session).get_model("env_model")
        assert [v.version_name for v in model.versions()] == ["v1", "v2"]
        mv = model.version("v1")
        assert (mv.tags["airflow_dag_id"], mv.tags["airflow_run_id"], mv.tags["airflow_task_id"]) == (
            "neve_env_retry", "manual__1", "fit")
        assert mv.sample_input()["x"].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]  # the default sample


def test_a_missing_env_fails_at_once_with_the_command_that_builds_it(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "p"\n\n[tool.neve.envs.ghost]\npython = "3.11"\n')
    with DAG("neve_env_missing", schedule=None, start_date=START):

        @task.neve(env="ghost", project=str(tmp_path), retries=3)
        def never_runs(session):
            return 1

        op = never_runs().operator
    with pytest.raises(AirflowFailException, match=r"env 'ghost' is not built: run `neve env build ghost`"):
        run(op, monkeypatch)


def test_bad_input_in_the_env_fails_without_a_retry(task_envs, warehouse, monkeypatch):
    with DAG("neve_env_bad_input", schedule=None, start_date=START):

        @task.neve(conn_id="env_test", env="taxi", retries=3)
        def load(session):
            from neve.errors import DataFileError

            raise DataFileError("taxi data file not found: /nowhere/2019-13.csv")

        op = load().operator
    with pytest.raises(AirflowFailException, match=r"^DataFileError: taxi data file not found: /nowhere"):
        run(op, monkeypatch)
