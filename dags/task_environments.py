"""Task environments: neve in an env without Airflow, and a task on another Python.

Three tasks show what ``[tool.neve.envs.*]`` in pyproject.toml is for:

- ``trips_by_hour`` runs in the ``taxi`` env (neve and its own scikit-learn, no
  Airflow) through ``@task.neve(env="taxi")``. It gets a session, which neve opens in
  the env from the ``AIRFLOW_CONN_<ID>`` variable the task passes down, aggregates one
  month of trips in SQL and returns a ``TableRef``: JSON, so it crosses the process boundary.
- ``busiest_hours`` is an ordinary ``@task.neve`` task: it gets that ref back as a
  ``TableRef`` and reads the table.
- ``hours_report`` runs in the ``legacy`` env on Python 3.10, a different minor
  version than Airflow's: the case of a library that needs another interpreter
  (Snowpark once needed 3.8). Its env has no neve and no Airflow, only ``tabulate``,
  so it runs through Airflow's plain ``@task.external_python``.

Build the envs first: ``neve env build taxi legacy`` (``make airflow`` does). Airflow
runs only each env task's source, so those functions import what they use, and
default values must not name this module's globals.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pendulum
from airflow.sdk import dag, task

import neve.envs
from neve.airflow import TableRef

if TYPE_CHECKING:
    from neve import Session

CONN_ID = os.environ.get("NEVE_CONN_ID", "neve_default")
DATA_DIR = Path(os.environ.get("NEVE_TAXI_DATA", Path(__file__).resolve().parents[1] / "data" / "nyc_taxi"))
MONTH_CSV = DATA_DIR / "yellow_tripdata_sample_2019-01.csv"


@dag(
    dag_id="task_environments",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    default_args={"retries": 1},
    tags=["neve", "example"],
    doc_md=__doc__,
)
def task_environments() -> None:
    @task.neve(conn_id=CONN_ID, env="taxi")
    def trips_by_hour(session: Session, csv: str) -> TableRef:
        """Load one month and count its trips per pickup hour, in SQL: TRIPS_BY_HOUR."""
        from neve.airflow import TableRef

        raw = session.load_files([csv], "ENV_EXAMPLE_TRIPS", overwrite=True)
        hourly = raw.group_by(HOUR=raw.pickup_datetime.hour()).aggregate(TRIPS=raw.count())
        session.create_table("TRIPS_BY_HOUR", hourly, overwrite=True)
        return TableRef.of(session, "TRIPS_BY_HOUR")

    @task.neve(conn_id=CONN_ID)
    def busiest_hours(session: Session, hourly: TableRef, top: int = 3) -> dict[str, Any]:
        """The ``top`` hours by trips, read from the table the env task made."""
        t = hourly.table(session)
        rows = t.order_by([t.TRIPS.desc(), t.HOUR]).limit(top).execute()
        return {
            "table": hourly.name,
            "ref": type(hourly).__name__,
            "rows": [[int(h), int(n)] for h, n in zip(rows.HOUR, rows.TRIPS, strict=True)],
        }

    @task.external_python(python=neve.envs.python("legacy"), expect_airflow=False)
    def hours_report(busiest: dict) -> dict:
        """Render the busiest hours with tabulate, on the legacy env's Python 3.10."""
        import platform

        from tabulate import tabulate

        text = tabulate(busiest["rows"], headers=["hour", "trips"])
        print(text)
        return {"python": platform.python_version(), "report": text}

    hourly = trips_by_hour(csv=str(MONTH_CSV))
    hours_report(busiest_hours(hourly))


task_environments()
