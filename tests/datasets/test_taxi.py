"""neve.datasets.taxi: the real sample's marginals, deterministic per seed, the DAG's raw shape."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

import neve
from neve.datasets import TAXI_COLUMNS, taxi, taxi_marginals
from neve.errors import InvalidParameterError, NeveError

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "nyc_taxi"
ROWS = 200_000


@pytest.fixture(scope="module")
def real() -> pd.DataFrame:
    files = [str(SAMPLE / f"yellow_tripdata_sample_{m}.csv") for m in ("2019-01", "2019-02")]
    return duckdb.execute(
        "SELECT *, epoch(dropoff_datetime) - epoch(pickup_datetime) AS duration, "
        "hour(pickup_datetime) AS hour FROM read_csv(?, header = true, strict_mode = false, "
        "union_by_name = true)",
        [files],
    ).df()


@pytest.fixture(scope="module")
def synthetic() -> pd.DataFrame:
    con = duckdb.connect()
    taxi(con, ROWS, seed=7, table="T")
    return con.execute(
        "SELECT *, epoch(dropoff_datetime) - epoch(pickup_datetime) AS duration, "
        "hour(pickup_datetime) AS hour FROM T"
    ).df()


def ks(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov statistic."""
    grid = np.union1d(a, b)
    fa = np.searchsorted(np.sort(a), grid, side="right") / len(a)
    fb = np.searchsorted(np.sort(b), grid, side="right") / len(b)
    return float(np.abs(fa - fb).max())


def psi(expected: pd.Series, actual: pd.Series) -> float:
    """Population stability index over the union of categories (1e-4 floor on shares)."""
    e = expected.value_counts(normalize=True)
    a = actual.value_counts(normalize=True)
    idx = e.index.union(a.index)
    e, a = (
        e.reindex(idx, fill_value=0).clip(lower=1e-4),
        a.reindex(idx, fill_value=0).clip(lower=1e-4),
    )
    return float(((a - e) * np.log(a / e)).sum())


def test_columns_are_the_ones_the_csv_load_gives_the_dag(synthetic, tmp_path):
    with neve.connect(f"duckdb:///{tmp_path / 'x.duckdb'}") as session:
        loaded = session.load_files([SAMPLE / "yellow_tripdata_sample_2019-01.csv"], "RAW")
        generated = taxi(session, 1_000, seed=1, table="SYN")
        raw_types = {c: str(t) for c, t in loaded.schema().items() if c in TAXI_COLUMNS}
        assert {c: str(t) for c, t in generated.schema().items()} == raw_types
        assert list(generated.columns) == list(TAXI_COLUMNS)


@pytest.mark.parametrize(("column", "tolerance"), [("trip_distance", 0.02), ("duration", 0.02)])
def test_continuous_marginals_match_the_real_sample(real, synthetic, column, tolerance):
    stat = ks(real[column].dropna().to_numpy(float), synthetic[column].to_numpy(float))
    assert stat < tolerance, f"KS {column} = {stat:.4f}"


@pytest.mark.parametrize("column", ["pickup_location_id", "dropoff_location_id", "hour"])
def test_categorical_marginals_match_the_real_sample(real, synthetic, column):
    value = psi(real[column].dropna(), synthetic[column])
    assert value < 0.02, f"PSI {column} = {value:.4f}"


def test_distance_and_duration_keep_their_rank_correlation(real, synthetic):
    target = taxi_marginals()["spearman_distance_duration"]
    rho = synthetic[["trip_distance", "duration"]].corr(method="spearman").iloc[0, 1]
    assert abs(rho - target) < 0.03
    assert (
        abs(real[["trip_distance", "duration"]].corr(method="spearman").iloc[0, 1] - target) < 1e-3
    )


def test_dirty_rows_occur_at_the_sample_rates(real, synthetic):
    # The DAG's cleaning rules need something to remove: zero distances, clock errors.
    for frame in (real, synthetic):
        frame["dirty"] = (
            (frame.trip_distance <= 0) | (frame.duration <= 0) | (frame.duration > 4 * 3600)
        )
    assert synthetic.dirty.mean() == pytest.approx(real.dirty.mean(), abs=0.003)
    assert synthetic.dirty.mean() > 0


def test_pickups_fall_in_the_sample_months(synthetic):
    assert synthetic.pickup_datetime.min() >= pd.Timestamp("2019-01-01")
    assert synthetic.pickup_datetime.max() < pd.Timestamp("2019-03-01")
    assert synthetic.pickup_datetime.dt.month.value_counts().min() > ROWS * 0.4


def test_same_seed_same_rows_other_seed_other_rows():
    con = duckdb.connect()
    con.execute("SET threads = 2")
    frames = {}
    for table, seed in (("A", 3), ("B", 3), ("C", 4)):
        taxi(con, 20_000, seed=seed, table=table)
        frames[table] = con.execute(f"SELECT * FROM {table} ORDER BY ALL").df()
    pd.testing.assert_frame_equal(frames["A"], frames["B"])
    assert not frames["A"].equals(frames["C"])
    # A prefix is stable: fewer rows for the same seed are a subset of more rows.
    taxi(con, 5_000, seed=3, table="D")
    assert con.execute(
        "SELECT count(*) FROM (SELECT * FROM D EXCEPT ALL SELECT * FROM A)"
    ).fetchone() == (0,)


@pytest.mark.parametrize("rows", [0, -5, 2.5, True])
def test_bad_row_count_is_rejected_naming_it(rows):
    with pytest.raises(InvalidParameterError, match="rows must be a positive integer"):
        taxi(duckdb.connect(), rows)


def test_non_duckdb_target_is_rejected():
    with pytest.raises(NeveError, match="duckdb connection"):
        taxi(object(), 10)
