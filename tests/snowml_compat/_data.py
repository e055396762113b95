"""The fixtures of Snowflake's preprocessing tests (snowflake-ml-python,
tests/integ/snowflake/ml/modeling/framework/utils.py): the same rows and column names,
so the ported cases check the values SnowML's suite checks."""

from __future__ import annotations

from typing import Any

import ibis
import numpy as np
import pandas as pd

import neve

SCHEMA = ["ID", "STR1", "STR2", "FLOAT1", "FLOAT2"]
SCHEMA_BOOLEAN = ["ID", "STR1", "STR2", "BOOL1", "BOOL2"]
CATEGORICAL_COLS = ["STR1", "STR2"]
NUMERIC_COLS = ["FLOAT1", "FLOAT2"]
OUTPUT_COLS = ["OUTPUT1", "OUTPUT2"]
ID_COL = "ID"

DATA = [
    ["1", "c", "g1ehQlL80t", -1.0, 0.0],
    ["2", "a", "zOyDvcyZ2s", 8.3, 124.6],
    ["3", "b", "zOyDvcyZ2s", 2.0, 2253463.5342],
    ["4", "A", "TuDOcLxToB", 3.5, -1350.6407],
    ["5", "d", "g1ehQlL80t", 2.5, -1.0],
    ["6", "b", "g1ehQlL80t", 4.0, 457946.23462],
    ["7", "b", "g1ehQlL80t", -10.0, -12.564],
]

DATA_NONE_NAN: list[list[Any]] = [
    ["1", "a", "g1ehQlL80t", -1.0, 0.0],
    ["2", "a", "zOyDvcyZ2s", None, np.nan],
    ["3", "b", None, 2.0, 2253463.5342],
    ["4", "A", "TuDOcLxToB", None, -1350.6407],
    ["5", None, "g1ehQlL80t", 2.5, -1.0],
    ["6", None, "g1ehQlL80t", 4.0, None],
    ["7", "b", "TuDOcLxToB", -10.0, -12.564],
]

DATA_ALL_NONE = [
    ["1", None, None, None, 0],
    ["2", None, None, None, 455],
    ["3", None, None, None, 2],
    ["4", None, None, None, -13],
    ["5", None, None, None, -1],
    ["6", None, None, None, 0],
    ["7", None, None, None, -13],
]

DATA_BOOLEAN: list[list[Any]] = [
    ["1", "c", "g1ehQlL80t", True, True],
    ["2", "a", "zOyDvcyZ2s", None, False],
    ["3", "b", "zOyDvcyZ2s", False, None],
    ["4", "A", "TuDOcLxToB", True, False],
    ["5", "d", "g1ehQlL80t", False, True],
    ["6", "b", "g1ehQlL80t", True, False],
    ["7", "b", "g1ehQlL80t", True, True],
]

UNKNOWN_CATEGORICAL_VALUES_LIST = [
    ["z", "a", "b"],
    ["zOyDvcyZ2s", "g1ehQlL80t", "g1ehQlL80t"],
]


def frame(data: list[list[Any]] = DATA, schema: list[str] = SCHEMA) -> pd.DataFrame:
    """The pandas side of SnowML's ``get_df``; ``ID`` is a string there too."""
    return pd.DataFrame(data, columns=schema)


def table(session: neve.Session, df: pd.DataFrame, name: str = "T") -> ibis.Table:
    """``df`` as a table in ``session``'s engine (the Snowpark side of SnowML's ``get_df``)."""
    from neve.engine.snowflake import SnowflakeDriver

    if isinstance(session.driver, SnowflakeDriver):  # the emulator cannot run Ibis's upload
        from tests.engine._fakesnow import load

        return load(session, name, df)
    return session.create_table(name, df, overwrite=True)


def fetch(result: ibis.Table, cols: list[str] | None = None) -> pd.DataFrame:
    """Run a lazy result and order its rows by ID, as SnowML's tests ``sort(id_col)``."""
    out = result.to_pandas()
    out = out.sort_values(ID_COL, key=lambda s: s.astype(int)).reset_index(drop=True)
    return out if cols is None else out[cols]


def one_hot_names(session: neve.Session, names: list[str]) -> list[str]:
    """The one-hot output ``names`` (scikit-learn's) as neve names them on ``session``'s
    engine: made unique ignoring case where the engine ignores case in names (DuckDB;
    ``OUTPUT1_a`` -> ``OUTPUT1_a_2`` beside ``OUTPUT1_A``), as given elsewhere."""
    from neve.preprocessing._categories import unique_ignoring_case

    return unique_ignoring_case(names) if session.driver.case_insensitive_names else list(names)


def binds_names_without_case(session: Any) -> bool:
    """Whether ``session``'s engine reads ``"X"`` from a subquery holding both ``x`` and ``X``
    as the wrong one (DuckDB does, and so the emulator, DuckDB underneath). One-hot columns
    whose categories differ only in case (SnowML's ``OUTPUT1_A``/``OUTPUT1_a``) then collide
    once a later pipeline step selects them: a gap documented in docs/snowml.md."""
    import sqlglot

    probe = 'SELECT "X" AS v FROM (SELECT 1 AS "x", 2 AS "X") AS t'
    sql = sqlglot.transpile(probe, read="postgres", write=session.engine.dialect)[0]
    try:
        result = session.engine.raw_sql(sql)  # a DB-API cursor, or a DataFrame on Spark
        value = (result.collect() if hasattr(result, "collect") else result.fetchall())[0][0]
    except Exception:  # noqa: BLE001 - "ambiguous column": the engine cannot tell them apart
        return True
    return value != 2
