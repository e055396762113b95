"""The flagship DAG end to end on a real PostgreSQL server, against the DuckDB run.

The same ``dag.test()`` as ``make demo`` with ``NEVE_URL=postgres://...``: the Airflow-side
tasks and the ``taxi`` env's ``train`` and ``predict`` all open the server through the
inherited ``AIRFLOW_CONN_NEVE_DEFAULT``, so this also proves the env carries PostgreSQL's
driver. Row counts must be equal and metrics equal to float tolerance: both engines get the
same rows in the same order (``TRIP_ID`` is a row number over every column), so the
training split, the fitted model and the SQL metrics match.
"""

from __future__ import annotations

import json

import pytest

from tests._servers import postgres as pg
from tests.airflow._conf import run_conf
from tests.airflow.conftest import assert_matches_the_duckdb_run, taxi_outcome

pytestmark = pytest.mark.slow


def test_the_dag_on_postgres_matches_the_duckdb_run(taxi_run, taxi_dag, taxi_db, postgres_admin_url,
                                                     monkeypatch, tmp_path):
    assert str(taxi_run.state).endswith("success"), taxi_run.state
    on_duckdb = taxi_outcome(f"duckdb://{taxi_db}")

    with pg.throwaway_database(postgres_admin_url, "dag") as url:
        monkeypatch.setenv("AIRFLOW_CONN_NEVE_DEFAULT", json.dumps({"conn_type": "neve", "extra": {"url": url}}))
        monkeypatch.chdir(tmp_path)  # the registry's default stage on a server engine: ./.neve/stage
        run = taxi_dag.test(run_conf=run_conf(auto_approve=True))
        states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
        assert str(run.state).endswith("success"), states
        assert_matches_the_duckdb_run(url, run, on_duckdb)
    assert (tmp_path / ".neve" / "stage").is_dir()
