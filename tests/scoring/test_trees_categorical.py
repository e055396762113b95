"""HistGradientBoosting with native categorical features, compiled to SQL, against
scikit-learn's predict: categorical splits are IN-lists of the raw category values, and
NULL and categories the model never saw are routed to the missing side, as scikit-learn
routes them. Run on every engine of the suite; the bitmask and case forms on DuckDB."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

from neve.engine.duckdb import DuckDBDriver
from neve.scoring import score

N = 600
STRINGS = [f"s{i}" for i in range(9)]
INTS = list(range(0, 24, 2))  # codes are not the values: 0, 2, 4, ...
FEATURES = ["A", "B", "S", "K"]
CATEGORICAL = ["S", "K"]


@pytest.fixture(scope="module")
def cat_data() -> dict[str, object]:
    rng = np.random.default_rng(7)
    X = pd.DataFrame({
        "A": np.round(rng.normal(size=N), 1),  # ties on thresholds
        "B": rng.normal(size=N),
        "S": rng.choice(STRINGS, N).astype(object),
        "K": rng.choice(INTS, N).astype("int64"),
    })
    effect_s = {s: v for s, v in zip(STRINGS, rng.normal(scale=2, size=len(STRINGS)), strict=True)}
    effect_k = {k: v for k, v in zip(INTS, rng.normal(scale=2, size=len(INTS)), strict=True)}
    y = (X["A"] + X["S"].map(effect_s) + X["K"].map(effect_k) - X["B"] ** 2
         + rng.normal(scale=0.2, size=N))
    # Missing values in training, so that some splits send missing left and some right.
    X.loc[rng.random(N) < 0.08, "A"] = np.nan
    X.loc[rng.random(N) < 0.08, "S"] = None
    y = y.fillna(0).to_numpy()
    return {"X": X, "y": y, "y_bin": np.where(y > np.median(y), "hi", "lo"),
            "y_multi": np.digitize(y, np.quantile(y, [0.33, 0.66]))}


def _categorical_splits(model) -> list[tuple[int, bool]]:
    """(feature index, missing goes left) of every categorical split."""
    return [
        (int(n["feature_idx"]), bool(n["missing_go_to_left"]))
        for iteration in model._predictors for p in iteration for n in p.nodes
        if not n["is_leaf"] and n["is_categorical"]
    ]


def _probe_rows(model, X: pd.DataFrame) -> pd.DataFrame:
    """Rows where routing is decided: every numeric threshold exactly, every known
    category, NULL in each column, and categories the model never saw."""
    base = {"A": 0.0, "B": 0.0, "S": STRINGS[0], "K": INTS[0]}
    rows = []
    for iteration in model._predictors:
        for p in iteration:
            for n in p.nodes:
                if n["is_leaf"] or n["is_categorical"]:
                    continue
                # scikit-learn moves categorical features first: A and B are 2 and 3.
                column = ["S", "K", "A", "B"][int(n["feature_idx"])]
                rows.append({**base, column: float(n["num_threshold"])})
    for s in [*STRINGS, None, "never-seen", ""]:
        for k in [*INTS, 1, 99, -2]:
            rows.append({**base, "S": s, "K": k, "A": np.nan if k == 1 else 0.5})
    rows += X.head(100).to_dict("records")
    frame = pd.DataFrame(rows, columns=FEATURES)
    return frame.astype({"A": "float64", "B": "float64", "K": "int64"})


def _score(session, X, model, function_name="predict"):
    table = session.create_table("CATS", X.assign(ROW_ID=np.arange(len(X))), overwrite=True)
    result = score(table, model, function_name=function_name)
    assert result.path == "sql"
    frame = result.execute().sort_values("ROW_ID").reset_index(drop=True)
    return frame.drop(columns=[*FEATURES, "ROW_ID"])


def _regressor(cat_data, **kw):
    return HistGradientBoostingRegressor(
        max_iter=25, max_leaf_nodes=15, categorical_features=CATEGORICAL, random_state=0, **kw
    ).fit(cat_data["X"], cat_data["y"])


def test_fixture_has_categorical_splits_missing_both_ways(cat_data):
    """The tests below only prove routing if both directions occur."""
    splits = set(_categorical_splits(_regressor(cat_data)))
    assert {missing_left for _, missing_left in splits} == {True, False}
    assert {feature for feature, _ in splits} == {0, 1}  # both S and K are split on


def test_regressor_matches_predict_on_thresholds_categories_null_and_unseen(session, cat_data):
    model = _regressor(cat_data)
    X = _probe_rows(model, cat_data["X"])
    got = _score(session, X, model)["PREDICTION"].to_numpy()
    np.testing.assert_allclose(got, model.predict(X), rtol=1e-9, atol=1e-9)
    unseen = X["S"].isin(["never-seen", ""]) | X["K"].isin([1, 99, -2]) | X["S"].isna()
    assert unseen.sum() > 50  # the routing of unknown and NULL categories is really exercised


@pytest.mark.parametrize("target", ["y_bin", "y_multi"])
def test_classifier_predict_and_proba(session, cat_data, target):
    model = HistGradientBoostingClassifier(
        max_iter=15, max_leaf_nodes=11, categorical_features=CATEGORICAL, random_state=0,
    ).fit(cat_data["X"], cat_data[target])
    X = _probe_rows(model, cat_data["X"])
    pred = _score(session, X, model)
    np.testing.assert_array_equal(pred["PREDICTION"].to_numpy(), model.predict(X))
    proba = _score(session, X, model, "predict_proba")
    np.testing.assert_allclose(proba.to_numpy(dtype=float), model.predict_proba(X),
                               rtol=1e-12, atol=1e-12)


def test_categories_from_pandas_dtype(session, cat_data):
    """``categorical_features="from_dtype"``: the categories are the pandas dtype's, some
    of which never occur in training; the table holds the plain strings."""
    X = cat_data["X"].copy()
    X["S"] = pd.Categorical(X["S"], categories=[*STRINGS, "listed-but-absent"])
    model = HistGradientBoostingRegressor(max_iter=15, random_state=0).fit(X[["A", "B", "S"]],
                                                                          cat_data["y"])
    assert model.is_categorical_.tolist() == [False, False, True]
    probe = pd.DataFrame({"A": 0.3, "B": -0.2,
                          "S": [*STRINGS, "listed-but-absent", "nope", None]})
    table = session.create_table("CATS", probe.assign(ROW_ID=np.arange(len(probe))), overwrite=True)
    got = score(table, model).execute().sort_values("ROW_ID")["PREDICTION"].to_numpy()
    expected = model.predict(probe)  # scikit-learn encodes plain strings by the fitted categories
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9)


@pytest.mark.engines("duckdb", reason="the forms are DuckDB's: other engines render CASE only")
@pytest.mark.parametrize("form", ["bitmask", "case"])
def test_both_forms_and_wide_trees(session, cat_data, form, monkeypatch):
    """Both renderings agree with scikit-learn, including trees too wide for one 64-bit
    word (they keep their nested CASE inside the bitmask form)."""
    monkeypatch.setattr(DuckDBDriver, "tree_scoring", form)
    model = HistGradientBoostingRegressor(
        max_iter=6, max_leaf_nodes=90, min_samples_leaf=2, categorical_features=CATEGORICAL,
        random_state=0,
    ).fit(cat_data["X"], cat_data["y"])
    assert max(p.get_n_leaf_nodes() for it in model._predictors for p in it) > 64
    X = _probe_rows(model, cat_data["X"])
    got = _score(session, X, model)["PREDICTION"].to_numpy()
    np.testing.assert_allclose(got, model.predict(X), rtol=1e-9, atol=1e-9)
