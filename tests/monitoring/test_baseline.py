"""Training baseline statistics, checked against numpy/pandas on the same data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import neve
from neve.errors import ColumnNotFoundError
from neve.monitoring import baseline


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    df = pd.DataFrame(
        {
            "X": rng.normal(5, 2, 500),
            "K": rng.integers(0, 4, 500).astype(float),  # heavy ties: bins are not 10% each
            "CITY": rng.choice(["ny", "sf", "la", "bo"], 500, p=[0.5, 0.3, 0.15, 0.05]),
        }
    )
    df.loc[[3, 10, 99], "X"] = np.nan
    df.loc[[5, 6], "CITY"] = None
    return df


def test_numeric_matches_numpy(frame, session):
    table = session.create_table("T", frame)
    with neve.capture_queries() as log:
        result = baseline(table)
    assert len(log) == 2  # one query for all numeric columns, one for all categorical
    x = frame.X.dropna()
    stats = result["columns"]["X"]
    assert result["row_count"] == 500
    assert stats["count"] == 497 and stats["null_fraction"] == pytest.approx(3 / 500)
    assert stats["mean"] == pytest.approx(x.mean(), rel=1e-12)
    assert stats["std"] == pytest.approx(x.std(ddof=1), rel=1e-9)
    assert (stats["min"], stats["max"]) == (x.min(), x.max())
    edges = np.quantile(x, np.linspace(0, 1, 11))
    np.testing.assert_allclose(stats["edges"], edges, rtol=1e-12)


@pytest.mark.parametrize("column", ["X", "K"])
def test_bin_fractions_count_rows_between_edges(frame, column):
    stats = baseline(frame)["columns"][column]
    values = frame[column].dropna().to_numpy()
    edges = np.asarray(stats["edges"])
    cum = [(values <= e).mean() for e in edges[1:-1]]
    expected = np.diff([0.0, *cum, 1.0])
    np.testing.assert_allclose(stats["fractions"], expected, rtol=1e-12)
    assert sum(stats["fractions"]) == pytest.approx(1.0)


def test_categorical_top_k(frame):
    stats = baseline(frame, top_k=2)["columns"]["CITY"]
    counts = frame.CITY.value_counts()
    assert stats["null_fraction"] == pytest.approx(2 / 500)
    assert [t["value"] for t in stats["top"]] == list(counts.index[:2])
    assert [t["fraction"] for t in stats["top"]] == pytest.approx(list(counts.iloc[:2] / 500))
    assert stats["other_fraction"] == pytest.approx(counts.iloc[2:].sum() / 500)


def test_unknown_column(frame):
    with pytest.raises(ColumnNotFoundError, match="NOPE"):
        baseline(frame, ["X", "NOPE"])


def test_high_cardinality_columns_take_the_sorted_path_with_the_same_profile(frame, session):
    # Columns with more distinct values than max_distinct are profiled in the engine (a third
    # query) instead of from value counts; both paths give the same numbers.
    table = session.create_table("T", frame)
    counted = baseline(table)
    with neve.capture_queries() as log:
        sorted_path = baseline(table, max_distinct=3)
    assert len(log) == 3
    for column in ("X", "K"):
        a, b = counted["columns"][column], sorted_path["columns"][column]
        assert a.keys() == b.keys()
        for key in ("count", "null_fraction", "mean", "std", "min", "max"):
            assert a[key] == pytest.approx(b[key], rel=1e-9)
        np.testing.assert_allclose(a["edges"], b["edges"], rtol=1e-12)
        np.testing.assert_allclose(a["fractions"], b["fractions"], rtol=1e-12)
