"""The flagship DAG end to end on Spark, through a local Spark Connect server, against the DuckDB run.

The same ``dag.test()`` as on DuckDB, PostgreSQL and Snowflake, with ``neve_default`` an
Apache Spark provider ``spark_connect`` connection to ``sc://127.0.0.1:PORT``
(tests/_servers/spark_connect.py): the Airflow-side tasks and the ``taxi`` env's ``train``
and ``predict`` are separate processes, and all of them reach one catalog through the
server, as they would a Databricks workspace or a Spark 4 cluster (``spark://local[N]``
cannot serve them: its catalog lives inside one process). So this also proves the env
carries Spark's Connect client. The CSVs go up from the client (the server cannot read the
client's files), the model files go to the registry's stage beside the client
(``./.neve/stage``), and every query is Spark SQL run by the server.
"""

from __future__ import annotations

import json
import uuid

import pandas as pd
import pytest

import neve
from tests.airflow._conf import run_conf
from tests.airflow.conftest import assert_matches_the_duckdb_run, taxi_outcome

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def test_the_dag_on_spark_connect_matches_the_duckdb_run(taxi_run, taxi_dag, taxi_db, spark_connect_url,
                                                         monkeypatch, tmp_path):
    assert str(taxi_run.state).endswith("success"), taxi_run.state
    on_duckdb = taxi_outcome(f"duckdb://{taxi_db}")

    host, port = spark_connect_url.removeprefix("sc://").split(":")
    database = f"dag_{uuid.uuid4().hex[:8]}"
    connection = {"conn_type": "spark_connect", "host": host, "port": int(port), "schema": database}
    monkeypatch.setenv("AIRFLOW_CONN_NEVE_DEFAULT", json.dumps(connection))
    monkeypatch.chdir(tmp_path)  # the registry's default stage on a server engine: ./.neve/stage
    url = f"{spark_connect_url}/?database={database}"
    try:
        run = taxi_dag.test(run_conf=run_conf(auto_approve=True))
        states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
        assert states == {task_id: "success" for task_id in taxi_dag.task_ids}, states
        assert_matches_the_duckdb_run(url, run, on_duckdb)
        # Every trip's prediction too, not only the aggregate metrics: the same fitted model
        # scored in Spark SQL as in DuckDB's.
        on_spark, on_duck = _predictions(url), _predictions(f"duckdb://{taxi_db}")
        pd.testing.assert_frame_equal(on_spark, on_duck, rtol=1e-6, check_dtype=False)
        assert (tmp_path / ".neve" / "stage").is_dir()
    finally:
        with neve.connect(spark_connect_url) as admin:
            admin.engine.raw_sql(f"DROP DATABASE IF EXISTS `{database}` CASCADE")


def _predictions(url: str) -> pd.DataFrame:
    with neve.connect(url) as session:
        pred = session.table("TAXI_PRED").select("TRIP_ID", "PREDICTION").order_by("TRIP_ID")
        return session.execute(pred).reset_index(drop=True)
