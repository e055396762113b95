"""K-fold cross-validation folds assigned in SQL: the same rows in the same fold on every engine."""

from __future__ import annotations

import numbers
from collections.abc import Iterator, Sequence
from typing import Any

import ibis
import ibis.expr.types as ir

from neve.engine import _queries, driver_for_backend
from neve.errors import InvalidParameterError
from neve.model_selection import _BUCKETS, _SEPARATOR, _canonical_text, _key_columns, _seed
from neve.preprocessing._base import as_table

__all__ = ["FOLD", "KFold"]

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
        columns = _key_columns(table, self.key)
        seed = _seed(self.random_state) if self.shuffle else 0
        driver = driver_for_backend(_queries.backend_of(table))
        text = ibis.literal(f"{_SALT}{seed}").concat(
            *(ibis.literal(_SEPARATOR).concat(_canonical_text(table[c])) for c in columns)
        )
        bucket = driver.hash32(text)
        # A CASE over the fold boundaries: exact integer comparisons on every engine (integer
        # division's rounding and types differ between dialects).
        n = int(self.n_splits)
        bounds = [-(-k * _BUCKETS // n) for k in range(1, n)]  # h < ceil(k·2³²/n) ⟺ fold < k
        return ibis.cases(*((bucket < b, ibis.literal(k, "int64")) for k, b in enumerate(bounds)),
                          else_=ibis.literal(n - 1, "int64"))

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
