"""Baseline and drift errors on empty tables and changed column types: neve errors naming the
table and column, on every engine."""

from __future__ import annotations

import pandas as pd
import pytest

from neve.errors import ColumnTypeError, EmptyInputError
from neve.monitoring import baseline, drift

TRAIN = pd.DataFrame({"DIST": [1.0, 2.5, 4.0, 8.0] * 10, "ZONE": ["a", "b", "c", "a"] * 10})


@pytest.mark.parametrize("columns", [None, ["DIST"], ["ZONE"]], ids=["both", "numeric", "categorical"])
def test_baseline_of_an_empty_table_names_it(session, columns):
    empty = session.create_table("EMPTY_TRIPS", TRAIN.head(0))
    with pytest.raises(EmptyInputError, match="table 'EMPTY_TRIPS': it has no rows") as info:
        baseline(empty, columns)
    assert isinstance(info.value, ValueError)


def test_drift_on_an_empty_table_names_it(session):
    base = baseline(session.create_table("TRIPS", TRAIN))
    with pytest.raises(EmptyInputError, match="table 'EMPTY_TRIPS': it has no rows"):
        drift(session.create_table("EMPTY_TRIPS", TRAIN.head(0)), base)


def test_a_numeric_column_now_text_is_named(session):
    base = baseline(session.create_table("TRIPS", TRAIN))
    now = session.create_table("TRIPS_NOW", TRAIN.assign(DIST=TRAIN.DIST.astype(str).str.replace("8.0", "far")))
    with pytest.raises(ColumnTypeError, match="table 'TRIPS_NOW': column 'DIST' was numeric at training and is now"):
        drift(now, base)
    assert drift(now, base, columns=["ZONE"]).ok  # the other columns can still be checked
