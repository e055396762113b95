"""Score the latest month with the production model, whenever ``production`` moves.

Scheduled on the Asset of the ``production`` alias of ``trip_duration_estimator``
(``neve://<registry>/trip_duration_estimator/aliases/production``): ``taxi_trip_duration``
records an event on it when a person approves a promotion, and so does the registry's
page in Airflow's UI when someone sets the alias there. The run loads and cleans the
latest month of trips, checks it for drift against the production version's training
baseline, and, without drift, writes the predictions to ``TAXI_PRED_LATEST`` in SQL (the
same ``predict`` and ``drift_gate`` as the training DAG). The latest month of this
repository's sample data is 2019-03; the ``month`` param scores another.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import pendulum
from airflow.sdk import Param, dag, task
from taxi_tasks import CONN_ID, clean_trips, drift_gate, load_raw_month, predict

from neve.airflow import ModelVersionRef, TableRef, alias_asset, connection_registry

if TYPE_CHECKING:
    from neve import Session

MODEL = "trip_duration_estimator"
LATEST_MONTH = "2019-03"


@task.neve(conn_id=CONN_ID)
def production_version(session: Session) -> ModelVersionRef:
    """The version ``production`` points at now."""
    from neve import Registry
    from neve.airflow import model_version_ref

    return model_version_ref(Registry(session).get_model(MODEL).version("production"), session)


@task.neve(conn_id=CONN_ID)
def latest_trips(session: Session, params: dict | None = None) -> TableRef:
    """The latest month's trips, loaded and cleaned as the training data was: TAXI_LATEST."""
    raw = session.table(load_raw_month(session, (params or {}).get("month") or LATEST_MONTH))
    session.create_table("TAXI_LATEST", clean_trips(raw), overwrite=True)
    return TableRef.of(session, "TAXI_LATEST")


@dag(
    schedule=[alias_asset(connection_registry(CONN_ID), MODEL, "production")],
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    default_args={"retries": 1, "retry_delay": timedelta(seconds=5)},
    tags=["neve", "example"],
    params={"month": Param(LATEST_MONTH, type="string", pattern=r"^\d{4}-\d{2}$",
                           description="The month of data/nyc_taxi to score.")},
    doc_md=__doc__,
)
def taxi_scoring() -> None:
    drift_gate(predict(production_version(), latest_trips(), output="TAXI_PRED_LATEST"))


taxi_scoring()
