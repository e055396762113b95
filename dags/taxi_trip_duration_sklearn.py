"""NYC taxi trip duration with a scikit-learn model: the flagship DAG's graph and tasks
(:mod:`taxi_trip_duration`), with a ``train`` that fits scikit-learn's
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

import sys
from pathlib import Path

from airflow.sdk import dag, task

import neve.envs

# Airflow's DAG processor puts the DAGs folder on sys.path; a plain import of this file
# (a test's DagBag, a script) may not, and the flagship module sits beside it.
if (_DAGS := str(Path(__file__).resolve().parent)) not in sys.path:
    sys.path.append(_DAGS)

from taxi_trip_duration import DAG_ARGS, TRAIN_SPEC, taxi_flow

MODEL_NAME = "trip_duration_gbr"
#: Few, shallow trees: the demo's point is the path, not the last percent of R².
GBR_PARAMS = {"n_estimators": 60, "max_depth": 4, "learning_rate": 0.1, "random_state": 0}
SPEC = {**TRAIN_SPEC, "model_name": MODEL_NAME, "predictions": "TAXI_PRED_GBR", "model_params": GBR_PARAMS}


@task.external_python(python=neve.envs.python("taxi"), expect_airflow=False)
def train(
    data: dict, engineered: dict, conn_id: str, spec: dict, run_id: str | None = None, dag_id: str | None = None
) -> dict:
    """GradientBoostingRegressor on the CSR matrix of the SQL train split (the feature
    pipeline fitted in the engine, one aggregate query per step); scored on the test split
    in SQL and logged with its pipeline. Runs in the taxi env: self-contained, JSON in and out."""
    from sklearn.ensemble import GradientBoostingRegressor

    import neve
    from neve import Pipeline, Registry
    from neve.airflow import TableRef, logged_by_run, model_version_ref
    from neve.metrics import regression_metrics
    from neve.model_selection import train_test_split
    from neve.scoring import score

    model_name, key, target, columns = spec["model_name"], spec["id"], spec["target"], engineered["columns"]
    with neve.connect(airflow_conn_id=conn_id) as session:
        registry = Registry(session)
        if run_id and (done := logged_by_run(registry, model_name, run_id)) is not None:
            return model_version_ref(done, session)

        table = TableRef.from_dict(engineered["data"]).table(session)
        train_rows, test_rows = train_test_split(table, **spec["split"])
        features = Pipeline.from_dict(engineered["pipeline"]).fit(train_rows.select(*columns))
        inputs = [str(c) for c in features.get_feature_names_out(columns) if c not in spec["not_features"]]
        # Integer codes streamed as Arrow, one-hot built as CSR in the client: never dense.
        X, y, names = features.transform_sparse(
            train_rows.select(*columns, target), label_col=target, feature_cols=inputs
        )
        model = GradientBoostingRegressor(**spec["model_params"]).fit(X, y)
        # Fitted on a matrix, the model knows no column names; scoring compiles it against these.
        model.feature_names_in_ = names
        scored = score(test_rows, model, pipeline=features)
        metrics = regression_metrics(scored, y_true=target, y_pred="PREDICTION")
        tags = {"stage": "dev", "model_type": type(model).__name__}
        if run_id:
            tags.update(airflow_dag_id=dag_id or "", airflow_run_id=run_id)
        mv = registry.log_model(
            model,
            model_name=model_name,
            feature_pipeline=features,
            training_data=train_rows.select(*columns),
            sample_input=session.execute(features.transform(test_rows.order_by(key).limit(5)).select(*names)),
            metrics=metrics,
            params={
                **spec["split"], **spec["model_params"],
                "train_rows": X.shape[0], "features": [str(n) for n in names],
            },
            tags=tags,
            comment="trip duration from pickup/dropoff zone, hour and distance (boosted trees, sparse path)",
        )
        return model_version_ref(mv, session)


@dag(dag_id="taxi_trip_duration_sklearn", doc_md=__doc__, **DAG_ARGS)
def taxi_trip_duration_sklearn() -> None:
    taxi_flow(train, SPEC)


taxi_trip_duration_sklearn()
