"""The demo's environment: engine URL, Airflow settings and the neve_default connection."""

from __future__ import annotations

import socket

from neve.engine._airflow_conn import url_from_env
from tools.demo.metadata import repo_root
from tools.demo.runner import _free_port, airflow_env, engine_url, standalone_env


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


def test_make_airflow_sizes_the_executor_to_the_machine(tmp_path, monkeypatch):
    from tools.demo.runner import executor_parallelism

    assert executor_parallelism(cpus=2) == 4  # not Airflow's 32 workers on a 2-core machine
    assert executor_parallelism(cpus=1) == 2
    assert executor_parallelism(cpus=64) == 16
    monkeypatch.delenv("AIRFLOW__CORE__PARALLELISM", raising=False)
    env = standalone_env(tmp_path, "duckdb://", tmp_path, 8080)
    assert env["AIRFLOW__CORE__PARALLELISM"] == str(executor_parallelism())


def test_the_pre_flight_check_names_a_bad_or_unwritable_url_in_one_line():
    from tools.demo.checks import check_engine

    assert check_engine("duckdb://") is None
    unknown = check_engine("mysql://u@h/db")
    assert unknown.startswith("NEVE_URL is not usable") and "mysql" in unknown and "\n" not in unknown
    unwritable = check_engine("duckdb:///proc/neve/neve.duckdb")
    assert unwritable.startswith("cannot write to duckdb:///proc/neve/neve.duckdb") and "\n" not in unwritable


def test_a_month_without_a_sample_lists_the_months_there_are():
    from tools.demo.report import month_problem

    assert month_problem(repo_root(), "2019-03") is None
    problem = month_problem(repo_root(), "1999-01")
    assert "MONTH=1999-01" in problem and "2019-01" in problem and "2020-04" in problem


def test_production_moves_only_to_a_version_with_a_lower_mse(tmp_path):
    from sklearn.dummy import DummyRegressor

    import neve
    from tools.demo.report import metric_lines, promote_if_better

    reg = neve.Registry(f"duckdb://{tmp_path / 'r.duckdb'}")
    model = DummyRegressor().fit([[0.0]], [1.0])
    v1 = reg.log_model(model, "m", metrics={"mse": 100.0})
    assert "promoted v1 to production" in promote_if_better(reg.get_model("m"), v1)
    v2 = reg.log_model(model, "m", metrics={"mse": 120.0})
    assert promote_if_better(reg.get_model("m"), v2).startswith("production stays v1")
    v3 = reg.log_model(model, "m", metrics={"mse": 81.0, "mae": 7.0, "r2": 0.5})
    assert "promoted v3 to production (was v1" in promote_if_better(reg.get_model("m"), v3)
    assert reg.get_model("m").aliases == {"production": "v3"}
    assert metric_lines(v3.metrics) == "MSE 81 s²  RMSE 9 s  MAE 7 s  R² 0.5000"
