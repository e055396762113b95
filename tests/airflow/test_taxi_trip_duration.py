"""The flagship DAG: its shape, its cleaning rules, and one full ``dag.test()`` run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

import neve
import neve.envs
from neve import Registry
from neve.airflow import TableRef
from neve.errors import ColumnNotFoundError, DataFileError
from tests.airflow._conf import run_conf

REPO = Path(__file__).resolve().parents[2]
TAXI = REPO / "data" / "nyc_taxi"
MODEL = "trip_duration_estimator"


def cleaned_trip_count(*months: str) -> int:
    """The cleaning rules, restated in pandas as the oracle."""
    frames = [pd.read_csv(TAXI / f"yellow_tripdata_sample_{m}.csv") for m in months]
    df = pd.concat(frames, ignore_index=True)
    duration = (
        pd.to_datetime(df.dropoff_datetime) - pd.to_datetime(df.pickup_datetime)
    ).dt.total_seconds()
    keep = (
        (duration > 0)
        & (duration <= 4 * 3600)
        & (df.trip_distance > 0)
        & df.pickup_location_id.notna()
        & df.dropoff_location_id.notna()
        & df.pickup_datetime.notna()
    )
    return int(keep.sum())


# -- shape -----------------------------------------------------------------------------------------


def test_dag_imports_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert "taxi_trip_duration" in dagbag.dags


def test_expected_tasks_and_dependencies(taxi_dag):
    assert set(taxi_dag.task_ids) == {
        "setup_registry", "load.load_2019_01", "load.load_2019_02", "transform",
        "feature_engineering", "train", "score_data", "predict", "drift_gate",
        "compare_to_production", "approve_promotion", "promote_to_production",
    }
    taxi_dag.check_cycle()  # raises on a cycle
    up = {t: taxi_dag.get_task(t).upstream_task_ids for t in taxi_dag.task_ids}
    assert up["load.load_2019_01"] == up["load.load_2019_02"] == {"setup_registry"}
    assert up["transform"] == {"load.load_2019_01", "load.load_2019_02"}
    assert up["feature_engineering"] == {"transform"}
    assert up["train"] == {"transform", "feature_engineering"}
    assert up["score_data"] == {"transform"}
    assert up["predict"] == {"train", "score_data"}
    assert up["drift_gate"] == {"predict"}
    assert up["compare_to_production"] == {"train"}
    assert up["approve_promotion"] == {"compare_to_production"}
    assert up["promote_to_production"] == {"compare_to_production", "approve_promotion"}


def test_train_and_predict_run_in_the_taxi_env_and_the_rest_on_the_neve_connection(taxi_dag):
    taxi_python = neve.envs.python("taxi", project=REPO)
    for task in taxi_dag.tasks:
        assert task.retries >= 1, task.task_id
        if task.task_id in ("train", "predict"):
            assert (task.env, task.python) == ("taxi", taxi_python), task.task_id
        if task.task_id not in ("drift_gate", "approve_promotion"):
            assert task.conn_id == "neve_default", task.task_id


def test_the_dag_trains_on_every_row_so_it_has_no_sample_param(taxi_dag):
    from airflow.dag_processing.dagbag import BundleDagBag

    assert set(taxi_dag.params) == {"score_month", "auto_approve"}
    assert "sample_rows" not in taxi_dag.get_task("train").op_kwargs
    # A person approves unless a run says otherwise. Read from a fresh parse: an in-process
    # dag.test() with auto_approve on leaves it on in the session's DAG object.
    fresh = BundleDagBag(str(REPO / "dags" / "taxi_trip_duration.py"), bundle_path=REPO / "dags")
    assert fresh.dags["taxi_trip_duration"].params["auto_approve"] is False


def test_feature_engineering_declares_the_pipeline_and_writes_nothing(taxi_dag, taxi_module, tmp_path):
    engineer = taxi_dag.get_task("feature_engineering").python_callable.__wrapped__
    with neve.connect(f"duckdb://{tmp_path / 'x.duckdb'}") as session:
        session.create_table("TAXI_DATA", pd.DataFrame({c: ["1"] for c in taxi_module.CATEGORICAL}).assign(
            TRIP_DISTANCE=1.0, TRIP_DURATION_SEC=60.0, TRIP_ID=1))
        with neve.capture_queries() as log:
            out = engineer(session, TableRef.of(session, "TAXI_DATA"))
        assert session.list_tables() == ["TAXI_DATA"]
        assert len(log) == 0
        assert out["columns"] == taxi_module.RAW_FEATURES
        assert [s["class"] for s in out["pipeline"]["steps"]] == ["OneHotEncoder", "MaxAbsScaler"]
        session.create_table("TAXI_DATA", session.table("TAXI_DATA").drop("TRIP_DISTANCE"), overwrite=True)
        with pytest.raises(ColumnNotFoundError, match="TRIP_DISTANCE"):
            engineer(session, TableRef.of(session, "TAXI_DATA"))


# -- cleaning rules --------------------------------------------------------------------------------


def test_cleaning_rules_on_edge_cases(taxi_module):
    t0 = pd.Timestamp("2019-01-01 10:00:00")
    sec = pd.Timedelta(seconds=1)
    raw = pd.DataFrame(
        {
            "pickup_datetime": [t0] * 7,
            "dropoff_datetime": [t0 + 600 * sec, t0, t0 - 60 * sec, t0 + 14400 * sec,
                                 t0 + 14401 * sec, t0 + 600 * sec, t0 + 600 * sec],
            "trip_distance": [1.5, 1.0, 1.0, 30.0, 30.0, 0.0, 2.0],
            "pickup_location_id": [7, 7, 7, 7, 7, 7, None],
            "dropoff_location_id": [42, 42, 42, 42, 42, 42, 42],
        }
    )
    raw["pickup_location_id"] = raw["pickup_location_id"].astype("Int64")
    with neve.connect("duckdb://") as session:
        out = session.execute(taxi_module.clean_trips(session.create_table("R", raw)))
    # kept: the ordinary trip and the one of exactly four hours
    assert sorted(out.TRIP_DURATION_SEC) == [600.0, 14400.0]
    first = out.sort_values("TRIP_DURATION_SEC").iloc[0]
    assert (first.PICKUP_LOCATION_ID, first.DROPOFF_LOCATION_ID, first.HOUR_OF_DAY) == ("7", "42", "10")
    assert sorted(out.TRIP_ID) == [1, 2]


def test_cleaning_matches_the_pandas_oracle_on_the_sample(taxi_module):
    with neve.connect("duckdb://") as session:
        raw = session.load_files([TAXI / "yellow_tripdata_sample_2019-01.csv"], "R")
        n = session.execute(taxi_module.clean_trips(raw).count())
    assert n == cleaned_trip_count("2019-01")
    assert n < 10_000


def test_missing_csv_fails_the_load_naming_the_file_and_the_fix(taxi_dag, tmp_path):
    load = taxi_dag.get_task("load.load_2019_01").python_callable.__wrapped__
    with neve.connect(f"duckdb://{tmp_path / 'x.duckdb'}") as session:
        with pytest.raises(DataFileError, match=r"yellow_tripdata_sample_1999-01\.csv.*NEVE_TAXI_DATA"):
            load(session, month="1999-01")


# -- one full run ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def finished_run(taxi_run):
    assert str(taxi_run.state).endswith("success"), taxi_run.state
    return taxi_run


@pytest.mark.slow
def test_predictions_cover_every_cleaned_trip(finished_run, taxi_db):
    with neve.connect(f"duckdb://{taxi_db}") as session:
        pred = session.table("TAXI_PRED")
        n, distinct, nulls = session.execute(
            pred.aggregate(n=pred.count(), d=pred.TRIP_ID.nunique(), z=pred.PREDICTION.isnull().sum())
        ).iloc[0]
        assert n == distinct == cleaned_trip_count("2019-01", "2019-02")
        assert nulls == 0
        assert session.table("TAXI_DATA").count().execute() == n


@pytest.mark.slow
def test_the_run_logged_a_version_with_metrics_lineage_and_run_ids(finished_run, taxi_db):
    with neve.connect(f"duckdb://{taxi_db}") as session:
        versions = Registry(session).get_model(MODEL).versions()
        assert len(versions) == 1
        mv = versions[0]
        metrics = mv.metrics
        assert set(metrics) >= {"mse", "r2", *(f"cv_{s}_test_neg_mean_squared_error" for s in ("mean", "std"))}
        assert metrics["mse"] > 0 and 0.3 < metrics["r2"] < 1
        # Chosen by 5-fold CV among Ridge's seven alphas and LinearRegression; the held-out MSE
        # of the folds is of the test split's order.
        search = mv.search_results()
        assert (search.n_splits_, len(search.cv_results_["params"])) == (5, 8)
        assert -metrics["cv_mean_test_neg_mean_squared_error"] == pytest.approx(metrics["mse"], rel=0.5)
        tags = mv.tags
        chosen = type(search.best_params_["model"]).__name__
        assert tags["stage"] == "dev" and tags["model_type"] == chosen
        # From the run context, not the DAG's code.
        assert (tags["airflow_dag_id"], tags["airflow_run_id"], tags["airflow_task_id"]) == (
            "taxi_trip_duration", finished_run.run_id, "train")
        lineage = mv.lineage()
        assert lineage["airflow"]["dag_run_id"] == finished_run.run_id
        assert lineage["airflow"]["task_id"] == "train"
        assert lineage["training_data"]["tables"] == ["TAXI_DATA"]
        assert lineage["feature_pipeline"]["steps"][0]["class"] == "OneHotEncoder"
        features = lineage["params"]["features"]
        assert "TRIP_DISTANCE_SCALED" in features and "TRIP_DISTANCE" not in features and len(features) > 300
        assert "TRIP_ID" not in features  # it only assigns the folds
        assert lineage["params"].get("model__alpha") == search.best_params_.get("model__alpha")
        # Every row of the training split, not a sample: about 67% of the cleaned trips.
        assert lineage["params"]["train_rows"] == pytest.approx(0.67 * cleaned_trip_count("2019-01", "2019-02"),
                                                              rel=0.03)
        assert lineage["training_data"]["row_count"] == lineage["params"]["train_rows"]


@pytest.mark.slow
def test_the_run_emitted_an_asset_event_for_the_model(finished_run, taxi_db):
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as s:
        rows = (
            s.query(AssetEvent, AssetModel)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .filter(AssetEvent.source_run_id == finished_run.run_id)
            .all()
        )
        events = [(asset.uri, event.source_task_id, dict(event.extra)) for event, asset in rows]
    model_uri = f"neve://{taxi_db.stem}/{MODEL}"
    assert sorted((uri, task_id, extra["action"]) for uri, task_id, extra in events) == [
        (model_uri, "promote_to_production", "promoted"),
        (model_uri, "train", "logged"),  # recorded on the Airflow side of the env task
        (f"{model_uri}/aliases/production", "promote_to_production", "promoted"),  # auto-approved
    ], events
    extra = next(extra for uri, task_id, extra in events if task_id == "train")
    assert extra["version"] == "v1"
    assert set(extra["metrics"]) >= {"mse", "r2"}


@pytest.mark.slow
def test_a_retry_of_train_returns_the_run_version_instead_of_logging_another(
    finished_run, taxi_dag, taxi_db, metadata_db, monkeypatch
):
    from neve.airflow._env_call import in_env
    from tools.demo.metadata import read_xcom

    # The very function the env runs, wrapped as in the env and called here with the run's
    # own XCom and Airflow's run context: a second try of the run's train task.
    train = in_env(taxi_dag.get_task("train").python_callable.__wrapped__, "neve_default")
    engineered = read_xcom(metadata_db, finished_run.run_id, "feature_engineering")
    data = read_xcom(metadata_db, finished_run.run_id, "transform")
    for var, value in (("DAG_ID", finished_run.dag_id), ("DAG_RUN_ID", finished_run.run_id),
                       ("TASK_ID", "train"), ("TRY_NUMBER", "2")):
        monkeypatch.setenv(f"AIRFLOW_CTX_{var}", value)
    again = train(data, engineered)
    assert again["version"] == "v1"
    # Another run's first try does log a new version: the lookup is by run and task.
    monkeypatch.setenv("AIRFLOW_CTX_DAG_RUN_ID", "manual__other")
    monkeypatch.setenv("AIRFLOW_CTX_TRY_NUMBER", "1")
    with neve.capture_queries() as log:
        other = train(data, engineered)
    assert other["version"] == "v2" and other["tags"]["airflow_run_id"] == "manual__other"
    # No training row left the engine: the one query that reads rows without aggregating
    # them is the five-row default sample input (and the fit is one GROUP BY).
    reading = [q for q in log if '"TAXI_DATA"' in q]
    row_level = [q for q in reading if "GROUP BY" not in q.upper() and "SUM(" not in q.upper()
                 and "COUNT(" not in q.upper()]
    assert len(row_level) == 1 and "LIMIT 5" in row_level[0].upper(), [q[:300] for q in reading]
    with neve.connect(f"duckdb://{taxi_db}") as session:
        model = Registry(session).get_model(MODEL)
        assert [v.version_name for v in model.versions()] == ["v1", "v2"]
        assert model.version("v2").metrics == pytest.approx(model.version("v1").metrics, rel=1e-12)
        assert len(model.version("v1").sample_input()) == 5
        model.version("v2").delete()


@pytest.mark.slow
def test_predict_reports_drift_against_the_training_baseline(finished_run, metadata_db):
    from tools.demo.metadata import read_xcom

    result = read_xcom(metadata_db, finished_run.run_id, "predict")
    assert result["predictions"]["name"] == "TAXI_PRED"
    assert read_xcom(metadata_db, finished_run.run_id, "drift_gate")["name"] == "TAXI_PRED"
    assert result["model"]["version"] == "v1"
    assert result["scored_in"] == "sql"  # the model compiled to SQL: no rows left the engine
    drift = result["drift"]
    # The run scored its own training months, which match their baseline whatever the drift
    # statistics compute: this checks the report's shape, not that drift detection works.
    assert drift["ok"] is True and drift["drifted"] == []
    assert {f["feature"] for f in drift["features"]} == {
        "PICKUP_LOCATION_ID", "DROPOFF_LOCATION_ID", "HOUR_OF_DAY", "TRIP_DISTANCE",
    }
    assert result["drift_summary"].startswith("no drift")


@pytest.mark.slow
def test_a_month_the_model_never_saw_passes_the_drift_check(finished_run, taxi_module, taxi_db):
    # The real control: March 2019, cleaned as the DAG cleans, against the logged baseline.
    with neve.connect("duckdb://") as scratch:
        scratch.load_files([TAXI / "yellow_tripdata_sample_2019-03.csv"], "RAW", overwrite=True)
        march = scratch.create_table("MARCH", taxi_module.clean_trips(scratch.table("RAW"))).to_pandas()
    with neve.connect(f"duckdb://{taxi_db}") as session:
        report = Registry(session).get_model(MODEL).version("v1").drift(march)
    assert report.ok, report.features
    psi = report.features.set_index("feature")["psi"]
    assert (psi > 0).all() and (psi < 0.1).all()  # a different sample, scored honestly


@pytest.mark.slow
def test_scoring_the_lockdown_month_fails_predict_on_drift(finished_run, taxi_dag, metadata_db, taxi_db):
    # Runs after the full run: the model exists; this run scores 2020-04 instead.
    run = taxi_dag.test(run_conf=run_conf(score_month="2020-04", auto_approve=True))
    assert str(run.state).endswith("failed"), run.state
    tis = {ti.task_id: ti for ti in run.get_task_instances()}
    states = {task_id: str(ti.state) for task_id, ti in tis.items()}
    assert states["drift_gate"].endswith("failed")
    assert tis["drift_gate"].try_number == 1  # drift is not retried: it would drift again
    assert states["predict"].endswith("success")  # it found the drift and scored nothing
    assert states["train"].endswith("success")
    with neve.connect(f"duckdb://{taxi_db}") as session:
        # The month was loaded and cleaned, but nothing was scored from it.
        assert session.table("TAXI_SCORE").count().execute() > 9000
        assert session.table("TAXI_PRED").count().execute() == cleaned_trip_count("2019-01", "2019-02")


@pytest.mark.slow
def test_the_model_is_the_one_scikit_learns_grid_search_chooses_on_the_same_folds(finished_run, taxi_module, taxi_db):
    # The oracle: scikit-learn's GridSearchCV over its exact dense solvers, on the rows of the
    # SQL split and the folds neve assigned (a PredefinedSplit), each fold's encoder and
    # scaler refitted as scikit-learn's pipeline does.
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LinearRegression, Ridge
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
    from sklearn.model_selection import GridSearchCV, PredefinedSplit
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import MaxAbsScaler, OneHotEncoder

    from neve.model_selection import KFold, train_test_split

    m = taxi_module
    with neve.connect(f"duckdb://{taxi_db}") as session:
        mv = Registry(session).get_model(MODEL).version("v1")
        split = {k: mv.lineage()["params"][k] for k in ("test_size", "random_state", "key")}
        assert split == {"test_size": 0.33, "random_state": 42, "key": m.ID}
        train, test = train_test_split(session.table("TAXI_DATA"), **split)
        train = KFold(5, random_state=42, key=m.ID).assign(train).order_by(m.ID).to_pandas()
        test = test.order_by(m.ID).to_pandas()
    assert len(test) == pytest.approx(0.33 * (len(train) + len(test)), rel=0.05)
    assert mv.lineage()["params"]["train_rows"] == len(train)
    features = ColumnTransformer([("ohe", OneHotEncoder(handle_unknown="ignore", sparse_output=False), m.CATEGORICAL),
                                  ("mas", MaxAbsScaler(), m.NUMERIC)])
    grid = [{"model": [Ridge(solver="cholesky")], "model__alpha": list(np.logspace(-3, 3, 7))},
            {"model": [LinearRegression()]}]
    oracle = GridSearchCV(Pipeline([("features", features), ("model", LinearRegression())]), grid,
                          cv=PredefinedSplit(train["FOLD"]), scoring="neg_mean_squared_error",
                          ).fit(train[m.RAW_FEATURES], train[m.TARGET])
    search = mv.search_results()
    assert_allclose(search.cv_results_["mean_test_neg_mean_squared_error"], oracle.cv_results_["mean_test_score"],
                    rtol=1e-7)
    assert search.best_index_ == oracle.best_index_
    assert type(search.best_params_["model"]).__name__ == type(oracle.best_params_["model"]).__name__
    assert search.best_params_.get("model__alpha") == oracle.best_params_.get("model__alpha")
    predicted = oracle.predict(test[m.RAW_FEATURES])
    expected = {
        "mse": mean_squared_error(test[m.TARGET], predicted),
        "mae": mean_absolute_error(test[m.TARGET], predicted),
        "r2": r2_score(test[m.TARGET], predicted),
    }
    expected["rmse"] = expected["mse"] ** 0.5
    assert {k: mv.metrics[k] for k in expected} == pytest.approx(expected, rel=1e-6)


@pytest.mark.slow
def test_training_wrote_no_feature_or_split_table(finished_run, taxi_db):
    with neve.connect(f"duckdb://{taxi_db}") as session:
        widths = {t: len(session.table(t).columns) for t in session.list_tables() if not t.startswith("NEVE_")}
    assert {"TAXI_DATA", "TAXI_PRED"} <= set(widths)
    assert "TAXI_FEATURE" not in widths and "TAXI_TEST_SPLIT" not in widths
    assert max(widths.values()) < 20, widths  # no dense one-hot table (hundreds of columns)
