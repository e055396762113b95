"""SimpleImputer: fill statistics from one query, filling as a CASE in SQL."""

from __future__ import annotations

import math
import warnings
from numbers import Real
from typing import Any

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import numpy as np
import pandas as pd
from sklearn import impute as ski

from neve._sql_literals import typed
from neve._table import ROW_COUNT
from neve.errors import ColumnTypeError, InvalidParameterError, NeveInputError
from neve.preprocessing._base import BaseTransformer, _assemble_names
from neve.preprocessing._categories import is_missing
from neve.preprocessing._sklearn_twin import sklearn_params

__all__ = ["SimpleImputer"]

#: Key of the indicator block in ``_transform_columns``'s result. Not a column
#: name, so ``_assemble_names`` appends the block after every imputed column,
#: where scikit-learn puts its MissingIndicator output.
_INDICATORS = "\x00missingindicator"


def _is_nan_like(value: Any) -> bool:
    if value is None or value is pd.NA:
        return True
    return isinstance(value, Real) and not isinstance(value, bool) and math.isnan(value)


def _is_dropped(stat: Any) -> bool:
    return isinstance(stat, float) and math.isnan(stat)


class SimpleImputer(BaseTransformer):
    """Replace missing values with a per-column statistic, as scikit-learn's SimpleImputer.

    ``strategy`` is ``"mean"``, ``"median"`` (exact), ``"most_frequent"``
    (ties go to the smallest value, as in scikit-learn) or ``"constant"``
    (``fill_value``, default 0 for numeric and ``"missing_value"`` for string
    columns). ``missing_values=np.nan`` (the default), ``None`` or ``pd.NA``
    mean "NULL or NaN"; any other value (``-1``, ``"?"``) marks that value as
    missing. String columns work with ``most_frequent`` and ``constant``.

    ``fit`` runs one query: counts, means and medians in one aggregate, and
    for ``most_frequent`` one grouped scalar subquery per column inside it.
    ``statistics_`` maps each input column to its fill value. As in
    scikit-learn, a column with no observed value gets ``NaN`` and is dropped
    from the output (with a warning) unless ``keep_empty_features=True``, in
    which case it is filled with 0 (``fill_value`` for ``"constant"``).

    ``add_indicator=True`` appends, after all imputed columns, a BOOLEAN
    column ``missingindicator_<col>`` for each column that had missing values
    during ``fit``.

    Deliberate differences from scikit-learn:

    - Types are per column: integer columns filled with an integral value
      keep their type, other numeric columns come out as float64, and
      ``fill_value=None`` picks 0 or ``"missing_value"`` per column
      (scikit-learn picks one for the whole array, so a frame with any string
      column fills numeric columns with ``"missing_value"`` too).
    - A string ``fill_value`` for a numeric column, or a non-string one for a
      string column, is refused (a SQL column has one type).
    - With a specific ``missing_values`` (e.g. -1), NULL/NaN are neither
      counted nor filled: they stay NULL (scikit-learn raises on NaN there).
    - Infinity is rejected in numeric columns for every strategy (scikit-learn
      rejects it as well).
    - An all-missing string column kept by ``keep_empty_features`` stays NULL
      for ``most_frequent`` (scikit-learn writes the integer 0 into it).
    - Indicators are BOOLEAN; scikit-learn stacks them into X's dtype.
    - A callable ``strategy`` is refused: it cannot run in SQL.

    ``input_cols=None`` (the default) imputes every column but ``passthrough_cols``;
    ``output_cols=None`` replaces each input column in place.
    """

    _sklearn_class = ski.SimpleImputer
    _numeric_only = False
    _fitted_attrs = ("statistics_", "indicator_")

    def __init__(
        self,
        *,
        missing_values: Any = np.nan,
        strategy: str = "mean",
        fill_value: Any = None,
        copy: bool = True,
        add_indicator: bool = False,
        keep_empty_features: bool = False,
        input_cols: str | list[str] | None = None,
        output_cols: str | list[str] | None = None,
        passthrough_cols: str | list[str] | None = None,
        drop_input_cols: bool = False,
    ) -> None:
        self.missing_values = missing_values
        self.strategy = strategy
        self.fill_value = fill_value
        self.copy = copy
        self.add_indicator = add_indicator
        self.keep_empty_features = keep_empty_features
        self.input_cols = input_cols
        self.output_cols = output_cols
        self.passthrough_cols = passthrough_cols
        self.drop_input_cols = drop_input_cols

    def _validate_extra(self) -> None:
        if callable(self.strategy):
            raise InvalidParameterError(
                "SimpleImputer: a callable strategy cannot run in SQL; use 'mean', 'median', "
                "'most_frequent' or 'constant'"
            )

    # --- column typing -------------------------------------------------------

    def _kind(self, col: str, dtype: dt.DataType) -> str:
        """``"numeric"`` or ``"string"``; anything else is refused with the column named.

        A column of nothing but ``None`` (pandas object dtype; Ibis types it ``null``)
        counts as numeric, as scikit-learn reads it as all-NaN."""
        if dtype.is_numeric() or dtype.is_boolean() or dtype.is_null():
            kind = "numeric"
        elif dtype.is_string():
            kind = "string"
        else:
            raise ColumnTypeError(
                f"SimpleImputer: column {col!r} has type {dtype}; only numeric and string "
                f"columns can be imputed"
            )
        if kind == "string" and self.strategy in ("mean", "median"):
            raise ColumnTypeError(
                f"SimpleImputer: strategy={self.strategy!r} needs numeric columns, but {col!r} "
                f"has type {dtype}; use 'most_frequent' or 'constant' for strings"
            )
        mv = self.missing_values
        if not _is_nan_like(mv):
            is_number = isinstance(mv, Real) and not isinstance(mv, bool)
            if (kind == "numeric") != is_number:
                raise ColumnTypeError(
                    f"SimpleImputer: missing_values={mv!r} cannot occur in column {col!r} "
                    f"of type {dtype}"
                )
        return kind

    def _values(self, table: ir.Table, col: str) -> ir.Column:
        """The column as fit sees it: float64 with NaN as NULL for numbers, as is for strings."""
        column = table[col]
        if column.type().is_string():
            return column
        return self._numeric(table, col)

    def _missing(self, x: ir.Column) -> ir.BooleanColumn:
        """True where ``x`` (from :meth:`_values`) counts as missing; never NULL."""
        if _is_nan_like(self.missing_values):
            return x.isnull()
        return (x == self.missing_values).fill_null(False)

    # --- fit -----------------------------------------------------------------

    def _fit(self, table: ir.Table, cols: list[str]) -> None:
        schema = table.schema()
        kinds = {c: self._kind(c, schema[c]) for c in cols}
        metrics: dict[str, ir.Scalar] = {}
        subqueries: dict[str, ir.Scalar] = {}
        for i, col in enumerate(cols):
            x = self._values(table, col)
            missing = self._missing(x)
            valid = missing.ifelse(ibis.null(x.type()), x)
            metrics[f"missing__{i}"] = missing.ifelse(1, 0).sum()
            metrics[f"valid__{i}"] = valid.count()
            if kinds[col] == "numeric":
                metrics[f"ninf__{i}"] = x.isinf().ifelse(1, 0).sum()
            if self.strategy == "mean":
                metrics[f"stat__{i}"] = valid.mean()
            elif self.strategy == "median":
                metrics[f"stat__{i}"] = valid.quantile(0.5)
            elif self.strategy == "most_frequent":
                subqueries[f"stat__{i}"] = self._mode(table, col)
        expr = table.aggregate(**{ROW_COUNT: table.count()}, **metrics)
        if subqueries:
            expr = expr.mutate(**subqueries)
        row = self._fetch_one(expr)

        self.statistics_: dict[str, Any] = {}
        self.indicator_: dict[str, str] = {}
        dropped = []
        for i, col in enumerate(cols):
            if row.get(f"ninf__{i}"):
                raise NeveInputError(
                    f"SimpleImputer: column {col!r} contains infinity ({row[f'ninf__{i}']} "
                    f"rows), which scikit-learn rejects too; filter those rows first"
                )
            if self.add_indicator and row[f"missing__{i}"]:
                self.indicator_[col] = f"missingindicator_{col}"
            self.statistics_[col] = stat = self._statistic(col, kinds[col], row, i)
            if _is_dropped(stat):
                dropped.append(col)
        if dropped:
            warnings.warn(
                f"SimpleImputer: skipping columns without any observed value: {dropped}; at "
                f"least one non-missing value is needed for strategy={self.strategy!r} "
                f"(set keep_empty_features=True to keep them)",
                UserWarning,
                stacklevel=3,
            )

    def _mode(self, table: ir.Table, col: str) -> ir.Scalar:
        """The most frequent non-missing value, smallest first among ties, as a scalar subquery."""
        x = self._values(table, col)
        values = table.select(v=self._missing(x).ifelse(ibis.null(x.type()), x))
        values = values.filter(values.v.notnull())
        counts = values.group_by("v").aggregate(freq=values.count())
        top = counts.order_by([ibis.desc("freq"), ibis.asc("v")]).limit(1)
        return top.select("v").as_scalar()

    def _statistic(self, col: str, kind: str, row: dict[str, Any], i: int) -> Any:
        empty = not row[f"valid__{i}"]
        if self.strategy == "constant":
            fill = self._constant(col, kind)
            return math.nan if empty and not self.keep_empty_features else fill
        if empty:
            if not self.keep_empty_features:
                return math.nan
            return 0.0 if kind == "numeric" else None
        value = row[f"stat__{i}"]
        return float(value) if kind == "numeric" else value

    def _constant(self, col: str, kind: str) -> Any:
        fill = self.fill_value
        if fill is None:
            return 0 if kind == "numeric" else "missing_value"
        if isinstance(fill, np.generic):
            fill = fill.item()
        if kind == "string" and not isinstance(fill, str):
            raise ColumnTypeError(
                f"SimpleImputer: fill_value={fill!r} is not a string, but column {col!r} is"
            )
        if kind == "numeric" and (isinstance(fill, (str, bytes)) or not isinstance(fill, Real)):
            raise ColumnTypeError(
                f"SimpleImputer: fill_value={fill!r} cannot fill numeric column {col!r}"
            )
        return fill

    # --- transform -------------------------------------------------------------

    def _output_type(self, column: ir.Column, stat: Any) -> dt.DataType:
        dtype = column.type()
        if dtype.is_string():
            return dtype
        integral = (
            isinstance(stat, (int, float))
            and not isinstance(stat, bool)
            and float(stat).is_integer()
        )
        if dtype.is_integer() and self.strategy in ("most_frequent", "constant") and integral:
            return dtype
        return dt.float64

    def _transform_columns(self, table: ir.Table) -> dict[str, list[tuple[str, ir.Value]]]:
        if not self.output_columns(table.columns):
            # scikit-learn returns an (n, 0) array; a SQL table needs a column.
            raise NeveInputError(
                "SimpleImputer: every column was all-missing at fit and is dropped, leaving "
                "no column to return; set keep_empty_features=True to keep them"
            )
        produced: dict[str, list[tuple[str, ir.Value]]] = {}
        for col, out in zip(self.input_cols_, self.output_cols_, strict=True):
            stat = self.statistics_[col]
            if _is_dropped(stat):
                produced[col] = []
                continue
            x = self._values(table, col)
            out_type = self._output_type(table[col], stat)
            keep_raw = out_type == table[col].type() and not out_type.is_floating()
            source = table[col] if keep_raw else x.cast(out_type)
            if stat is None:  # an all-missing string column kept by keep_empty_features
                fill = ibis.null(out_type)
            else:
                fill = typed(stat, out_type) if out_type.is_floating() else ibis.literal(stat).cast(out_type)
            produced[col] = [(out, self._missing(x).ifelse(fill, source))]
        indicators = [
            (name, self._missing(self._values(table, col))) for col, name in self.indicator_.items()
        ]
        if indicators:
            produced[_INDICATORS] = indicators
        return produced

    def _output_names(self, col: str, output_col: str) -> list[str]:
        return [] if _is_dropped(self.statistics_[col]) else [output_col]

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Imputed columns (all-missing ones dropped), then the missing indicators."""
        names = list(super().get_feature_names_out(input_features))
        return np.asarray(names + list(self.indicator_.values()), dtype=object)

    def output_columns(self, columns: list[str]) -> list[str]:
        self._check_is_fitted()
        produced = {
            col: self._output_names(col, out)
            for col, out in zip(self.input_cols_, self.output_cols_, strict=True)
        }
        if self.indicator_:
            produced[_INDICATORS] = list(self.indicator_.values())
        return _assemble_names(columns, produced, self._in_place(), self.drop_input_cols)

    def _sklearn_twin(self) -> Any:
        """Fitted on two rows per column, ``[stat, stat]`` (``[stat, missing]`` where fit saw
        missing values, so the indicator marks the same columns): every strategy gives back
        ``stat`` exactly."""
        rows = {}
        for col in self.input_cols_:
            stat = self.statistics_[col]
            missing = np.nan if col in self.indicator_ or is_missing(stat) else stat
            rows[col] = [np.nan if is_missing(stat) else stat, missing]
        frame = pd.DataFrame(rows)
        for col in self.input_cols_:
            if not any(isinstance(v, str) for v in frame[col]):
                frame[col] = frame[col].astype(np.float64)
            else:
                frame[col] = frame[col].astype(object)
        strategy = "most_frequent" if self.strategy in ("mean", "median") and frame.dtypes.eq(object).any() else None
        est = self._sklearn_class(**sklearn_params(self, **({"strategy": strategy} if strategy else {})))
        return est.fit(frame)
