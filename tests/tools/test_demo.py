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


def test_the_summary_tells_what_the_promotion_step_did(tmp_path):
    import json
    import sqlite3

    from sklearn.dummy import DummyRegressor

    import neve
    from tools.demo.report import metric_lines, promotion

    metadata = tmp_path / "airflow.db"
    with sqlite3.connect(metadata) as con:
        con.execute("CREATE TABLE xcom (dag_id TEXT, run_id TEXT, task_id TEXT, key TEXT, value TEXT)")
        con.execute("INSERT INTO xcom VALUES ('taxi_trip_duration', 'r1', 'promote_to_production', "
                    "'return_value', ?)", (json.dumps({"promoted": True, "message": "production is now m v1 "
                                                       "(was unset): auto-approved (DAG param auto_approve)"}),))
    reg = neve.Registry(f"duckdb://{tmp_path / 'r.duckdb'}")
    model = DummyRegressor().fit([[0.0]], [1.0])
    v1 = reg.log_model(model, "m", metrics={"mse": 100.0})
    assert promotion(metadata, "r1", reg.get_model("m"), v1).endswith("auto-approved (DAG param auto_approve)")
    assert promotion(metadata, "r2", reg.get_model("m"), v1) == "production is unset: the promotion did not run"
    reg.get_model("m").set_alias("production", "v1")
    v2 = reg.log_model(model, "m", metrics={"mse": 120.0})
    # compare_to_production skipped the approval: no XCom, the summary says why.
    assert promotion(metadata, "r3", reg.get_model("m"), v2) == "production stays v1 (MSE 100 s², v2 has 120 s²)"
    assert metric_lines({"mse": 81.0, "mae": 7.0, "r2": 0.5}) == "MSE 81 s²  RMSE 9 s  MAE 7 s  R² 0.5000"


def test_the_report_says_how_cross_validation_chose_the_model(tmp_path):
    import numpy as np
    import pandas as pd

    import neve
    from neve import Pipeline
    from neve.linear_model import LinearRegression, Ridge
    from neve.model_selection import GridSearchCV, KFold
    from tools.demo.report import chosen_by, metric_lines

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"ID": np.arange(200), "X": rng.normal(size=200)})
    df["Y"] = 2 * df.X + rng.normal(size=200)
    with neve.connect(f"duckdb://{tmp_path / 'r.duckdb'}") as session:
        cols = {"label_cols": ["Y"], "passthrough_cols": ["ID"]}
        search = GridSearchCV(Pipeline([("model", LinearRegression(**cols))]),
                              [{"model": [Ridge(**cols)], "model__alpha": [0.5, 1e3]},
                               {"model": [LinearRegression(**cols)]}],
                              cv=KFold(5, key="ID"), scoring="neg_mean_squared_error")
        reg = neve.Registry(session)
        mv = reg.log_model(search.fit(session.create_table("T", df)), "m", metrics={"mse": 81.0})
        line = chosen_by(mv)
        best = search.cv_results_["mean_test_score"][search.best_index_]
        assert line.startswith("chosen by 5-fold cross-validation among 3 candidates: ")
        assert f"CV MSE {-best:,.0f} ± " in line
        assert ("Ridge, alpha=0.5" in line) == (search.best_index_ == 0)
        assert metric_lines(mv.metrics) == "MSE 81 s²  RMSE 9 s"  # the CV scores are not the test split's
        plain = reg.log_model(search.best_estimator_, "m")
        assert chosen_by(plain) is None


def test_the_report_sets_the_two_dags_models_side_by_side(tmp_path):
    from rich.console import Console
    from sklearn.dummy import DummyRegressor

    import neve
    from tools.demo.report import model_comparison

    reg = neve.Registry(f"duckdb://{tmp_path / 'r.duckdb'}")
    model = DummyRegressor().fit([[0.0]], [1.0])
    linear = reg.log_model(model, "lin", metrics={"mse": 90_000.0, "mae": 200.0, "r2": 0.61},
                           tags={"model_type": "Ridge"})
    boosted = reg.log_model(model, "gbr", metrics={"mse": 62_500.0, "mae": 150.0, "r2": 0.7312},
                            tags={"model_type": "HistGradientBoostingRegressor"})
    console = Console(width=80, record=True)  # a plain terminal: no cell is cut
    console.print(model_comparison([linear, boosted]))
    rows = [[c.strip() for c in line.split("│")[1:-1]] for line in console.export_text().splitlines() if "│" in line]
    assert rows == [["Ridge", "lin v1", "300", "200", "0.6100"],
                        ["HistGradientBoosting", "gbr v1", "250", "150", "0.7312"]]
