"""Splitting a table into train and test sets in SQL, so evaluation never leaves the engine."""

from __future__ import annotations

import difflib
import numbers
from collections.abc import Sequence
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from neve._table import as_table
from neve.engine import _queries, driver_for_backend
from neve.errors import ColumnNotFoundError, InvalidParameterError

__all__ = ["train_test_split"]

# A row's side is decided by a 32-bit hash of its canonical text: test when below the threshold.
_BUCKETS = 2**32
# Printable ASCII only: control characters do not survive every engine's SQL string literals.
_SEPARATOR = "|"
_NULL = "<NULL>"


def train_test_split(
    table: Any,
    *,
    test_size: float | None = None,
    train_size: float | None = None,
    random_state: int | None = None,
    key: str | Sequence[str] | None = None,
) -> tuple[Any, Any]:
    """Split ``table`` into ``(train, test)``, deterministically, in SQL.

    A row goes to the test side when a hash of its ``key`` columns (all columns when
    ``key`` is None) and ``random_state`` falls below ``test_size``; the hash is computed
    identically on every engine, so the same row lands on the same side on DuckDB,
    PostgreSQL or Snowflake, today and tomorrow, whatever the physical row order. Both
    results are lazy tables over ``table``; no query runs unless a size is given as a row
    count. pandas and pyarrow inputs come back as pandas (keeping the index) and pyarrow.

    Parameters follow scikit-learn's ``train_test_split``: ``test_size`` and ``train_size``
    are fractions in (0, 1) or row counts; with neither, 25% goes to test. The sides have
    *about* the requested sizes (each row is an independent draw). Deliberate differences:

    - ``random_state=None`` means seed 0, not a fresh random split: the split is a function
      of the data, so a re-run (an Airflow retry) trains on the same rows. Pass another
      integer for another split.
    - Rows equal in their ``key`` columns always share a side. Give ``key`` the columns
      that identify a row (an id), or the rows of one group that must not straddle the
      split (e.g. a customer id). Floating-point key values are compared to 9 decimals.
    """
    data, _ = as_table(table)
    columns = _key_columns(data, key)
    seed = _seed(random_state)
    test_fraction, train_fraction = _fractions(data, test_size, train_size)

    driver = driver_for_backend(_queries.backend_of(data))
    text = ibis.literal(f"{seed}").concat(
        *(ibis.literal(_SEPARATOR).concat(_canonical_text(data[c])) for c in columns)
    )
    bucket = driver.hash32(text)
    test_below = round(test_fraction * _BUCKETS)
    # Without train_size the train side is exactly the complement, so no row is lost to rounding.
    train_from = test_below if train_fraction is None else _BUCKETS - round(train_fraction * _BUCKETS)
    train_from = max(train_from, test_below)
    if not isinstance(table, ir.Table):
        # In-memory input: one pass computes every row's bucket; rows keep their pandas index.
        buckets = _queries.to_pyarrow(data.select(bucket=bucket))["bucket"].to_numpy()
        in_train, in_test = buckets >= train_from, buckets < test_below
        if isinstance(table, pa.Table):
            return table.filter(pa.array(in_train)), table.filter(pa.array(in_test))
        return table[in_train], table[in_test]
    return data.filter(bucket >= train_from), data.filter(bucket < test_below)


def _canonical_text(column: ir.Column) -> ir.StringValue:
    """``column`` as text that every engine writes the same way (engines print floats and
    timestamps differently: DuckDB ``1.0`` where PostgreSQL writes ``1``)."""
    dtype = column.type()
    if dtype.is_floating():
        text = ibis.cases(
            (column.isnan(), ibis.literal("NaN")),
            (column.isinf(), ibis.cases((column > 0, ibis.literal("inf")), else_=ibis.literal("-inf"))),
            else_=column.cast("decimal(38, 9)").cast("string"),
        )
    elif dtype.is_decimal():
        text = column.cast("decimal(38, 9)").cast("string")
    elif dtype.is_timestamp():
        text = column.strftime("%Y-%m-%d %H:%M:%S.%f")
    else:
        text = column.cast("string")
    return text.fill_null(_NULL)


def _key_columns(table: ir.Table, key: str | Sequence[str] | None) -> list[str]:
    if key is None:
        return list(table.columns)
    columns = [key] if isinstance(key, str) else list(key)
    if not columns or not all(isinstance(c, str) for c in columns):
        raise InvalidParameterError(
            f"train_test_split: key must be a column name or a non-empty list of them, got {key!r}"
        )
    missing = [c for c in columns if c not in table.columns]
    if missing:
        hints = {c: difflib.get_close_matches(c, table.columns, n=1) for c in missing}
        hint = "; ".join(f"did you mean {h[0]!r} for {c!r}?" for c, h in hints.items() if h)
        raise ColumnNotFoundError(
            f"train_test_split: key column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(map(repr, missing))} not found"
            + (f" ({hint})" if hint else "")
            + f"; available columns: {', '.join(map(repr, table.columns))}"
        )
    return columns


def _seed(random_state: Any) -> int:
    if random_state is None:
        return 0
    if isinstance(random_state, bool) or not isinstance(random_state, numbers.Integral):
        raise InvalidParameterError(
            f"train_test_split: random_state must be an integer or None, got {random_state!r} "
            f"(a split in SQL cannot draw from a {type(random_state).__name__})"
        )
    return int(random_state)


def _fractions(table: ir.Table, test_size: Any, train_size: Any) -> tuple[float, float | None]:
    """``(test, train)`` as fractions of the rows, validated as scikit-learn validates them;
    ``train`` is None when it is the rest of the table."""
    for name, value in (("test_size", test_size), ("train_size", train_size)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise InvalidParameterError(
                f"train_test_split: {name} must be a fraction in (0, 1) or a row count, got {value!r}"
            )
        if isinstance(value, numbers.Integral) and value <= 0:
            raise InvalidParameterError(f"train_test_split: {name}={value} must be a positive row count")
        if not isinstance(value, numbers.Integral) and not 0 < value < 1:
            raise InvalidParameterError(
                f"train_test_split: {name}={value} must be a fraction strictly between 0 and 1 "
                f"(or an integer row count)"
            )
    if test_size is None and train_size is None:
        test_size = 0.25
    counts = [v for v in (test_size, train_size) if isinstance(v, numbers.Integral)]
    n_rows = int(_queries.execute(table.count())) if counts else 0
    test = _as_fraction("test_size", test_size, n_rows)
    train = _as_fraction("train_size", train_size, n_rows)
    if test is None:
        test = 1.0 - train
    if train is not None and test + train > 1.0 + 1e-12:
        raise InvalidParameterError(
            f"train_test_split: test_size={test_size!r} and train_size={train_size!r} add up to more "
            f"than the whole table ({test + train:.4g} of it); lower one of them"
        )
    return test, None if train_size is None else train


def _as_fraction(name: str, value: Any, n_rows: int) -> float | None:
    if value is None or not isinstance(value, numbers.Integral):
        return value
    if value >= n_rows:
        raise InvalidParameterError(
            f"train_test_split: {name}={value} rows, but the table has only {n_rows}; "
            f"ask for fewer rows or a fraction"
        )
    return value / n_rows
