"""capture_queries: the SQL neve ran and the bytes that left the engine."""

from __future__ import annotations

import numpy as np
import pandas as pd

import neve
from neve.linear_model import LinearRegression


def _frame(copies: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    base = pd.DataFrame({"X": rng.normal(size=50), "Y": rng.normal(size=50)})
    return pd.concat([base] * copies, ignore_index=True)


def test_bytes_fetched_count_results_not_rows_scanned(session):
    logs = []
    for copies in (1, 20):
        table = session.create_table(f"T{copies}", _frame(copies), overwrite=True)
        with neve.capture_queries() as log:
            LinearRegression(label_cols="Y").fit(table)
        logs.append(log)
    small, large = logs
    assert len(small) == len(large) >= 1
    # A fit fetches its statistics (a handful of numbers), whatever the row count.
    assert 0 < small.bytes_fetched == large.bytes_fetched < 10_000


def test_bytes_fetched_count_an_extract(session):
    table = session.create_table("T", _frame(20), overwrite=True)
    with neve.capture_queries() as log:
        frame = neve.engine.execute(table.select("X"))
    assert len(frame) == 1000
    assert log.bytes_fetched >= 1000 * 8
    with neve.capture_queries() as log:
        rows = sum(b.num_rows for b in neve.engine._queries.to_pyarrow_batches(table))
    assert rows == 1000 and log.bytes_fetched >= 1000 * 16
