"""The flagship DAG: its shape, its cleaning rules, and one full ``dag.test()`` run."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

import neve
from neve import Registry
from neve.airflow import TableRef
from neve.errors import DataFileError
TAXI = Path(__file__).resolve().parents[2] / "data" / "nyc_taxi"
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
        "feature_engineering", "train", "predict",
    }
    taxi_dag.check_cycle()  # raises on a cycle
    up = {t: taxi_dag.get_task(t).upstream_task_ids for t in taxi_dag.task_ids}
    assert up["load.load_2019_01"] == up["load.load_2019_02"] == {"setup_registry"}
    assert up["transform"] == {"load.load_2019_01", "load.load_2019_02"}
    assert up["feature_engineering"] == {"transform"}
    assert up["train"] == {"transform", "feature_engineering"}
    assert up["predict"] == {"train", "transform"}


def test_every_task_retries_and_uses_the_neve_connection(taxi_dag):
    for task in taxi_dag.tasks:
        assert task.retries >= 1, task.task_id
        assert task.conn_id == "neve_default", task.task_id


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
        assert set(metrics) >= {"mse", "r2"}
        assert metrics["mse"] > 0 and 0.3 < metrics["r2"] < 1
        tags = mv.tags
        assert tags["stage"] == "dev" and tags["model_type"] == "LinearRegression"
        assert tags["airflow_run_id"] == finished_run.run_id
        lineage = mv.lineage()
        assert lineage["airflow"]["dag_run_id"] == finished_run.run_id
        assert lineage["airflow"]["task_id"] == "train"
        assert lineage["training_data"]["tables"] == ["TAXI_DATA"]
        assert lineage["feature_pipeline"]["steps"][0]["class"] == "OneHotEncoder"
        stds = lineage["params"]["feature_stds"]
        assert "TRIP_DISTANCE_SCALED" in stds and len(stds) == len(lineage["params"]["features"])


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
    assert len(events) == 1, events
    uri, task_id, extra = events[0]
    assert uri == f"neve://{taxi_db.stem}/{MODEL}"
    assert task_id == "train"
    assert extra["version"] == "v1" and extra["action"] == "logged"
    assert set(extra["metrics"]) >= {"mse", "r2"}


@pytest.mark.slow
def test_a_retry_of_train_returns_the_run_version_instead_of_logging_another(finished_run, taxi_dag, taxi_db):
    train = taxi_dag.get_task("train").python_callable.__wrapped__
    run = SimpleNamespace(run_id=finished_run.run_id, dag_id=finished_run.dag_id)
    with neve.connect(f"duckdb://{taxi_db}") as session:
        model = Registry(session).get_model(MODEL)
        engineered = {
            "features": TableRef("TAXI_FEATURE"),
            "pipeline": model.versions()[0].pipeline().to_dict(),
        }
        again = train(session, TableRef("TAXI_DATA"), engineered, dag_run=run)
        assert again.version_name == "v1"
        assert [v.version_name for v in model.versions()] == ["v1"]
        # A different run does log a new version: the lookup is by run id, not "any version".
        other = train(session, TableRef("TAXI_DATA"), engineered, dag_run=SimpleNamespace(run_id="manual__other", dag_id=run.dag_id))
        assert other.version_name == "v2"
        other.delete()


@pytest.mark.slow
def test_predict_reports_drift_against_the_training_baseline(finished_run, metadata_db):
    from neve.demo import read_xcom

    result = read_xcom(metadata_db, finished_run.run_id, "predict")
    assert result["predictions"]["name"] == "TAXI_PRED"
    assert result["model"]["version"] == "v1"
    assert result["scored_in"] == "sql"  # the model compiled to SQL: no rows left the engine
    drift = result["drift"]
    # Scoring the training months themselves: nothing may drift.
    assert drift["ok"] is True and drift["drifted"] == []
    assert {f["feature"] for f in drift["features"]} == {
        "PICKUP_LOCATION_ID", "DROPOFF_LOCATION_ID", "HOUR_OF_DAY", "TRIP_DISTANCE",
    }
    assert result["drift_summary"].startswith("no drift")


@pytest.mark.slow
def test_scoring_the_lockdown_month_fails_predict_on_drift(finished_run, taxi_dag, metadata_db, taxi_db):
    # Runs after the full run: the model exists; this run scores 2020-04 instead.
    run = taxi_dag.test(run_conf={"score_month": "2020-04"})
    assert str(run.state).endswith("failed"), run.state
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert states["predict"].endswith("failed")
    assert states["train"].endswith("success")
    with neve.connect(f"duckdb://{taxi_db}") as session:
        # The month was loaded and cleaned, but nothing was scored from it.
        assert session.table("TAXI_SCORE").count().execute() > 9000
        assert session.table("TAXI_PRED").count().execute() == cleaned_trip_count("2019-01", "2019-02")


@pytest.mark.slow
def test_the_model_metrics_were_computed_in_sql(finished_run, taxi_db):
    from sklearn.metrics import mean_squared_error

    with neve.connect(f"duckdb://{taxi_db}") as session:
        mv = Registry(session).get_model(MODEL).version("v1")
        split = session.table("TAXI_TEST_SPLIT")
        assert split.count().execute() == math.ceil(cleaned_trip_count("2019-01", "2019-02") * 0.33)
        scored = mv.run(session.table("TAXI_DATA").semi_join(split, "TRIP_ID")).to_pandas()
    expected = mean_squared_error(scored["TRIP_DURATION_SEC"], scored["PREDICTION"])
    assert mv.metrics["mse"] == pytest.approx(expected, rel=1e-9)
