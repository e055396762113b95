"""Splitting a table in SQL, so evaluation never leaves the engine: train_test_split and
KFold, both by one portable hash of a row's key, the same rows on every engine."""

from __future__ import annotations

import difflib
import numbers
from collections.abc import Iterator, Sequence
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from neve._table import as_table
from neve.engine import _queries, driver_for_backend
from neve.errors import ColumnNotFoundError, InvalidParameterError

__all__ = ["FOLD", "KFold", "check_cv", "train_test_split"]

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


def _key_columns(table: ir.Table, key: str | Sequence[str] | None, owner: str = "train_test_split") -> list[str]:
    if key is None:
        return list(table.columns)
    columns = [key] if isinstance(key, str) else list(key)
    if not columns or not all(isinstance(c, str) for c in columns):
        raise InvalidParameterError(
            f"{owner}: key must be a column name or a non-empty list of them, got {key!r}"
        )
    missing = [c for c in columns if c not in table.columns]
    if missing:
        hints = {c: difflib.get_close_matches(c, table.columns, n=1) for c in missing}
        hint = "; ".join(f"did you mean {h[0]!r} for {c!r}?" for c, h in hints.items() if h)
        raise ColumnNotFoundError(
            f"{owner}: key column{'s' if len(missing) > 1 else ''} "
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


#: Default name of the column :meth:`KFold.assign` adds.
FOLD = "FOLD"
# Folds hash a salted text, so that a KFold and a train_test_split with the same seed are
# independent draws (unsalted, the test side of a 20% split would be exactly fold 0 of 5,
# and cross-validating its training side would meet an empty fold).
_SALT = "kfold"


class KFold:
    """K-fold cross-validation, with each row's fold decided in SQL.

    A row's fold is ``floor(n_splits · h / 2³²)`` for ``h`` a 32-bit hash (the first 8 hex
    digits of MD5) of ``random_state`` and the row's ``key`` columns (all columns when
    ``key`` is None), computed identically on every engine, so DuckDB, PostgreSQL, Spark
    and Snowflake put the same row in the same fold, whatever the physical row order.
    ``split(table)`` yields ``(train, test)`` lazy tables as scikit-learn's ``split`` yields
    index arrays; :meth:`fold_of` and :meth:`assign` expose the assignment as a column, so
    another tool (a ``PredefinedSplit``) can reproduce the folds.

    Deliberate differences from scikit-learn's ``KFold``:

    - a table has no row order, so folds are always a hash draw: fold sizes are *about*
      ``n_rows / n_splits`` (each row is an independent draw), and ``shuffle=False`` means the
      fixed seed 0 (``random_state`` must then be None, as scikit-learn requires);
    - ``random_state=None`` is seed 0, not a fresh draw, so a re-run (an Airflow retry)
      gets the same folds;
    - rows equal in their ``key`` columns share a fold (give ``key`` an id column, or a group
      such as a customer id to keep its rows together);
    - the hash is salted apart from :func:`train_test_split`'s, so cross-validating the
      training side of a split with the same seed still finds every fold populated.
    """

    def __init__(
        self,
        n_splits: int = 5,
        *,
        shuffle: bool = True,
        random_state: int | None = None,
        key: str | Sequence[str] | None = None,
    ) -> None:
        self.n_splits = n_splits
        self.shuffle = shuffle
        self.random_state = random_state
        self.key = key

    def __repr__(self) -> str:
        return (f"KFold(n_splits={self.n_splits}, shuffle={self.shuffle}, "
                f"random_state={self.random_state!r}, key={self.key!r})")

    def _validate(self) -> None:
        n = self.n_splits
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 2:
            raise InvalidParameterError(
                f"KFold: n_splits must be an integer of at least 2, got {n!r}"
            )
        if not isinstance(self.shuffle, bool):
            raise InvalidParameterError(f"KFold: shuffle must be True or False, got {self.shuffle!r}")
        if not self.shuffle and self.random_state is not None:
            raise InvalidParameterError(
                "KFold: setting random_state has no effect since shuffle is False; "
                "set shuffle=True or leave random_state=None"
            )
        _seed(self.random_state)

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        """The number of folds (scikit-learn's signature; the arguments are ignored)."""
        self._validate()
        return int(self.n_splits)

    def fold_of(self, table: ir.Table) -> ir.IntegerValue:
        """Each row's fold, ``0 .. n_splits - 1``, as an int64 expression over ``table``."""
        self._validate()
        columns = _key_columns(table, self.key, type(self).__name__)
        seed = _seed(self.random_state) if self.shuffle else 0
        driver = driver_for_backend(_queries.backend_of(table))
        text = ibis.literal(f"{_SALT}{seed}").concat(
            *(ibis.literal(_SEPARATOR).concat(_canonical_text(table[c])) for c in columns)
        )
        bucket = driver.hash32(text)
        # fold = floor(h·n / 2³²), in double precision where it is exact on every engine
        # (h·n < 2⁵³, and dividing by a power of two is exact), so h < ceil(k·2³²/n) ⟺ fold < k.
        # One evaluation of the hash per row: a CASE over the boundaries repeated it in each
        # branch (up to n - 1 MD5s per row).
        n = int(self.n_splits)
        scaled = bucket.cast("float64") * ibis.literal(float(n), "float64") / ibis.literal(float(_BUCKETS), "float64")
        return scaled.floor().cast("int64")

    def assign(self, table: Any, name: str = FOLD) -> Any:
        """``table`` with a ``name`` column holding each row's fold (lazy for Ibis input;
        pandas and pyarrow come back as themselves)."""
        data, convert = as_table(table)
        if name in data.columns:
            raise InvalidParameterError(
                f"KFold.assign: the table already has a column {name!r}; pass name=... for the fold column"
            )
        return convert(data.mutate(**{name: self.fold_of(data)}))

    def split(self, X: Any, y: Any = None, groups: Any = None) -> Iterator[tuple[ir.Table, ir.Table]]:
        """``(train, test)`` lazy tables for each fold in turn (no query runs)."""
        table, _ = as_table(X)
        fold = self.fold_of(table)
        for k in range(self.get_n_splits()):
            yield table.filter(fold != k), table.filter(fold == k)


def check_cv(cv: Any, owner: str) -> KFold:
    """``cv`` as a :class:`KFold`: an integer is ``KFold(cv)`` over every column."""
    if cv is None:
        cv = 5
    if isinstance(cv, numbers.Integral) and not isinstance(cv, bool):
        cv = KFold(n_splits=int(cv))
    if not isinstance(cv, KFold):
        raise InvalidParameterError(
            f"{owner}: cv must be an integer or a neve.model_selection.KFold, got {type(cv).__name__} "
            f"(scikit-learn's splitters yield row positions, which a table in the engine does not have)"
        )
    cv.get_n_splits()
    return cv
