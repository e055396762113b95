"""Fusing a pipeline's trailing OneHotEncoder into a linear model.

A linear model over one-hot columns computes ``sum_j onehot_j * w_j`` per input
column: one CASE, a cast and a multiply per category, all but one of them zero.
Since at most one indicator of an input column is 1 in a row, the same sum is one
``CASE WHEN <category 1> THEN w_1 WHEN <category 2> THEN w_2 ... ELSE 0 END``: a
column with 60 categories costs one CASE instead of 60 (about 3-4x faster on
DuckDB at 1M rows). The result is bit-identical: ``1.0 * w == w``, and the terms the
fusion drops are zeros, whose addition changes nothing.

The encoder's own expressions are reused (its conditions, its unknown-category
error); anything that does not have the expected shape leaves the pipeline unfused,
so this is an optimisation only, never a second implementation of the encoder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import ibis.expr.operations as ops
import ibis.expr.types as ir
import numpy as np

__all__ = ["OneHotBlock", "split_one_hot"]


@dataclass
class OneHotBlock:
    """The one-hot features made from one input column.

    ``branches`` are ``(condition, feature index)``: at most one condition holds in a
    row, and the feature is 1 where it holds and 0 elsewhere. ``guards`` are
    ``(condition, value, feature index)`` checked first: where the condition holds,
    the feature takes ``value`` (the encoder's unknown-category error).
    """

    branches: list[tuple[ir.BooleanValue, int]] = field(default_factory=list)
    guards: list[tuple[ir.BooleanValue, ir.Value, int]] = field(default_factory=list)

    @property
    def first(self) -> int:
        return min([i for _, i in self.branches] + [i for _, _, i in self.guards])


def _constant(op: ops.Node) -> float | None:
    """The numeric value of a literal, possibly cast (how neve writes exact constants)."""
    if isinstance(op, ops.Cast):
        op = op.arg
    if not isinstance(op, ops.Literal):
        return None
    try:
        return float(op.value)
    except (TypeError, ValueError):
        return None


def _indicator(expr: ir.Value) -> tuple[list[tuple[ir.BooleanValue, ir.Value]], ir.BooleanValue] | None:
    """``(guards, condition)`` when ``expr`` is ``[guards ->] IF(condition, 1, 0)``."""
    guards = []
    op = expr.op()
    while isinstance(op, ops.IfElse):
        if _constant(op.true_expr) == 1.0 and _constant(op.false_null_expr) == 0.0:
            return guards, op.bool_expr.to_expr()
        guards.append((op.bool_expr.to_expr(), op.true_expr.to_expr()))
        op = op.false_null_expr
    return None


def split_one_hot(
    pipeline: Any, table: ir.Table, features: list[str], weights: np.ndarray
) -> tuple[ir.Table, list[OneHotBlock]] | None:
    """``(table after every step but the last, blocks)`` when the pipeline ends with a
    OneHotEncoder whose outputs can be fused into a linear model with ``weights``
    (``n_outputs x n_features``); ``None`` when it cannot (then apply it as usual).

    Features that are not one-hot outputs are columns of the returned table.
    """
    from neve.preprocessing import OneHotEncoder

    steps = list(pipeline.steps)
    encoder = steps[-1][1] if steps else None
    if type(encoder) is not OneHotEncoder or not np.all(np.isfinite(weights)):
        return None
    pipeline._check_is_fitted()
    prefix = table
    for _, step in steps[:-1]:
        prefix = step.transform(prefix)
    encoder._check_is_fitted()
    encoder._check_columns(prefix, encoder.input_cols_)
    produced = encoder._transform_columns(prefix)
    final_columns = set(encoder.output_columns(list(prefix.columns)))
    position = {name: i for i, name in enumerate(features)}
    outputs = {name for pairs in produced.values() for name, _ in pairs}
    for name in features:
        # A feature the encoder did not produce must reach the model unchanged.
        if name not in outputs and (name not in final_columns or name not in prefix.columns):
            return None
    blocks = []
    for pairs in produced.values():
        block = OneHotBlock()
        for name, expr in pairs:
            if name not in position:
                continue  # not a model feature: it only ever added zeros
            shape = _indicator(expr)
            if shape is None:
                return None
            guards, condition = shape
            block.guards += [(cond, value, position[name]) for cond, value in guards]
            block.branches.append((condition, position[name]))
        if block.branches or block.guards:
            blocks.append(block)
    return prefix, blocks
