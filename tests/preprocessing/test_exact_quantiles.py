"""Quantiles are exact on every engine: the engine's exact quantile, never an approximation.

RobustScaler and SimpleImputer(strategy="median") compile to the engine's exact
continuous percentile (``quantile_cont`` on DuckDB, ``PERCENTILE_CONT ... WITHIN
GROUP`` on PostgreSQL), numpy's "linear" method. KBinsDiscretizer needs numpy's
``averaged_inverted_cdf`` and ``inverted_cdf`` too, which no SQL percentile
computes, so it fetches the exact order statistics around each level (a
``ROW_NUMBER`` window) and interpolates as numpy does: its edges match bit for bit.

The table holds real NaN values as well as NULLs (both missing, as in
scikit-learn), many ties, and an odd and an even number of valid values.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn import impute as ski
from sklearn import preprocessing as skp

import neve
from neve.preprocessing import KBinsDiscretizer, RobustScaler, SimpleImputer

#: The exact continuous percentile per engine, and the approximate ones that must never appear.
EXACT = {
    "duckdb": r"\bquantile_cont\(",
    "postgres": r"\bpercentile_cont\(\s*[0-9.e-]+\s*\)\s+within group",
    "spark": r"\bpercentile\(",  # Spark's exact percentile; percentile_approx is refused below
}
APPROXIMATE = re.compile(r"approx|reservoir|tdigest|percentile_approx", re.IGNORECASE)
# Linear interpolation in SQL is a + (b - a) * g; numpy flips to b - (b - a) * (1 - g) for
# g >= 0.5, which can differ in the last bit. Anything beyond a few ulps would be an
# approximation.
RTOL = 4 * np.finfo(np.float64).eps


def _data(n: int = 401, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "ties": rng.integers(0, 7, n).astype(float),  # a handful of values, many ties
            "spread": rng.lognormal(0.0, 2.0, n),
            "count": rng.integers(-40, 40, n).astype("int64"),
        }
    )
    df.loc[::11, "ties"] = np.nan
    df.loc[5::13, "spread"] = np.nan
    return df


@pytest.fixture
def frame() -> pd.DataFrame:
    return _data()


@pytest.fixture
def table(session: neve.Session, frame: pd.DataFrame):
    # pyarrow without from_pandas keeps NaN as a value; then a few NULLs on top, so
    # the engine sees both kinds of missing.
    nulls = np.zeros(len(frame), dtype=bool)
    nulls[7::29] = True
    data = pa.table(
        {
            "ties": pa.array(frame["ties"].to_numpy()),
            "spread": pa.array(frame["spread"].to_numpy(), mask=nulls),
            "count": pa.array(frame["count"].to_numpy(), mask=nulls),
        }
    )
    t = session.create_table("quantile_data", data)
    # NULLs counted as rows minus COUNT(col): Ibis's isnull() on Spark also matches NaN.
    stored = session.execute(t.aggregate(nan=t.ties.isnan().sum(), null=t.count() - t.spread.count()))
    assert stored.nan.item() == frame.ties.isna().sum() and stored.null.item() == nulls.sum()
    return t


def _expected_frame(frame: pd.DataFrame) -> pd.DataFrame:
    expected = frame.astype({"count": "float64"})
    nulls = np.zeros(len(frame), dtype=bool)
    nulls[7::29] = True
    expected.loc[nulls, ["spread", "count"]] = np.nan
    return expected


def _fit_and_capture(est, table) -> list[str]:
    with neve.capture_queries() as log:
        est.fit(table)
    return list(log)


def _assert_exact_sql(queries: list[str], engine: str, n_quantiles: int) -> None:
    assert queries
    for sql in queries:
        assert not APPROXIMATE.search(sql), sql
    # Every query that computes quantiles computes each of them exactly.
    with_quantiles = [sql for sql in queries if re.search(EXACT[engine], sql, re.IGNORECASE)]
    assert with_quantiles, queries
    assert len(re.findall(EXACT[engine], with_quantiles[-1], re.IGNORECASE)) == n_quantiles


@pytest.mark.parametrize("quantile_range", [(25.0, 75.0), (10.0, 90.0), (0.0, 100.0)])
def test_robust_scaler(table, frame, engine, quantile_range) -> None:
    cols = ["ties", "spread", "count"]
    est = RobustScaler(quantile_range=quantile_range, input_cols=cols)
    queries = _fit_and_capture(est, table)
    _assert_exact_sql(queries, engine, n_quantiles=3 * len(cols))
    oracle = skp.RobustScaler(quantile_range=quantile_range).fit(_expected_frame(frame)[cols])
    assert_allclose([est.center_[c] for c in cols], oracle.center_, rtol=RTOL, atol=0)
    assert_allclose([est.scale_[c] for c in cols], oracle.scale_, rtol=RTOL, atol=0)


def test_simple_imputer_median(table, frame, engine) -> None:
    cols = ["ties", "spread", "count"]
    est = SimpleImputer(strategy="median", input_cols=cols)
    queries = _fit_and_capture(est, table)
    _assert_exact_sql(queries, engine, n_quantiles=len(cols))
    assert len(queries) == 1
    oracle = ski.SimpleImputer(strategy="median").fit(_expected_frame(frame)[cols])
    assert_allclose([est.statistics_[c] for c in cols], oracle.statistics_, rtol=RTOL, atol=0)


@pytest.mark.parametrize("method", ["averaged_inverted_cdf", "inverted_cdf", "linear"])
def test_kbins_quantile_edges_are_bit_exact(table, frame, engine, method) -> None:
    cols = ["ties", "spread", "count"]
    est = KBinsDiscretizer(
        n_bins=7, strategy="quantile", quantile_method=method, encode="ordinal", input_cols=cols
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # narrow bins in the tied column
        queries = _fit_and_capture(est, table)
    assert len(queries) == 1
    (sql,) = queries
    assert not APPROXIMATE.search(sql), sql
    windows = re.findall(r"row_number\(\)\s+over\s*\(\s*order by", sql, re.IGNORECASE)
    assert len(windows) == len(cols)
    expected = _expected_frame(frame)
    for col in cols:
        values = expected[[col]].dropna()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            oracle = skp.KBinsDiscretizer(
                n_bins=7,
                strategy="quantile",
                quantile_method=method,
                encode="ordinal",
                subsample=None,
            ).fit(values)
        assert_array_equal(est.bin_edges_by_col_[col], oracle.bin_edges_[0], err_msg=col)
