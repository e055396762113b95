"""Compiled predictions against scikit-learn, through a real DuckDB file."""

from __future__ import annotations

import ibis
import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import (
    ElasticNet,
    Lasso,
    LinearRegression,
    LogisticRegression,
    Ridge,
    SGDRegressor,
)
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from neve.errors import ColumnNotFoundError, ColumnTypeError, InvalidParameterError
from neve.scoring import score


def _run(session, X, model, function_name="predict", **kw):
    table = session.create_table("FEATURES", X.assign(ROW_ID=np.arange(len(X))), overwrite=True)
    result = score(table, model, function_name=function_name, **kw)
    assert result.path == "sql"
    frame = result.execute().sort_values("ROW_ID")
    return result, frame


def _outputs(frame):
    return frame.drop(columns=["A", "B", "C", "D", "ROW_ID"])


LINEAR = [
    LinearRegression(),
    Ridge(alpha=0.5),
    Lasso(alpha=0.1),
    ElasticNet(alpha=0.1, l1_ratio=0.3),
    SGDRegressor(random_state=0),
]


@pytest.mark.parametrize("model", LINEAR, ids=lambda m: type(m).__name__)
def test_linear_regressors_match_to_1e9(session, data, model):
    model.fit(data["X"], data["y"])
    _, frame = _run(session, data["X"], model)
    np.testing.assert_allclose(frame["PREDICTION"], model.predict(data["X"]), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("target", ["y_bin", "y_multi"])
def test_logistic_regression_all_functions(session, data, target):
    model = LogisticRegression(max_iter=500).fit(data["X"], data[target])
    _, pred = _run(session, data["X"], model)
    np.testing.assert_array_equal(pred["PREDICTION"], model.predict(data["X"]))
    _, proba = _run(session, data["X"], model, "predict_proba")
    assert list(_outputs(proba).columns) == [f"PROBABILITY_{c}" for c in model.classes_]
    np.testing.assert_allclose(_outputs(proba), model.predict_proba(data["X"]), rtol=1e-9)
    _, dec = _run(session, data["X"], model, "decision_function")
    expected = model.decision_function(data["X"]).reshape(len(data["X"]), -1)
    np.testing.assert_allclose(_outputs(dec), expected, rtol=1e-9, atol=1e-12)
    if target == "y_bin":
        assert list(_outputs(dec).columns) == ["DECISION_FUNCTION"]


TREE_REGRESSORS = [
    DecisionTreeRegressor(max_depth=6, random_state=0),
    RandomForestRegressor(n_estimators=8, max_depth=5, random_state=0),
    ExtraTreesRegressor(n_estimators=8, max_depth=5, random_state=0),
    HistGradientBoostingRegressor(max_iter=15, random_state=0),
    HistGradientBoostingRegressor(loss="poisson", max_iter=10, random_state=0),
]


@pytest.mark.parametrize("model", TREE_REGRESSORS, ids=lambda m: type(m).__name__)
def test_tree_regressors_exact_with_missing_values(session, data, model):
    target = np.exp(data["y"] / 4) if getattr(model, "loss", "") == "poisson" else data["y"]
    model.fit(data["X_nan"], target)
    _, frame = _run(session, data["X_nan"], model)
    expected = model.predict(data["X_nan"])
    if getattr(model, "loss", "") == "poisson":  # exp() may differ in the last ulp
        np.testing.assert_allclose(frame["PREDICTION"], expected, rtol=1e-13)
    else:
        np.testing.assert_array_equal(frame["PREDICTION"].to_numpy(), expected)


def test_gradient_boosting_regressor_exact(session, data):
    model = GradientBoostingRegressor(n_estimators=20, max_depth=3, random_state=0)
    model.fit(data["X"], data["y"])
    _, frame = _run(session, data["X"], model)
    np.testing.assert_array_equal(frame["PREDICTION"].to_numpy(), model.predict(data["X"]))


TREE_CLASSIFIERS = [
    DecisionTreeClassifier(max_depth=6, random_state=0),
    RandomForestClassifier(n_estimators=8, max_depth=5, random_state=0),
    ExtraTreesClassifier(n_estimators=8, max_depth=5, random_state=0),
    GradientBoostingClassifier(n_estimators=10, max_depth=2, random_state=0),
    HistGradientBoostingClassifier(max_iter=10, random_state=0),
]


@pytest.mark.parametrize("target", ["y_bin", "y_multi"])
@pytest.mark.parametrize("model", TREE_CLASSIFIERS, ids=lambda m: type(m).__name__)
def test_tree_classifiers(session, data, model, target):
    nan_ok = not isinstance(model, GradientBoostingClassifier)
    X = data["X_nan"] if nan_ok else data["X"]
    model.fit(X, data[target])
    _, pred = _run(session, X, model)
    np.testing.assert_array_equal(pred["PREDICTION"].to_numpy(), model.predict(X))
    _, proba = _run(session, X, model, "predict_proba")
    expected = model.predict_proba(X)
    if isinstance(model, (HistGradientBoostingClassifier, GradientBoostingClassifier)):
        np.testing.assert_allclose(_outputs(proba), expected, rtol=1e-12, atol=1e-15)
    else:  # forests average stored shares: bit for bit
        np.testing.assert_array_equal(_outputs(proba).to_numpy(), expected)
    if hasattr(model, "decision_function"):
        _, dec = _run(session, X, model, "decision_function")
        np.testing.assert_allclose(
            _outputs(dec).to_numpy(),
            model.decision_function(X).reshape(len(X), -1), rtol=1e-12, atol=1e-12,
        )


def test_taxi_sample_through_duckdb(session, taxi_files):
    session.load_files(taxi_files, "TAXI_RAW", overwrite=True)
    raw = session.table("TAXI_RAW")
    cols = ["TRIP_DISTANCE", "PASSENGER_COUNT", "PICKUP_LOCATION_ID", "FARE_AMOUNT"]
    table = raw.select(
        ROW_ID=ibis.row_number(),
        TRIP_DISTANCE=raw.trip_distance,
        PASSENGER_COUNT=raw.passenger_count,
        PICKUP_LOCATION_ID=raw.pickup_location_id,
        FARE_AMOUNT=raw.fare_amount,
        TOTAL=raw.total_amount,
    )
    frame = table.execute()
    X, y = frame[cols], frame["TOTAL"]
    for model in [
        LinearRegression().fit(X.fillna(0), y),
        RandomForestRegressor(n_estimators=5, max_depth=8, random_state=0).fit(X, y),
        HistGradientBoostingRegressor(max_iter=20, random_state=0).fit(X, y),
    ]:
        out = score(table, model).execute()
        expected = model.predict(out[cols].fillna(0) if isinstance(model, LinearRegression) else out[cols])
        got = out["PREDICTION"].to_numpy()
        mask = ~out[cols].isna().any(axis=1).to_numpy() if isinstance(model, LinearRegression) else slice(None)
        if isinstance(model, LinearRegression):
            np.testing.assert_allclose(got[mask], expected[mask], rtol=1e-9)
        else:
            np.testing.assert_array_equal(got, expected)


def test_pipeline_is_applied_and_inputs_are_returned_untransformed(session, data):
    from neve import Pipeline
    from neve.preprocessing import StandardScaler

    table = session.create_table("FEATURES", data["X"], overwrite=True)
    pipe = Pipeline([("scale", StandardScaler(input_cols=["A", "B"]))]).fit(table)
    scaled = pipe.transform(table).execute()
    model = LinearRegression().fit(scaled[["A", "B", "C", "D"]], data["y"])
    out = score(table, model, pipeline=pipe).execute()
    np.testing.assert_allclose(out["A"], data["X"]["A"])  # the raw column, not the scaled one
    np.testing.assert_allclose(out["PREDICTION"], model.predict(scaled[["A", "B", "C", "D"]]), rtol=1e-9)


def test_output_cols_feature_cols_and_errors(session, data):
    model = LogisticRegression().fit(data["X"].to_numpy(), data["y_bin"])
    table = session.create_table("FEATURES", data["X"], overwrite=True)
    with pytest.raises(InvalidParameterError, match="feature_cols"):
        score(table, model)
    out = score(table, model, feature_cols=["A", "B", "C", "D"], function_name="predict_proba",
                output_cols=["P_NO", "P_YES"]).execute()
    np.testing.assert_allclose(out[["P_NO", "P_YES"]], model.predict_proba(data["X"].to_numpy()), rtol=1e-9)
    with pytest.raises(InvalidParameterError, match="produces 2 column"):
        score(table, model, feature_cols=list("ABCD"), function_name="predict_proba", output_cols="P")
    with pytest.raises(ColumnNotFoundError, match="'Z'"):
        score(table, model, feature_cols=["A", "B", "C", "Z"])
    with pytest.raises(InvalidParameterError, match="already exist"):
        score(table, model, feature_cols=list("ABCD"), output_cols="A")
    with pytest.raises(InvalidParameterError, match="predict_log"):
        score(table, model, feature_cols=list("ABCD"), function_name="predict_log_proba")
    strings = session.create_table("S", pd.DataFrame({"A": ["x"], "B": [1.0], "C": [1.0], "D": [1.0]}))
    with pytest.raises(ColumnTypeError, match="'A'"):
        score(strings, model, feature_cols=list("ABCD"))


def _split_points(model) -> set[tuple[int, float]]:
    """Every (feature index, threshold) that a split of ``model`` tests."""
    if hasattr(model, "_predictors"):  # histogram gradient boosting
        nodes = [p.nodes for iteration in model._predictors for p in iteration]
        return {
            (int(n["feature_idx"]), float(n["num_threshold"]))
            for tree in nodes for n in tree if not n["is_leaf"]
        }
    estimators = [model] if hasattr(model, "tree_") else np.ravel(model.estimators_)
    return {
        (int(f), float(t))
        for est in estimators
        for f, t in zip(est.tree_.feature, est.tree_.threshold, strict=True)
        if f >= 0
    }


def _rows_on_every_threshold(model, X):
    """One row per split point, that feature set exactly to the threshold: where ``x <= t``
    and ``x < t`` part ways. Random data almost never lands there."""
    base = X.median()
    rows = []
    for feature, threshold in sorted(_split_points(model)):
        row = base.copy()
        row.iloc[feature] = threshold
        rows.append(row)
    return pd.DataFrame(rows, columns=X.columns).reset_index(drop=True)


@pytest.mark.parametrize("model", TREE_REGRESSORS + [GradientBoostingRegressor(n_estimators=10, random_state=0)],
                         ids=lambda m: type(m).__name__)
def test_tree_regressors_exact_on_split_thresholds(session, data, model):
    target = np.exp(data["y"] / 4) if getattr(model, "loss", "") == "poisson" else data["y"]
    model.fit(data["X"], target)
    X = _rows_on_every_threshold(model, data["X"])
    assert len(X) >= 10
    _, frame = _run(session, X, model)
    np.testing.assert_allclose(frame["PREDICTION"].to_numpy(), model.predict(X), rtol=1e-13, atol=0)


@pytest.mark.parametrize("model", TREE_CLASSIFIERS, ids=lambda m: type(m).__name__)
def test_tree_classifiers_exact_on_split_thresholds(session, data, model):
    model.fit(data["X"], data["y_multi"])
    X = _rows_on_every_threshold(model, data["X"])
    _, proba = _run(session, X, model, "predict_proba")
    np.testing.assert_allclose(_outputs(proba).to_numpy(), model.predict_proba(X), rtol=1e-12, atol=1e-15)
