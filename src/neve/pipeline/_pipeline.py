"""Pipeline: a chain of pushdown transformers that compiles to one SELECT, optionally
ending in an estimator (fitted and scored as described in :mod:`neve.pipeline._final_estimator`)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
from sklearn.utils.metaestimators import _BaseComposition

from neve._table import as_table, run_translating
from neve.errors import InvalidParameterError, NotFittedError, SerializationError
from neve.pipeline import _final_estimator
from neve.preprocessing import TRANSFORMERS, BaseTransformer

__all__ = ["Pipeline"]

FORMAT = "neve.pipeline/1"


def _read_later(step: BaseTransformer, columns: list[str], later: list[BaseTransformer]) -> bool:
    """Whether a later step's fit reads a column ``step`` writes or removes. Building a wide
    transform costs Python time, so fit skips the ones no later fit reads: the last step's
    always, and e.g. a scaler's before an encoder of other columns (the next step is then
    fit on the table without it, which gives it the same columns)."""
    if not later:  # the last step: listing a one-hot step's output names alone costs ~ms
        return False
    written = set(step.get_feature_names_out())
    written |= set(columns) - set(step.output_columns(list(columns)))
    for other in later:
        reads = other.input_cols
        if reads is None:  # every column: whatever step changed is read
            return True
        if written & set([reads] if isinstance(reads, str) else reads):
            return True
    return False


class Pipeline(_BaseComposition):
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
        for i, (name, step) in enumerate(steps):
            last = i == len(steps) - 1
            if not isinstance(step, BaseTransformer) and not (last and _final_estimator.is_estimator(step)):
                raise InvalidParameterError(
                    f"Pipeline step {name!r} is a {type(step).__name__}; steps must be "
                    f"neve.preprocessing transformers, and only the last may be an estimator"
                )
        return steps

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """scikit-learn's: with ``deep``, each step and its parameters as ``step__param``."""
        return self._get_params("steps", deep=deep)

    def set_params(self, **params: Any) -> Pipeline:
        """scikit-learn's: ``set_params(ohe__handle_unknown="ignore")`` sets a step's parameter,
        ``set_params(ohe=OneHotEncoder(...))`` replaces the step."""
        self._set_params("steps", **params)
        return self

    @property
    def _estimator(self) -> Any:
        """The final estimator, or ``None`` for a pipeline of transformers."""
        step = self.steps[-1][1] if self.steps else None
        return step if step is not None and _final_estimator.is_estimator(step) else None

    @property
    def _transformer_steps(self) -> list[tuple[str, BaseTransformer]]:
        return list(self.steps[:-1] if self._estimator is not None else self.steps)

    @property
    def named_steps(self) -> dict[str, BaseTransformer]:
        return dict(self.steps)

    def __getitem__(self, key: int | str) -> BaseTransformer:
        return self.named_steps[key] if isinstance(key, str) else self.steps[key][1]

    def __len__(self) -> int:
        return len(self.steps)

    def fit(self, X: Any, y: Any = None) -> Pipeline:
        """Fit each step on the (lazy) output of the previous ones: one query per step.

        A final neve linear estimator is fitted with the transformers from one aggregate
        query where the steps allow it; a scikit-learn estimator gets the transformed rows
        (``y`` names its label column).
        """
        table, _ = as_table(X)
        self._validate_steps()
        if self._estimator is not None:
            steps = [step for _, step in self._transformer_steps]
            _final_estimator.fit_final(steps, self._estimator, table, y)
        else:
            steps = [step for _, step in self.steps]
            for i, step in enumerate(steps):
                step.fit(table)
                if _read_later(step, table.columns, steps[i + 1 :]):
                    table = step.transform(table)
        self.columns_in_ = list(as_table(X)[0].columns)
        return self

    def feature_pipeline(self) -> Pipeline | None:
        """The fitted transformers before the final estimator, as a Pipeline (``None`` if none)."""
        self._check_is_fitted()
        if not self._transformer_steps:
            return None
        pipe = Pipeline(self._transformer_steps)
        pipe.columns_in_ = list(self.columns_in_)
        return pipe

    def _final(self, X: Any, function_name: str) -> Any:
        self._check_is_fitted()
        if self._estimator is None:
            raise InvalidParameterError(f"Pipeline.{function_name} needs a final estimator step")
        return _final_estimator.predict_final(self.feature_pipeline(), self._estimator, X, function_name, as_table)

    def predict(self, X: Any) -> Any:
        """``X`` with the estimator's predictions: transformers and model in one SELECT."""
        return self._final(X, "predict")

    def predict_proba(self, X: Any) -> Any:
        return self._final(X, "predict_proba")

    def decision_function(self, X: Any) -> Any:
        return self._final(X, "decision_function")

    def score(self, X: Any, y: Any = None) -> float:
        """The final neve estimator's ``score`` (R² or accuracy) on ``X``, in SQL."""
        table, _ = as_table(X)
        return _final_estimator.score_final(self._estimator, self._final(table, "predict"))

    def _check_is_fitted(self) -> None:
        if not hasattr(self, "columns_in_"):
            raise NotFittedError(
                "This Pipeline instance is not fitted yet: call fit(table) before transform, "
                "to_sql or get_feature_names_out"
            )

    def _expression(self, table: ir.Table) -> ir.Table:
        for _, step in self._transformer_steps:
            table = step.transform(table)
        return table

    def transform(self, X: Any) -> Any:
        """Apply every step. Lazy for Ibis input; pandas and pyarrow come back as themselves."""
        self._check_is_fitted()
        table, convert = as_table(X)
        return run_translating(convert, self._expression(table), [step for _, step in self._transformer_steps])

    def fit_transform(self, X: Any, y: Any = None) -> Any:
        return self.fit(X, y).transform(X)

    def transform_sparse(
        self,
        X: Any,
        *,
        label_col: str | None = None,
        feature_cols: Sequence[str] | None = None,
        batch_rows: int = 1_000_000,
    ) -> Any:
        """``transform(X)`` as a ``scipy.sparse.csr_matrix``, for a scikit-learn estimator:
        returns ``(X, y, feature_names)`` (``y`` is ``label_col``'s values, or None).

        The engine sends one integer code per one-hot block and the numeric features,
        streamed in Arrow batches of ``batch_rows``; no dense one-hot column is formed on
        either side. Features are every transformed column but ``label_col`` (or
        ``feature_cols``), in :meth:`get_feature_names_out` order.
        """
        from neve.pipeline._sparse import transform_sparse

        return transform_sparse(self, X, label_col=label_col, feature_cols=feature_cols, batch_rows=batch_rows)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Columns of the transformed table, in order, for a table shaped like the fit input."""
        self._check_is_fitted()
        columns = list(input_features) if input_features is not None else self.columns_in_
        for _, step in self._transformer_steps:
            columns = step.output_columns(columns)
        return np.asarray(columns, dtype=object)

    def to_sql(self, table: ir.Table, dialect: str | None = None, pretty: bool = True) -> str:
        """The one SELECT statement ``transform(table)`` runs, in ``dialect``
        (default: the table's engine)."""
        self._check_is_fitted()
        return str(ibis.to_sql(self._expression(table), dialect=dialect, pretty=pretty))

    def to_dict(self) -> dict[str, Any]:
        """Fitted state as plain JSON data; :meth:`from_dict` restores it exactly."""
        if self._estimator is not None:
            raise SerializationError(
                "a Pipeline ending in an estimator has no plain-JSON form; log it with "
                "Registry.log_model(pipeline, ...) (transformers as JSON, the estimator as its "
                "scikit-learn twin), or serialise pipeline.feature_pipeline()"
            )
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

    def to_sklearn(self) -> Any:
        """The fitted scikit-learn equivalent: a scikit-learn Pipeline of ColumnTransformers,
        pandas in and out, with the columns ``transform`` gives (possibly in another order)."""
        from neve.pipeline._sklearn_export import pipeline_to_sklearn

        return pipeline_to_sklearn(self)

    @classmethod
    def from_json(cls, text: str) -> Pipeline:
        return cls.from_dict(json.loads(text))
