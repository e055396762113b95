"""NYC taxi trip duration: load, clean, train in the warehouse, register, check drift, predict.

Runs unchanged on embedded DuckDB (the ``neve_default`` connection, as ``make demo``
and ``make airflow`` set it up), on Postgres, on Snowflake (point ``NEVE_CONN_ID`` at
``snowflake_default``) and on Spark through a Spark Connect server (an ``sc://`` URL or
a ``spark_connect`` connection). Tasks pass table and model-version
references through XCom, never data, and no row leaves the engine to train: the model
is ``neve.linear_model.LinearRegression`` at the end of the feature pipeline, fitted
on every row of the training split from one aggregate query (its sufficient
statistics), and evaluated on the test split in SQL.

``train`` and ``predict`` run in the ``taxi`` task environment (``[tool.neve.envs.taxi]``
in pyproject.toml: its own pinned scikit-learn and neve, no Airflow) through
``@task.external_python(python=neve.envs.python("taxi"))``. Build it first with
``neve env build taxi`` (``make demo`` and the Dockerfile do); a task started on an
unbuilt or stale env fails at once saying so. Airflow runs only the function's
source there, so those two functions import what they use and take and return
JSON (table and model-version refs are dicts; the feature pipeline, declared here by
``feature_engineering``, travels as its JSON form). They reach the warehouse with
``neve.connect(airflow_conn_id=...)``, which reads the ``AIRFLOW_CONN_<ID>``
environment variable the task inherits: define the connection that way (as
``make demo`` does), not only in Airflow's metadata DB. The env carries the drivers of
DuckDB, PostgreSQL, Snowflake and Spark, so any of those URLs runs the DAG unchanged.

Every task is idempotent: tables are replaced, not appended to, and ``train``
first looks for a version already logged by this DAG run (a retry after
``log_model`` succeeded returns that version instead of logging a second one).

Tasks that need Airflow itself run on the Airflow side, after the env tasks:

- ``register_model`` records the Asset event ``neve://<registry>/trip_duration_estimator``
  for the version ``train`` logged, so a scoring DAG can be scheduled on it.
- ``drift_gate`` fails the run when ``predict`` found drift. ``predict`` checks the
  data to score against the version's training baseline first and, on drift, writes
  no predictions and returns the report; the gate then fails with
  ``AirflowFailException``, which skips retries: drift is a property of the data,
  and a retry would find it again. (The env has no Airflow to raise that exception,
  and an exception in the env would be retried.)

Params: ``score_month`` scores another month's sample instead of the training data
(2020-04, the lockdown, drifts).

The tasks are module-level so that ``taxi_trip_duration_sklearn`` (a scikit-learn model
on the sparse path) wires the same graph around its own ``train`` (:func:`taxi_flow`).

Cleaning rules (``clean_trips``), applied to the raw trips:

1. ``TRIP_DURATION_SEC`` = dropoff - pickup in seconds; keep 0 < duration <= 4 h.
   Non-positive durations are clock errors; longer ones are meters left running.
2. keep ``trip_distance`` > 0: zero-distance trips are cancellations or GPS gaps,
   and their durations say nothing about travel time.
3. keep rows whose pickup and dropoff location ids and timestamps are all present.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pendulum
from airflow.sdk import Param, dag, task, task_group

import neve.envs
from neve.airflow import ModelVersionRef, TableRef

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from neve import Pipeline, Session

#: The Airflow connection every task opens (neve, postgres, snowflake, spark or spark_connect type).
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
#: Columns of the transformed table that are not model inputs (the model reads the
#: scaled distance, not the raw one).
NOT_FEATURES = {ID, "PICKUP_DATETIME", "TRIP_DISTANCE", TARGET}
MAX_DURATION_SEC = 4 * 3600
#: The train/test split, in SQL: a hash of the trip id decides the side, on every engine.
SPLIT = {"test_size": 0.33, "random_state": 42, "key": ID}
#: What ``train`` needs of this module: it runs in the taxi env, which cannot import it.
TRAIN_SPEC = {
    "model_name": MODEL_NAME, "id": ID, "target": TARGET, "raw_features": RAW_FEATURES,
    "not_features": sorted(NOT_FEATURES - {ID, TARGET}), "split": SPLIT, "predictions": "TAXI_PRED",
}


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
    """The feature pipeline (unfitted): one-hot zones and hour, the distance MaxAbs-scaled."""
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


# -- the tasks both taxi DAGs run --------------------------------------------------------------------


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
    """Declare the feature pipeline for ``train`` (which fits it with the model) and check
    that its input columns are in the data. Writes nothing and runs no query: the one-hot
    columns are never materialised."""
    from neve.errors import ColumnNotFoundError

    columns = data.table(session).columns
    missing = [c for c in [*RAW_FEATURES, TARGET, ID] if c not in columns]
    if missing:
        raise ColumnNotFoundError(f"{data['name']} lacks the model's column(s) {missing}; it has {list(columns)}")
    return {"data": data, "columns": RAW_FEATURES, "pipeline": build_pipeline().to_dict()}


@task.external_python(python=neve.envs.python("taxi"), expect_airflow=False)
def train(
    data: dict, engineered: dict, conn_id: str, spec: dict, run_id: str | None = None, dag_id: str | None = None
) -> dict:
    """The feature pipeline ending in ``neve.linear_model.LinearRegression``, fitted on the
    SQL train split from one aggregate query and scored on the test split in SQL; logged
    as one unit with its metrics and lineage. Runs in the taxi env: self-contained, JSON
    in and out."""
    import neve
    from neve import Pipeline, Registry
    from neve.airflow import TableRef, logged_by_run, model_version_ref
    from neve.linear_model import LinearRegression
    from neve.metrics import regression_metrics
    from neve.model_selection import train_test_split

    model_name, key, target = spec["model_name"], spec["id"], spec["target"]
    with neve.connect(airflow_conn_id=conn_id) as session:
        registry = Registry(session)
        if run_id and (done := logged_by_run(registry, model_name, run_id)) is not None:
            return model_version_ref(done, session)

        table = TableRef.from_dict(engineered["data"]).table(session)
        train_rows, test_rows = train_test_split(table, **spec["split"])
        features = Pipeline.from_dict(engineered["pipeline"])
        model = LinearRegression(label_cols=[target], passthrough_cols=spec["not_features"],
                                 output_cols=["PREDICTION"])
        pipe = Pipeline([*features.steps, ("model", model)])
        pipe.fit(train_rows.select(*engineered["columns"], target))  # one aggregate query, no extract
        # Evaluation stays in the engine: the test rows are scored as one SELECT, and the
        # metrics are one aggregate query over it.
        scored = pipe.predict(test_rows)
        metrics = regression_metrics(scored, y_true=target, y_pred="PREDICTION")
        tags = {"stage": "dev", "model_type": type(model).__name__}
        if run_id:
            tags.update(airflow_dag_id=dag_id or "", airflow_run_id=run_id)
        mv = registry.log_model(
            pipe,
            model_name=model_name,
            training_data=train_rows.select(*engineered["columns"]),
            sample_input=session.execute(
                pipe.feature_pipeline().transform(test_rows.order_by(key).limit(5)).select(*model.feature_names_in_)
            ),
            metrics=metrics,
            params={
                **spec["split"],
                "train_rows": model.n_samples_seen_,
                "features": [str(c) for c in model.feature_names_in_],
            },
            tags=tags,
            comment="trip duration from pickup/dropoff zone, hour and distance",
        )
        return model_version_ref(mv, session)


@task.neve(conn_id=CONN_ID)
def register_model(session: Session, version: ModelVersionRef) -> Any:
    """Record the Asset event for the version ``train`` logged (the env has no Airflow)."""
    from neve import Registry

    # Returning the ModelVersion makes @task.neve record the event and push its ref.
    return Registry(session).get_model(version["model"]).version(version["version"])


@task.neve(conn_id=CONN_ID)
def score_data(session: Session, data: TableRef, params: Any = None) -> TableRef:
    """The table ``predict`` scores: TAXI_DATA, or with ``score_month`` that month's
    sample loaded and cleaned into TAXI_SCORE."""
    month = (params or {}).get("score_month")
    if not month:
        return data
    raw = session.table(load_raw_month(session, month))
    session.create_table("TAXI_SCORE", clean_trips(raw), overwrite=True)
    return TableRef.of(session, "TAXI_SCORE")


@task.external_python(python=neve.envs.python("taxi"), expect_airflow=False)
def predict(version: dict, data: dict, conn_id: str, output: str = "TAXI_PRED") -> dict:
    """Check drift against the version's training baseline; without drift, write the
    predictions (``output``) in SQL. Runs in the taxi env; on drift it writes nothing and
    returns the report, and ``drift_gate`` fails the run."""
    import neve
    from neve import Registry
    from neve.airflow import TableRef

    with neve.connect(airflow_conn_id=conn_id) as session:
        mv = Registry(session).get_model(version["model"]).version(version["version"])
        table = TableRef.from_dict(data).table(session)
        report = mv.drift(table, record=True)  # one query; kept in the registry for its UI
        print(report.summary())
        print(report.features.to_string(index=False))
        result = {
            "predictions": None,
            "model": version,
            "scored": data,
            "drift": report.to_dict(),
            "drift_summary": report.summary(),
            "scored_in": None,
        }
        if not report.ok:
            return result
        # The logged pipeline and the model compile to one SELECT: scoring stays in SQL.
        predictions = mv.run(table)
        session.create_table(output, predictions, overwrite=True)
        return {**result, "predictions": TableRef.of(session, output), "scored_in": predictions.path}


@task
def drift_gate(result: dict[str, Any]) -> TableRef:
    """Fail the run, without retrying, when ``predict`` found drift."""
    from airflow.sdk.exceptions import AirflowFailException

    if not result["drift"]["ok"]:
        model = result["model"]
        raise AirflowFailException(
            f"{model['model']} {model['version']} was not used to score "
            f"{result['scored']['name']}: {result['drift_summary']}"
        )
    return result["predictions"]


def taxi_flow(train_task: Callable[..., Any], spec: dict[str, Any]) -> None:
    """The taxi graph, inside a ``@dag`` function, around ``train_task`` (called as
    ``train_task(data, engineered, conn_id=, spec=, dag_id=)``, returning a model-version ref)."""
    registry = setup_registry()
    raw = load()
    registry >> raw
    data = transform(raw)
    engineered = feature_engineering(data)
    version = train_task(data, engineered, conn_id=CONN_ID, spec=spec, dag_id="{{ dag.dag_id }}")
    registered = register_model(version)
    scored = predict(registered, score_data(data), conn_id=CONN_ID, output=spec["predictions"])
    drift_gate(scored)


SCORE_MONTH = Param(
    None,
    type=["null", "string"],
    pattern=r"^\d{4}-\d{2}$",
    description="Score this month's sample (e.g. 2020-04, the lockdown) instead of the "
    "training data; drift against the training baseline fails the run at drift_gate.",
)


#: What both taxi DAGs (this one and taxi_trip_duration_sklearn) are scheduled and parametrised by.
DAG_ARGS = {
    "schedule": None,
    "start_date": pendulum.datetime(2024, 1, 1, tz="UTC"),
    "catchup": False,
    "default_args": {"retries": 1, "retry_delay": timedelta(seconds=5)},
    "tags": ["neve", "example"],
    "params": {"score_month": SCORE_MONTH},
}


@dag(
    dag_id="taxi_trip_duration",
    doc_md=__doc__,
    **DAG_ARGS,
    # Found through this module's globals, not auto-registered: the scikit-learn variant
    # imports this module, and must not register this DAG a second time from its own file.
    auto_register=False,
)
def taxi_trip_duration() -> None:
    taxi_flow(train, TRAIN_SPEC)


TAXI_DAG = taxi_trip_duration()
