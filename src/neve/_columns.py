"""SnowML's column keywords, shared by every transformer and estimator.

A step names its columns with keyword parameters (``input_cols``, ``output_cols``,
``passthrough_cols``, ``drop_input_cols``; estimators add ``label_cols`` and
``sample_weight_col``), each a name or a list of names, and SnowML's chainable setters
(``set_input_cols(...)``) change them. :class:`ColumnParams` validates them together
with the scikit-learn class's own parameter constraints, so a bad value is refused
with scikit-learn's message before any query runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from sklearn.utils._param_validation import InvalidParameterError as _SkParamError
from sklearn.utils._param_validation import validate_parameter_constraints

from neve.errors import InvalidParameterError

__all__ = ["COLUMN_CONSTRAINTS", "ColumnParams", "as_list", "cols_param"]

_NAMES: list[Any] = [str, list, tuple, None]

#: Constraints of every column keyword a step may take (only those it has are checked).
COLUMN_CONSTRAINTS: dict[str, list[Any]] = {
    "input_cols": _NAMES,
    "output_cols": _NAMES,
    "label_cols": _NAMES,
    "passthrough_cols": _NAMES,
    "sample_weight_col": [str, None],
    "drop_input_cols": ["boolean"],
}


def as_list(value: str | Sequence[str] | None) -> list[str]:
    """A column parameter as a list: one name, a sequence of names, or ``[]`` for unset."""
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def cols_param(value: Any, name: str) -> list[str] | None:
    """A column parameter as SnowML's setters take it: one name, an iterable of names or None."""
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
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


class ColumnParams:
    """Mixin for a scikit-learn ``BaseEstimator`` subclass taking SnowML's column keywords."""

    #: scikit-learn class whose parameter constraints this step shares.
    _sklearn_class: ClassVar[type | None] = None
    #: Parameter constraints that replace scikit-learn's (SnowML's extra forms).
    _constraints_override: ClassVar[dict[str, list[Any]]] = {}

    def _validate_columns(self) -> None:
        """Hook: checks across column keywords (run once each is known to be well typed)."""

    def _validate_extra(self) -> None:
        """Hook: checks beyond the declared constraints; raise InvalidParameterError."""

    def _validate_params(self) -> None:
        constraints = dict(COLUMN_CONSTRAINTS)
        if self._sklearn_class is not None:
            constraints.update(getattr(self._sklearn_class, "_parameter_constraints", {}))
        constraints.update(self._constraints_override)
        params = self.get_params(deep=False)  # type: ignore[attr-defined]
        try:
            validate_parameter_constraints(
                {k: v for k, v in constraints.items() if k in params},
                params,
                caller_name=type(self).__name__,
            )
        except _SkParamError as exc:
            raise InvalidParameterError(str(exc)) from None
        self._validate_columns()
        self._validate_extra()

    def _set_cols(self, name: str, value: Any) -> Any:
        return self.set_params(**{name: cols_param(value, name)})  # type: ignore[attr-defined]

    def set_input_cols(self, input_cols: str | list[str] | None) -> Any:
        """Set ``input_cols`` (a name or a list); returns ``self`` so calls chain."""
        return self._set_cols("input_cols", input_cols)

    def set_output_cols(self, output_cols: str | list[str] | None) -> Any:
        """Set ``output_cols`` (a name or a list); returns ``self``."""
        return self._set_cols("output_cols", output_cols)

    def set_passthrough_cols(self, passthrough_cols: str | list[str] | None) -> Any:
        """Set ``passthrough_cols``: columns left out of ``input_cols`` inference; returns ``self``."""
        return self._set_cols("passthrough_cols", passthrough_cols)

    def set_drop_input_cols(self, drop_input_cols: bool = False) -> Any:
        """Set ``drop_input_cols``; returns ``self``."""
        return self.set_params(drop_input_cols=drop_input_cols)  # type: ignore[attr-defined]

    def get_passthrough_cols(self) -> list[str]:
        return as_list(getattr(self, "passthrough_cols", None))

    def get_drop_input_cols(self) -> bool:
        return bool(getattr(self, "drop_input_cols", False))
