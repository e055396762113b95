"""``Pipeline.to_sklearn()``: a fitted neve pipeline as a scikit-learn Pipeline.

Each step becomes a ``ColumnTransformer`` around its frozen scikit-learn twin (the step's
``to_sklearn()``, see :mod:`neve.preprocessing._sklearn_twin`), taking and returning pandas
frames with neve's column names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.frozen import FrozenEstimator
from sklearn.pipeline import Pipeline as SkPipeline
from sklearn.preprocessing import FunctionTransformer

from neve.errors import InvalidParameterError
from neve.preprocessing import BaseTransformer
from neve.preprocessing._categories import is_missing

if TYPE_CHECKING:
    from neve.pipeline._pipeline import Pipeline

__all__ = ["pipeline_to_sklearn"]


class FixedNames:
    """``feature_names_out`` for a FunctionTransformer: neve's output names (picklable)."""

    def __init__(self, names: list[str]) -> None:
        self.names = list(names)

    def __call__(self, transformer: Any, input_features: Any) -> np.ndarray:
        return np.asarray(self.names, dtype=object)


def _sample_row(step: BaseTransformer, columns: list[str]) -> pd.DataFrame:
    """One row with a value every column of the step's input table accepts (what
    ``ColumnTransformer.fit`` needs to record its columns; the frozen step ignores it)."""
    row: dict[str, Any] = dict.fromkeys(columns, 0.0)
    for col in step.input_cols_:
        known = getattr(step, "categories_", None)
        if known is not None:
            row[col] = next((c for c in known[col] if not is_missing(c)), np.nan)
        elif type(step).__name__ == "SimpleImputer" and isinstance(step.statistics_[col], str):
            row[col] = step.statistics_[col]
    return pd.DataFrame({k: [v] for k, v in row.items()})


def _column_step(name: str, step: BaseTransformer, columns: list[str]) -> ColumnTransformer:
    if type(step).__name__ == "LabelEncoder":
        raise InvalidParameterError(
            f"pipeline step {name!r}: scikit-learn's LabelEncoder encodes a target (1-D y) and has "
            f"no place in a scikit-learn Pipeline of features; call to_sklearn() on the step itself"
        )
    est = step.to_sklearn()
    sample = _sample_row(step, columns)
    produced = list(step.get_feature_names_out())
    native = list(est.set_output(transform="pandas").transform(sample[step.input_cols_]).columns)
    if native != produced:
        rename = FunctionTransformer(feature_names_out=FixedNames(produced)).set_output(transform="pandas")
        est = SkPipeline([("step", est), ("names", rename.fit(est.transform(sample[step.input_cols_])))])
    parts: list[tuple[str, Any, list[str]]] = [(name, FrozenEstimator(est), list(step.input_cols_))]
    kept = [c for c in step.input_cols_ if c not in step._in_place() and not step.drop_input_cols and c not in produced]
    if kept:
        parts.append((f"{name}_inputs", "passthrough", kept))
    ct = ColumnTransformer(parts, remainder="passthrough", verbose_feature_names_out=False)
    return ct.set_output(transform="pandas").fit(sample)


def pipeline_to_sklearn(pipe: Pipeline) -> SkPipeline:
    """A fitted scikit-learn Pipeline of ColumnTransformers: pandas in, pandas out, with the
    columns neve's ``transform`` returns (their order may differ)."""
    pipe._check_is_fitted()
    columns = list(pipe.columns_in_)
    steps = []
    for name, step in pipe.steps:
        steps.append((name, _column_step(name, step, columns)))
        columns = step.output_columns(columns)
    return SkPipeline(steps)
