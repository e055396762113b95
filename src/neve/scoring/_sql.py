"""Small Ibis building blocks shared by the model compilers."""

from __future__ import annotations

import functools
import operator
from collections.abc import Sequence
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np

from neve._sql_literals import double

__all__ = ["argmax_label", "double", "expit", "label", "softmax", "total"]




def total(terms: Sequence[ir.NumericValue]) -> ir.NumericValue:
    """``((a + b) + c) + ...``: the left-to-right order numpy accumulates in."""
    return functools.reduce(operator.add, terms)


def expit(x: ir.NumericValue) -> ir.FloatingValue:
    return double(1.0) / (double(1.0) + (-x).exp())


def softmax(xs: Sequence[ir.NumericValue]) -> list[ir.FloatingValue]:
    """scikit-learn's shifted softmax: ``exp(x - max) / sum(exp(x - max))``."""
    top = ibis.greatest(*xs) if len(xs) > 1 else xs[0]
    shifted = [(x - top).exp() for x in xs]
    norm = total(shifted)
    return [s / norm for s in shifted]


def label(value: Any) -> ir.Scalar:
    """A class label as an Ibis literal of its natural type."""
    if isinstance(value, np.generic):
        value = value.item()
    return ibis.literal(value)


def argmax_label(scores: Sequence[ir.NumericValue], classes: Sequence[Any]) -> ir.Value:
    """``classes[argmax(scores)]`` with numpy's tie rule: the first maximum wins.

    Class ``i`` is chosen when its score is >= every later one: the earlier classes
    already lost, so each of them is below some score and hence below the maximum.
    """
    branches = []
    for i in range(len(scores) - 1):
        wins = functools.reduce(operator.and_, [scores[i] >= later for later in scores[i + 1 :]])
        branches.append((wins, label(classes[i])))
    return ibis.cases(*branches, else_=label(classes[-1]))
