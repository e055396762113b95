"""Pipeline: a chain of pushdown transformers that compiles to one SELECT."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
from sklearn.base import BaseEstimator

from neve.errors import InvalidParameterError, NotFittedError, SerializationError
from neve.preprocessing import TRANSFORMERS, BaseTransformer
from neve.preprocessing._base import as_table, run_translating

__all__ = ["Pipeline"]

FORMAT = "neve.pipeline/1"


def _read_later(step: BaseTransformer, columns: list[str], later: list[BaseTransformer]) -> bool:
    """Whether a later step's fit reads a column ``step`` writes or removes. Building a wide
    transform costs Python time, so fit skips the ones no later fit reads: the last step's
    always, and e.g. a scaler's before an encoder of other columns (the next step is then
    fit on the table without it, which gives it the same columns)."""
    written = set(step.get_feature_names_out())
    written |= set(columns) - set(step.output_columns(list(columns)))
    for other in later:
        reads = other.input_cols
        if reads is None:  # every column: whatever step changed is read
            return True
        if written & set([reads] if isinstance(reads, str) else reads):
            return True
    return False


class Pipeline(BaseEstimator):
    """Apply transformers in order. Each ``fit`` step runs one aggregate query over the
    output of the steps before it; ``transform`` is a single lazy expression.

    >>> pipe = Pipeline([("scale", StandardScaler(input_cols=["X"]))])
    >>> features = pipe.fit(table).transform(table)      # ibis in, ibis out
    >>> pipe.to_sql(table, dialect="snowflake")          # the SELECT transform runs
    """

    def __init__(self, steps: Sequence[tuple[str, BaseTransformer]]) -> None:
        self.steps = steps

    def _validate_steps(self) -> list[tuple[str, BaseTransformer]]:
        steps = list(self.steps)
        if not steps:
            raise InvalidParameterError("Pipeline needs at least one (name, transformer) step")
        names = [name for name, _ in steps]
        if len(set(names)) != len(names):
            raise InvalidParameterError(f"Pipeline step names must be unique, got {names}")
        for name, step in steps:
            if not isinstance(step, BaseTransformer):
                raise InvalidParameterError(
                    f"Pipeline step {name!r} is a {type(step).__name__}; steps must be "
                    f"neve.preprocessing transformers"
                )
        return steps

    @property
    def named_steps(self) -> dict[str, BaseTransformer]:
        return dict(self.steps)

    def __getitem__(self, key: int | str) -> BaseTransformer:
        return self.named_steps[key] if isinstance(key, str) else self.steps[key][1]

    def __len__(self) -> int:
        return len(self.steps)

    def fit(self, X: Any, y: Any = None) -> Pipeline:
        """Fit each step on the (lazy) output of the previous ones: one query per step."""
        table, _ = as_table(X)
        steps = [step for _, step in self._validate_steps()]
        for i, step in enumerate(steps):
            step.fit(table)
            if _read_later(step, table.columns, steps[i + 1 :]):
                table = step.transform(table)
        self.columns_in_ = list(as_table(X)[0].columns)
        return self

    def _check_is_fitted(self) -> None:
        if not hasattr(self, "columns_in_"):
            raise NotFittedError(
                "This Pipeline instance is not fitted yet: call fit(table) before transform, "
                "to_sql or get_feature_names_out"
            )

    def _expression(self, table: ir.Table) -> ir.Table:
        for _, step in self.steps:
            table = step.transform(table)
        return table

    def transform(self, X: Any) -> Any:
        """Apply every step. Lazy for Ibis input; pandas and pyarrow come back as themselves."""
        self._check_is_fitted()
        table, convert = as_table(X)
        return run_translating(convert, self._expression(table), [step for _, step in self.steps])

    def fit_transform(self, X: Any, y: Any = None) -> Any:
        return self.fit(X, y).transform(X)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Columns of the transformed table, in order, for a table shaped like the fit input."""
        self._check_is_fitted()
        columns = list(input_features) if input_features is not None else self.columns_in_
        for _, step in self.steps:
            columns = step.output_columns(columns)
        return np.asarray(columns, dtype=object)

    def to_sql(self, table: ir.Table, dialect: str | None = None, pretty: bool = True) -> str:
        """The one SELECT statement ``transform(table)`` runs, in ``dialect``
        (default: the table's engine)."""
        self._check_is_fitted()
        return str(ibis.to_sql(self._expression(table), dialect=dialect, pretty=pretty))

    def to_dict(self) -> dict[str, Any]:
        """Fitted state as plain JSON data; :meth:`from_dict` restores it exactly."""
        return {
            "format": FORMAT,
            "columns_in": getattr(self, "columns_in_", None),
            "steps": [{"name": name, **step.to_dict()} for name, step in self._validate_steps()],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, allow_nan=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Pipeline:
        """Rebuild a pipeline written by :meth:`to_dict`. Only neve's own classes are accepted."""
        if not isinstance(data, Mapping) or data.get("format") != FORMAT:
            found = data.get("format") if isinstance(data, Mapping) else type(data).__name__
            raise SerializationError(f"not a neve pipeline document (format {found!r}, want {FORMAT!r})")
        steps = []
        for entry in data["steps"]:
            class_name = entry.get("class")
            step_cls = TRANSFORMERS.get(class_name)
            if step_cls is None:
                raise SerializationError(
                    f"pipeline step {entry.get('name')!r} has unknown class {class_name!r}; "
                    f"known: {', '.join(sorted(TRANSFORMERS))}"
                )
            steps.append((entry["name"], step_cls._from_dict(entry)))
        pipe = cls(steps)
        if data.get("columns_in") is not None:
            pipe.columns_in_ = list(data["columns_in"])
        return pipe

    @classmethod
    def from_json(cls, text: str) -> Pipeline:
        return cls.from_dict(json.loads(text))
