"""train_test_split in SQL: deterministic, the same on every engine, disjoint and complete."""

from __future__ import annotations

import datetime as dt
import hashlib

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import neve
from neve.errors import ColumnNotFoundError, InvalidParameterError, NeveInputError
from neve.model_selection import train_test_split


def _frame(n: int = 4000) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    return pd.DataFrame(
        {
            "ID": np.arange(n, dtype="int64"),
            "ZONE": rng.choice(["a", "b", "é", "d"], n),
            "DIST": np.where(rng.random(n) < 0.05, np.nan, rng.exponential(3.0, n).round(3)),
            "FLAG": rng.random(n) < 0.5,
            "WHEN": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 10**9, n), unit="ms"),
            "DAY": [dt.date(2024, 1, 1 + i % 28) for i in range(n)],
        }
    )


def _ids(session: neve.Session, table) -> set[int]:
    return set(session.execute(table.select("ID"))["ID"].tolist())


def test_split_is_disjoint_complete_and_close_to_the_requested_size(session: neve.Session) -> None:
    table = session.create_table("T", _frame())
    train, test = train_test_split(table, test_size=0.2, random_state=3)
    train_ids, test_ids = _ids(session, train), _ids(session, test)
    assert not train_ids & test_ids
    assert train_ids | test_ids == set(range(4000))
    assert abs(len(test_ids) / 4000 - 0.2) < 0.03


def test_default_test_size_is_a_quarter(session: neve.Session) -> None:
    table = session.create_table("T", _frame())
    _, test = train_test_split(table, key="ID")
    assert abs(len(_ids(session, test)) / 4000 - 0.25) < 0.03


def test_a_row_lands_on_the_side_its_md5_says_on_every_engine(session: neve.Session) -> None:
    # The reference computed by Python's hashlib: the split is defined by the data, not the engine.
    table = session.create_table("T", _frame())
    _, test = train_test_split(table, test_size=0.3, random_state=42, key="ID")
    threshold = round(0.3 * 2**32)
    expected = {
        i for i in range(4000) if int(hashlib.md5(f"42|{i}".encode()).hexdigest()[:8], 16) < threshold
    }
    assert _ids(session, test) == expected


def test_all_column_split_matches_duckdb_on_every_engine(session: neve.Session) -> None:
    # Floats, NULLs, non-ASCII text, booleans, timestamps and dates hash as the same text everywhere.
    frame = _frame()
    reference = neve.connect("duckdb://")
    _, expected = train_test_split(reference.create_table("T", frame), test_size=0.4, random_state=1)
    _, test = train_test_split(session.create_table("T", frame), test_size=0.4, random_state=1)
    assert _ids(session, test) == _ids(reference, expected)


def test_split_is_deterministic_and_independent_of_row_order(session: neve.Session) -> None:
    frame = _frame()
    _, first = train_test_split(session.create_table("A", frame), random_state=5)
    _, again = train_test_split(session.create_table("B", frame.sample(frac=1.0, random_state=0)), random_state=5)
    _, other_seed = train_test_split(session.create_table("C", frame), random_state=6)
    assert _ids(session, first) == _ids(session, again)
    assert _ids(session, first) != _ids(session, other_seed)


def test_rows_sharing_a_key_share_a_side(session: neve.Session) -> None:
    table = session.create_table("T", _frame())
    train, test = train_test_split(table, test_size=0.5, key=["ZONE"])
    train_zones = set(session.execute(train.select("ZONE"))["ZONE"])
    test_zones = set(session.execute(test.select("ZONE"))["ZONE"])
    assert not train_zones & test_zones
    assert train_zones | test_zones == {"a", "b", "é", "d"}


def test_train_size_leaves_rows_out_and_row_counts_are_fractions_of_the_table(session: neve.Session) -> None:
    table = session.create_table("T", _frame())
    train, test = train_test_split(table, test_size=800, train_size=0.5, key="ID")
    train_ids, test_ids = _ids(session, train), _ids(session, test)
    assert not train_ids & test_ids
    assert abs(len(test_ids) - 800) < 120
    assert abs(len(train_ids) - 2000) < 120


def test_pandas_and_arrow_in_same_type_out_split_as_in_the_engine() -> None:
    frame = _frame(500).set_index(pd.RangeIndex(1000, 1500))
    train, test = train_test_split(frame, test_size=0.2, key="ID")
    assert isinstance(train, pd.DataFrame) and isinstance(test, pd.DataFrame)
    assert sorted([*train.index, *test.index]) == list(range(1000, 1500))
    assert (train.index - 1000 == train["ID"]).all()
    session = neve.connect("duckdb://")
    _, in_sql = train_test_split(session.create_table("T", frame), test_size=0.2, key="ID")
    assert set(test["ID"]) == _ids(session, in_sql)
    arrow_train, arrow_test = train_test_split(pa.Table.from_pandas(frame), test_size=0.2, key="ID")
    assert isinstance(arrow_test, pa.Table)
    assert arrow_test.column("ID").to_pylist() == test["ID"].tolist()
    assert arrow_train.num_rows == len(train)


def test_missing_key_column_is_named() -> None:
    with pytest.raises(ColumnNotFoundError, match=r"'TRIP_IDD' not found \(did you mean 'TRIP_ID'"):
        train_test_split(pd.DataFrame({"TRIP_ID": [1, 2]}), key=["TRIP_IDD"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"test_size": 1.5}, "test_size=1.5 must be a fraction strictly between 0 and 1"),
        ({"test_size": 0.0}, "test_size=0.0 must be a fraction"),
        ({"train_size": -3}, "train_size=-3 must be a positive row count"),
        ({"test_size": "half"}, "test_size must be a fraction in"),
        ({"test_size": 0.6, "train_size": 0.6}, "add up to more than the whole table"),
        ({"test_size": 10}, "test_size=10 rows, but the table has only 4"),
        ({"random_state": np.random.RandomState(0)}, "random_state must be an integer or None"),
        ({"key": []}, "key must be a column name or a non-empty list"),
    ],
)
def test_bad_parameters_are_named(kwargs: dict, message: str) -> None:
    with pytest.raises(InvalidParameterError, match=message):
        train_test_split(pd.DataFrame({"X": [1, 2, 3, 4]}), **kwargs)


def test_not_a_table_is_refused() -> None:
    with pytest.raises(NeveInputError, match="expected an ibis Table"):
        train_test_split([1, 2, 3])
