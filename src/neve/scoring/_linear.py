"""Linear regressors and logistic regression as arithmetic over the feature columns."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import numpy as np

from neve import _sql_templates as T
from neve.scoring._base import CompiledModel, NotCompilable
from neve.scoring._fuse import OneHotBlock
from neve.scoring._sql import argmax_label, double, expit, label, softmax, total

__all__ = ["LinearModel", "LogisticModel"]


def _affine(
    table: ir.Table,
    features: list[str | None],
    coef: np.ndarray,
    intercept: float,
    blocks: Sequence[OneHotBlock] = (),
) -> ir.Value:
    """``intercept + sum(x_j * w_j)`` summed in feature order; a fused one-hot block
    (feature name ``None``) is one CASE yielding its matching weight, at its first feature."""
    at = {block.first: block for block in blocks}
    terms = []
    for j, (f, w) in enumerate(zip(features, coef, strict=True)):
        if j in at:
            terms.append(_one_hot_term(at[j], coef))
        elif f is not None and w != 0.0:
            # Zero weights (Lasso, ElasticNet) are dropped: they only lengthen the SQL.
            terms.append(table[f] * double(w))
    return total([double(intercept), *[t for t in terms if t is not None]])


def _one_hot_term(block: OneHotBlock, coef: np.ndarray) -> ir.Value | None:
    inputs = dict(block.inputs)
    branches = []
    for cond, value, j in block.guards:
        # The guard's value raises; times the weight it keeps its place in the sum.
        inputs[("guard", j)] = inputs[value.key].cast("float64") * double(coef[j])
        branches.append((cond, T.Input(("guard", j))))
    branches += [(cond, T.Const(float(coef[j]))) for cond, j in block.branches if coef[j] != 0.0]
    if not branches:
        return None
    # One CASE for the block, written as text: O(categories) Ibis nodes would cost ~1 ms each.
    template: Any = T.Case(tuple(branches), T.Const(0.0))
    if not block.guards and _one_text_per_branch(branches):
        pairs = tuple((cond.values[0], value.value) for cond, value in branches)
        template = T.TextLookup(branches[0][0].x, pairs, T.Const(0.0), template)
    return T.value_text(template, dt.float64, inputs)


def _one_text_per_branch(branches: list[tuple[Any, Any]]) -> bool:
    """Whether each branch matches one text value of the same input (a plain one-hot column)."""
    x = branches[0][0].x if isinstance(branches[0][0], T.Member) else None
    return x is not None and all(
        isinstance(cond, T.Member) and cond.x == x and len(cond.values) == 1 and isinstance(cond.values[0], str)
        for cond, _ in branches
    )


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

    fuses_one_hot = True

    def weights(self) -> np.ndarray:
        return self.coef[None, :]

    def outputs(self, table, features, function_name, blocks=()):
        return table, [_affine(table, features, self.coef, self.intercept, blocks)]


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

    fuses_one_hot = True

    def weights(self) -> np.ndarray:
        return self.coef

    def outputs(self, table, features, function_name, blocks=()):
        decisions = [
            _affine(table, features, row, b, blocks)
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
