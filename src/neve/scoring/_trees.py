"""Decision trees as SQL ``CASE`` expressions, carried through Ibis as one relation.

Why not plain Ibis expressions: building and compiling an Ibis expression costs
about 0.5 ms per tree node here, so a 100-tree forest of depth 8 (51k nodes)
would take ~25 s before any SQL runs, and a SQL-string view would be re-parsed
by sqlglot at a similar cost. :class:`TreeColumns` is a relation whose fields
are the node arrays themselves (hashable tuples); the SQL compiler turns it into
``SELECT *, CASE ... END AS t0, ... FROM parent`` by plain string assembly in
the target dialect at ~2 µs per node. The result is an ordinary lazy Ibis table:
it can be filtered, joined, saved or compiled to another dialect.

Missing values (NULL, or NaN already turned into NULL by the caller) follow the
node's ``missing_go_to_left`` without an extra test: ``CASE WHEN x <= t THEN L
ELSE R`` sends NULL right, and ``CASE WHEN x > t THEN R ELSE L`` sends it left.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import ibis.expr.datatypes as dt
import ibis.expr.operations as ops
import numpy as np
import sqlglot as sg
import sqlglot.expressions as sge
from ibis.backends.sql.compilers.base import STAR, SQLGlotCompiler
from ibis.common.annotations import attribute
from ibis.common.collections import FrozenOrderedDict
from ibis.expr.schema import Schema

__all__ = ["Tree", "TreeColumns", "tree_from_hgb", "tree_from_sklearn"]


@dataclass(frozen=True)
class Tree:
    """One tree's nodes in flat arrays; ``left[i] == -1`` marks a leaf.

    ``value[i]`` is what the leaf contributes to one output column, already in
    its final form (normalised class share, or leaf value times learning rate).
    """

    left: tuple[int, ...]
    right: tuple[int, ...]
    feature: tuple[int, ...]
    threshold: tuple[float, ...]
    missing_left: tuple[bool, ...]
    value: tuple[float, ...]

    @property
    def n_nodes(self) -> int:
        return len(self.left)


def tree_from_sklearn(tree: Any, values: np.ndarray, *, nan_routing: bool = True) -> Tree:
    """A :class:`Tree` from a fitted ``sklearn.tree._tree.Tree`` and per-node ``values``.

    ``nan_routing=False`` is for models that never route missing values (gradient
    boosting rejects NaN); missing then goes right, as ``NaN <= t`` is false.
    """
    n = tree.node_count
    missing = getattr(tree, "missing_go_to_left", None)
    if missing is None or not nan_routing:
        missing = np.zeros(n, dtype=bool)
    return Tree(
        left=tuple(tree.children_left.tolist()),
        right=tuple(tree.children_right.tolist()),
        feature=tuple(tree.feature.tolist()),
        threshold=tuple(tree.threshold.tolist()),
        missing_left=tuple(np.asarray(missing, dtype=bool).tolist()),
        value=tuple(np.asarray(values, dtype=np.float64).tolist()),
    )


def tree_from_hgb(predictor: Any) -> Tree:
    """A :class:`Tree` from one ``HistGradientBoosting`` ``TreePredictor``."""
    nodes = predictor.nodes
    leaf = nodes["is_leaf"].astype(bool)
    return Tree(
        left=tuple(np.where(leaf, -1, nodes["left"].astype(np.int64)).tolist()),
        right=tuple(np.where(leaf, -1, nodes["right"].astype(np.int64)).tolist()),
        feature=tuple(nodes["feature_idx"].tolist()),
        threshold=tuple(nodes["num_threshold"].tolist()),
        missing_left=tuple(nodes["missing_go_to_left"].astype(bool).tolist()),
        value=tuple(nodes["value"].tolist()),
    )


class TreeColumns(ops.Relation):
    """``parent`` plus one float64 column per tree, evaluated over ``features``."""

    parent: ops.Relation
    features: tuple[str, ...]
    names: tuple[str, ...]
    trees: tuple[Tree, ...]

    @attribute
    def values(self) -> FrozenOrderedDict:
        return FrozenOrderedDict()

    @attribute
    def schema(self) -> Schema:
        fields = dict(self.parent.schema.items())
        fields.update({name: dt.float64 for name in self.names})
        return Schema(fields)


def _literal_renderer(dialect: str) -> Any:
    # A bare decimal literal is DECIMAL in DuckDB and its cast to DOUBLE is not correctly
    # rounded (off by an ulp); a string cast goes through a correctly rounding parser.
    template = sge.cast(sge.Literal.string("0"), "double").sql(dialect=dialect)
    head, tail = template.split("'0'", 1)

    def render(value: float) -> str:
        return f"{head}'{value!r}'{tail}"

    return render


def tree_sql(tree: Tree, columns: list[str], literal: Any) -> str:
    """The nested ``CASE`` for one tree, as SQL text with pre-quoted column names."""
    parts: list[str] = []
    stack: list[Any] = [0]
    left, right, feature = tree.left, tree.right, tree.feature
    threshold, missing_left, value = tree.threshold, tree.missing_left, tree.value
    # Iterative pre-order walk: deep trees must not hit Python's recursion limit.
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            parts.append(item)
            continue
        node = item
        if left[node] == -1:
            parts.append(literal(value[node]))
            continue
        col, t = columns[feature[node]], threshold[node]
        if t == np.inf:  # HistGradientBoosting: every non-missing value goes left
            if missing_left[node]:
                stack.append(left[node])
            else:
                parts.append(f"CASE WHEN {col} IS NULL THEN ")
                stack.extend([" END", left[node], " ELSE ", right[node]])
            continue
        if missing_left[node]:
            parts.append(f"CASE WHEN {col} > {literal(t)} THEN ")
            stack.extend([" END", left[node], " ELSE ", right[node]])
        else:
            parts.append(f"CASE WHEN {col} <= {literal(t)} THEN ")
            stack.extend([" END", right[node], " ELSE ", left[node]])
    return "".join(parts)


def _visit_tree_columns(self: SQLGlotCompiler, op: TreeColumns, *, parent: Any, **_: Any) -> Any:
    literal = _literal_renderer(self.dialect)
    columns = [sg.to_identifier(name, quoted=True).sql(dialect=self.dialect) for name in op.features]
    fields = [
        sge.Alias(
            this=sge.Var(this=tree_sql(tree, columns, literal)),
            alias=sg.to_identifier(name, quoted=self.quoted),
        )
        for name, tree in zip(op.names, op.trees, strict=True)
    ]
    return sg.select(STAR, *fields, copy=False).from_(parent, copy=False)


# Compilers dispatch on ``visit_<OpName>`` by attribute lookup, so every SQL backend
# (and every subclass compiler) picks this up.
SQLGlotCompiler.visit_TreeColumns = _visit_tree_columns  # type: ignore[attr-defined]
