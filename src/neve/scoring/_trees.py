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
A categorical split (HistGradientBoosting) is an ``IN`` list of raw category values,
written so that NULL and categories the model never saw fall to the missing side,
as scikit-learn routes them.

Two forms render the same relation: ``"case"`` (a nested CASE per tree, every
dialect) and ``"bitmask"`` (:mod:`neve.scoring._bitmask`, faster where the engine
supports it). The engine's driver names the form it runs fastest
(``Driver.tree_scoring``); the form is kept on the relation and honoured by any
dialect that can render it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
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

__all__ = [
    "FORMS", "Tree", "TreeColumns", "case_form", "membership_renderer", "tree_from_hgb", "tree_from_sklearn",
    "tree_sql",
]


@dataclass(frozen=True)
class Tree:
    """One tree's nodes in flat arrays; ``left[i] == -1`` marks a leaf.

    ``value[i]`` is what the leaf contributes to one output column, already in
    its final form (normalised class share, or leaf value times learning rate).
    ``left_values[i]``, for a categorical split, holds the raw category values that
    go left and ``right_values[i]`` the known ones that go right; anything else
    (NULL, unseen) follows ``missing_left[i]``. Both are ``None`` on numeric splits.
    """

    left: tuple[int, ...]
    right: tuple[int, ...]
    feature: tuple[int, ...]
    threshold: tuple[float, ...]
    missing_left: tuple[bool, ...]
    value: tuple[float, ...]
    left_values: tuple[tuple[Any, ...] | None, ...] | None = None
    right_values: tuple[tuple[Any, ...] | None, ...] | None = None

    @property
    def n_nodes(self) -> int:
        return len(self.left)

    @property
    def shape(self) -> tuple[Any, ...]:
        """Everything but the leaf values: trees of one shape reach the same leaf."""
        return (self.left, self.right, self.feature, self.threshold, self.missing_left,
                self.left_values, self.right_values)

    def categories(self, node: int) -> tuple[tuple[Any, ...], tuple[Any, ...]] | None:
        """``(left values, right values)`` of a categorical split, else ``None``."""
        if self.left_values is None or self.left_values[node] is None:
            return None
        return self.left_values[node], self.right_values[node]


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


def _bitset_members(bitset: np.ndarray) -> list[int]:
    """The integers in one of scikit-learn's 256-bit category bitsets (8 x uint32)."""
    words = np.asarray(bitset, dtype=np.uint32)
    return [32 * w + b for w in range(len(words)) for b in range(32) if (int(words[w]) >> b) & 1]


def tree_from_hgb(
    predictor: Any,
    feature_map: Sequence[int] | None = None,
    categories: dict[int, Sequence[Any]] | None = None,
    known: dict[int, np.ndarray] | None = None,
) -> Tree:
    """A :class:`Tree` from one ``HistGradientBoosting`` ``TreePredictor``.

    ``feature_map[j]`` is the model input column of the predictor's feature ``j``
    (scikit-learn moves categorical features first); ``categories[j]`` the raw values
    whose codes are ``0, 1, ...`` and ``known[j]`` the known-categories bitset.
    """
    nodes = predictor.nodes
    leaf = nodes["is_leaf"].astype(bool)
    features = nodes["feature_idx"].astype(np.int64)
    left_values: list[tuple[Any, ...] | None] = [None] * len(nodes)
    right_values: list[tuple[Any, ...] | None] = [None] * len(nodes)
    any_categorical = False
    if "is_categorical" in nodes.dtype.names:
        for i in np.flatnonzero(nodes["is_categorical"].astype(bool) & ~leaf):
            j = int(features[i])
            values = list(categories[j])
            known_codes = [c for c in _bitset_members(known[j]) if c < len(values)]
            left_codes = set(_bitset_members(predictor.raw_left_cat_bitsets[nodes["bitset_idx"][i]]))
            left_values[i] = tuple(values[c] for c in known_codes if c in left_codes)
            right_values[i] = tuple(values[c] for c in known_codes if c not in left_codes)
            any_categorical = True
    if feature_map is not None:
        features = np.asarray(feature_map, dtype=np.int64)[features]
    return Tree(
        left=tuple(np.where(leaf, -1, nodes["left"].astype(np.int64)).tolist()),
        right=tuple(np.where(leaf, -1, nodes["right"].astype(np.int64)).tolist()),
        feature=tuple(features.tolist()),
        threshold=tuple(nodes["num_threshold"].tolist()),
        missing_left=tuple(nodes["missing_go_to_left"].astype(bool).tolist()),
        value=tuple(nodes["value"].tolist()),
        left_values=tuple(left_values) if any_categorical else None,
        right_values=tuple(right_values) if any_categorical else None,
    )


class TreeColumns(ops.Relation):
    """``parent`` plus one float64 column per tree, evaluated over ``features``.

    ``form`` is how to render it where the dialect can (see the module docstring).
    """

    parent: ops.Relation
    features: tuple[str, ...]
    names: tuple[str, ...]
    trees: tuple[Tree, ...]
    form: str = "case"

    @attribute
    def values(self) -> FrozenOrderedDict:
        return FrozenOrderedDict()

    @attribute
    def schema(self) -> Schema:
        fields = dict(self.parent.schema.items())
        fields.update({name: dt.float64 for name in self.names})
        return Schema(fields)


def literal_renderer(dialect: str) -> Any:
    # A bare decimal literal is DECIMAL in DuckDB and its cast to DOUBLE is not correctly
    # rounded (off by an ulp); a string cast goes through a correctly rounding parser.
    template = sge.cast(sge.Literal.string("0"), "double").sql(dialect=dialect)
    head, tail = template.split("'0'", 1)

    def render(value: float) -> str:
        return f"{head}'{value!r}'{tail}"

    return render


def value_renderer(dialect: str) -> Any:
    """SQL text for a category value (string or number) in ``dialect``."""

    literal = literal_renderer(dialect)

    def render(value: Any) -> str:
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, float):
            return literal(value)
        return sge.convert(value).sql(dialect=dialect)

    return render


def membership_renderer(dialect: str) -> Callable[[str, Sequence[Any], Any], str]:
    """``(column, values, render) -> SQL`` true when the column is one of the values, NULL
    for a NULL column (so a CASE sends it to ELSE, like ``IN``).

    DuckDB rewrites an ``IN`` list of more than a few constants into a join against the
    list, one per ``IN`` in the query: inside a forest's nested CASEs that cost 31 s against
    0.65 s for ``list_contains`` (10k rows, 50 trees, categorical splits; BENCHMARKS.md).
    """
    if dialect == "duckdb":
        return lambda col, values, render: (
            f"list_contains([{', '.join(render(v) for v in values)}], {col})")
    return lambda col, values, render: f"{col} IN ({', '.join(render(v) for v in values)})"


def tree_sql(
    tree: Tree, columns: list[str], literal: Any, render: Any = None, member: Any = None
) -> str:
    """The nested ``CASE`` for one tree, as SQL text with pre-quoted column names
    (``member``: a :func:`membership_renderer`, ``IN`` lists by default)."""
    member = member or membership_renderer("")
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
        split = tree.categories(node)
        if split is not None:
            # NULL and unseen values are in neither list: they take the ELSE branch,
            # which is the missing side.
            if missing_left[node]:
                go, other, listed = right[node], left[node], split[1]
            else:
                go, other, listed = left[node], right[node], split[0]
            if not listed:
                stack.append(other)
                continue
            parts.append(f"CASE WHEN {member(col, listed, render)} THEN ")
            stack.extend([" END", other, " ELSE ", go])
            continue
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


#: Other forms: name -> (dialects it renders in, renderer(compiler, op, parent) -> SELECT).
#: Registered by their modules (``neve.scoring._bitmask``).
FORMS: dict[str, tuple[frozenset[str], Callable[..., Any]]] = {}


def _visit_tree_columns(self: SQLGlotCompiler, op: TreeColumns, *, parent: Any, **_: Any) -> Any:
    dialects, renderer = FORMS.get(op.form, (frozenset(), None))
    if self.dialect in dialects:
        return renderer(self, op, parent)
    return case_form(self, op, parent)


def case_form(self: SQLGlotCompiler, op: TreeColumns, parent: Any) -> Any:
    """The SELECT for ``op`` over ``parent`` with a nested CASE column per tree."""
    literal = literal_renderer(self.dialect)
    render = value_renderer(self.dialect)
    member = membership_renderer(self.dialect)
    columns = [sg.to_identifier(name, quoted=True).sql(dialect=self.dialect) for name in op.features]
    fields = [
        sge.Alias(
            this=sge.Var(this=tree_sql(tree, columns, literal, render, member)),
            alias=sg.to_identifier(name, quoted=self.quoted),
        )
        for name, tree in zip(op.names, op.trees, strict=True)
    ]
    return sg.select(STAR, *fields, copy=False).from_(parent, copy=False)


# Compilers dispatch on ``visit_<OpName>`` by attribute lookup, so every SQL backend
# (and every subclass compiler) picks this up.
SQLGlotCompiler.visit_TreeColumns = _visit_tree_columns  # type: ignore[attr-defined]
