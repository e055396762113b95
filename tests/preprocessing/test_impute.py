"""SimpleImputer against scikit-learn's, through pandas and a DuckDB file table."""

from __future__ import annotations

import json
import warnings

import hypothesis.extra.pandas as hpd
import ibis
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn import impute as ski
from sklearn import pipeline as skpipe
from sklearn import preprocessing as skp

import neve
from neve import Pipeline
from neve.errors import (
    ColumnNotFoundError,
    ColumnTypeError,
    EmptyInputError,
    InvalidParameterError,
    NeveInputError,
    NotFittedError,
)
from neve.preprocessing import KBinsDiscretizer, SimpleImputer
from tests.conftest import run_sql

STRATEGIES = ["mean", "median", "most_frequent", "constant"]


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "trip distance": rng.gamma(2.0, 1.5, n).round(1),
            "fare/amount": rng.normal(1e6, 0.87, n),
            "passengers": rng.integers(0, 6, n).astype(float),
            "all missing": np.full(n, np.nan),
            "complete": rng.random(n),
        }
    )
    for col, every in [("trip distance", 5), ("fare/amount", 9), ("passengers", 4)]:
        df.loc[::every, col] = np.nan
    return df


TRAIN, TEST = _frame(120, 0), _frame(40, 1)
TEST.loc[3, "complete"] = np.nan  # missing only at transform time: imputed, but no indicator


def _sklearn(train, test, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        est = ski.SimpleImputer(**params).fit(train)
        return est, est.transform(test)


def _neve(est, train, test, path, session):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        if path == "pandas":
            return est.fit(train).transform(test)
        fit_table = session.create_table("train", train, overwrite=True)
        apply_table = session.create_table("test", test, overwrite=True)
        result = est.fit(fit_table).transform(apply_table)
        assert isinstance(result, ibis.expr.types.Table)
        return session.execute(result)


def _assert_statistics(est, sk_est, cols):
    assert list(est.statistics_) == cols
    got = np.array([est.statistics_[c] for c in cols], dtype=float)
    np.testing.assert_allclose(got, sk_est.statistics_.astype(float), rtol=1e-9)


@pytest.mark.parametrize("path", ["pandas", "duckdb"])
@pytest.mark.parametrize("keep_empty", [False, True])
@pytest.mark.parametrize("add_indicator", [False, True])
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_matches_sklearn_fit_on_one_split_applied_to_another(
    strategy, add_indicator, keep_empty, path, session
):
    params = {
        "strategy": strategy,
        "add_indicator": add_indicator,
        "keep_empty_features": keep_empty,
    }
    sk_est, expected = _sklearn(TRAIN, TEST, **params)
    est = SimpleImputer(**params)
    out = _neve(est, TRAIN, TEST, path, session)
    _assert_statistics(est, sk_est, list(TRAIN.columns))
    assert list(out.columns) == list(sk_est.get_feature_names_out())
    assert list(est.get_feature_names_out()) == list(sk_est.get_feature_names_out())
    np.testing.assert_allclose(out.to_numpy(dtype=float), expected, rtol=1e-9)
    assert ("all missing" in out.columns) == keep_empty


def test_default_parameters_match_sklearn():
    ours = SimpleImputer().get_params()
    theirs = ski.SimpleImputer().get_params()
    assert ours.keys() >= theirs.keys()
    for key, value in theirs.items():
        assert ours[key] is value or ours[key] == value, key


@pytest.mark.parametrize("path", ["pandas", "duckdb"])
@pytest.mark.parametrize("strategy", ["most_frequent", "constant"])
def test_string_columns(strategy, path, session):
    train = pd.DataFrame(
        {
            "pickup zone": ["b", "a", None, "b", "a", "zé", None],  # a tie: the smaller wins
            "vendor/id": ["x", "y'q", "y'q", None, "x", "y'q", "x"],
        }
    )
    test = pd.DataFrame({"pickup zone": [None, "c"], "vendor/id": ["x", None]})
    sk_est, expected = _sklearn(train, test, strategy=strategy, add_indicator=True)
    est = SimpleImputer(strategy=strategy, add_indicator=True)
    out = _neve(est, train, test, path, session)
    assert est.statistics_ == dict(zip(train.columns, sk_est.statistics_.tolist(), strict=True))
    assert list(out.columns) == list(sk_est.get_feature_names_out())
    assert out.iloc[:, :2].to_numpy().tolist() == expected[:, :2].tolist()
    assert out.iloc[:, 2:].to_numpy().tolist() == expected[:, 2:].astype(bool).tolist()


def test_most_frequent_ties_go_to_the_smallest_value():
    df = pd.DataFrame(
        {"x": [5.0, 3.0, 5.0, 3.0, 9.0, np.nan], "s": ["b", "c", "c", "b", "a", None]}
    )
    est = SimpleImputer(strategy="most_frequent").fit(df)
    assert est.statistics_ == {"x": 3.0, "s": "b"}


def test_constant_fill_value_and_per_column_default():
    df = pd.DataFrame({"x": [1.0, np.nan], "s": ["a", None]})
    est = SimpleImputer(strategy="constant").fit(df)
    assert est.statistics_ == {"x": 0, "s": "missing_value"}
    assert est.transform(df).to_numpy().tolist() == [[1.0, "a"], [0.0, "missing_value"]]
    numeric = df[["x"]]
    _sk_est, expected = _sklearn(numeric, numeric, strategy="constant", fill_value=-7.5)
    out = SimpleImputer(strategy="constant", fill_value=-7.5).fit(numeric).transform(numeric)
    np.testing.assert_array_equal(out.to_numpy(dtype=float), expected)


@pytest.mark.parametrize("path", ["pandas", "duckdb"])
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_specific_missing_value_on_integer_columns(strategy, path, session):
    train = pd.DataFrame({"a": [1, -1, 3, 3, -1, 8], "b b": [-1, 2, 2, 4, 5, 6]})
    test = pd.DataFrame({"a": [-1, 7], "b b": [0, -1]})
    params = {"strategy": strategy, "missing_values": -1, "add_indicator": True}
    sk_est, expected = _sklearn(train, test, **params)
    est = SimpleImputer(**params)
    out = _neve(est, train, test, path, session)
    _assert_statistics(est, sk_est, ["a", "b b"])
    assert list(out.columns) == list(sk_est.get_feature_names_out())
    np.testing.assert_allclose(out.to_numpy(dtype=float), expected, rtol=1e-9)
    integral = strategy in ("most_frequent", "constant")
    assert (out["a"].dtype.kind == "i") == integral  # an integral fill keeps the integer type


def test_specific_missing_value_leaves_null_alone(session):
    table = session.create_table("t", pd.DataFrame({"x": [1.0, -1.0, 3.0, 2.0]}), overwrite=True)
    run_sql(session, "INSERT INTO \"t\" VALUES (NULL), ('NaN'::FLOAT8)")
    est = SimpleImputer(missing_values=-1, strategy="mean").fit(table)
    assert est.statistics_ == {"x": 2.0}  # NULL and NaN are not counted
    out = session.execute(est.transform(table))["x"]
    assert sorted(out[out.notna()].tolist()) == [1.0, 2.0, 2.0, 3.0]
    assert out.isna().sum() == 2


def test_nan_and_null_are_both_missing(session):
    table = session.create_table("t", pd.DataFrame({"x": [1.0, 4.0]}), overwrite=True)
    run_sql(session, "INSERT INTO \"t\" VALUES (NULL), ('NaN'::FLOAT8)")
    est = SimpleImputer(strategy="mean", add_indicator=True).fit(table)
    assert est.statistics_ == {"x": 2.5}
    out = session.execute(est.transform(table)).sort_values(["missingindicator_x", "x"])
    assert out["x"].tolist() == [1.0, 4.0, 2.5, 2.5]
    assert out["missingindicator_x"].tolist() == [False, False, True, True]


@pytest.mark.parametrize("missing_values", [None, pd.NA])
def test_none_and_pd_na_mean_null(missing_values):
    df = pd.DataFrame({"x": [1.0, None, 5.0], "s": ["q", None, "q"]})
    est = SimpleImputer(strategy="most_frequent", missing_values=missing_values).fit(df)
    assert est.transform(df).to_numpy().tolist() == [[1.0, "q"], [1.0, "q"], [5.0, "q"]]


@pytest.mark.parametrize("path", ["pandas", "duckdb"])
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_one_query_per_fit_for_all_columns(strategy, path, session):
    data = TRAIN if path == "pandas" else session.create_table("train", TRAIN, overwrite=True)
    est = SimpleImputer(strategy=strategy, add_indicator=True)
    with neve.capture_queries() as log, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        est.fit(data)
    assert len(log) == 1
    assert len(est.statistics_) == len(TRAIN.columns)


@pytest.mark.parametrize("path", ["pandas", "duckdb"])
def test_empty_table_is_refused(path, session):
    data = (
        TRAIN.iloc[:0]
        if path == "pandas"
        else session.create_table("e", TRAIN.iloc[:0], overwrite=True)
    )
    with pytest.raises(EmptyInputError, match="no rows"):
        SimpleImputer().fit(data)


def test_all_missing_column_warns_and_is_dropped():
    with pytest.warns(UserWarning, match=r"without any observed value: \['all missing'\]"):
        est = SimpleImputer().fit(TRAIN)
    assert np.isnan(est.statistics_["all missing"])
    assert "all missing" not in est.transform(TEST).columns


def test_all_none_object_column_takes_a_string_constant_as_scikit_learn_does():
    """pandas gives an all-``None`` column object dtype, which reaches the engine typed NULL:
    a string ``fill_value`` fills it as text (SnowML's case), dropped or kept as scikit-learn
    treats an empty column, never refused as numeric."""
    df = pd.DataFrame({"A": [None, None, None], "B": ["x", None, "y"]})
    rows = np.array([[None, "x"], [None, None], [None, "y"]], dtype=object)
    for keep in (True, False):
        sk = ski.SimpleImputer(strategy="constant", fill_value="z", missing_values=None, keep_empty_features=keep)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = sk.fit_transform(rows)
            out = SimpleImputer(strategy="constant", fill_value="z", keep_empty_features=keep).fit(df).transform(df)
        assert out.astype(object).to_numpy().tolist() == expected.tolist()
    assert out.columns.tolist() == ["B"]
    kept = SimpleImputer(input_cols=["A"], strategy="constant", fill_value="z", keep_empty_features=True).fit(df)
    assert kept.transform(df)["A"].tolist() == ["z", "z", "z"]
    with pytest.raises(ColumnTypeError, match="cannot fill numeric column 'A'"):
        SimpleImputer(input_cols=["A"], strategy="constant", fill_value=b"z").fit(df)


def test_single_row_and_constant_column():
    one = pd.DataFrame({"x": [2.5], "k": [7.0]})
    test = pd.DataFrame({"x": [np.nan, 1.0], "k": [np.nan, 7.0]})
    for strategy in STRATEGIES:
        _sk_est, expected = _sklearn(one, test, strategy=strategy)
        out = SimpleImputer(strategy=strategy).fit(one).transform(test)
        np.testing.assert_allclose(out.to_numpy(dtype=float), expected, rtol=1e-9)


def test_output_cols_and_indicator_placement():
    df = pd.DataFrame({"id": [1, 2, 3], "x": [1.0, np.nan, 3.0], "y": [np.nan, 1.0, 1.0]})
    est = SimpleImputer(input_cols=["x", "y"], output_cols=["x_f", "y_f"], add_indicator=True).fit(
        df
    )
    out = est.transform(df)
    assert list(out.columns) == [
        "id",
        "x",
        "y",
        "x_f",
        "y_f",
        "missingindicator_x",
        "missingindicator_y",
    ]
    assert list(est.get_feature_names_out()) == [
        "x_f",
        "y_f",
        "missingindicator_x",
        "missingindicator_y",
    ]
    pipe = Pipeline([("imp", est)]).fit(df)
    assert list(pipe.get_feature_names_out()) == list(out.columns)


def test_pipeline_with_discretizer_matches_sklearn_and_round_trips_json():
    cols = ["trip distance", "passengers", "complete"]
    sk = skpipe.make_pipeline(
        ski.SimpleImputer(strategy="median"),
        skp.KBinsDiscretizer(4, encode="onehot-dense", subsample=None),
    ).fit(TRAIN[cols])
    pipe = Pipeline(
        [
            ("imp", SimpleImputer(strategy="median", input_cols=cols)),
            ("bins", KBinsDiscretizer(4, encode="onehot-dense", subsample=None, input_cols=cols)),
        ]
    )
    with neve.capture_queries() as log, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        pipe.fit(TRAIN[cols])
    assert len(log) == 2  # one per step
    np.testing.assert_array_equal(
        pipe.transform(TEST[cols]).to_numpy(dtype=float), sk.transform(TEST[cols])
    )

    allmissing = Pipeline([("imp", SimpleImputer(add_indicator=True))])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        allmissing.fit(TRAIN)
    for fitted in (pipe, allmissing):
        restored = Pipeline.from_json(json.dumps(fitted.to_dict(), allow_nan=False))
        pd.testing.assert_frame_equal(
            restored.transform(TEST[cols] if fitted is pipe else TEST),
            fitted.transform(TEST[cols] if fitted is pipe else TEST),
        )
    restored_imp = Pipeline.from_dict(json.loads(json.dumps(allmissing.to_dict())))["imp"]
    assert np.isnan(restored_imp.missing_values)
    assert restored_imp.indicator_ == allmissing["imp"].indicator_


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"strategy": "mode"}, "strategy"),
        ({"strategy": np.nanmean}, "callable strategy cannot run in SQL"),
        ({"add_indicator": "yes"}, "add_indicator"),
        ({"missing_values": [1]}, "missing_values"),
    ],
)
def test_invalid_parameters_are_refused(params, match):
    with pytest.raises(InvalidParameterError, match=match):
        SimpleImputer(**params).fit(TRAIN)


def test_clear_errors_for_bad_input():
    strings = pd.DataFrame({"zone id": ["a", None], "x": [1.0, 2.0]})
    with pytest.raises(
        ColumnNotFoundError, match=r"'nope' not found; available columns: 'zone id', 'x'"
    ):
        SimpleImputer(input_cols=["nope"]).fit(strings)
    with pytest.raises(
        ColumnTypeError,
        match=r"strategy='mean' needs numeric columns, but 'zone id' has type string",
    ):
        SimpleImputer().fit(strings)
    with pytest.raises(ColumnTypeError, match="fill_value='z' cannot fill numeric column 'x'"):
        SimpleImputer(strategy="constant", fill_value="z").fit(strings)
    with pytest.raises(
        ColumnTypeError, match="fill_value=0 is not a string, but column 'zone id' is"
    ):
        SimpleImputer(strategy="constant", fill_value=0).fit(strings)
    with pytest.raises(
        ColumnTypeError, match=r"missing_values='\?' cannot occur in column 'x' of type float64"
    ):
        SimpleImputer(strategy="most_frequent", missing_values="?").fit(strings)
    with pytest.raises(NeveInputError, match="'x' contains infinity"):
        SimpleImputer().fit(pd.DataFrame({"x": [1.0, -np.inf]}))
    with pytest.raises(NotFittedError, match="not fitted"):
        SimpleImputer().transform(strings)
    with pytest.raises(ColumnNotFoundError, match="'x' not found"):
        SimpleImputer(strategy="most_frequent").fit(strings).transform(strings[["zone id"]])


_values = st.one_of(
    st.sampled_from([np.nan, np.nan, 0.0, 1.0, 2.5, -3.0]),  # many missing, many ties
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    frame=hpd.data_frames(
        [hpd.column("a b", elements=_values), hpd.column("c/d", elements=_values)],
        index=hpd.range_indexes(min_size=1, max_size=20),
    ),
    strategy=st.sampled_from(STRATEGIES),
    add_indicator=st.booleans(),
    keep_empty=st.booleans(),
)
def test_hypothesis_frames_match_sklearn(frame, strategy, add_indicator, keep_empty):
    frame = frame.replace(-0.0, 0.0)  # SQL may group -0.0 and 0.0 apart; numpy does not
    params = {
        "strategy": strategy,
        "add_indicator": add_indicator,
        "keep_empty_features": keep_empty,
    }
    sk_est, expected = _sklearn(frame, frame, **params)
    est = SimpleImputer(**params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        est.fit(frame)
    _assert_statistics(est, sk_est, ["a b", "c/d"])
    if expected.shape[1] == 0:  # everything dropped: no table to return
        with pytest.raises(NeveInputError, match="no column to return"):
            est.transform(frame)
        return
    out = est.transform(frame)
    assert list(out.columns) == list(sk_est.get_feature_names_out())
    np.testing.assert_allclose(out.to_numpy(dtype=float), expected, rtol=1e-9, atol=1e-300)
