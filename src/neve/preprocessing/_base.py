"""The transformer contract shared by every step in :mod:`neve.preprocessing`.

A transformer is a scikit-learn estimator whose ``fit`` runs one aggregate
query in the engine and whose ``transform`` returns a lazy Ibis expression.
Subclasses implement three hooks:

``_fit(table, cols)``
    compute the fitted ``*_`` attributes from at most one query, run through
    :meth:`BaseTransformer._fetch_one` (the scalers' and encoders' queries are SQL text,
    see :mod:`neve._sqltext`);
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

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import InvalidParameterError as _SkParamError
from sklearn.utils._param_validation import validate_parameter_constraints

from neve import _json
from neve._sqltext import select_text
from neve.engine import _queries, identifier_rules
from neve.engine._driver import Driver
from neve.errors import (
    ColumnNotFoundError,
    ColumnTypeError,
    EmptyInputError,
    InvalidParameterError,
    NeveError,
    NeveInputError,
    NotFittedError,
)

__all__ = ["BaseTransformer", "as_table", "missing_to_null", "raise_in_query", "run_translating"]

ROW_COUNT = "__neve_n_rows"
FLOAT_EPS = float(np.finfo(np.float64).eps)

_SNOWML_CONSTRAINTS: dict[str, list[Any]] = {
    "input_cols": [str, list, tuple, None],
    "output_cols": [str, list, tuple, None],
    "passthrough_cols": [str, list, tuple, None],
    "drop_input_cols": ["boolean"],
}


def as_table(X: Any) -> tuple[ir.Table, Callable[[ir.Table], Any]]:
    """Wrap ``X`` as an Ibis table and return a function that converts results back.

    Ibis tables stay lazy; pandas and pyarrow inputs run on an in-memory
    DuckDB and come back as the same type (pandas keeps its index).
    """
    if isinstance(X, ir.Table):
        return X, lambda result: result
    if isinstance(X, pd.DataFrame):
        index = X.index
        # Non-string labels (e.g. ints) would not survive as SQL column names.
        renamed = X.rename(columns=str) if not all(isinstance(c, str) for c in X.columns) else X
        table = ibis.memtable(renamed.reset_index(drop=True))

        def to_pandas(result: ir.Table) -> pd.DataFrame:
            frame = _queries.execute(result)
            frame.index = index
            return frame

        return table, to_pandas
    if isinstance(X, pa.Table):
        return ibis.memtable(X), _queries.to_pyarrow
    raise NeveInputError(
        f"expected an ibis Table, a pandas DataFrame or a pyarrow Table, got {type(X).__name__}"
    )


def run_translating(
    convert: Callable[[ir.Table], Any], result: ir.Table, steps: list[BaseTransformer]
) -> Any:
    """``convert(result)``, re-raising an engine error that a step raised from inside the
    query (see :func:`raise_in_query`) as that step's neve error."""
    try:
        return convert(result)
    except NeveError:
        raise
    except Exception as exc:
        for step in steps:
            error = step._translate_error(exc)
            if error is not None:
                raise error from exc
        raise


def missing_to_null(column: ir.Column) -> ir.Column:
    """Treat NaN as missing, as scikit-learn does: NaN becomes NULL so aggregates skip it."""
    if column.type().is_floating():
        return column.isnan().ifelse(ibis.null(column.type()), column)
    return column


def raise_in_query(message: ir.StringValue) -> ir.Value:
    """An int64 expression that aborts the query with ``message`` when it is evaluated.

    Casting a non-numeric string to an integer fails on every SQL engine and
    the engine's error quotes the string, so the user sees ``message``; used
    inside a CASE branch it fires only for the rows that reach it. Dialect
    neutral, so the transformers need no engine-specific code (the same idea
    as ``Driver.raise_error_sql``).
    """
    return message.cast("int64")


def handle_zeros_in_scale(scale: float, constant: bool | None = None) -> float:
    """scikit-learn's rule: a (near) zero scale becomes 1 so constant columns are left as is.

    As in scikit-learn, a caller that knows which columns are constant (StandardScaler,
    from the variance) passes ``constant`` and the ``< 10 eps`` test is skipped: a tiny
    but real spread keeps its scale. NaN (an all-missing column) stays NaN.
    """
    if constant if constant is not None else scale < 10 * FLOAT_EPS:
        return 1.0
    return scale


def _as_list(value: str | list[str] | tuple[str, ...] | None) -> list[str] | None:
    if value is None:
        return None
    return [value] if isinstance(value, str) else list(value)


def _cols_param(value: Any, name: str) -> list[str] | None:
    """A column parameter as SnowML's setters take it: one name, an iterable of names or None."""
    if value is None or isinstance(value, str):
        return _as_list(value)
    try:
        cols = list(value)
    except TypeError:
        raise InvalidParameterError(
            f"{name} must be a column name or a list of column names, got {type(value).__name__}"
        ) from None
    bad = [c for c in cols if not isinstance(c, str)]
    if bad:
        raise InvalidParameterError(f"{name} must hold column names (str), got {bad[:5]}")
    return cols


class BaseTransformer(BaseEstimator):
    """Base class for pushdown transformers. Not for direct use."""

    #: scikit-learn class whose parameter constraints this step shares.
    _sklearn_class: ClassVar[type | None] = None
    #: Whether inputs must be numeric (bool counts as numeric).
    _numeric_only: ClassVar[bool] = True
    #: Fitted attributes that make up the state written by ``to_dict``.
    _fitted_attrs: ClassVar[tuple[str, ...]] = ()
    #: Parameter constraints that replace scikit-learn's (SnowML's extra forms).
    _constraints_override: ClassVar[dict[str, list[Any]]] = {}
    #: State keys written by older versions -> their current names, for ``from_dict``.
    _renamed_state: ClassVar[dict[str, str]] = {}
    #: Identifier rules of the engine fit ran on (a driver class; see ``Driver.resolve_column``).
    _identifiers: type[Driver] = Driver

    # --- hooks -------------------------------------------------------------

    def _validate_extra(self) -> None:
        """Checks beyond scikit-learn's constraints; raise InvalidParameterError."""

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

    def set_input_cols(self, input_cols: str | list[str] | None) -> BaseTransformer:
        """Set ``input_cols`` (a name or a list); returns ``self`` so calls chain."""
        return self.set_params(input_cols=_cols_param(input_cols, "input_cols"))

    def set_output_cols(self, output_cols: str | list[str] | None) -> BaseTransformer:
        """Set ``output_cols`` (a name or a list, one per input); returns ``self``."""
        return self.set_params(output_cols=_cols_param(output_cols, "output_cols"))

    def set_passthrough_cols(self, passthrough_cols: str | list[str] | None) -> BaseTransformer:
        """Set ``passthrough_cols``: columns left out of ``input_cols`` inference; returns ``self``."""
        return self.set_params(passthrough_cols=_cols_param(passthrough_cols, "passthrough_cols"))

    def set_drop_input_cols(self, drop_input_cols: bool = False) -> BaseTransformer:
        """Set ``drop_input_cols``; returns ``self``."""
        return self.set_params(drop_input_cols=drop_input_cols)

    def get_input_cols(self) -> list[str]:
        """The input columns: as set, else those ``fit`` inferred, else ``[]``."""
        cols = _as_list(self.input_cols)
        if not cols and self._is_fitted():
            cols = list(self.input_cols_)
        return cols or []

    def get_output_cols(self) -> list[str]:
        """The output columns. Once fitted, every column the step writes (a one-hot block
        expands to one name per category, as SnowML's dense output does); before, as set."""
        if self._is_fitted() and not self._stale_input_cols():
            return [str(c) for c in self.get_feature_names_out()]
        return _as_list(self.output_cols) or []

    def get_passthrough_cols(self) -> list[str]:
        return _as_list(self.passthrough_cols) or []

    def get_drop_input_cols(self) -> bool:
        return bool(self.drop_input_cols)

    def _remember_column_params(self) -> None:
        """Note the column parameters the fitted state was made with, to see later changes."""
        self._input_cols_seen = _as_list(self.input_cols) or []
        self._output_cols_seen = _as_list(self.output_cols) or []

    def _stale_input_cols(self) -> bool:
        cols = _as_list(self.input_cols) or []
        return bool(cols) and cols != getattr(self, "_input_cols_seen", cols)

    def to_sklearn(self) -> Any:
        """The fitted scikit-learn transformer of this class over ``input_cols``, as SnowML's
        ``to_sklearn``: ``to_sklearn().transform(df[step.get_input_cols()])`` gives this
        step's output columns for pandas input."""
        from neve.preprocessing._export import step_to_sklearn

        return step_to_sklearn(self)

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
                f"{type(self).__name__}: input_cols is now {_as_list(self.input_cols)} but the "
                f"step was fitted on {list(self.input_cols_)}; call fit again"
            )
        current = _as_list(self.output_cols) or []
        if current != getattr(self, "_output_cols_seen", current):
            self.output_cols_ = self._resolve_output_cols(self.input_cols_)
            self._output_cols_seen = current

    def _validate_params(self) -> None:
        constraints = dict(_SNOWML_CONSTRAINTS)
        if self._sklearn_class is not None:
            constraints.update(getattr(self._sklearn_class, "_parameter_constraints", {}))
        constraints.update(self._constraints_override)
        params = self.get_params(deep=False)
        try:
            validate_parameter_constraints(
                {k: v for k, v in constraints.items() if k in params},
                params,
                caller_name=type(self).__name__,
            )
        except _SkParamError as exc:
            raise InvalidParameterError(str(exc)) from None
        if _as_list(self.output_cols) and _as_list(self.input_cols):
            n_in, n_out = len(_as_list(self.input_cols)), len(_as_list(self.output_cols))
            if n_in != n_out:
                raise InvalidParameterError(
                    f"{type(self).__name__}: output_cols has {n_out} names for {n_in} input_cols"
                )
        self._validate_extra()

    def _resolve_input_cols(self, table: ir.Table) -> list[str]:
        rules = self._identifiers
        cols = _as_list(self.input_cols)
        if not cols:  # None, or SnowML's unset []
            passthrough = {
                rules.resolve_column(c, table.columns) for c in _as_list(self.passthrough_cols) or []
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
        out = _as_list(self.output_cols)
        if out is None or (not out and cols):
            return list(cols)  # unset (None or SnowML's []): replace the inputs in place
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
