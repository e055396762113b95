"""neve.linear_model against scikit-learn's exact dense solvers, on every engine."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from sklearn import linear_model as skl

import neve
from neve.errors import ColumnTypeError, InvalidParameterError, NeveInputError
from neve.linear_model import LinearRegression, LogisticRegression, Ridge

DATA = Path(__file__).parents[2] / "data" / "nyc_taxi"


def _frame(seed: int = 0, n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "A": rng.normal(size=n),
        "BIG": 1e9 + rng.normal(size=n),
        "C": rng.integers(0, 4, n).astype("float64"),
        "W": rng.uniform(0.5, 2.0, n),
    })
    df["Y"] = 3 * df.A - 2 * (df.BIG - 1e9) + df.C + rng.normal(size=n)
    return df


def _fit(session, est, df):
    table = session.create_table("T_LIN", df, overwrite=True)
    with neve.capture_queries() as log:
        est.fit(table)
    return table, log.scans


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize(
    "ours, theirs",
    [(LinearRegression, skl.LinearRegression()), (Ridge, skl.Ridge(alpha=0.5, solver="cholesky"))],
)
def test_least_squares_match_scikit_learn_in_one_query(session, ours, theirs, weighted):
    df = _frame()
    est = ours(input_cols=["A", "BIG", "C"], label_cols="Y", sample_weight_col="W" if weighted else None)
    if ours is Ridge:
        est.set_params(alpha=0.5)
    table, log = _fit(session, est, df)
    assert len(log) == 1 and "CREATE" not in log[0].upper()  # fit writes no table
    theirs.fit(df[["A", "BIG", "C"]], df.Y, sample_weight=df.W if weighted else None)
    assert_allclose(est.coef_, theirs.coef_, rtol=1e-9)
    assert_allclose(est.intercept_, theirs.intercept_, rtol=1e-12)
    predicted = est.predict(table).to_pandas()
    assert "OUTPUT_Y" in predicted.columns
    # intercept + coef * 1e9 cancels ~2e9 down to O(1): agreement is relative to the intercept.
    atol = 1e-14 * abs(theirs.intercept_)
    assert_allclose(predicted["OUTPUT_Y"], theirs.predict(predicted[["A", "BIG", "C"]]), atol=atol)
    twin = est.to_sklearn()
    assert type(twin) is type(theirs)
    if not weighted:
        assert est.score(table) == pytest.approx(theirs.score(df[["A", "BIG", "C"]], df.Y), rel=1e-9)
    assert_allclose(twin.predict(df[["A", "BIG", "C"]]), theirs.predict(df[["A", "BIG", "C"]]), atol=atol)


def test_rank_deficient_design_gets_the_minimum_norm_solution(session):
    df = _frame(1)
    df["A2"] = 2 * df.A  # collinear
    df["K"] = 7.0  # constant
    est = LinearRegression(input_cols=["A", "A2", "K", "C"], label_cols="Y")
    _fit(session, est, df)
    theirs = skl.LinearRegression().fit(df[["A", "A2", "K", "C"]], df.Y)
    assert est.rank_ == 2
    assert_allclose(est.coef_, theirs.coef_, rtol=1e-9, atol=1e-12)
    assert_allclose(est.intercept_, theirs.intercept_, rtol=1e-9)


def test_null_label_rows_are_dropped_and_null_features_name_the_column():
    df = _frame(2)
    df.loc[::7, "Y"] = np.nan
    est = LinearRegression(input_cols=["A", "C"], label_cols="Y").fit(df)
    kept = df.dropna(subset=["Y"])
    assert_allclose(est.coef_, skl.LinearRegression().fit(kept[["A", "C"]], kept.Y).coef_, rtol=1e-9)
    df.loc[3, "A"] = np.nan
    with pytest.raises(NeveInputError, match="'A' has 1 NULL"):
        LinearRegression(input_cols=["A", "C"], label_cols="Y").fit(df)


def test_bad_input_is_refused_clearly():
    df = _frame(3).assign(S="x")
    with pytest.raises(ColumnTypeError, match="'S'"):
        LinearRegression(input_cols=["A", "S"], label_cols="Y").fit(df)
    with pytest.raises(InvalidParameterError, match="label_cols"):
        LinearRegression(input_cols=["A"]).fit(df)
    with pytest.raises(InvalidParameterError, match="positive"):
        LinearRegression(positive=True, label_cols="Y").fit(df)


@pytest.mark.parametrize("label", ["BIN", "MULTI"])
@pytest.mark.parametrize("penalty", ["l2", None])
def test_logistic_matches_newton_cholesky(session, label, penalty):
    df = _labels(_frame(4, n=600), 4)
    est = LogisticRegression(penalty=penalty, C=0.7, tol=1e-8, input_cols=["A", "C"], label_cols=label)
    table, log = _fit(session, est, df)
    assert len(log) == est.n_iter_[0] + 1
    theirs = _newton_cholesky(df, label, penalty=penalty, C=0.7)
    assert list(est.classes_) == list(theirs.classes_)
    assert_allclose(est.coef_, theirs.coef_, rtol=1e-7, atol=1e-9)
    assert_allclose(est.intercept_, theirs.intercept_, rtol=1e-7, atol=1e-9)
    proba = est.predict_proba(table).to_pandas()
    columns = [c for c in proba.columns if c.startswith("PREDICT_PROBA_")]
    assert_allclose(proba[columns].to_numpy(), theirs.predict_proba(proba[["A", "C"]]), atol=1e-9)
    predicted = est.predict(table).to_pandas()
    assert (predicted[f"OUTPUT_{label}"] == theirs.predict(predicted[["A", "C"]])).all()
    accuracy = theirs.score(df[["A", "C"]], df[label])
    assert 0.5 < accuracy < 1  # some rows misclassified, so a wrong count shows
    assert est.score(table) == pytest.approx(accuracy, rel=1e-12)


def test_taxi_fare_regression_matches_scikit_learn(session):
    raw = pd.read_csv(DATA / "yellow_tripdata_sample_2019-01.csv")
    df = raw[["trip_distance", "passenger_count", "fare_amount"]].dropna().rename(columns=str.upper)
    est = LinearRegression(input_cols=["TRIP_DISTANCE", "PASSENGER_COUNT"], label_cols="FARE_AMOUNT")
    _fit(session, est, df)
    theirs = skl.LinearRegression().fit(df[["TRIP_DISTANCE", "PASSENGER_COUNT"]], df.FARE_AMOUNT)
    assert_allclose(est.coef_, theirs.coef_, rtol=1e-9)
    assert_allclose(est.intercept_, theirs.intercept_, rtol=1e-9)


# The session is shared by the examples (each overwrites the table): hence the health check.
@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(
    n=st.integers(5, 60),
    seed=st.integers(0, 2**16),
    offset=st.sampled_from([0.0, 1e6, 1e9]),
    weighted=st.booleans(),
)
def test_hypothesis_ridge_parity(session, n, seed, offset, weighted):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"A": rng.normal(size=n) + offset, "B": rng.integers(0, 3, n).astype(float),
                       "W": rng.uniform(0.1, 3, n)})
    df["Y"] = rng.normal(size=n) + df.B
    est = Ridge(alpha=1.0, input_cols=["A", "B"], label_cols="Y", sample_weight_col="W" if weighted else None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _fit(session, est, df)
    theirs = skl.Ridge(alpha=1.0, solver="cholesky").fit(
        df[["A", "B"]], df.Y, sample_weight=df.W if weighted else None)
    assert_allclose(est.coef_, theirs.coef_, rtol=1e-6, atol=1e-9)
    assert_allclose(est.intercept_, theirs.intercept_, rtol=1e-6, atol=1e-9)


def _labels(df: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Noisy binary and three-class labels from A and C (noisy, so the unpenalised optimum exists)."""
    rng = np.random.default_rng(seed)
    eta = 1.5 * df.A - 0.5 * df.C
    df["BIN"] = np.where(rng.uniform(size=len(df)) < 1 / (1 + np.exp(-eta)), "yes", "no")
    scores = np.stack([df.A, 0.5 * df.C - 0.5, np.zeros(len(df))], axis=1)
    draws = (np.cumsum(np.exp(scores) / np.exp(scores).sum(1, keepdims=True), 1) < rng.uniform(size=(len(df), 1)))
    df["MULTI"] = np.array(["a", "b", "c"])[draws.sum(1)]
    return df


def _newton_cholesky(df: pd.DataFrame, label: str, weight: str | None = None, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = skl.LogisticRegression(solver="newton-cholesky", tol=1e-12, max_iter=500, **params)
        return theirs.fit(df[["A", "C"]], df[label], sample_weight=None if weight is None else df[weight])


@pytest.mark.parametrize("label", ["BIN", "MULTI"])
def test_weighted_logistic_matches_newton_cholesky(session, label):
    df = _labels(_frame(5, n=600), 5)
    est = LogisticRegression(C=0.7, tol=1e-8, input_cols=["A", "C"], label_cols=label, sample_weight_col="W")
    table, _ = _fit(session, est, df)
    theirs = _newton_cholesky(df, label, "W", C=0.7)
    unweighted = _newton_cholesky(df, label, C=0.7)
    assert np.abs(theirs.coef_ - unweighted.coef_).max() > 1e-3  # the weights matter here
    assert_allclose(est.coef_, theirs.coef_, rtol=1e-7, atol=1e-9)
    assert_allclose(est.intercept_, theirs.intercept_, rtol=1e-7, atol=1e-9)
    proba = est.predict_proba(table).to_pandas()
    columns = [c for c in proba.columns if c.startswith("PREDICT_PROBA_")]
    assert_allclose(proba[columns].to_numpy(), theirs.predict_proba(proba[["A", "C"]]), atol=1e-9)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize(
    "ours, theirs",
    [
        (lambda **kw: LinearRegression(**kw), lambda: skl.LinearRegression(fit_intercept=False)),
        (lambda **kw: Ridge(alpha=0.5, **kw), lambda: skl.Ridge(alpha=0.5, solver="cholesky", fit_intercept=False)),
    ],
    ids=["LinearRegression", "Ridge"],
)
def test_least_squares_without_intercept_match_scikit_learn(session, ours, theirs, weighted):
    df = _frame(6)
    df["Y"] += 5.0  # a mean the model may not absorb in an intercept
    est = ours(fit_intercept=False, input_cols=["A", "C"], label_cols="Y",
               sample_weight_col="W" if weighted else None)
    table, _ = _fit(session, est, df)
    sk = theirs().fit(df[["A", "C"]], df.Y, sample_weight=df.W if weighted else None)
    assert est.intercept_ == 0.0
    assert_allclose(est.coef_, sk.coef_, rtol=1e-9)
    predicted = est.predict(table).to_pandas()
    assert_allclose(predicted["OUTPUT_Y"], sk.predict(predicted[["A", "C"]]), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("label", ["BIN", "MULTI"])
def test_logistic_without_intercept_matches_newton_cholesky(session, label):
    df = _labels(_frame(7, n=600), 7)
    df["A"] += 1.0  # off-centre, so a missing intercept changes the coefficients
    est = LogisticRegression(C=0.7, tol=1e-8, fit_intercept=False, input_cols=["A", "C"], label_cols=label)
    table, _ = _fit(session, est, df)
    theirs = _newton_cholesky(df, label, C=0.7, fit_intercept=False)
    assert_allclose(est.intercept_, np.zeros(len(est.intercept_)), atol=0)
    assert_allclose(est.coef_, theirs.coef_, rtol=1e-7, atol=1e-9)
    proba = est.predict_proba(table).to_pandas()
    columns = [c for c in proba.columns if c.startswith("PREDICT_PROBA_")]
    assert_allclose(proba[columns].to_numpy(), theirs.predict_proba(proba[["A", "C"]]), atol=1e-9)


def test_label_and_weight_names_resolve_as_the_engine_reads_them(session):
    """SnowML code writes lower-case names for Snowflake's upper-case columns: DuckDB finds
    them ignoring case, as its SQL does; PostgreSQL and Spark (quoted names) do not."""
    from neve.errors import ColumnNotFoundError

    df = pd.DataFrame({"X": [1.0, 2.0, 3.0, 4.0], "Y": [2.0, 4.1, 5.9, 8.0], "W": [1.0, 2.0, 1.0, 2.0]})
    table = session.create_table("UPPER_NAMES", df, overwrite=True)
    model = LinearRegression(input_cols=["x"], label_cols="y", sample_weight_col="w")
    if not session.driver.case_insensitive_names:
        with pytest.raises(ColumnNotFoundError, match="x"):
            model.fit(table)
        return
    model.fit(table)
    sk = skl.LinearRegression().fit(df[["X"]], df["Y"], sample_weight=df["W"])
    assert_allclose(model.coef_, sk.coef_, rtol=1e-9)
    assert model.label_cols_ == ["Y"]
    assert "OUTPUT_Y" in model.predict(table).columns
