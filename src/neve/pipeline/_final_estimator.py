"""A Pipeline's final estimator: how it is fitted after the transformers, and scored.

- a neve linear estimator: the whole pipeline in one statistics query where the steps
  allow it (:func:`neve.pipeline._fused.fit_fused`), else the transformers step by
  step and the estimator from one aggregate over the transformed (lazy) table;
- any scikit-learn estimator: the transformers in the engine, then the transformed
  training rows extracted (:func:`extract_training_data`) and handed to ``fit``;
  HistGradientBoosting gets its categorical features as integer codes computed in the
  engine (:mod:`neve.pipeline._coded_frame`).

Prediction compiles transformers and estimator to one SELECT through
:func:`neve.scoring.score` (with its one-hot fusion), using the estimator's scikit-learn
twin, so the registry and scoring see one kind of model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ibis.expr.types as ir
import numpy as np
import pandas as pd

from neve._table import missing_to_null
from neve.engine import _queries
from neve.errors import ColumnNotFoundError, EmptyInputError, InvalidParameterError
from neve.linear_model import LinearEstimator
from neve.linear_model._base import score_predictions
from neve.pipeline._coded_frame import extract_coded_frame, fit_on_codes, takes_categories
from neve.pipeline._fused import fit_fused
from neve.preprocessing import BaseTransformer
from neve.scoring import score

__all__ = ["extract_training_data", "fit_final", "is_estimator", "predict_final", "score_final"]


def is_estimator(step: Any) -> bool:
    """A final step that predicts (neve's or scikit-learn's), as opposed to a transformer."""
    return not isinstance(step, BaseTransformer) and callable(getattr(step, "fit", None)) and (
        callable(getattr(step, "predict", None))
    )


def fit_final(
    transformers: Sequence[BaseTransformer], estimator: Any, table: ir.Table, y: Any
) -> None:
    """Fit ``transformers`` then ``estimator`` on ``table`` (rows with a NULL label dropped first)."""
    if isinstance(estimator, LinearEstimator):
        if y is not None:
            raise InvalidParameterError(
                f"{type(estimator).__name__} reads its label from label_cols; call pipeline.fit(table)"
            )
        if fit_fused(transformers, estimator, table):
            return
        label = estimator._label_col(table)
    else:
        label = _label_of(estimator, y)
    table = table.filter(missing_to_null(table[label]).notnull()) if label in table.columns else table
    for step in transformers:
        step.fit(table)
        table = step.transform(table)
    if isinstance(estimator, LinearEstimator):
        estimator.fit(table)
        return
    if label not in table.columns:
        raise ColumnNotFoundError(
            f"label column {label!r} is not in the transformed table (columns: {', '.join(table.columns)})"
        )
    features = [c for c in table.columns if c != label]
    if takes_categories(estimator):
        coded = extract_coded_frame(estimator, table, features, label)
        _check_rows(estimator, label, coded.y)
        fit_on_codes(estimator, coded)
        return
    X, target = extract_training_data(table, features, label)
    _check_rows(estimator, label, target)
    estimator.fit(X, target)


def _check_rows(estimator: Any, label: str, target: np.ndarray) -> None:
    if len(target) == 0:
        raise EmptyInputError(f"{type(estimator).__name__}.fit got a table with no rows with a label ({label!r})")


def _label_of(estimator: Any, y: Any) -> str:
    if isinstance(y, str):
        return y
    raise InvalidParameterError(
        f"a Pipeline ending in {type(estimator).__name__} needs the label column: "
        f"pipeline.fit(table, y='LABEL_COLUMN')"
    )


def extract_training_data(table: ir.Table, features: list[str], label: str) -> tuple[pd.DataFrame, np.ndarray]:
    """The transformed training rows as a dense DataFrame and the label array.

    The seam for a sparse extraction (integer category codes streamed as Arrow, one-hot
    built as CSR in the client): callers only need ``fit(X, y)``-ready data back.
    """
    frame = _queries.execute(table.select(*features, label))
    return frame[features], frame[label].to_numpy()


def predict_final(
    transformers: Any, estimator: Any, X: Any, function_name: str, as_table: Any
) -> Any:
    """``X`` with the estimator's output column(s), transformers and model in one SELECT.

    ``transformers`` is the fitted Pipeline of the steps before the estimator (or None).
    """
    table, convert = as_table(X)
    if isinstance(estimator, LinearEstimator):
        estimator._check_is_fitted()
        model = estimator.to_sklearn()
        n_outputs = 1 if function_name == "predict" or (
            function_name == "decision_function" and len(getattr(estimator, "classes_", [])) <= 2
        ) else len(estimator.classes_)
        names = estimator._default_outputs(function_name, n_outputs)
    else:
        model, names = estimator, None
    result = score(table, model, pipeline=transformers, function_name=function_name, output_cols=names)
    return convert(result)


def score_final(estimator: Any, predicted: ir.Table) -> float:
    if not isinstance(estimator, LinearEstimator):
        raise InvalidParameterError(
            f"Pipeline.score needs a neve estimator that knows its label column, not {type(estimator).__name__}; "
            f"use neve.metrics on pipeline.predict(table)"
        )
    return score_predictions(estimator, predicted)
