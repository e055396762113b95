"""NYC taxi trip duration with a scikit-learn model: the flagship DAG's graph and tasks
(``taxi_tasks.py``) around a ``train`` that fits scikit-learn's
``HistGradientBoostingRegressor`` with native categorical features.

Trees cannot be fitted from sufficient statistics, so rows do leave the engine here, in
the smallest form there is: a ``neve.Pipeline`` ending in the boosted model finds each
zone's and hour's categories in one aggregate query and streams them as 1- or 2-byte
integer codes (``pandas.Categorical`` on the client, no text), the distance as float64.
The split and the evaluation stay in SQL (the same ``train_test_split`` as the flagship),
and ``predict`` scores with ``mv.run``: ``neve.scoring`` compiles the trees, categorical
splits included, to one SELECT.

The model is logged as ``trip_duration_gbr`` and scored into ``TAXI_PRED_GBR``, so this DAG
and the flagship can share one warehouse.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import pendulum
from airflow.sdk import dag, task
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

if TYPE_CHECKING:
    from neve import Session


@task.neve(conn_id=CONN_ID, env="taxi")
def train(session: Session, data: TableRef, engineered: dict) -> ModelVersionRef:
    """HistGradientBoostingRegressor on the SQL train split, zones and hour as native
    categories (the text columns, ``categorical_features="from_dtype"``); scored on the
    test split in SQL and logged as one unit."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    from neve import Pipeline, Registry
    from neve.metrics import regression_metrics
    from neve.model_selection import train_test_split

    split = {"test_size": 0.33, "random_state": 42, "key": "TRIP_ID"}
    boosting = {"max_iter": 200, "learning_rate": 0.1, "max_leaf_nodes": 31, "random_state": 0}
    columns, target = engineered["columns"], "TRIP_DURATION_SEC"
    train_rows, test_rows = train_test_split(data.table(session), **split)
    # In TRIP_ID order: early stopping's validation rows are drawn by position, so the same
    # table gives the same trees on every run and engine.
    rows = train_rows.order_by("TRIP_ID").select(*columns, target)
    pipe = Pipeline([("model", HistGradientBoostingRegressor(**boosting))]).fit(rows, y=target)
    model = pipe[-1]
    scored = pipe.predict(test_rows)
    return Registry(session).log_model(
        pipe,
        model_name="trip_duration_gbr",
        training_data=train_rows.select(*columns),
        metrics=regression_metrics(scored, y_true=target, y_pred="PREDICTION"),
        params={
            **boosting, "split": split, "n_iter": int(model.n_iter_),
            "categorical": [c for c, is_cat in zip(columns, model.is_categorical_, strict=True) if is_cat],
        },
        tags={"stage": "dev", "model_type": "HistGradientBoostingRegressor"},
        comment="trip duration from pickup/dropoff zone, hour (native categories) and distance",
    )


@dag(
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    default_args={"retries": 1, "retry_delay": timedelta(seconds=5)},
    tags=["neve", "example"],
    params={"score_month": SCORE_MONTH},
    doc_md=__doc__,
)
def taxi_trip_duration_sklearn() -> None:
    raw = load()
    setup_registry() >> raw
    data = transform(raw)
    version = train(data, feature_engineering(data))
    drift_gate(predict(version, score_data(data), output="TAXI_PRED_GBR"))


taxi_trip_duration_sklearn()
