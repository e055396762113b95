"""Uploading keeps the data as given on every engine and every upload path: a float column
holding both NaN (a value) and NULL (missing) stores each as itself.

The paths: ``create_table`` from a pyarrow Table and from a pandas DataFrame whose
Arrow-backed column can hold both; ``load_files`` from Parquet (native readers on DuckDB
and local Spark, pyarrow then INSERT on PostgreSQL), appended to an existing table; from
CSV, where ``NaN`` is a value and only an empty cell is missing; and Spark Connect, which
uploads from the client. A plain numpy float column has no NULL, only NaN, and pandas
calls that missing: it is stored as NULL everywhere (the pandas convention)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import neve

VALUES = [1.5, np.nan, None, -2.0, np.nan, None, 7.25]


def arrow_table(values: list[float | None] = VALUES) -> pa.Table:
    return pa.table({"X": pa.array(values, type=pa.float64()), "I": pa.array(range(len(values)), pa.int64())})


def arrow_backed_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "X": pd.Series(pa.array(VALUES, type=pa.float64()), dtype=pd.ArrowDtype(pa.float64())),
        "I": np.arange(len(VALUES), dtype="int64"),
    })


def _shown(values: list[float | None]) -> list[object]:
    return [None if v is None else ("nan" if np.isnan(v) else v) for v in values]


def assert_stored_as_given(session: neve.Session, t, expected: list[float | None] = VALUES) -> None:
    # COUNT(col) skips NULLs and counts NaN on every engine (Ibis's isnull() on Spark also
    # matches NaN, so it cannot tell the two apart).
    counts = session.execute(t.aggregate(n_rows=t.count(), n_values=t.X.count(), n_nans=t.X.isnan().sum()))
    n_nan = sum(v is not None and np.isnan(v) for v in expected)
    n_null = sum(v is None for v in expected)
    assert counts.iloc[0].astype(int).tolist() == [len(expected), len(expected) - n_null, n_nan]
    back = t.order_by("I").to_pyarrow().column("X").to_pylist()
    assert _shown(back) == _shown(expected)


@pytest.mark.parametrize("make", [arrow_table, arrow_backed_frame], ids=["pyarrow", "pandas-arrow"])
def test_nan_and_null_in_one_column_survive_create_table(session: neve.Session, make) -> None:
    assert_stored_as_given(session, session.create_table("FIDELITY", make()))


def test_nan_and_null_survive_a_parquet_load_and_an_append(session: neve.Session, tmp_path: Path) -> None:
    first, second = VALUES[:4], VALUES[4:]
    pq.write_table(arrow_table(first), tmp_path / "a.parquet")
    part = arrow_table(second).set_column(1, "I", pa.array(range(4, len(VALUES)), pa.int64()))
    pq.write_table(part, tmp_path / "b.parquet")
    session.load_files([tmp_path / "a.parquet"], "FIDELITY_PQ")
    t = session.load_files([tmp_path / "b.parquet"], "FIDELITY_PQ")  # appended
    assert_stored_as_given(session, t)


def test_csv_nan_is_a_value_and_an_empty_cell_is_missing(session: neve.Session, tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("I,X\n0,1.5\n1,NaN\n2,\n3,-2.0\n4,NaN\n5,\n6,7.25\n")
    assert_stored_as_given(session, session.load_files([path], "FIDELITY_CSV"))


def test_a_numpy_nan_is_missing_as_pandas_says(session: neve.Session) -> None:
    frame = pd.DataFrame({"X": [1.5, np.nan, -2.0], "I": [0, 1, 2]})
    assert_stored_as_given(session, session.create_table("FIDELITY_NP", frame), [1.5, None, -2.0])


def test_spark_connect_upload_keeps_nan_and_null(spark_connect_url: str, tmp_path: Path) -> None:
    # The client turns the data into Arrow batches and sends them over gRPC.
    with neve.connect(f"{spark_connect_url}/?database=fidelity") as session:
        assert_stored_as_given(session, session.create_table("FIDELITY", arrow_table(), overwrite=True))
        pq.write_table(arrow_table(), tmp_path / "a.parquet")
        assert_stored_as_given(session, session.load_files([tmp_path / "a.parquet"], "FIDELITY_PQ", overwrite=True))
