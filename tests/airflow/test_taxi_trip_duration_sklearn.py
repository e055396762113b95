"""The scikit-learn variant of the taxi DAG: HistGradientBoosting on native categories coded in the
engine, scored in SQL."""

from __future__ import annotations

import json

import pytest

import neve
from neve import Registry
from neve.model_selection import train_test_split
from tests.airflow.test_taxi_trip_duration import cleaned_trip_count

MODEL = "trip_duration_gbr"


@pytest.fixture(scope="module")
def sklearn_dag(dagbag):
    return dagbag.dags["taxi_trip_duration_sklearn"]


@pytest.fixture(scope="module")
def sklearn_run(sklearn_dag, task_envs, tmp_path_factory):
    """One dag.test() on its own DuckDB file, so the flagship's tests keep theirs."""
    db = tmp_path_factory.mktemp("gbr") / "gbr.duckdb"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW_CONN_NEVE_DEFAULT", json.dumps({"conn_type": "neve", "extra": {"url": f"duckdb://{db}"}}))
        run = sklearn_dag.test()
    assert str(run.state).endswith("success"), {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    return run, db


def test_the_variant_runs_the_flagship_graph_around_its_own_train(sklearn_dag, taxi_dag):
    promotion = {"compare_to_production", "approve_promotion", "promote_to_production"}  # the flagship's only
    assert set(sklearn_dag.task_ids) == set(taxi_dag.task_ids) - promotion
    for task_id in sklearn_dag.task_ids:
        assert sklearn_dag.get_task(task_id).upstream_task_ids == taxi_dag.get_task(task_id).upstream_task_ids
    train = sklearn_dag.get_task("train")
    assert train.python_callable is not taxi_dag.get_task("train").python_callable
    assert f"model_name={MODEL!r}".replace("'", '"') in train.get_python_source()
    assert sklearn_dag.get_task("predict").op_kwargs["output"] == "TAXI_PRED_GBR"


@pytest.mark.slow
def test_boosted_trees_train_on_engine_coded_categories_and_score_in_sql(sklearn_run, taxi_module, metadata_db):
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.metrics import mean_squared_error

    from tools.demo.metadata import read_xcom

    run, db = sklearn_run
    predicted = read_xcom(metadata_db, run.run_id, "predict", dag_id="taxi_trip_duration_sklearn")
    assert predicted["scored_in"] == "sql"  # the trees, categorical splits too, compiled to one SELECT
    m = taxi_module
    with neve.connect(f"duckdb://{db}") as session:
        assert session.table("TAXI_PRED_GBR").count().execute() == cleaned_trip_count("2019-01", "2019-02")
        mv = Registry(session).get_model(MODEL).version("v1")
        assert mv.tags["model_type"] == "HistGradientBoostingRegressor"
        assert mv.tags["airflow_run_id"] == run.run_id
        params = mv.lineage()["params"]
        assert params["categorical"] == m.CATEGORICAL  # the text columns, from_dtype
        split = params["split"]  # the trees' random_state is another one
        assert split == {"test_size": 0.33, "random_state": 42, "key": m.ID}
        train, test = (t.order_by(m.ID).to_pandas() for t in train_test_split(session.table("TAXI_DATA"), **split))
        scored = mv.run(session.table("TAXI_DATA")).order_by(m.ID).to_pandas()
        assert {"TAXI_FEATURE", "TAXI_TEST_SPLIT"}.isdisjoint(session.list_tables())
    # The oracle: scikit-learn's own fit on the raw rows in the same (TRIP_ID) order, with
    # pandas finding the categories.
    boosting = {k: params[k] for k in ("max_iter", "learning_rate", "max_leaf_nodes", "random_state")}
    as_categories = dict.fromkeys(m.CATEGORICAL, "category")
    oracle = HistGradientBoostingRegressor(**boosting).fit(train[m.RAW_FEATURES].astype(as_categories), train[m.TARGET])
    assert oracle.n_iter_ == params["n_iter"]
    expected = mean_squared_error(test[m.TARGET], oracle.predict(test[m.RAW_FEATURES]))
    assert mv.metrics["mse"] == pytest.approx(expected, rel=1e-9)
    assert scored["PREDICTION"].to_numpy() == pytest.approx(oracle.predict(scored[m.RAW_FEATURES]), rel=1e-9)
    assert 0.3 < mv.metrics["r2"] < 1
