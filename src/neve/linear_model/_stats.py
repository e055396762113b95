"""Sufficient statistics of a linear model in one aggregate query.

A linear model fitted by least squares (or one Newton step of a GLM) needs only
weighted sums over the rows: ``Σω``, ``Σω·z``, ``Σω·z·zᵀ`` and ``Σt·z`` for a few
row weights ``ω`` and targets ``t``. The model's inputs ``z`` are described in
*z-space*: a constant 1, one 0/1 indicator per category of each categorical column,
then the numeric columns. Indicators are never written out: the query groups by the
categorical columns, and within a group every indicator is a constant, so the group's
counts and sums fill every block of the Gram matrix (scattered in the client).
With no categorical column the query is a plain aggregate (one row). When grouping by
every categorical column gives about as many groups as rows, later queries group by
each pair of them instead (GROUPING SETS): a block of XᵀX involves at most two
categorical columns, so the pair sets hold every block (see ``_use_pairs``).

Numeric columns are shifted by a pilot value (their value in one row, read by a
``LIMIT 1`` subquery of the same query) before squaring, so a column such as
``1e9 + noise`` keeps its variance: centred sums are formed from small numbers.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import sqlglot.expressions as sge

from neve import _sql_templates as T
from neve._sql_literals import double, typed
from neve._table import missing_to_null
from neve.engine import _queries
from neve.errors import EmptyInputError, NeveInputError
from neve.preprocessing._categories import MISSING, is_missing

__all__ = ["MAX_FEATURES", "MAX_NUMERIC", "Design", "Stats", "gather", "gather_by"]

#: Widest design solved densely in the client (a 5000x5000 float64 matrix is 200 MB).
MAX_FEATURES = 5000
#: Most numeric columns whose products one query sums (n(n+1)/2 sums per row weight).
MAX_NUMERIC = 300
#: Groups per row above which later statistics queries group by column pairs (see
#: ``_use_pairs``); 0 groups by pairs from the first query.
PAIRS_ABOVE = 0.25


@dataclass
class Design:
    """What the statistics query reads from ``table``.

    ``categorical`` columns are grouped on (each becomes a block of indicators);
    ``numeric`` maps a name to a float64 expression over ``table``. ``categories``
    is filled from the first query (sorted as scikit-learn sorts them, missing last).
    """

    table: ir.Table
    categorical: list[str] = field(default_factory=list)
    numeric: dict[str, ir.Value] = field(default_factory=dict)
    categories: dict[str, list[Any]] | None = None
    pilot: np.ndarray | None = None
    #: ``(groups, rows)`` of the last statistics query grouped by every categorical column.
    observed_groups: tuple[int, int] | None = None
    #: Rows per category of each categorical column (filled by the first query).
    frequency: dict[str, np.ndarray] | None = None

    def check_width(self, owner: str) -> None:
        if len(self.numeric) > MAX_NUMERIC:
            raise NeveInputError(
                f"{owner}: {len(self.numeric)} numeric features need "
                f"{len(self.numeric) * (len(self.numeric) + 1) // 2} product sums in one query "
                f"(limit {MAX_NUMERIC} numeric columns); reduce the features, leave categorical "
                f"columns to a OneHotEncoder step (they cost no product sums), or fit a "
                f"scikit-learn estimator on an extract"
            )

    @property
    def offsets(self) -> dict[str, int]:
        """Index of each categorical column's first indicator in z-space (0 is the constant)."""
        assert self.categories is not None
        at, out = 1, {}
        for col in self.categorical:
            out[col] = at
            at += len(self.categories[col])
        return out

    @property
    def size(self) -> int:
        """Length of z: the constant, every indicator, every numeric column."""
        assert self.categories is not None
        return 1 + sum(len(self.categories[c]) for c in self.categorical) + len(self.numeric)

    def numeric_index(self, name: str) -> int:
        return self.size - len(self.numeric) + list(self.numeric).index(name)

    def linear_predictor(self, gamma: np.ndarray) -> ir.FloatingValue:
        """``gamma · z`` per row (``z`` unshifted), in SQL: one CASE per categorical column."""
        assert self.categories is not None
        terms: list[ir.Value] = [double(gamma[0])]
        for col, at in self.offsets.items():
            x = missing_to_null(self.table[col])
            cats = self.categories[col]
            weights = [(c, float(gamma[at + k])) for k, c in enumerate(cats) if gamma[at + k] != 0.0]
            if self.frequency is not None:
                # Most frequent first: a row leaves the CASE at its own branch, so the engine
                # makes far fewer comparisons on skewed categories (taxi zones).
                rank = dict(zip(cats, self.frequency[col], strict=True))
                weights.sort(key=lambda cw: -rank[cw[0]])
            if not weights:
                continue
            if all(is_missing(c) or type(c) in (str, int, float, bool) for c, _ in weights):
                # One CASE written as text: an Ibis node per category costs ~1 ms to build and
                # more to rebind on every Newton step.
                branches = tuple((T.Member(T.Input("x"), (c,), never_null=False), T.Const(g)) for c, g in weights)
                terms.append(T.value_text(T.Case(branches, T.Const(0.0)), dt.float64, {"x": x}))
                continue
            branches = [(x == typed(c, x.type()), double(g)) for c, g in weights if not is_missing(c)]
            if is_missing(cats[-1]) and gamma[at + len(cats) - 1] != 0.0:
                branches.insert(0, (x.isnull(), double(gamma[at + len(cats) - 1])))
            terms.append(ibis.cases(*branches, else_=double(0.0)))
        for name, expr in self.numeric.items():
            g = gamma[self.numeric_index(name)]
            if g != 0.0:
                terms.append(expr * double(g))
        out = terms[0]
        for term in terms[1:]:
            out = out + term
        return out


@dataclass
class Stats:
    """Grouped sums from one query, combined in the client.

    ``gram[m]`` is ``Σ ω_m z zᵀ`` and ``cross[r]`` is ``Σ t_r z`` over z-space, with the
    numeric columns shifted by ``design.pilot``; ``extras`` holds the other aggregates,
    combined over groups as they asked (sum, min or max).
    """

    gram: list[np.ndarray]
    cross: list[np.ndarray]
    extras: dict[str, float]
    n_groups: int

    def unshift(self, design: Design) -> np.ndarray:
        """The ``(size x size)`` map taking shifted z to unshifted z (``z = S z_shifted``)."""
        shift = np.eye(design.size)
        for k, name in enumerate(design.numeric):
            shift[design.numeric_index(name), 0] = design.pilot[k]
        return shift


Combine = str  # "sum" | "min" | "max" | "exact" (integers summed exactly, e.g. a fingerprint)


def gather(
    design: Design,
    *,
    weights: Sequence[ir.FloatingValue | None],
    targets: Sequence[ir.FloatingValue],
    extras: Mapping[str, tuple[ir.Scalar | Callable[[], ir.Scalar], Combine]] = {},
    owner: str,
    pairs: bool | None = None,
) -> Stats:
    """Run the one statistics query over ``design.table`` and combine its groups.

    ``weights`` are row weights ``ω`` (``None``: 1), ``targets`` row values ``t``;
    ``extras`` are further aggregates (any ibis reduction over ``design.table``).
    The first call learns ``design.categories`` and ``design.pilot``. ``pairs`` forces
    grouping by column pairs (or not); by default ``_use_pairs`` decides.
    """
    return gather_by(design, None, 0, weights=weights, targets=targets, extras=extras, owner=owner,
                     pairs=pairs)[0]


def gather_by(
    design: Design,
    part: ir.IntegerValue | None,
    n_parts: int,
    *,
    weights: Sequence[ir.FloatingValue | None],
    targets: Sequence[ir.FloatingValue],
    extras: Mapping[str, tuple[ir.Scalar | Callable[[], ir.Scalar], Combine]] = {},
    owner: str,
    pairs: bool | None = None,
) -> list[Stats]:
    """:func:`gather`, with the rows also grouped by ``part`` (an integer expression over
    ``design.table`` in ``0 .. n_parts - 1``, such as a cross-validation fold): one query,
    one :class:`Stats` per part, all over the same z-space (the categories of every part).
    With ``part`` None, one :class:`Stats` for the whole table.

    With a part and three or more categorical columns, the query groups by every pair of
    them and the part (GROUPING SETS): grouping by all of them and the part would have
    about as many groups as rows (each full group split across the parts), and its result
    would be the table again; the pairs stay O(parts x cardinality²)."""
    table = design.table
    numeric_names = list(design.numeric)
    first = design.pilot is None
    if first and numeric_names:
        pilot_row = table.select(**{f"p{i}": design.numeric[n] for i, n in enumerate(numeric_names)})
        pilot_row = pilot_row.limit(1)
        source = table.cross_join(pilot_row)
        pilots = [source[f"p{i}"].fill_null(0.0) for i in range(len(numeric_names))]
    else:
        source = table
        pilots = [double(v) for v in (design.pilot if design.pilot is not None else [])]
    # Re-bind the design's expressions to the joined table (same columns, new relation).
    rebind = (lambda e: e.op().replace({table.op(): source.op()}).to_expr()) if source is not table else (
        lambda e: e
    )
    z = [rebind(design.numeric[n]) - pilots[i] for i, n in enumerate(numeric_names)]
    keys = {f"k{a}": missing_to_null(source[col]) for a, col in enumerate(design.categorical)}
    if part is not None:
        keys[_PART] = rebind(part)
    n = len(z)
    metrics: dict[str, ir.Scalar] = {"n_rows": source.count()}
    for m, weight in enumerate(weights):
        w = None if weight is None else rebind(weight)
        # A constant weight (a Newton step from zero) multiplies plain sums.
        scale = w if isinstance(w, ir.Scalar) else None
        if scale is not None:
            w = None
        metrics[f"w{m}"] = source.count().cast("float64") if w is None else w.sum()
        for i in range(n):
            wz = z[i] if w is None else w * z[i]
            metrics[f"w{m}_{i}"] = wz.sum()
            for j in range(i, n):
                metrics[f"w{m}_{i}_{j}"] = (wz * z[j]).sum()
        if scale is not None:
            metrics = {k: v * scale if k.startswith(f"w{m}") else v for k, v in metrics.items()}
    for r, target in enumerate(targets):
        t = rebind(target)
        metrics[f"t{r}"] = t.sum()
        for i in range(n):
            metrics[f"t{r}_{i}"] = (t * z[i]).sum()
    for name, (expr, _) in extras.items():
        metrics[f"e_{name}"] = rebind(expr)
    if first and numeric_names:
        for i in range(n):
            metrics[f"p{i}"] = source[f"p{i}"].max()
    if pairs is None:
        pairs = len(design.categorical) >= 3 if part is not None else _use_pairs(design)
    pairs = pairs and len(design.categorical) >= 3
    if not keys:
        result = _queries.to_pyarrow(source.aggregate(**metrics))
    elif pairs:
        result = _grouping_sets(source.group_by(**keys).aggregate(**metrics), len(design.categorical),
                                always=int(part is not None))
    else:
        result = _queries.to_pyarrow(source.group_by(**keys).aggregate(**metrics))
    blocks = _blocks(result, len(design.categorical), pairs)
    whole = blocks[0].rows  # every grouping set covers every row once: the totals come from one
    counts = _column(whole, "n_rows")
    if whole.num_rows == 0 or counts.sum() == 0:
        raise EmptyInputError(f"{owner}.fit got a table with no rows (after dropping rows with a NULL label)")
    _learn(design, blocks, first, n, owner)
    if not pairs:
        design.observed_groups = (whole.num_rows, int(counts.sum()))
    if part is None:
        return [_combine(design, blocks, len(weights), len(targets), extras, result.num_rows)]
    which = [np.asarray(b.rows.column(_PART).to_numpy(zero_copy_only=False)) for b in blocks]
    out = []
    for k in range(n_parts):
        masks = [w == k for w in which]
        mask = masks[0]
        if not mask.any():
            raise EmptyInputError(
                f"{owner}: fold {k} of {n_parts} has no rows (the table has {int(counts.sum())} rows with a "
                f"label); use fewer folds or more rows"
            )
        own = [_Block(b.rows.filter(pa.array(m)), b.columns, {a: i[m] for a, i in b.index.items()})
               for b, m in zip(blocks, masks, strict=True)]
        out.append(_combine(design, own, len(weights), len(targets), extras, int(mask.sum())))
    return out


def _learn(design: Design, blocks: list[_Block], first: bool, n: int, owner: str) -> None:
    """Learn the pilot, categories and frequencies from the first query's result, and each
    group's indicator positions in z-space."""
    whole = blocks[0].rows
    if first:
        design.pilot = np.array([np.nanmax(_column(whole, f"p{i}", fill=np.nan)) for i in range(n)])
        design.pilot = np.nan_to_num(design.pilot)
    owner_of = {a: next(b for b in blocks if a in b.columns) for a in range(len(design.categorical))}
    if design.categories is None:
        design.categories = {col: _sorted_categories(owner_of[a].rows.column(f"k{a}"))
                             for a, col in enumerate(design.categorical)}
    for block in blocks:
        block.index = dict(zip(block.columns, _indicator_index(
            design, block.columns, [block.rows.column(f"k{a}") for a in block.columns], owner), strict=True))
    if design.frequency is None:
        design.frequency = {col: np.bincount(owner_of[a].index[a] - design.offsets[col],
                                             weights=_column(owner_of[a].rows, "n_rows"),
                                             minlength=len(design.categories[col]))
                            for a, col in enumerate(design.categorical)}


def _combine(
    design: Design, blocks: list[_Block], n_weights: int, n_targets: int,
    extras: Mapping[str, tuple[Any, Combine]], n_groups: int,
) -> Stats:
    """The Gram matrices, cross products and extras of ``blocks``' rows, in z-space."""
    whole = blocks[0].rows
    n = len(design.numeric)
    owner_of = {a: next(b for b in blocks if a in b.columns) for a in range(len(design.categorical))}
    size = design.size
    num_at = np.arange(size - n, size)
    grams = []
    for m in range(n_weights):
        gram = np.zeros((size, size))
        # The constant and each indicator block against itself, the constant and the numeric
        # columns come from a set holding that column; two indicator blocks from their pair's set.
        for block, a in [(blocks[0], None), *((owner_of[a], a) for a in owner_of)]:
            s0 = _column(block.rows, f"w{m}")
            one = np.zeros(len(s0), dtype=np.int64)
            at = one if a is None else block.index[a]
            _scatter(gram, at, at, s0)
            if a is not None:
                _scatter(gram, one, at, s0)
                _scatter(gram, at, one, s0)
            for i in range(n):
                s1 = _column(block.rows, f"w{m}_{i}")
                _scatter(gram, at, np.full(len(s0), num_at[i]), s1)
                _scatter(gram, np.full(len(s0), num_at[i]), at, s1)
        for a, b in itertools.combinations(range(len(design.categorical)), 2):
            block = next(x for x in blocks if a in x.columns and b in x.columns)
            s0 = _column(block.rows, f"w{m}")
            _scatter(gram, block.index[a], block.index[b], s0)
            _scatter(gram, block.index[b], block.index[a], s0)
        for i in range(n):
            for j in range(i, n):
                total = _column(whole, f"w{m}_{i}_{j}").sum()
                gram[num_at[i], num_at[j]] = gram[num_at[j], num_at[i]] = total
        grams.append(gram)
    crosses = []
    for r in range(n_targets):
        vec = np.zeros(size)
        vec[0] = _column(whole, f"t{r}").sum()
        for a, block in owner_of.items():
            vec += np.bincount(block.index[a], weights=_column(block.rows, f"t{r}"), minlength=size)
        for i in range(n):
            vec[num_at[i]] = _column(whole, f"t{r}_{i}").sum()
        crosses.append(vec)
    combined = {}
    for name, (_, how) in extras.items():
        if how == "exact":  # as Python integers: float64 would drop the low digits
            parts = [int(str(v)) for v in whole.column(f"e_{name}").to_pylist() if v is not None]
            combined[name] = sum(parts) if parts else None
            continue
        values = _column(whole, f"e_{name}", fill=np.nan)
        reduce = {"sum": np.nansum, "min": np.nanmin, "max": np.nanmax}[how]
        combined[name] = float(reduce(values)) if not np.all(np.isnan(values)) else math.nan
    return Stats(gram=grams, cross=crosses, extras=combined, n_groups=n_groups)


def _use_pairs(design: Design) -> bool:
    """Whether to group by column pairs (GROUPING SETS) instead of all categorical columns.

    With three or more encoded columns the full GROUP BY can have about as many groups as
    the table has rows (their product of cardinalities is large), and its result would
    then be the table again. Pairs give every block of the Gram matrix in O(cardinality²)
    rows whatever the data, but DuckDB computes each set as its own aggregate (2-3x the
    work of one GROUP BY), so they are used once a query has shown the full grouping to
    have more than ``PAIRS_ABOVE`` groups per row (the Newton steps after the first).
    """
    if len(design.categorical) < 3:
        return False  # a pair is the whole grouping
    if PAIRS_ABOVE <= 0:
        return True
    if design.observed_groups is None:
        return False
    groups, rows = design.observed_groups
    return groups > PAIRS_ABOVE * rows


@dataclass
class _Block:
    """The result rows of one grouping set and the categorical columns (by position) it groups."""

    rows: Any
    columns: tuple[int, ...]
    index: dict[int, np.ndarray] = field(default_factory=dict)


def _blocks(result: Any, n_keys: int, pairs: bool) -> list[_Block]:
    if not pairs:
        return [_Block(result, tuple(range(n_keys)))]
    gid = np.asarray(result.column(_GROUPING_ID).to_numpy(zero_copy_only=False))
    out = []
    for a, b in itertools.combinations(range(n_keys), 2):
        # GROUPING(k0, ..., kn) sets the bit of each column *not* grouped, k0 the highest.
        mask = sum(1 << (n_keys - 1 - c) for c in range(n_keys) if c not in (a, b))
        out.append(_Block(result.filter(pa.array(gid == mask)), (a, b)))
    return out


_GROUPING_ID = "__neve_grouping"
_PART = "__neve_part"


def _grouping_sets(query: ir.Table, n_keys: int, always: int = 0) -> Any:
    """Run ``query`` (a GROUP BY over its first ``n_keys + always`` columns) grouped by every
    pair of the first ``n_keys`` columns, each with the ``always`` columns after them, instead:
    one GROUPING SETS query; rows tagged with their set's GROUPING() of the pair columns."""
    backend = _queries.backend_of(query)
    tree = backend.compiler.to_sqlglot(query)
    keys = [e.this if isinstance(e, sge.Alias) else e for e in tree.expressions[:n_keys + always]]
    sets = [sge.Tuple(expressions=[keys[a].copy(), keys[b].copy(), *(k.copy() for k in keys[n_keys:])])
            for a, b in itertools.combinations(range(n_keys), 2)]
    tree.set("group", sge.Group(grouping_sets=[sge.GroupingSets(expressions=sets)]))
    # GROUPING(k0, ..., kn) as a sum of one-column GROUPING()s: Spark's GROUPING takes one
    # column (its many-column form is grouping_id), and the sum means the same everywhere.
    bits = [sge.Mul(this=sge.Anonymous(this="GROUPING", expressions=[k.copy()]),
                    expression=sge.convert(1 << (n_keys - 1 - i))) for i, k in enumerate(keys[:n_keys])]
    grouping = functools.reduce(lambda a, b: sge.Add(this=a, expression=b), bits)
    tree.append("expressions", sge.Cast(this=grouping, to=sge.DataType.build("BIGINT")).as_(_GROUPING_ID, quoted=True))
    schema = ibis.schema({**query.schema(), _GROUPING_ID: "int64"})
    return _queries.to_pyarrow(backend.sql(tree.sql(dialect=backend.dialect), schema=schema))


def _scatter(matrix: np.ndarray, rows: np.ndarray, cols: np.ndarray, values: np.ndarray) -> None:
    """``matrix[rows, cols] += values`` with repeated positions summed (bincount: ~10x ``np.add.at``)."""
    size = matrix.shape[1]
    matrix += np.bincount(rows * size + cols, weights=values, minlength=matrix.size).reshape(matrix.shape)


def _column(result: Any, name: str, fill: float = 0.0) -> np.ndarray:
    column = result.column(name).cast("float64")
    return np.asarray(column.fill_null(fill).to_numpy(zero_copy_only=False), dtype=np.float64)


def _sorted_categories(values: Any) -> list[Any]:
    """scikit-learn's order: sorted as ``np.unique`` sorts, missing last."""
    distinct = set(pc.unique(values).to_pylist())
    seen = {v for v in distinct if not is_missing(v)}
    return sorted(seen) + ([MISSING] if len(seen) < len(distinct) else [])


def _indicator_index(design: Design, columns: Sequence[int], key_values: list[Any], owner: str) -> list[np.ndarray]:
    """Per categorical column (by position), each group's indicator index in z-space
    (vectorised: there is one group per distinct combination, which can be many)."""
    out = []
    for a, values in zip(columns, key_values, strict=True):
        col = design.categorical[a]
        cats = design.categories[col]
        known = [c for c in cats if not is_missing(c)]
        positions = pc.index_in(values, value_set=pa.array(known, type=values.type)) if known else None
        index = np.full(len(values), -1, dtype=np.int64)
        if positions is not None:
            index = np.asarray(positions.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)
        if cats and is_missing(cats[-1]):
            index[np.asarray(values.is_null().to_numpy(zero_copy_only=False))] = len(cats) - 1
        if (index < 0).any():
            bad = values.filter(pa.array(index < 0)).to_pylist()[0]
            raise NeveInputError(f"{owner}: column {col!r} has value {bad!r} outside its fitted categories")
        out.append(design.offsets[col] + index)
    return out
