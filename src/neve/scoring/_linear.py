"""Linear regressors and logistic regression as arithmetic over the feature columns."""

from __future__ import annotations

from typing import Any

import ibis.expr.types as ir
import numpy as np

from neve.scoring._base import CompiledModel, NotCompilable
from neve.scoring._sql import argmax_label, double, expit, label, softmax, total

__all__ = ["LinearModel", "LogisticModel", "affine"]


def affine(
    table: ir.Table,
    features: list[str],
    coef: np.ndarray,
    intercept: float,
    extra: list[ir.Value] = (),
) -> ir.Value:
    """``intercept + sum(feature * weight) + sum(extra)``; ``extra`` holds terms already weighted
    (one-hot blocks folded into weight lookups, see neve.scoring._fold)."""
    # Zero weights (Lasso, ElasticNet) are dropped: they only lengthen the SQL.
    terms = [table[f] * double(w) for f, w in zip(features, coef, strict=True) if w != 0.0]
    return total([double(intercept), *terms, *extra])


class LinearModel(CompiledModel):
    """LinearRegression, Ridge, Lasso, ElasticNet, SGDRegressor: ``X @ coef_ + intercept_``.

    NULL in any feature gives a NULL prediction (scikit-learn refuses NaN).
    """

    nan_as_null = False

    def __init__(self, model: Any) -> None:
        super().__init__(model)
        coef = np.asarray(model.coef_, dtype=np.float64)
        if coef.ndim != 1:
            if coef.ndim == 2 and coef.shape[0] == 1:
                coef = coef[0]
            else:
                raise NotCompilable(f"{type(model).__name__} with {coef.shape[0]} targets")
        self.coef = coef
        self.intercept = float(np.ravel(model.intercept_)[0]) if np.size(model.intercept_) else 0.0

    def outputs(self, table, features, function_name):
        return table, [affine(table, features, self.coef, self.intercept)]


class LogisticModel(CompiledModel):
    """LogisticRegression: logistic (binary) or softmax (multinomial) over the decision values."""

    nan_as_null = False

    def __init__(self, model: Any) -> None:
        super().__init__(model)
        self.coef = np.asarray(model.coef_, dtype=np.float64)
        self.intercept = np.ravel(np.asarray(model.intercept_, dtype=np.float64))
        if len(self.intercept) == 0:
            self.intercept = np.zeros(self.coef.shape[0])

    def functions(self):
        return ("predict", "predict_proba", "decision_function")

    def outputs(self, table, features, function_name):
        decisions = [
            affine(table, features, row, b)
            for row, b in zip(self.coef, self.intercept, strict=True)
        ]
        # Materialise the decision values once: predict and proba reuse each several times.
        names = [f"__neve_d{k}" for k in range(len(decisions))]
        table = table.mutate(**dict(zip(names, decisions, strict=True)))
        d = [table[n] for n in names]
        classes = self.classes
        binary = len(d) == 1
        if function_name == "decision_function":
            return table, d
        if function_name == "predict":
            if binary:
                return table, [(d[0] > double(0.0)).ifelse(label(classes[1]), label(classes[0]))]
            return table, [argmax_label(d, classes)]
        if binary:
            p = expit(d[0])
            return table, [double(1.0) - p, p]
        return table, softmax(d)
