"""What the two taxi DAGs share: the data, the cleaning rules and every task but ``train``.

A module, not a DAG file (``.airflowignore`` keeps Airflow from parsing it as one):
``taxi_trip_duration`` and ``taxi_trip_duration_sklearn`` import their tasks from here
and differ only in ``train``. Airflow puts the DAGs folder on ``sys.path``, so a plain
``from taxi_tasks import ...`` finds it.

Cleaning rules (``clean_trips``), applied to the raw trips:

1. ``TRIP_DURATION_SEC`` = dropoff - pickup in seconds; keep 0 < duration <= 4 h.
   Non-positive durations are clock errors; longer ones are meters left running.
2. keep ``trip_distance`` > 0: zero-distance trips are cancellations or GPS gaps,
   and their durations say nothing about travel time.
3. keep rows whose pickup and dropoff location ids and timestamps are all present.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import Param, task, task_group

from neve.airflow import ModelVersionRef, TableRef

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from neve import Pipeline, Session

#: The Airflow connection every task opens (neve, postgres, snowflake, spark or spark_connect type).
CONN_ID = os.environ.get("NEVE_CONN_ID", "neve_default")
DATA_DIR = Path(os.environ.get("NEVE_TAXI_DATA", Path(__file__).resolve().parents[1] / "data" / "nyc_taxi"))
#: One load task per file; they run in parallel.
MONTHS = ("2019-01", "2019-02")
CATEGORICAL = ["PICKUP_LOCATION_ID", "DROPOFF_LOCATION_ID", "HOUR_OF_DAY"]
NUMERIC = ["TRIP_DISTANCE"]
RAW_FEATURES = CATEGORICAL + NUMERIC
TARGET = "TRIP_DURATION_SEC"
ID = "TRIP_ID"
MAX_DURATION_SEC = 4 * 3600

SCORE_MONTH = Param(
    None,
    type=["null", "string"],
    pattern=r"^\d{4}-\d{2}$",
    description="Score this month's sample (e.g. 2020-04, the lockdown) instead of the "
    "training data; drift against the training baseline fails the run at drift_gate.",
)


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


@task.neve(conn_id=CONN_ID, env="taxi")
def predict(session: Session, version: ModelVersionRef, data: TableRef, output: str = "TAXI_PRED") -> dict:
    """Check drift against the version's training baseline; without drift, write the
    predictions (``output``) in SQL. On drift it writes nothing and returns the report,
    and ``drift_gate`` fails the run."""
    from neve import Registry
    from neve.airflow import TableRef

    mv = Registry(session).get_model(version.model).version(version.version)
    table = data.table(session)
    report = mv.drift(table, record=True)  # one query; kept in the registry for its UI
    print(report.summary())
    print(report.features.to_string(index=False))
    result = {"model": version, "scored": data, "drift": report.to_dict(), "drift_summary": report.summary(),
              "predictions": None, "scored_in": None}
    if report.ok:
        # The logged pipeline and the model compile to one SELECT: scoring stays in SQL.
        predictions = mv.run(table)
        session.create_table(output, predictions, overwrite=True)
        result.update(predictions=TableRef.of(session, output), scored_in=predictions.path)
    return result


@task
def drift_gate(result: dict[str, Any]) -> TableRef:
    """Fail the run, without retrying, when ``predict`` found drift: drift is a property of
    the data, and a retry would find it again."""
    from airflow.sdk.exceptions import AirflowFailException

    if not result["drift"]["ok"]:
        model = result["model"]
        raise AirflowFailException(
            f"{model['model']} {model['version']} was not used to score "
            f"{result['scored']['name']}: {result['drift_summary']}"
        )
    return result["predictions"]
