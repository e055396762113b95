"""NYC taxi trip duration: load, clean, encode, train, register, check drift, predict.

Runs unchanged on embedded DuckDB (the ``neve_default`` connection, as ``make demo``
and ``make airflow`` set it up), on Postgres, and on Snowflake (point
``NEVE_CONN_ID`` at ``snowflake_default``). Tasks pass table and model-version
references through XCom, never data; the only time data leaves the engine is the
training extract.

Every task is idempotent: tables are replaced, not appended to, and ``train``
first looks for a version already logged by this DAG run (a retry after
``log_model`` succeeded returns that version instead of logging a second one).

Cleaning rules (``clean_trips``), applied to the raw trips:

1. ``TRIP_DURATION_SEC`` = dropoff - pickup in seconds; keep 0 < duration <= 4 h.
   Non-positive durations are clock errors; longer ones are meters left running.
2. keep ``trip_distance`` > 0: zero-distance trips are cancellations or GPS gaps,
   and their durations say nothing about travel time.
3. keep rows whose pickup and dropoff location ids and timestamps are all present.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pendulum
from airflow.sdk import Param, dag, task, task_group

from neve.airflow import ModelVersionRef, TableRef

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from neve import Pipeline, Session

#: The Airflow connection every task opens (neve, postgres or snowflake type).
CONN_ID = os.environ.get("NEVE_CONN_ID", "neve_default")
DATA_DIR = Path(os.environ.get("NEVE_TAXI_DATA", Path(__file__).resolve().parents[1] / "data" / "nyc_taxi"))
#: One load task per file; they run in parallel.
MONTHS = ("2019-01", "2019-02")
MODEL_NAME = "trip_duration_estimator"

CATEGORICAL = ["PICKUP_LOCATION_ID", "DROPOFF_LOCATION_ID", "HOUR_OF_DAY"]
NUMERIC = ["TRIP_DISTANCE"]
RAW_FEATURES = CATEGORICAL + NUMERIC
TARGET = "TRIP_DURATION_SEC"
ID = "TRIP_ID"
#: Columns of TAXI_FEATURE that are not model inputs.
NOT_FEATURES = {ID, "PICKUP_DATETIME", "TRIP_DISTANCE", TARGET}
MAX_DURATION_SEC = 4 * 3600


def raw_table_name(month: str) -> str:
    return f"TAXI_RAW_{month.replace('-', '_')}"


def clean_trips(raw: ir.Table) -> ir.Table:
    """TAXI_DATA from raw trips: typed, derived and filtered by the rules in the module doc."""
    import ibis

    duration = raw.dropoff_datetime.epoch_seconds() - raw.pickup_datetime.epoch_seconds()
    t = raw.select(
        PICKUP_DATETIME=raw.pickup_datetime,
        PICKUP_LOCATION_ID=raw.pickup_location_id.cast("string"),
        DROPOFF_LOCATION_ID=raw.dropoff_location_id.cast("string"),
        # Zero-padded so the one-hot columns sort by hour.
        HOUR_OF_DAY=raw.pickup_datetime.hour().cast("string").lpad(2, "0"),
        TRIP_DISTANCE=raw.trip_distance.cast("float64"),
        TRIP_DURATION_SEC=duration.cast("float64"),
    )
    t = t.filter(
        t.PICKUP_DATETIME.notnull(),
        t.TRIP_DURATION_SEC > 0,
        t.TRIP_DURATION_SEC <= MAX_DURATION_SEC,
        t.TRIP_DISTANCE > 0,
        t.PICKUP_LOCATION_ID.notnull(),
        t.DROPOFF_LOCATION_ID.notnull(),
    )
    # A stable id, so predictions can be joined back and the train/test split is repeatable.
    order = [t.PICKUP_DATETIME, t.PICKUP_LOCATION_ID, t.DROPOFF_LOCATION_ID, t.TRIP_DISTANCE, t.TRIP_DURATION_SEC]
    return t.mutate(TRIP_ID=ibis.row_number().over(order_by=order) + 1)


def build_pipeline() -> Pipeline:
    from neve import Pipeline
    from neve.preprocessing import MaxAbsScaler, OneHotEncoder

    return Pipeline(
        [
            ("ohe", OneHotEncoder(input_cols=CATEGORICAL, output_cols=CATEGORICAL, handle_unknown="ignore")),
            ("mas", MaxAbsScaler(input_cols=["TRIP_DISTANCE"], output_cols=["TRIP_DISTANCE_SCALED"])),
        ]
    )


def feature_columns(columns: list[str]) -> list[str]:
    return [c for c in columns if c not in NOT_FEATURES]


def find_run_version(registry: Any, run_id: str) -> Any:
    """The version this DAG run already logged (a retried ``train``), or ``None``."""
    from neve.errors import ModelNotFoundError

    try:
        model = registry.get_model(MODEL_NAME)
    except ModelNotFoundError:
        return None
    versions = model.show_versions()
    for name, tags in zip(versions["version_name"], versions["tags"], strict=True):
        if tags.get("airflow_run_id") == run_id:
            return model.version(name)
    return None


def load_raw_month(session: Session, month: str) -> str:
    """Load ``month``'s sample CSV into its raw table (replacing it) and return the name."""
    from neve.errors import DataFileError

    path = DATA_DIR / f"yellow_tripdata_sample_{month}.csv"
    if not path.is_file():
        raise DataFileError(
            f"taxi data file not found: {path}. Restore data/nyc_taxi from the repository, "
            f"or set NEVE_TAXI_DATA to the folder holding yellow_tripdata_sample_{month}.csv"
        )
    name = raw_table_name(month)
    session.load_files([path], name, overwrite=True)
    return name


@dag(
    dag_id="taxi_trip_duration",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    default_args={"retries": 1, "retry_delay": timedelta(seconds=5)},
    tags=["neve", "example"],
    doc_md=__doc__,
    params={
        "score_month": Param(
            None,
            type=["null", "string"],
            pattern=r"^\d{4}-\d{2}$",
            description="Score this month's sample (e.g. 2020-04, the lockdown) instead of the "
            "training data; drift against the training baseline fails the predict task.",
        )
    },
)
def taxi_trip_duration() -> None:
    @task.neve(conn_id=CONN_ID)
    def setup_registry(session: Session) -> dict[str, str]:
        """Create the registry tables if they are missing (safe to repeat)."""
        from neve import Registry
        from neve.airflow import registry_name

        registry = Registry(session)
        return {"registry": registry_name(session), "stage": registry.stage.url}

    @task.neve(conn_id=CONN_ID)
    def load_month(session: Session, month: str) -> TableRef:
        """Bulk-load one month's CSV into its own raw table (replaced on retry)."""
        return TableRef.of(session, load_raw_month(session, month))

    @task_group(group_id="load")
    def load() -> list[Any]:
        return [load_month.override(task_id=f"load_{m.replace('-', '_')}")(month=m) for m in MONTHS]

    @task.neve(conn_id=CONN_ID)
    def transform(session: Session, raw: list[TableRef]) -> TableRef:
        """TAXI_DATA: the union of the raw months, cleaned (see clean_trips)."""
        import ibis

        tables = [ref.table(session) for ref in raw]
        union = tables[0] if len(tables) == 1 else ibis.union(*tables, distinct=False)
        session.create_table("TAXI_DATA", clean_trips(union), overwrite=True)
        return TableRef.of(session, "TAXI_DATA")

    @task.neve(conn_id=CONN_ID)
    def feature_engineering(session: Session, data: TableRef) -> dict[str, Any]:
        """Fit the pipeline (one aggregate query per step) and save TAXI_FEATURE."""
        table = data.table(session)
        pipe = build_pipeline().fit(table)
        session.create_table("TAXI_FEATURE", pipe.transform(table), overwrite=True)
        return {"features": TableRef.of(session, "TAXI_FEATURE"), "pipeline": pipe.to_dict()}

    @task.neve(conn_id=CONN_ID)
    def train(session: Session, data: TableRef, engineered: dict[str, Any], dag_run: Any = None) -> Any:
        """LinearRegression on a 67/33 split; log it with its pipeline, metrics and lineage."""
        from sklearn.linear_model import LinearRegression
        from sklearn.model_selection import train_test_split

        from neve import Pipeline, Registry
        from neve.metrics import mean_squared_error, r2_score
        from neve.scoring import score

        registry = Registry(session)
        run_id = dag_run.run_id if dag_run is not None else None
        if run_id is not None and (done := find_run_version(registry, run_id)) is not None:
            return done

        features = engineered["features"].table(session)
        columns = feature_columns(list(features.columns))
        # The one time data leaves the engine.
        frame = features.select(ID, *columns, TARGET).order_by(ID).to_pandas()
        X, y = frame[columns], frame[TARGET]
        X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.33, random_state=42)
        model = LinearRegression().fit(X_train, y_train)
        # Evaluation goes back to the engine: the test ids (one small column) go in, the model
        # scores them as SQL, and each metric is one aggregate query.
        session.create_table(
            "TAXI_TEST_SPLIT", frame.loc[X_test.index, [ID]].reset_index(drop=True), overwrite=True
        )
        split = session.table("TAXI_TEST_SPLIT")
        scored = score(features.semi_join(split, ID), model, feature_cols=columns)
        metrics = {
            "mse": mean_squared_error(scored, y_true=TARGET, y_pred="PREDICTION"),
            "r2": r2_score(scored, y_true=TARGET, y_pred="PREDICTION"),
        }

        raw = data.table(session)
        tags = {"stage": "dev", "model_type": type(model).__name__}
        if dag_run is not None:
            tags.update(airflow_dag_id=dag_run.dag_id, airflow_run_id=run_id)
        return registry.log_model(
            model,
            model_name=MODEL_NAME,
            feature_pipeline=Pipeline.from_dict(engineered["pipeline"]),
            training_data=raw.select(*RAW_FEATURES),
            sample_input=X_test.head(5),
            metrics=metrics,
            params={
                "test_size": 0.33,
                "random_state": 42,
                "features": columns,
                "feature_stds": {c: float(s) for c, s in X_train.std().items()},
            },
            tags=tags,
            comment="trip duration from pickup/dropoff zone, hour and distance",
        )

    @task.neve(conn_id=CONN_ID)
    def predict(
        session: Session, version: ModelVersionRef, data: TableRef, params: Any = None
    ) -> dict[str, Any]:
        """Check drift against the version's training baseline, then write TAXI_PRED in SQL.

        With the ``score_month`` parameter another month's sample is loaded, cleaned and
        scored instead of the training data (e.g. 2020-04 to see the drift check fail).
        """
        from airflow.sdk.exceptions import AirflowFailException

        from neve import Registry
        from neve.errors import DriftError

        mv = Registry(session).get_model(version["model"]).version(version["version"])
        month = (params or {}).get("score_month")
        if month:
            raw = session.table(load_raw_month(session, month))
            session.create_table("TAXI_SCORE", clean_trips(raw), overwrite=True)
            table = session.table("TAXI_SCORE")
        else:
            table = data.table(session)
        report = mv.drift(table)  # one query against the training baseline
        print(report.summary())
        print(report.features.to_string(index=False))
        try:
            report.raise_if_drifted()
        except DriftError as exc:
            # Deterministic: a retry would drift again, so fail without retrying.
            raise AirflowFailException(f"{mv.model_name} {mv.version_name}: {exc}") from exc
        # The logged pipeline and the model compile to one SELECT: scoring stays in the engine.
        predictions = mv.run(table)
        session.create_table("TAXI_PRED", predictions, overwrite=True)
        return {
            "predictions": TableRef.of(session, "TAXI_PRED"),
            "model": version,
            "drift": report.to_dict(),
            "drift_summary": report.summary(),
            "scored_in": predictions.path,
        }

    registry = setup_registry()
    raw = load()
    registry >> raw
    data = transform(raw)
    engineered = feature_engineering(data)
    version = train(data, engineered)
    predict(version, data)


taxi_trip_duration()
