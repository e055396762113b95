"""Parity with scikit-learn for the scalers, through pandas and through a DuckDB file table."""

from __future__ import annotations

import inspect

import hypothesis.extra.pandas as hpd
import hypothesis.strategies as st
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from numpy.testing import assert_allclose
from sklearn import preprocessing as skp
from sklearn.base import clone

import neve
from neve.errors import (
    ColumnNotFoundError,
    ColumnTypeError,
    EmptyInputError,
    InvalidParameterError,
    NeveInputError,
    NotFittedError,
)
from neve.preprocessing import (
    Binarizer,
    MaxAbsScaler,
    MinMaxScaler,
    Normalizer,
    RobustScaler,
    StandardScaler,
)
from tests.conftest import run_sql

RTOL = 1e-9
COLS = ["a", "b c", "d/e"]

CASES = [
    (StandardScaler, {}),
    (StandardScaler, {"with_mean": False}),
    (StandardScaler, {"with_std": False}),
    (MinMaxScaler, {}),
    (MinMaxScaler, {"feature_range": (-2, 3)}),
    (MinMaxScaler, {"feature_range": (0, 1), "clip": True}),
    (MaxAbsScaler, {}),
    (RobustScaler, {}),
    (RobustScaler, {"quantile_range": (10.0, 90.0), "unit_variance": True}),
    (RobustScaler, {"with_centering": False}),
    (RobustScaler, {"with_scaling": False}),
    (Normalizer, {"norm": "l2"}),
    (Normalizer, {"norm": "l1"}),
    (Normalizer, {"norm": "max"}),
    (Binarizer, {"threshold": 0.3}),
]
# scikit-learn raises on NaN for these two; neve keeps NULL rows as NULL (documented).
REJECTS_NAN = {Normalizer, Binarizer}


def _frame(seed: int = 0, n: int = 500, nan: bool = True) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "a": rng.normal(5.0, 3.0, n),
            "b c": rng.exponential(2.0, n),
            "d/e": rng.integers(-50, 50, n).astype(float),
            "label": rng.choice(["x", "y"], n),
        }
    )
    if nan:
        df.loc[rng.choice(n, n // 20, replace=False), "a"] = np.nan
        df.loc[rng.choice(n, n // 20, replace=False), "b c"] = np.nan
    return df


def _oracle(cls, params):
    return getattr(skp, cls.__name__)(**params)


def _close(actual, expected):
    # atol covers values that are exactly zero after centring in one library and 1e-16 in the other.
    assert_allclose(np.asarray(actual, dtype=float), expected, rtol=RTOL, atol=1e-12)


@pytest.mark.parametrize(("cls", "params"), CASES, ids=lambda v: getattr(v, "__name__", str(v)))
def test_pandas_parity(cls, params):
    train, test = _frame(0, nan=cls not in REJECTS_NAN), _frame(1, nan=cls not in REJECTS_NAN)
    ours = cls(input_cols=COLS, **params).fit(train)
    ref = _oracle(cls, params).fit(train[COLS])
    out = ours.transform(test)
    _close(out[COLS], ref.transform(test[COLS]))
    assert list(out.columns) == list(test.columns)
    assert (out["label"] == test["label"]).all()
    assert out.index.equals(test.index)
    for attr in ("mean_", "var_", "scale_", "data_min_", "data_max_", "max_abs_", "center_"):
        if hasattr(ref, attr) and getattr(ref, attr) is not None:
            _close([getattr(ours, attr)[c] for c in COLS], getattr(ref, attr))


@pytest.mark.parametrize(("cls", "params"), CASES, ids=lambda v: getattr(v, "__name__", str(v)))
def test_duckdb_table_parity(session, cls, params):
    train, test = _frame(2, nan=cls not in REJECTS_NAN), _frame(3, nan=cls not in REJECTS_NAN)
    session.create_table("TRAIN", train)
    session.create_table("TEST", test)
    ours = cls(input_cols=COLS, output_cols=[f"{c}_out" for c in COLS], **params)
    ours.fit(session.table("TRAIN"))
    result = ours.transform(session.table("TEST"))
    assert list(result.columns) == [*test.columns, "a_out", "b c_out", "d/e_out"]
    out = result.to_pandas()
    ref = _oracle(cls, params).fit(train[COLS]).transform(test[COLS])
    _close(out[["a_out", "b c_out", "d/e_out"]], ref)
    _close(out[COLS], test[COLS])  # inputs are kept untouched


def test_nan_stored_in_a_table_counts_as_missing(session):
    # pandas NaN arrives as NULL; a real NaN value in a DOUBLE column must be treated the same.
    run_sql(
        session,
        'CREATE TABLE "T" AS SELECT * FROM '
        "(VALUES (1.0::FLOAT8), (3.0), ('NaN'::FLOAT8), (NULL)) AS v(x)",
    )
    scaler = StandardScaler().fit(session.table("T"))
    assert scaler.mean_ == {"x": 2.0}
    assert scaler.n_samples_seen_ == {"x": 2}


def test_large_mean_small_spread_keeps_precision():
    # A one-pass sum of squares loses ~10% of the variance here; neve centres first.
    rng = np.random.default_rng(7)
    df = pd.DataFrame({"x": rng.normal(1e6, 0.87, 10_000)})
    ours = StandardScaler().fit(df)
    ref = skp.StandardScaler().fit(df)
    assert ours.var_["x"] == pytest.approx(ref.var_[0], rel=1e-9)
    # The output is within one ulp of the mean (1.2e-10) divided by the spread.
    assert_allclose(ours.transform(df)["x"], ref.transform(df)[:, 0], atol=1e-9)


def test_constant_and_single_row_columns():
    df = pd.DataFrame({"c": [4.2] * 5, "z": [0.0] * 5})
    for cls in (StandardScaler, MinMaxScaler, MaxAbsScaler, RobustScaler):
        _close(cls().fit(df).transform(df), _oracle(cls, {}).fit(df).transform(df))
    one = pd.DataFrame({"x": [3.0]})
    for cls in (StandardScaler, MinMaxScaler, MaxAbsScaler, RobustScaler):
        _close(cls().fit(one).transform(one), _oracle(cls, {}).fit(one).transform(one))


def test_zero_rows_in_normalizer_are_left_alone():
    df = pd.DataFrame({"a": [0.0, 3.0], "b": [0.0, 4.0]})
    _close(Normalizer().fit(df).transform(df), skp.Normalizer().fit(df).transform(df))


def test_all_missing_column_gives_nan_like_numpy():
    df = pd.DataFrame({"x": [np.nan, np.nan], "y": [1.0, 2.0]})
    ours = StandardScaler().fit(df)
    assert np.isnan(ours.mean_["x"])
    assert ours.transform(df)["x"].isna().all()


@st.composite
def _numeric_frames(draw):
    elements = st.one_of(st.floats(min_value=-1e6, max_value=1e6), st.just(float("nan")))
    frame = draw(
        hpd.data_frames(
            [hpd.column(name, elements=elements, dtype=float) for name in ("x", "y z", "w/v")],
            index=hpd.range_indexes(min_size=1, max_size=40),
        )
    )
    return frame


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(df=_numeric_frames(), case=st.sampled_from([c for c in CASES if c[0] not in REJECTS_NAN]))
def test_hypothesis_parity(df, case):
    cls, params = case
    ref = _oracle(cls, params).fit(df)
    ours = cls(**params).fit(df)
    expected = ref.transform(df)
    actual = ours.transform(df).to_numpy(dtype=float)
    # Absolute tolerance scaled to the data: catastrophic cancellation is shared, not ours.
    scale = max(1.0, float(np.nanmax(np.abs(expected))) if np.isfinite(expected).any() else 1.0)
    assert_allclose(actual, expected, rtol=1e-7, atol=1e-9 * scale)


@settings(max_examples=30, deadline=None)
@given(
    df=hpd.data_frames(
        [hpd.column(c, elements=st.floats(-1e3, 1e3), dtype=float) for c in ("p", "q")],
        index=hpd.range_indexes(min_size=1, max_size=30),
    ),
    case=st.sampled_from([c for c in CASES if c[0] in REJECTS_NAN]),
)
def test_hypothesis_parity_rowwise(df, case):
    cls, params = case
    _close(cls(**params).fit(df).transform(df), _oracle(cls, params).fit(df).transform(df))


def test_infinity_is_rejected_naming_the_column():
    df = pd.DataFrame({"ok": [1.0, 2.0], "bad col": [1.0, np.inf]})
    with pytest.raises(NeveInputError, match="'bad col' contains infinity"):
        StandardScaler().fit(df)


def test_fit_runs_one_query_for_all_columns(session):
    session.create_table("T", _frame())
    for cls, params in CASES:
        with neve.capture_queries() as log:
            cls(input_cols=COLS, **params).fit(session.table("T"))
        assert len(log) == 1, (cls.__name__, log.queries)


def test_transform_is_lazy(session):
    session.create_table("T", _frame())
    scaler = StandardScaler(input_cols=COLS).fit(session.table("T"))
    with neve.capture_queries() as log:
        expr = scaler.transform(session.table("T"))
    assert len(log) == 0
    assert "AVG" not in str(neve.Pipeline([("s", scaler)]).fit(session.table("T")).to_sql(session.table("T")))
    assert expr.count().execute() == 500


def test_missing_column_lists_available(session):
    session.create_table("T", _frame())
    with pytest.raises(ColumnNotFoundError, match=r"'nope' not found; available columns: 'a', 'b c'"):
        StandardScaler(input_cols=["a", "nope"]).fit(session.table("T"))
    fitted = StandardScaler(input_cols=["a"]).fit(session.table("T"))
    with pytest.raises(KeyError):
        fitted.transform(session.table("T").drop("a"))


def test_non_numeric_column_names_type():
    with pytest.raises(ColumnTypeError, match=r"'label' has type string"):
        MinMaxScaler(input_cols=["a", "label"]).fit(_frame())


def test_transform_before_fit():
    with pytest.raises(NotFittedError, match="not fitted yet"):
        StandardScaler().transform(_frame())
    with pytest.raises(AttributeError):
        StandardScaler().get_feature_names_out()


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: MinMaxScaler(feature_range=(1, 0)), "feature_range"),
        (lambda: RobustScaler(quantile_range=(80.0, 20.0)), "quantile_range"),
        (lambda: Normalizer(norm="l3"), "norm"),
        (lambda: StandardScaler(with_mean="yes"), "with_mean"),
        (lambda: StandardScaler(input_cols=["a", "b c"], output_cols=["only_one"]), "output_cols"),
    ],
)
def test_invalid_parameters(make, match):
    with pytest.raises(InvalidParameterError, match=match):
        make().fit(_frame())


def test_empty_table(session):
    session.create_table("T", _frame().iloc[:0])
    with pytest.raises(EmptyInputError, match="no rows"):
        StandardScaler(input_cols=COLS).fit(session.table("T"))


def test_sklearn_estimator_api():
    scaler = StandardScaler(with_mean=False, input_cols=["a"])
    assert scaler.get_params()["with_mean"] is False
    assert clone(scaler).get_params() == scaler.get_params()
    assert "with_mean=False" in repr(scaler)
    assert scaler.fit(_frame()) is scaler
    assert list(scaler.get_feature_names_out()) == ["a"]


@pytest.mark.parametrize("cls", [StandardScaler, MinMaxScaler, MaxAbsScaler, RobustScaler, Normalizer, Binarizer])
def test_defaults_match_scikit_learn(cls):
    ours = inspect.signature(cls).parameters
    theirs = inspect.signature(getattr(skp, cls.__name__)).parameters
    for name, param in theirs.items():
        assert ours[name].default == param.default, name
    assert {"input_cols", "output_cols", "passthrough_cols", "drop_input_cols"} <= set(ours)


def test_drop_input_cols_and_passthrough():
    df = _frame()
    out = MaxAbsScaler(input_cols=["a"], output_cols=["a_scaled"], drop_input_cols=True).fit_transform(df)
    assert list(out.columns) == ["b c", "d/e", "label", "a_scaled"]
    scaler = MaxAbsScaler(passthrough_cols=["label", "d/e"]).fit(df)
    assert scaler.input_cols_ == ["a", "b c"]


def test_tiny_but_real_spread_keeps_its_scale():
    # scikit-learn decides constancy from the variance, not from scale < 10 eps.
    df = pd.DataFrame({"x": [1.4e-45, 0.0]})
    _close(StandardScaler().fit(df).transform(df), skp.StandardScaler().fit(df).transform(df))
