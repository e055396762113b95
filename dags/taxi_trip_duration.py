"""NYC taxi trip duration: load, clean, train in the warehouse, register, check drift, predict.

Runs unchanged on embedded DuckDB (the ``neve_default`` connection, as ``make demo``
and ``make airflow`` set it up), on PostgreSQL, on Snowflake (point ``NEVE_CONN_ID`` at
``snowflake_default``) and on Spark through a Spark Connect server (an ``sc://`` URL or
a ``spark_connect`` connection). Tasks pass table and model-version references through
XCom, never data, and no row leaves the engine to train: the model is
``neve.linear_model.LinearRegression`` at the end of the feature pipeline, fitted on
every row of the training split from one aggregate query (its sufficient statistics),
and evaluated on the test split in SQL.

``train`` and ``predict`` run in the ``taxi`` task environment (``[tool.neve.envs.taxi]``
in pyproject.toml: its own pinned scikit-learn and neve, no Airflow) through
``@task.neve(conn_id=..., env="taxi")``. Build it first with ``neve env build taxi``
(``make demo`` and the Dockerfile do); a task started on an unbuilt or stale env fails
at once saying so. Airflow runs only the function's source there, so an env task
imports what it uses and does not read this module's globals; it gets an open
``session`` and refs, as every ``@task.neve`` task does.

The model version ``train`` returns becomes a ref in XCom and an Asset event on
``neve://<registry>/trip_duration_estimator``, so a scoring DAG can be scheduled on it.
Every task is idempotent: tables are replaced, and a retry of ``train`` after
``log_model`` succeeded gets back the version that try logged (``log_model`` finds it
by the DAG run and task it records with every version).

When the new version's MSE beats production's, ``approve_promotion`` asks a person, under
Airflow's Required Actions, whether to promote it, showing both versions' metrics and a
link to the version's page in neve's registry UI. Approve moves the ``production`` alias,
attributed to the approver in the registry's event log, and records the alias's Asset
event, on which ``taxi_scoring`` is scheduled; Reject changes nothing, and
``promote_to_production`` says so. A request nobody answers in 24 hours is rejected. The
``auto_approve`` param (``make demo`` sets it) approves without asking.

``predict`` checks the data to score against the version's training baseline first; on
drift it writes no predictions, and ``drift_gate`` fails the run without retrying.
Param ``score_month`` scores another month's sample instead of the training data
(2020-04, the lockdown, drifts). The loading, cleaning and scoring tasks live in
``taxi_tasks.py`` beside this file, shared with ``taxi_trip_duration_sklearn``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import pendulum
from airflow.sdk import Param, dag, task
from taxi_tasks import (
    CONN_ID,
    SCORE_MONTH,
    drift_gate,
    feature_engineering,
    load,
    predict,
    score_data,
    setup_registry,
    transform,
)

from neve.airflow import ModelVersionRef, TableRef
from neve.airflow.promotion import PromotionApproval, compare, promote

#: Unattended runs (``make demo``) approve the promotion themselves; ``make airflow`` asks a person.
AUTO_APPROVE = Param(False, type="boolean", description="Promote a better version to production without "
                     "asking (the event log names auto_approve as the approver).")

if TYPE_CHECKING:
    from neve import Session


@task.neve(conn_id=CONN_ID, env="taxi")
def train(session: Session, data: TableRef, engineered: dict) -> ModelVersionRef:
    """Fit the feature pipeline and ``LinearRegression`` on the SQL train split (one
    aggregate query), score the test split in SQL, and log pipeline and model as one unit."""
    from neve import Pipeline, Registry
    from neve.linear_model import LinearRegression
    from neve.metrics import regression_metrics
    from neve.model_selection import train_test_split

    split = {"test_size": 0.33, "random_state": 42, "key": "TRIP_ID"}  # a hash of the id, in SQL
    train_rows, test_rows = train_test_split(data.table(session), **split)
    # The model reads the scaled distance, not the raw one.
    model = LinearRegression(label_cols=["TRIP_DURATION_SEC"], passthrough_cols=["TRIP_DISTANCE"],
                             output_cols=["PREDICTION"])
    pipe = Pipeline([*Pipeline.from_dict(engineered["pipeline"]).steps, ("model", model)])
    pipe.fit(train_rows.select(*engineered["columns"], "TRIP_DURATION_SEC"))
    metrics = regression_metrics(pipe.predict(test_rows), y_true="TRIP_DURATION_SEC", y_pred="PREDICTION")
    return Registry(session).log_model(
        pipe,
        model_name="trip_duration_estimator",
        training_data=train_rows.select(*engineered["columns"]),
        metrics=metrics,
        params={**split, "train_rows": model.n_samples_seen_, "features": list(map(str, model.feature_names_in_))},
        tags={"stage": "dev", "model_type": "LinearRegression"},
        comment="trip duration from pickup/dropoff zone, hour and distance",
    )


@task.neve(conn_id=CONN_ID)
def compare_to_production(session: Session, version: ModelVersionRef) -> dict:
    """The new version's metrics beside production's; skips the approval unless its MSE
    on the test split is lower (or there is no production version yet)."""
    return compare(session, version, alias="production", metric="mse")


@task.neve(conn_id=CONN_ID)
def promote_to_production(session: Session, decision: dict, approval: dict) -> dict:
    """Move ``production`` to the new version if a person approved, attributed to them in the
    registry's event log (and an Asset event that starts ``taxi_scoring``); else nothing."""
    return promote(session, decision, approval)


@dag(
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    default_args={"retries": 1, "retry_delay": timedelta(seconds=5)},
    tags=["neve", "example"],
    params={"score_month": SCORE_MONTH, "auto_approve": AUTO_APPROVE},
    doc_md=__doc__,
)
def taxi_trip_duration() -> None:
    raw = load()
    setup_registry() >> raw
    data = transform(raw)
    version = train(data, feature_engineering(data))
    drift_gate(predict(version, score_data(data)))

    decision = compare_to_production(version)
    approval = PromotionApproval(
        task_id="approve_promotion",
        subject="Promote trip_duration_estimator "
        "{{ ti.xcom_pull(task_ids='compare_to_production')['candidate']['version'] }} to production?",
        body="{{ ti.xcom_pull(task_ids='compare_to_production')['body'] }}",
        auto_approve="{{ params.auto_approve }}",
    )
    decision >> approval
    promote_to_production(decision, approval.output)


taxi_trip_duration()
