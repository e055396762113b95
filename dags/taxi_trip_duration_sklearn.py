"""NYC taxi trip duration with a scikit-learn model: the flagship DAG's graph and tasks
(``taxi_tasks.py``) around a ``train`` that fits scikit-learn's
``GradientBoostingRegressor`` on the sparse path.

Trees cannot be fitted from sufficient statistics, so rows do leave the engine here, in
the smallest form there is: ``Pipeline.transform_sparse`` streams one integer code per
one-hot block plus the scaled distance as Arrow batches and builds scikit-learn's CSR
matrix from them; no dense one-hot column exists on either side. The split and the
evaluation stay in SQL (the same ``train_test_split`` as the flagship), and ``predict``
scores with ``mv.run``: ``neve.scoring`` compiles the boosted trees to one SELECT.

``HistGradientBoostingRegressor`` would be the faster choice, but scikit-learn 1.9 still
refuses sparse input to it; ``GradientBoostingRegressor`` takes CSR as it is.

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
    """GradientBoostingRegressor on the CSR matrix of the SQL train split (the feature
    pipeline fitted in the engine, one aggregate query per step); scored on the test split
    in SQL and logged with its pipeline."""
    from sklearn.ensemble import GradientBoostingRegressor

    from neve import Pipeline, Registry
    from neve.metrics import regression_metrics
    from neve.model_selection import train_test_split
    from neve.scoring import score

    split = {"test_size": 0.33, "random_state": 42, "key": "TRIP_ID"}
    # Few, shallow trees: the demo's point is the path, not the last percent of R².
    trees = {"n_estimators": 60, "max_depth": 4, "learning_rate": 0.1, "random_state": 0}
    columns = engineered["columns"]
    train_rows, test_rows = train_test_split(data.table(session), **split)
    features = Pipeline.from_dict(engineered["pipeline"]).fit(train_rows.select(*columns))
    inputs = [str(c) for c in features.get_feature_names_out(columns) if c != "TRIP_DISTANCE"]
    # Integer codes streamed as Arrow, one-hot built as CSR in the client: never dense.
    X, y, names = features.transform_sparse(
        train_rows.select(*columns, "TRIP_DURATION_SEC"), label_col="TRIP_DURATION_SEC", feature_cols=inputs
    )
    model = GradientBoostingRegressor(**trees).fit(X, y)
    model.feature_names_in_ = names  # fitted on a matrix; scoring compiles against these names
    scored = score(test_rows, model, pipeline=features)
    return Registry(session).log_model(
        model,
        model_name="trip_duration_gbr",
        feature_pipeline=features,
        training_data=train_rows.select(*columns),
        metrics=regression_metrics(scored, y_true="TRIP_DURATION_SEC", y_pred="PREDICTION"),
        params={**trees, "split": split, "train_rows": X.shape[0], "features": list(map(str, names))},
        tags={"stage": "dev", "model_type": "GradientBoostingRegressor"},
        comment="trip duration from pickup/dropoff zone, hour and distance (boosted trees, sparse path)",
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
