"""The transformer contract shared by every step in :mod:`neve.preprocessing`.

A transformer is a scikit-learn estimator whose ``fit`` runs one aggregate
query in the engine and whose ``transform`` returns a lazy Ibis expression.
Subclasses implement three hooks:

``_fit(table, cols)``
    compute the fitted ``*_`` attributes from at most one query, run through
    :meth:`BaseTransformer._fetch_one` (the scalers' and encoders' queries are SQL text,
    see :mod:`neve._sql_templates`);
``_transform_columns(table)``
    return ``{input_col: [(output_name, expression), ...]}``;
``_output_names(col, output_col)``
    the names ``_transform_columns`` will produce for one input column.

Everything else (parameter validation, column resolution, pandas in/pandas
out, assembling the output table, serialisation, SnowML's column API) lives here.

Column parameters, the same on every transformer:

``input_cols``
    a name or a list of names. ``None`` (the default) means every column of the
    fit table except ``passthrough_cols``, as SnowML's estimators infer them;
    SnowML's preprocessing classes raise "input_cols is not set" instead.
``output_cols``
    a name or a list, one per input column. ``None`` (the default) replaces
    each input column in place; SnowML raises "output_cols is not set".
``passthrough_cols``, ``drop_input_cols``
    as in SnowML.

Changing ``output_cols`` (or ``drop_input_cols``) after ``fit`` takes effect at the
next ``transform``; changing ``input_cols`` to columns the step was not fitted on is
refused at ``transform`` until ``fit`` runs again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import numpy as np
from sklearn.base import BaseEstimator

from neve import _json
from neve._columns import ColumnParams, as_list
from neve._sql_templates import select_text
from neve._table import ROW_COUNT, as_table, missing_to_null, run_translating
from neve.engine import _queries, identifier_rules
from neve.engine._driver import Driver
from neve.errors import (
    ColumnNotFoundError,
    ColumnTypeError,
    EmptyInputError,
    InvalidParameterError,
    NeveError,
    NotFittedError,
)
from neve.preprocessing._sklearn_twin import copy_fitted_state

__all__ = ["BaseTransformer", "handle_zeros_in_scale"]

FLOAT_EPS = float(np.finfo(np.float64).eps)


def handle_zeros_in_scale(scale: float, constant: bool | None = None) -> float:
    """scikit-learn's rule: a (near) zero scale becomes 1 so constant columns are left as is.

    As in scikit-learn, a caller that knows which columns are constant (StandardScaler,
    from the variance) passes ``constant`` and the ``< 10 eps`` test is skipped: a tiny
    but real spread keeps its scale. NaN (an all-missing column) stays NaN.
    """
    if constant if constant is not None else scale < 10 * FLOAT_EPS:
        return 1.0
    return scale


class BaseTransformer(ColumnParams, BaseEstimator):
    """Base class for pushdown transformers. Not for direct use."""

    #: Whether inputs must be numeric (bool counts as numeric).
    _numeric_only: ClassVar[bool] = True
    #: Fitted attributes that make up the state written by ``to_dict``.
    _fitted_attrs: ClassVar[tuple[str, ...]] = ()
    #: State keys written by older versions -> their current names, for ``from_dict``.
    _renamed_state: ClassVar[dict[str, str]] = {}
    #: Identifier rules of the engine fit ran on (a driver class; see ``Driver.resolve_column``).
    _identifiers: type[Driver] = Driver

    # --- hooks -------------------------------------------------------------

    def _fit(self, table: ir.Table, cols: list[str]) -> None:
        raise NotImplementedError

    def _transform_columns(self, table: ir.Table) -> dict[str, list[tuple[str, ir.Value]]]:
        raise NotImplementedError

    def _output_names(self, col: str, output_col: str) -> list[str]:
        return [output_col]

    # --- scikit-learn API --------------------------------------------------

    def fit(self, X: Any, y: Any = None) -> BaseTransformer:
        """Learn the step's state with one aggregate query over ``X``."""
        table, _ = as_table(X)
        cols = self._start_fit(table)
        try:
            self._fit(table, cols)
        except BaseException:
            # A failed fit must not leave the step looking fitted.
            for attr in ("input_cols_", "output_cols_", "n_features_in_", "feature_names_in_"):
                self.__dict__.pop(attr, None)
            raise
        return self

    def _start_fit(self, table: ir.Table) -> list[str]:
        """Validate the parameters, resolve and check the columns, and set the column state;
        returns the input columns. (A fused Pipeline fit calls it, then sets the rest.)"""
        self._validate_params()
        self._identifiers = identifier_rules(table)
        cols = self._resolve_input_cols(table)
        self._check_columns(table, cols)
        self.input_cols_ = cols
        self.output_cols_ = self._resolve_output_cols(cols)
        self._remember_column_params()
        self.n_features_in_ = len(cols)
        self.feature_names_in_ = np.asarray(cols, dtype=object)
        return cols

    def transform(self, X: Any) -> Any:
        """Return ``X`` with this step applied: lazy for Ibis input, eager for pandas/pyarrow."""
        self._check_is_fitted()
        table, convert = as_table(X)
        self._check_columns(table, self.input_cols_)
        return run_translating(convert, self._assemble(table, self._transform_columns(table)), [self])

    def fit_transform(self, X: Any, y: Any = None) -> Any:
        return self.fit(X, y).transform(X)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """The columns this step produces, in scikit-learn's order."""
        self._check_is_fitted()
        names = [
            name
            for col, out in zip(self.input_cols_, self.output_cols_, strict=True)
            for name in self._output_names(col, out)
        ]
        return np.asarray(names, dtype=object)

    def output_columns(self, columns: list[str]) -> list[str]:
        """The full column list ``transform`` returns for a table with ``columns``."""
        self._check_is_fitted()
        produced = {
            col: self._output_names(col, out)
            for col, out in zip(self.input_cols_, self.output_cols_, strict=True)
        }
        return _assemble_names(columns, produced, self._in_place(), self.drop_input_cols)

    # --- SnowML's column API -----------------------------------------------

    def get_input_cols(self) -> list[str]:
        """The input columns: as set, else those ``fit`` inferred, else ``[]``."""
        cols = as_list(self.input_cols)
        if not cols and self._is_fitted():
            cols = list(self.input_cols_)
        return cols or []

    def get_output_cols(self) -> list[str]:
        """The output columns. Once fitted, every column the step writes (a one-hot block
        expands to one name per category, as SnowML's dense output does); before, as set."""
        if self._is_fitted() and not self._stale_input_cols():
            return [str(c) for c in self.get_feature_names_out()]
        return as_list(self.output_cols)

    def _remember_column_params(self) -> None:
        """Note the column parameters the fitted state was made with, to see later changes."""
        self._input_cols_seen = as_list(self.input_cols)
        self._output_cols_seen = as_list(self.output_cols)

    def _stale_input_cols(self) -> bool:
        cols = as_list(self.input_cols)
        return bool(cols) and cols != getattr(self, "_input_cols_seen", cols)

    def to_sklearn(self) -> Any:
        """The fitted scikit-learn transformer of this class over ``input_cols``, as SnowML's
        ``to_sklearn``: ``to_sklearn().transform(df[step.get_input_cols()])`` gives this
        step's output columns for pandas input."""
        self._check_is_fitted()
        return self._sklearn_twin()

    def _sklearn_twin(self) -> Any:
        """Hook: the fitted scikit-learn transformer (see :mod:`neve.preprocessing._sklearn_twin`)."""
        return copy_fitted_state(self)

    # --- serialisation -----------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Parameters and fitted state as plain JSON data (no pickle)."""
        state = {}
        if self._is_fitted():
            self._check_is_fitted()  # output_cols_ follows a later set_output_cols
            state = {
                attr: getattr(self, attr)
                for attr in ("input_cols_", "output_cols_", *self._fitted_attrs)
            }
        return {
            "class": type(self).__name__,
            "params": _json.encode(self.get_params(deep=False)),
            "state": _json.encode(state),
        }

    @classmethod
    def _from_dict(cls, data: Mapping[str, Any]) -> BaseTransformer:
        step = cls(**_json.decode(data["params"]))
        state = _json.decode(data.get("state") or {})
        state = {cls._renamed_state.get(attr, attr): value for attr, value in state.items()}
        for attr, value in state.items():
            setattr(step, attr, value)
        if state:
            step.n_features_in_ = len(step.input_cols_)
            step.feature_names_in_ = np.asarray(step.input_cols_, dtype=object)
            step._remember_column_params()  # to_dict refuses a step changed since fit
        return step

    def _translate_error(self, exc: BaseException) -> NeveError | None:
        """Hook: the neve error for an engine error this step raised from inside a query
        (see :func:`raise_in_query`), or ``None``. Eager callers re-raise it."""
        return None


    # --- helpers for subclasses --------------------------------------------

    def _fetch_one(self, expr: ir.Table) -> dict[str, Any]:
        """Run a query returning one row (with a ``ROW_COUNT`` column) as Python values."""
        row = _queries.to_pyarrow(expr).to_pylist()[0]
        if not row[ROW_COUNT]:
            raise EmptyInputError(f"{type(self).__name__}.fit got a table with no rows")
        return row

    def _is_fitted(self) -> bool:
        return hasattr(self, "input_cols_")

    def _check_is_fitted(self) -> None:
        """Refuse an unfitted step, or one whose ``input_cols`` changed since fit; otherwise
        follow the current ``output_cols`` (SnowML reads them at transform time too)."""
        if not self._is_fitted():
            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet: "
                f"call fit(table) before transform or get_feature_names_out"
            )
        if self._stale_input_cols():
            raise NotFittedError(
                f"{type(self).__name__}: input_cols is now {as_list(self.input_cols)} but the "
                f"step was fitted on {list(self.input_cols_)}; call fit again"
            )
        current = as_list(self.output_cols)
        if current != getattr(self, "_output_cols_seen", current):
            self.output_cols_ = self._resolve_output_cols(self.input_cols_)
            self._output_cols_seen = current

    def _validate_columns(self) -> None:
        n_in, n_out = len(as_list(self.input_cols)), len(as_list(self.output_cols))
        if n_in and n_out and n_in != n_out:
            raise InvalidParameterError(
                f"{type(self).__name__}: output_cols has {n_out} names for {n_in} input_cols"
            )

    def _resolve_input_cols(self, table: ir.Table) -> list[str]:
        rules = self._identifiers
        cols = as_list(self.input_cols)
        if not cols:  # None, or SnowML's unset []
            passthrough = {
                rules.resolve_column(c, table.columns) for c in as_list(self.passthrough_cols)
            }
            cols = [c for c in table.columns if c not in passthrough]
        else:
            cols = [rules.resolve_column(c, table.columns) for c in cols]
        if not cols:
            raise InvalidParameterError(
                f"{type(self).__name__}: input_cols is not set and every column of the table "
                f"is in passthrough_cols; call set_input_cols([...])"
            )
        if len(set(cols)) != len(cols):
            raise InvalidParameterError(f"{type(self).__name__}: input_cols has duplicates: {cols}")
        return cols

    def _resolve_output_cols(self, cols: list[str]) -> list[str]:
        out = as_list(self.output_cols)
        if not out:  # unset (None or SnowML's []): replace the inputs in place
            return list(cols)
        out = [self._identifiers.new_column_name(name) for name in out]
        if len(out) != len(cols):
            raise InvalidParameterError(
                f"{type(self).__name__}: output_cols has {len(out)} names for {len(cols)} input_cols"
            )
        return out

    def _check_columns(self, table: ir.Table, cols: list[str]) -> None:
        schema = table.schema()
        missing = [c for c in cols if c not in schema]
        if missing:
            raise ColumnNotFoundError(
                f"{type(self).__name__}: column{'s' if len(missing) > 1 else ''} "
                f"{', '.join(map(repr, missing))} not found; "
                f"available columns: {', '.join(map(repr, table.columns))}"
            )
        if self._numeric_only:
            for col in cols:
                dtype = schema[col]
                if not (dtype.is_numeric() or dtype.is_boolean()):
                    raise ColumnTypeError(
                        f"{type(self).__name__} needs numeric columns, but {col!r} has type "
                        f"{dtype}; encode it first (e.g. OneHotEncoder or OrdinalEncoder)"
                    )

    def _in_place(self) -> set[str]:
        return {c for c, o in zip(self.input_cols_, self.output_cols_, strict=True) if c == o}

    def _numeric(self, table: ir.Table, col: str) -> ir.FloatingColumn:
        """``table[col]`` as float64 with NaN turned into NULL."""
        column = table[col]
        if not column.type().is_floating():
            column = column.cast(dt.float64)
        return missing_to_null(column.cast(dt.float64))

    def _assemble(
        self, table: ir.Table, produced: dict[str, list[tuple[str, ir.Value]]]
    ) -> ir.Table:
        exprs: dict[str, Any] = {name: expr for pairs in produced.values() for name, expr in pairs}
        names = _assemble_names(
            list(table.columns),
            {col: [name for name, _ in pairs] for col, pairs in produced.items()},
            self._in_place(),
            self.drop_input_cols,
        )
        # One node for the whole SELECT list: Ibis costs ~1 ms per column otherwise.
        return select_text(table, [(name, exprs.get(name, name)) for name in names])


def _assemble_names(
    columns: list[str], produced: dict[str, list[str]], in_place: set[str], drop_input: bool
) -> list[str]:
    """Column order after a step.

    An input whose output column has its own name is replaced where it stands
    (a multi-output step puts its whole block there); other outputs are
    appended in input order. An existing column that an output names is
    replaced, never duplicated.
    """
    all_outputs = {name for names in produced.values() for name in names}
    result: list[str] = []
    for column in columns:
        if column in in_place:
            result.extend(produced[column])
        elif column in all_outputs:
            continue  # an output will take this name; appended in its block
        elif drop_input and column in produced:
            continue
        else:
            result.append(column)
    for col, names in produced.items():
        if col not in in_place:
            result.extend(names)
    return result
