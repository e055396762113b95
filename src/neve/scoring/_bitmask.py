"""Tree ensembles as bitmasks: the ``"bitmask"`` form of :class:`~neve.scoring._trees.TreeColumns`.

QuickScorer's idea, reshaped for a vectorised SQL engine, where every operation is
applied to a whole column and a nested CASE costs tens of nanoseconds per level:

1. **Bins.** Per feature, every threshold the ensemble tests, sorted; a row's bin is
   how many of them its value exceeds (a branchless binary search, ~8 levels of
   vector arithmetic for 255 thresholds), with one more bin for NULL. A categorical feature's bin is the
   position of its value among the categories the ensemble splits on, with one
   more bin for NULL and unseen values. Every split is then a question about bins.
2. **Leaf sets.** Each leaf of a tree is a box: per feature, the set of bins that
   reach it. The leaves that a bin ``b`` of feature ``f`` allows form a bitmask, and
   ANDing the masks of a row's bins over all features leaves exactly one bit: the
   leaf the row reaches (boxes partition the space). Masks of several trees are
   packed side by side into one 64-bit UBIGINT word, so a row needs one list lookup
   per (word, feature) and one AND per word and feature.
3. **Leaf values.** The leaf's bit ``2**k`` modulo 67 (a prime of primitive root 2, so
   each ``k < 64`` has its own residue) indexes a constant list of the tree's leaf values
   placed at those residues.

Routing is decided entirely by the bins, with the same comparisons as the CASE form
(``x <= t``, ``IS NULL``, equality with a category), so predictions are the same bit
for bit; the ensemble still adds the trees' columns in scikit-learn's order. Trees
with more than 64 leaves keep their nested CASE.

Only DuckDB renders it (list literals indexed by an expression, unsigned 64-bit words);
other dialects get the CASE form from the same relation.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sqlglot as sg
import sqlglot.expressions as sge

from neve.scoring._trees import (
    FORMS,
    Tree,
    case_form,
    literal_renderer,
    membership_renderer,
    tree_sql,
    value_renderer,
)

__all__ = ["DIALECTS", "render"]

DIALECTS = frozenset({"duckdb"})
WORD_BITS = 64
#: A guard on the SQL's size (~20 bytes a constant): above this many mask constants the
#: nested CASE is rendered instead. Measured at 1M rows (BENCHMARKS.md, "Tree scoring"),
#: even a 100-tree exact-threshold forest (thousands of bins per feature) ran faster as
#: bitmasks than as CASE; the limit itself was not tuned by measurement.
MAX_MASK_ENTRIES = 4_000_000
#: A prime with 2 as a primitive root, above WORD_BITS: 2**k mod 67 differs for every k < 66.
_MODULUS = 67


@dataclass
class _Feature:
    """How one feature is binned: sorted numeric thresholds, or category values."""

    thresholds: list[float] = field(default_factory=list)
    categories: list[Any] = field(default_factory=list)

    @property
    def categorical(self) -> bool:
        return bool(self.categories)

    @property
    def n_bins(self) -> int:
        """Bins including the last one, for NULL (and unseen categories)."""
        if self.categorical:
            return len(self.categories) + 1
        return len(self.thresholds) + 2


def _features(trees: list[Tree], n_features: int) -> list[_Feature]:
    thresholds: list[set[float]] = [set() for _ in range(n_features)]
    categories: list[dict[Any, None]] = [{} for _ in range(n_features)]
    for tree in trees:
        for node in range(tree.n_nodes):
            if tree.left[node] == -1:
                continue
            f = tree.feature[node]
            split = tree.categories(node)
            if split is not None:
                categories[f].update(dict.fromkeys([*split[0], *split[1]]))
            elif tree.threshold[node] != np.inf:
                thresholds[f].add(tree.threshold[node])
    out = []
    for f in range(n_features):
        if categories[f] and thresholds[f]:
            raise ValueError(f"feature {f} has both numeric and categorical splits")
        out.append(_Feature(sorted(thresholds[f]), list(categories[f])))
    return out


def _leaf_boxes(tree: Tree, features: list[_Feature]) -> list[tuple[int, dict[int, int]]]:
    """Each leaf in order with its box: per feature it depends on, the bitset of bins
    (Python int, bit ``b`` for bin ``b``) that reach it."""
    index = [{t: i for i, t in enumerate(f.thresholds)} for f in features]
    position = [{v: i for i, v in enumerate(f.categories)} for f in features]
    leaves = []
    stack: list[tuple[int, dict[int, int]]] = [(0, {})]
    while stack:
        node, box = stack.pop()
        if tree.left[node] == -1:
            leaves.append((node, box))
            continue
        f = tree.feature[node]
        spec = features[f]
        everything = (1 << spec.n_bins) - 1
        missing = 1 << (spec.n_bins - 1)
        split = tree.categories(node)
        if split is not None:
            goes_left = sum(1 << position[f][v] for v in split[0])
        elif tree.threshold[node] == np.inf:
            goes_left = everything & ~missing
        else:
            goes_left = (1 << (index[f][tree.threshold[node]] + 1)) - 1
        if split is not None:
            goes_right = sum(1 << position[f][v] for v in split[1])
            unseen = everything & ~goes_left & ~goes_right  # NULL and unseen categories
        else:
            goes_right = everything & ~goes_left & ~missing
            unseen = missing
        if tree.missing_left[node]:
            goes_left |= unseen
        else:
            goes_right |= unseen
        current = box.get(f, everything)
        stack.append((tree.right[node], {**box, f: current & goes_right}))
        stack.append((tree.left[node], {**box, f: current & goes_left}))
    return leaves


def _bin_levels(f: int, col: str, spec: _Feature, render: Any, dialect: str) -> list[str]:
    """SQL for feature ``f``'s bin, one expression per projection level; the last is the bin,
    counted from 1 as the mask lists are indexed.

    Numeric: a branchless binary search over the sorted thresholds (padded with +inf to
    ``2**k - 1``), one level per halving: ``pos += step * (x > T[pos + step])``. It counts
    the thresholds below ``x``, exactly what ``x <= t`` decides; DuckDB runs it as plain
    vector arithmetic, where a nested CASE costs a selection pass per level. NULL
    propagates through the arithmetic and lands in the last bin. Categorical: the
    position among the categories; NULL and unseen values in the last bin.
    """
    last = spec.n_bins
    if spec.categorical:
        values = ", ".join(render(v) for v in spec.categories)
        return [f"coalesce(list_position([{values}], {col}), {last})"]
    n = len(spec.thresholds)
    if n == 0:  # only "everything but missing goes left" splits
        return [f"CASE WHEN {col} IS NULL THEN {last} ELSE 1 END"]
    k = n.bit_length()
    padded = [repr(float(t)) for t in spec.thresholds] + ["inf"] * ((1 << k) - 1 - n)
    table = f"(CAST([{', '.join(repr(t) for t in padded)}] AS DOUBLE[]))"
    levels, pos = [], "0"
    for j in range(k):
        step = 1 << (k - 1 - j)
        expr = f"{pos} + {step} * CAST({col} > {table}[{pos} + {step}] AS INTEGER)"
        levels.append(expr if j < k - 1 else f"coalesce({expr} + 1, {last})")
        pos = _ident(f"__neve_b{f}_{j}", dialect)
    return levels


@dataclass
class _Packed:
    """One tree shape's place in a word: its leaves, in order, at bits ``offset...``."""

    word: int
    offset: int
    leaves: list[tuple[int, dict[int, int]]]


def _mask_entries(trees: list[Tree], features: list[_Feature]) -> int:
    """About how many constants the mask lists hold: words times bins of the features
    split on (an upper bound: a word lists only the features its trees split on)."""
    leaves = sum(tree.left.count(-1) for tree in {tree.shape: tree for tree in trees}.values())
    bins = sum(f.n_bins for f in features if f.thresholds or f.categories)
    return -(-leaves // WORD_BITS) * bins


def _ident(name: str, dialect: str) -> str:
    return sg.to_identifier(name, quoted=True).sql(dialect=dialect)


def render(compiler: Any, op: Any, parent: sge.Expression) -> sge.Expression:
    """The SELECT for ``op`` (a TreeColumns) over ``parent``, in the bitmask form."""
    dialect = compiler.dialect
    literal = literal_renderer(dialect)
    render_value = value_renderer(dialect)
    member = membership_renderer(dialect)
    trees = list(op.trees)
    columns = [_ident(name, dialect) for name in op.features]
    features = _features(trees, len(columns))
    if _mask_entries(trees, features) > MAX_MASK_ENTRIES:
        return case_form(compiler, op, parent)

    # Trees of one shape (a classifier's per-class trees) share their leaf index.
    shapes: dict[Any, int] = {}
    packed: list[_Packed] = []
    cased: dict[int, str] = {}
    words = 0
    used = WORD_BITS
    shape_of = []
    for i, tree in enumerate(trees):
        key = tree.shape
        if key not in shapes:
            shapes[key] = len(packed)
            leaves = _leaf_boxes(tree, features) if tree.n_nodes > 1 else []
            if len(leaves) > WORD_BITS:
                cased[i] = tree_sql(tree, columns, literal, render_value, member)
                packed.append(_Packed(-1, 0, leaves))
            else:
                if used + len(leaves) > WORD_BITS:
                    words += 1
                    used = 0
                packed.append(_Packed(words - 1 if leaves else -1, used, leaves))
                used += len(leaves)
        shape_of.append(shapes[key])

    # masks[w][f][b]: the leaves of word w that bin b of feature f allows.
    masks: list[dict[int, list[int]]] = [{} for _ in range(words)]
    members = [pack for pack in packed if pack.word >= 0]
    for pack in members:  # first every feature a word depends on, then its masks
        for _, box in pack.leaves:
            for f in box:
                masks[pack.word].setdefault(f, [0] * features[f].n_bins)
    for pack in members:
        word = masks[pack.word]
        for f in word:
            for k, (_, box) in enumerate(pack.leaves):
                allowed = box.get(f, (1 << features[f].n_bins) - 1)
                bit = 1 << (pack.offset + k)
                for b in range(features[f].n_bins):
                    if (allowed >> b) & 1:
                        word[f][b] |= bit

    binned = sorted({f for word in masks for f in word})
    bin_levels: list[list[sge.Expression]] = []
    for f in binned:
        exprs = _bin_levels(f, columns[f], features[f], render_value, dialect)
        for j, expr in enumerate(exprs):
            if j == len(bin_levels):
                bin_levels.append([])
            name = f"__neve_bin{f}" if j == len(exprs) - 1 else f"__neve_b{f}_{j}"
            bin_levels[j].append(sge.Alias(this=sge.Var(this=expr),
                                           alias=sg.to_identifier(name, quoted=True)))
    word_exprs = []
    for w, word in enumerate(masks):
        lookups = [
            f"(CAST([{', '.join(map(str, word[f]))}] AS UBIGINT[]))[{_ident(f'__neve_bin{f}', dialect)}]"
            for f in sorted(word)
        ]
        word_exprs.append(sge.Alias(this=sge.Var(this=" & ".join(lookups)),
                                    alias=sg.to_identifier(f"__neve_word{w}", quoted=True)))
    # One bit is left, a power of two 2**k (k < 64). Its residue modulo 67 names it: 2 is a
    # primitive root of 67, so 2**0 ... 2**63 leave 64 different residues. A tree's leaf
    # values sit in a list of 67 at those residues, so the value is one modulo and one
    # lookup. (DuckDB's bit_count loops once per set bit: counting the ones below the bit
    # took up to 61 steps a row and was half of the scoring time; log2 was 30% slower than
    # the modulo.) A shape one tree alone has (every regressor's tree) computes the residue
    # inline; shapes several trees share (a classifier's per-class trees) once, a level below.
    uses = Counter(shape_of)
    leaf_of: dict[int, str] = {}
    leaf_exprs = []
    for s, pack in enumerate(packed):
        if pack.word < 0:
            continue
        span = ((1 << len(pack.leaves)) - 1) << pack.offset
        word = _ident(f"__neve_word{pack.word}", dialect)
        residue = f"CAST(({word} & CAST({span} AS UBIGINT)) % CAST({_MODULUS} AS UBIGINT) AS BIGINT) + 1"
        if uses[s] == 1:
            leaf_of[s] = residue
            continue
        leaf_of[s] = _ident(f"__neve_leaf{s}", dialect)
        leaf_exprs.append(sge.Alias(this=sge.Var(this=residue), alias=sg.to_identifier(f"__neve_leaf{s}", quoted=True)))

    outputs = []
    for i, (name, tree) in enumerate(zip(op.names, trees, strict=True)):
        pack = packed[shape_of[i]]
        if i in cased or (pack.word < 0 and pack.leaves):
            text = cased.get(i) or tree_sql(tree, columns, literal, render_value, member)
        elif not pack.leaves:
            text = literal(tree.value[0])
        else:
            by_residue = ["0.0"] * _MODULUS
            for k, (node, _) in enumerate(pack.leaves):
                by_residue[pow(2, pack.offset + k, _MODULUS)] = str(float(tree.value[node]))
            values = ", ".join(map(repr, by_residue))
            text = f"(CAST([{values}] AS DOUBLE[]))[{leaf_of[shape_of[i]]}]"
        outputs.append(sge.Alias(this=sge.Var(this=text), alias=sg.to_identifier(name, quoted=True)))

    query: sge.Expression = parent
    for level, fields in enumerate([*bin_levels, word_exprs, leaf_exprs]):
        if fields:
            query = sg.select(sge.Star(), *fields, copy=False).from_(
                query if query is parent else query.subquery(f"__neve_m{level}"), copy=False,
            )
    kept = [sg.column(name, quoted=True) for name in op.parent.schema.names]
    source = parent if query is parent else query.subquery("__neve_m")
    return sg.select(*kept, *outputs, copy=False).from_(source, copy=False)


FORMS["bitmask"] = (DIALECTS, render)
