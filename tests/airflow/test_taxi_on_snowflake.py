"""The flagship DAG end to end on the Snowflake emulator (fakesnow), against the DuckDB run.

The same ``dag.test()`` as on DuckDB and PostgreSQL, with ``neve_default`` pointing at a
``snowflake://`` URL (the account is the emulator's HTTP server, tests/engine/_fakesnow.py):
the Airflow-side tasks and the ``taxi`` env's ``train`` and ``predict`` all open it through
the inherited ``AIRFLOW_CONN_NEVE_DEFAULT``, so this also proves the env carries Snowflake's
driver. Every task runs: the CSVs go in through Ibis's upload (PUT + COPY INTO), the model
files through the registry's internal stage ``@NEVE_STAGE``, and every query is Snowflake SQL.
What fakesnow cannot run as real Snowflake does is answered by the test server, each case
listed in ``EMULATOR_ADAPTATIONS`` and printed in docs/support-matrix.md.
"""

from __future__ import annotations

import json
import uuid

import pytest

import neve
from neve import Registry
from tests.airflow._conf import run_conf
from tests.airflow.conftest import TAXI_MODEL, assert_matches_the_duckdb_run, taxi_outcome

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]


def test_the_dag_on_the_snowflake_emulator_matches_the_duckdb_run(taxi_run, taxi_dag, taxi_db, emulator,
                                                                   monkeypatch, tmp_path):
    assert str(taxi_run.state).endswith("success"), taxi_run.state
    on_duckdb = taxi_outcome(f"duckdb://{taxi_db}")

    url = emulator.url(f"TAXI_{uuid.uuid4().hex[:8].upper()}")
    monkeypatch.setenv("AIRFLOW_CONN_NEVE_DEFAULT", json.dumps({"conn_type": "neve", "extra": {"url": url}}))
    monkeypatch.chdir(tmp_path)  # nothing may land in a local stage: the registry uses @NEVE_STAGE
    run = taxi_dag.test(run_conf=run_conf(auto_approve=True))
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert states == {task_id: "success" for task_id in taxi_dag.task_ids}, states
    assert_matches_the_duckdb_run(url, run, on_duckdb)
    with neve.connect(url) as session:
        version = Registry(session).get_model(TAXI_MODEL).versions()[-1]
        assert version.lineage()["artifact_uri"].startswith("@NEVE_STAGE/")
    assert not (tmp_path / ".neve").exists()
