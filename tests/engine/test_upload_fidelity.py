"""Uploading keeps the data as given on every engine: a float column holding both NaN (a
value) and NULL (missing) stores each as itself, from a pyarrow Table and from a pandas
DataFrame whose Arrow-backed column can hold both."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

VALUES = [1.5, np.nan, None, -2.0, np.nan, None, 7.25]


def arrow_table() -> pa.Table:
    return pa.table({"X": pa.array(VALUES, type=pa.float64()), "I": pa.array(range(len(VALUES)), pa.int64())})


def arrow_backed_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "X": pd.Series(pa.array(VALUES, type=pa.float64()), dtype=pd.ArrowDtype(pa.float64())),
        "I": np.arange(len(VALUES), dtype="int64"),
    })


@pytest.mark.parametrize("make", [arrow_table, arrow_backed_frame], ids=["pyarrow", "pandas-arrow"])
def test_nan_and_null_in_one_column_survive_upload(session, make):
    t = session.create_table("FIDELITY", make())
    # COUNT(col) skips NULLs and counts NaN on every engine (Ibis's isnull() on Spark also
    # matches NaN, so it cannot tell the two apart).
    counts = session.execute(t.aggregate(n_rows=t.count(), n_values=t.X.count(), n_nans=t.X.isnan().sum()))
    assert counts.iloc[0].astype(int).tolist() == [7, 5, 2]
    back = t.order_by("I").to_pyarrow().column("X").to_pylist()
    assert [None if v is None else ("nan" if np.isnan(v) else v) for v in back] == [
        None if v is None else ("nan" if np.isnan(v) else v) for v in VALUES
    ]
