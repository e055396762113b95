"""The client-side fallback for models with no SQL translation, and the large-ensemble guard."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from sklearn.ensemble import RandomForestRegressor
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.svm import SVR

from neve.errors import NeveInputError
from neve.scoring import score


def test_uncompiled_model_streams_through_the_client(session, data, caplog):
    model = KNeighborsRegressor(n_neighbors=3).fit(data["X"], data["y"])
    table = session.create_table("FEATURES", data["X"].assign(ROW_ID=np.arange(len(data["X"]))))
    with caplog.at_level(logging.INFO, logger="neve.scoring"):
        result = score(table, model, batch_size=37)  # many small batches, last one partial
    assert result.path == "fallback"
    assert "in the client" in caplog.text and "KNeighborsRegressor" in caplog.text
    frame = result.execute()
    assert list(frame.columns) == ["A", "B", "C", "D", "ROW_ID", "PREDICTION"]
    frame = frame.sort_values("ROW_ID")
    np.testing.assert_array_equal(frame["PREDICTION"].to_numpy(), model.predict(data["X"]))


def test_fallback_proba_to_a_named_table(session, data):
    model = KNeighborsClassifier().fit(data["X"], data["y_multi"])
    table = session.create_table("FEATURES", data["X"])
    result = score(table, model, function_name="predict_proba", fallback_table="SCORED")
    assert result.path == "fallback"
    assert "SCORED" in session.list_tables()
    frame = session.table("SCORED").execute()
    assert [c for c in frame.columns if c.startswith("PROB")] == ["PROBABILITY_0", "PROBABILITY_1", "PROBABILITY_2"]
    np.testing.assert_array_equal(frame.filter(like="PROB").to_numpy(), model.predict_proba(data["X"]))


def test_fallback_without_feature_names_and_refusal(session, data):
    model = SVR().fit(data["X"].to_numpy(), data["y"])
    table = session.create_table("FEATURES", data["X"])
    result = score(table, model, feature_cols=["A", "B", "C", "D"])
    assert result.path == "fallback"
    np.testing.assert_allclose(result.execute()["PREDICTION"], model.predict(data["X"].to_numpy()))
    with pytest.raises(NeveInputError, match="SVR cannot be compiled"):
        score(table, model, feature_cols=["A", "B", "C", "D"], allow_fallback=False)


def test_empty_table_falls_back_to_an_empty_result(session, data):
    model = KNeighborsRegressor().fit(data["X"], data["y"])
    table = session.create_table("FEATURES", data["X"].head(0))
    result = score(table, model)
    assert result.path == "fallback"
    frame = result.execute()
    # No rows, but the shape a caller writes out: the inputs and a float PREDICTION column.
    assert frame.empty
    assert list(frame.columns) == ["A", "B", "C", "D", "PREDICTION"]
    assert result.schema()["PREDICTION"].is_floating()


@pytest.mark.slow
@pytest.mark.engines(
    "duckdb", "postgres",
    reason="Spark plans a 60k-node CASE for minutes and runs out of a 2 GB driver's heap doing it",
)
def test_large_ensemble_compiles_and_runs(session):
    """200 trees of depth 8 (~60k nodes): the SQL stays one query DuckDB plans and runs."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 5))
    y = X @ rng.normal(size=5) + rng.normal(size=3000)
    import pandas as pd

    frame = pd.DataFrame(X, columns=[f"F{i}" for i in range(5)])
    model = RandomForestRegressor(n_estimators=200, max_depth=8, random_state=0, n_jobs=1)
    model.fit(frame, y)
    table = session.create_table("BIG", frame.head(200))
    result = score(table, model)
    assert result.path == "sql"
    assert sum(e.tree_.node_count for e in model.estimators_) > 50_000
    np.testing.assert_array_equal(result.execute()["PREDICTION"].to_numpy(), model.predict(frame.head(200)))
