"""The demo's environment: engine URL, Airflow settings and the neve_default connection."""

from __future__ import annotations

import socket

from neve.demo import _free_port, airflow_env, engine_url, repo_root, standalone_env
from neve.engine._airflow_conn import url_from_env


def test_relative_duckdb_path_becomes_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NEVE_URL", raising=False)
    assert engine_url(None) == f"duckdb://{tmp_path / 'neve.duckdb'}"
    assert engine_url("duckdb:///./x/y.duckdb?lock_timeout=5") == f"duckdb://{tmp_path / 'x/y.duckdb'}?lock_timeout=5"


def test_neve_url_is_honoured(monkeypatch):
    monkeypatch.setenv("NEVE_URL", "postgres://u:pw@127.0.0.1:5432/db")
    assert engine_url(None) == "postgres://u:pw@127.0.0.1:5432/db"


def test_airflow_env_points_neve_default_at_the_url_through_the_environment_only(tmp_path):
    url = "postgres://ml:s3cret@db:5432/ml"
    env = airflow_env(tmp_path / "home", url, tmp_path / "dags", base={})
    assert env["AIRFLOW_HOME"] == str(tmp_path / "home")
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(tmp_path / "dags")
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == f"sqlite:///{tmp_path / 'home' / 'airflow.db'}"
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    assert url_from_env("neve_default", env) == url
    assert not (tmp_path / "home").exists()  # nothing written


def test_standalone_env_keeps_ports_apart_and_the_execution_api_on_the_api_port(tmp_path):
    port = _free_port()
    env = standalone_env(tmp_path, "duckdb://", tmp_path, port)
    assert env["AIRFLOW__API__HOST"] == "127.0.0.1"
    assert env["AIRFLOW__API__PORT"] == str(port)
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == f"http://127.0.0.1:{port}/execution/"
    ports = {env["AIRFLOW__API__PORT"], env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"],
             env["AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT"]}
    assert len(ports) == 3


def test_free_port_moves_off_a_taken_port():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        assert _free_port(busy) != busy


def test_repo_root_finds_the_dag():
    assert (repo_root() / "dags" / "taxi_trip_duration.py").is_file()
