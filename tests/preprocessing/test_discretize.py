"""KBinsDiscretizer against scikit-learn's, through pandas and a DuckDB file table."""

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
from neve.preprocessing import KBinsDiscretizer
from neve.preprocessing._discretize import interpolate, percentile_indexes

METHODS = ["averaged_inverted_cdf", "inverted_cdf", "linear"]
CONFIGS = [("uniform", "averaged_inverted_cdf")] + [("quantile", m) for m in METHODS]


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "trip distance": rng.gamma(2.0, 1.5, n).round(2),  # rounded: ties and values on edges
            "fare/amount": rng.normal(1e6, 0.87, n),  # large mean, small spread
            "passengers": rng.integers(0, 6, n),
            "ratio": rng.random(n),
        }
    )


TRAIN, TEST = _frame(157, 0), _frame(61, 1)
# The test split reaches beyond the training range on both sides.
TEST.loc[0, ["trip distance", "ratio"]] = [-5.0, 2.0]
TEST.loc[1, ["trip distance", "ratio"]] = [1e3, -1.0]


def _sklearn(
    train: pd.DataFrame, test: pd.DataFrame, **params
) -> tuple[skp.KBinsDiscretizer, np.ndarray]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        est = skp.KBinsDiscretizer(**params).fit(train)
    out = est.transform(test)
    return est, out.toarray() if hasattr(out, "toarray") else out


def _neve(est, train, test, path, session):
    """Fit on ``train`` and transform ``test`` through pandas or through DuckDB file tables."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        if path == "pandas":
            return est.fit(train).transform(test)
        fit_table = session.create_table("train", train, overwrite=True)
        apply_table = session.create_table("test", test, overwrite=True)
        result = est.fit(fit_table).transform(apply_table)
        assert isinstance(result, ibis.expr.types.Table)  # lazy until executed
        return session.execute(result)


def _assert_edges(neve_est, sk_est, cols):
    assert list(neve_est.bin_edges_by_col_) == cols
    for col, edges in zip(cols, sk_est.bin_edges_, strict=True):
        np.testing.assert_array_equal(neve_est.bin_edges_by_col_[col], edges, err_msg=col)
    assert neve_est.n_bins_by_col_ == dict(zip(cols, sk_est.n_bins_.tolist(), strict=True))


@pytest.mark.parametrize("path", ["pandas", "duckdb"])
@pytest.mark.parametrize("encode", ["ordinal", "onehot-dense", "onehot"])
@pytest.mark.parametrize(("strategy", "method"), CONFIGS)
def test_matches_sklearn_fit_on_one_split_applied_to_another(
    strategy, method, encode, path, session
):
    params = {
        "n_bins": [3, 4, 5, 6],
        "encode": encode,
        "strategy": strategy,
        "quantile_method": method,
        "subsample": None,
    }
    sk_est, expected = _sklearn(TRAIN, TEST, **params)
    est = KBinsDiscretizer(**params)
    out = _neve(est, TRAIN, TEST, path, session)
    _assert_edges(est, sk_est, list(TRAIN.columns))
    assert list(out.columns) == list(sk_est.get_feature_names_out())
    assert list(est.get_feature_names_out()) == list(sk_est.get_feature_names_out())
    np.testing.assert_allclose(out.to_numpy(dtype=float), expected, rtol=1e-9)


def test_default_parameters_match_sklearn():
    ours = KBinsDiscretizer().get_params()
    theirs = skp.KBinsDiscretizer().get_params()
    assert {k: ours[k] for k in theirs} == theirs
    est, expected = _sklearn(
        TRAIN, TEST
    )  # sklearn's defaults: quantile, averaged_inverted_cdf, onehot
    out = KBinsDiscretizer().fit(TRAIN).transform(TEST)  # 157 rows <= subsample: same result
    assert list(out.columns) == list(est.get_feature_names_out())
    np.testing.assert_array_equal(out.to_numpy(dtype=float), expected)


def test_onehot_names_and_in_place_replacement():
    df = pd.DataFrame({"id": [1, 2, 3, 4], "x": [0.0, 1.0, 2.0, 3.0], "z": ["a", "b", "c", "d"]})
    est = KBinsDiscretizer(2, encode="onehot-dense", strategy="uniform", input_cols=["x"]).fit(df)
    out = est.transform(df)
    assert list(out.columns) == ["id", "x_0.0", "x_1.0", "z"]
    assert out["x_0.0"].tolist() == [1.0, 1.0, 0.0, 0.0]
    assert out["x_0.0"].dtype == np.float64

    renamed = KBinsDiscretizer(
        2,
        encode="ordinal",
        strategy="uniform",
        input_cols=["x"],
        output_cols=["x_bin"],
        drop_input_cols=True,
    )
    assert list(renamed.fit(df).transform(df).columns) == ["id", "z", "x_bin"]


@pytest.mark.parametrize("path", ["pandas", "duckdb"])
@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_one_query_per_fit_for_all_columns(strategy, path, session):
    data = TRAIN if path == "pandas" else session.create_table("train", TRAIN, overwrite=True)
    est = KBinsDiscretizer(4, strategy=strategy, subsample=None)
    with neve.capture_queries() as log:
        est.fit(data)
    assert len(log) == 1
    assert len(est.bin_edges_by_col_) == 4


@pytest.mark.parametrize("path", ["pandas", "duckdb"])
def test_empty_table_is_refused(path, session):
    empty = TRAIN.iloc[:0]
    data = empty if path == "pandas" else session.create_table("empty", empty, overwrite=True)
    with pytest.raises(EmptyInputError, match="no rows"):
        KBinsDiscretizer().fit(data)


@pytest.mark.engines(
    "duckdb", "postgres", reason="UPDATE: Spark's Parquet tables have no row-level updates (Delta has)"
)
def test_missing_values_skipped_by_fit_and_null_through_transform(session):
    train = TRAIN[["trip distance", "ratio"]].copy()
    train.loc[::7, "trip distance"] = np.nan  # arrives in DuckDB as NULL
    table = session.create_table("train", train.assign(rid=range(len(train))), overwrite=True)
    # A real floating NaN (not NULL) in the other column.
    session.engine.raw_sql('UPDATE "train" SET "ratio" = \'NaN\'::FLOAT8 WHERE "ratio" < 0.05')
    est = KBinsDiscretizer(
        4, encode="onehot-dense", subsample=None, input_cols=["trip distance", "ratio"]
    ).fit(table)

    # Skipping is per column: each column's edges come from its own present values.
    for col, present in [
        ("trip distance", train["trip distance"].dropna()),
        ("ratio", train["ratio"][train["ratio"] >= 0.05]),
    ]:
        sk_est, _ = _sklearn(present.to_frame(), present.to_frame(), n_bins=4, subsample=None)
        np.testing.assert_array_equal(est.bin_edges_by_col_[col], sk_est.bin_edges_[0], err_msg=col)

    # Row order is the engine's business (PostgreSQL moves updated rows): sort by id.
    out = session.execute(est.transform(table).order_by("rid"))
    for col, missing in [
        ("trip distance", train["trip distance"].isna().to_numpy()),
        ("ratio", (train["ratio"] < 0.05).to_numpy()),
    ]:
        block = out[[c for c in out.columns if c.startswith(f"{col}_")]]
        assert missing.any()
        assert block[missing].isna().all().all()
        assert (block[~missing].sum(axis=1) == 1).all()


def test_nan_and_null_both_pass_through_as_null():
    df = pd.DataFrame({"x": [1.0, 2.0, np.nan, 3.0, 4.0, None]})
    out = KBinsDiscretizer(2, encode="ordinal", strategy="uniform").fit(df).transform(df)
    assert out["x"].isna().tolist() == [False, False, True, False, False, True]
    assert out["x"].dropna().tolist() == [0.0, 0.0, 1.0, 1.0]


def test_constant_column_and_single_row_match_sklearn():
    df = pd.DataFrame({"const": [3.0] * 5, "x": [1.0, 2.0, 3.0, 4.0, 5.0]})
    sk_est, expected = _sklearn(df, df, n_bins=3, encode="onehot-dense")
    with pytest.warns(UserWarning, match="'const' is constant"):
        est = KBinsDiscretizer(3, encode="onehot-dense").fit(df)
    assert est.bin_edges_by_col_["const"] == [-np.inf, np.inf]
    assert est.n_bins_by_col_["const"] == 1
    out = est.transform(df)
    assert list(out.columns) == list(sk_est.get_feature_names_out())
    np.testing.assert_array_equal(out.to_numpy(dtype=float), expected)

    one = df.iloc[:1]
    _sk_one, expected_one = _sklearn(one, df, n_bins=3, encode="ordinal")
    with pytest.warns(UserWarning):
        est_one = KBinsDiscretizer(3, encode="ordinal").fit(one)
    np.testing.assert_array_equal(est_one.transform(df).to_numpy(dtype=float), expected_one)


def test_narrow_bins_are_removed_as_sklearn_does():
    df = pd.DataFrame({"x": [0.0] * 8 + [1.0, 2.0], "y": np.arange(10.0)})
    sk_est, expected = _sklearn(df, df, n_bins=5, encode="ordinal")
    with pytest.warns(UserWarning, match="narrower than 1e-8 in column 'x'"):
        est = KBinsDiscretizer(5, encode="ordinal").fit(df)
    assert est.n_bins_by_col_ == {"x": sk_est.n_bins_[0], "y": 5}
    assert est.n_bins_by_col_["x"] < 5
    np.testing.assert_array_equal(est.transform(df).to_numpy(dtype=float), expected)


@pytest.mark.parametrize("dtype", [None, np.float32, np.float64])
def test_dtype_controls_output_type(dtype):
    df = pd.DataFrame({"x": np.arange(10, dtype=np.float32)})
    _, expected = _sklearn(df, df, n_bins=3, encode="onehot-dense", dtype=dtype)
    out = KBinsDiscretizer(3, encode="onehot-dense", dtype=dtype).fit(df).transform(df)
    assert set(out.dtypes) == {expected.dtype}
    np.testing.assert_array_equal(out.to_numpy(), expected)


def test_all_bins_too_narrow():
    df = pd.DataFrame({"x": [0.0, 1e-9]})
    with pytest.warns(UserWarning):
        ordinal = KBinsDiscretizer(2, encode="ordinal").fit(df)
    _, expected = _sklearn(df, df, n_bins=2, encode="ordinal")
    np.testing.assert_array_equal(ordinal.transform(df)["x"].to_numpy(), expected[:, 0])
    with (
        pytest.raises(NeveInputError, match="'x' is narrower than 1e-8"),
        pytest.warns(UserWarning),
    ):
        KBinsDiscretizer(2, encode="onehot-dense").fit(df)


def test_edges_on_data_points_bin_like_searchsorted():
    # Every value sits exactly on a linear-quantile edge: side="right" puts it in the upper bin.
    df = pd.DataFrame({"x": [0.1, 0.2, 0.30000000000000004, 0.4, 0.5]})
    _, expected = _sklearn(df, df, n_bins=4, encode="ordinal", quantile_method="linear")
    out = KBinsDiscretizer(4, encode="ordinal", quantile_method="linear").fit(df).transform(df)
    np.testing.assert_array_equal(out["x"].to_numpy(), expected[:, 0])


def test_percentile_reconstruction_is_numpys_bit_for_bit():
    rng = np.random.default_rng(7)
    for _ in range(300):
        n, k = int(rng.integers(1, 60)), int(rng.integers(2, 15))
        x = np.sort(np.round(rng.normal(size=n) * 10, int(rng.integers(0, 3))))
        levels = np.linspace(0, 100, k + 1)
        for method in METHODS:
            lower, upper, gamma = percentile_indexes(method, n, levels / 100)
            got = interpolate(x[lower], x[upper], gamma)
            np.testing.assert_array_equal(got, np.percentile(x, levels, method=method))


def test_pipeline_state_round_trips_through_json():
    pipe = Pipeline(
        [
            (
                "bins",
                KBinsDiscretizer(
                    [3, 4, 2, 5, 3], encode="onehot-dense", dtype=np.float32, subsample=None
                ),
            )
        ]
    )
    train = TRAIN.assign(const=1.0)  # a constant column: edges [-inf, inf]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        pipe.fit(train)
    restored = Pipeline.from_json(json.dumps(pipe.to_dict(), allow_nan=False))
    step = restored["bins"]
    assert step.dtype is np.float32
    assert step.bin_edges_by_col_ == pipe["bins"].bin_edges_by_col_
    assert step.n_bins_by_col_ == pipe["bins"].n_bins_by_col_
    test = TEST.assign(const=2.0)
    pd.testing.assert_frame_equal(restored.transform(test), pipe.transform(test))
    assert list(restored.get_feature_names_out()) == list(pipe.transform(test).columns)


def test_to_sql_is_one_select_without_udfs():
    pipe = Pipeline([("bins", KBinsDiscretizer(3, encode="ordinal", subsample=None))]).fit(TRAIN)
    sql = pipe.to_sql(ibis.memtable(TEST), dialect="snowflake")
    assert sql.lstrip().upper().startswith("SELECT")
    assert "CASE" in sql.upper()


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"strategy": "kmeans"}, "kmeans.*not supported in SQL"),
        ({"quantile_method": "hazen"}, "hazen.*not supported in SQL"),
        ({"n_bins": 1}, "n_bins"),
        ({"encode": "sparse"}, "encode"),
        ({"n_bins": [3, 4]}, "one entry per input column"),
        ({"n_bins": [3, 1, 3, 3]}, "'fare/amount' must be an int >= 2"),
        ({"subsample": 0}, "subsample"),
    ],
)
def test_invalid_parameters_are_refused(params, match):
    with pytest.raises(InvalidParameterError, match=match):
        KBinsDiscretizer(**params).fit(TRAIN)


def test_clear_errors_for_bad_input():
    with pytest.raises(
        ColumnNotFoundError, match=r"'nope' not found; available columns: 'trip distance'"
    ):
        KBinsDiscretizer(input_cols=["nope"]).fit(TRAIN)
    with pytest.raises(ColumnTypeError, match="'s' has type string"):
        KBinsDiscretizer().fit(pd.DataFrame({"s": ["a", "b"]}))
    with pytest.raises(NotFittedError, match="not fitted"):
        KBinsDiscretizer().transform(TRAIN)
    with pytest.raises(NeveInputError, match="'x' contains infinity"):
        KBinsDiscretizer().fit(pd.DataFrame({"x": [1.0, np.inf, 2.0]}))
    with pytest.raises(NeveInputError, match="'x' has no non-missing values"):
        KBinsDiscretizer().fit(pd.DataFrame({"x": [np.nan, np.nan]}))
    fitted = KBinsDiscretizer(3).fit(TRAIN)
    with pytest.raises(ColumnNotFoundError, match="'ratio' not found"):
        fitted.transform(TEST.drop(columns="ratio"))


_values = st.one_of(
    st.sampled_from([0.0, 1.0, -1.5, 2.25, 1e-9, 3.0]),  # ties and near-duplicates
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    frame=hpd.data_frames(
        [hpd.column("a b", elements=_values), hpd.column("c/d", elements=_values)],
        index=hpd.range_indexes(min_size=1, max_size=25),
    ),
    n_bins=st.integers(2, 6),
    config=st.sampled_from(CONFIGS),
    encode=st.sampled_from(["ordinal", "onehot-dense"]),
)
def test_hypothesis_frames_match_sklearn(frame, n_bins, config, encode):
    strategy, method = config
    params = {
        "n_bins": n_bins,
        "encode": encode,
        "strategy": strategy,
        "quantile_method": method,
        "subsample": None,
    }
    est = KBinsDiscretizer(**params)
    try:
        sk_est, expected = _sklearn(frame, frame, **params)
    except IndexError:  # every bin narrower than 1e-8: scikit-learn's one-hot encoder fails
        with pytest.raises(NeveInputError, match="narrower than 1e-8"), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            est.fit(frame)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        out = est.fit(frame).transform(frame)
    _assert_edges(est, sk_est, ["a b", "c/d"])
    assert list(out.columns) == list(sk_est.get_feature_names_out())
    np.testing.assert_array_equal(out.to_numpy(dtype=float), expected)
