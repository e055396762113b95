"""Sufficient statistics of a linear model in one aggregate query.

A linear model fitted by least squares (or one Newton step of a GLM) needs only
weighted sums over the rows: ``Σω``, ``Σω·z``, ``Σω·z·zᵀ`` and ``Σt·z`` for a few
row weights ``ω`` and targets ``t``. The model's inputs ``z`` are described in
*z-space*: a constant 1, one 0/1 indicator per category of each categorical column,
then the numeric columns. Indicators are never written out: the query groups by the
categorical columns, and within a group every indicator is a constant, so the group's
counts and sums fill every block of the Gram matrix (``np.add.at`` in the client).
With no categorical column the query is a plain aggregate (one row).

Numeric columns are shifted by a pilot value (their value in one row, read by a
``LIMIT 1`` subquery of the same query) before squaring, so a column such as
``1e9 + noise`` keeps its variance: centred sums are formed from small numbers.
"""

from __future__ import annotations

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

from neve import _sqltext as T
from neve._literals import double, typed
from neve.engine import _queries
from neve.errors import EmptyInputError, NeveInputError
from neve.preprocessing._base import missing_to_null
from neve.preprocessing._categories import MISSING, is_missing

__all__ = ["MAX_FEATURES", "MAX_NUMERIC", "Design", "Stats", "gather"]

#: Widest design solved densely in the client (a 5000x5000 float64 matrix is 200 MB).
MAX_FEATURES = 5000
#: Most numeric columns whose products one query sums (n(n+1)/2 sums per row weight).
MAX_NUMERIC = 300


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


Combine = str  # "sum" | "min" | "max"


def gather(
    design: Design,
    *,
    weights: Sequence[ir.FloatingValue | None],
    targets: Sequence[ir.FloatingValue],
    extras: Mapping[str, tuple[ir.Scalar | Callable[[], ir.Scalar], Combine]] = {},
    owner: str,
) -> Stats:
    """Run the one statistics query over ``design.table`` and combine its groups.

    ``weights`` are row weights ``ω`` (``None``: 1), ``targets`` row values ``t``;
    ``extras`` are further aggregates (any ibis reduction over ``design.table``).
    The first call learns ``design.categories`` and ``design.pilot``.
    """
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
    query = source.group_by(**keys).aggregate(**metrics) if keys else source.aggregate(**metrics)
    result = _queries.to_pyarrow(query)
    counts = _column(result, "n_rows")
    if result.num_rows == 0 or counts.sum() == 0:
        raise EmptyInputError(f"{owner}.fit got a table with no rows (after dropping rows with a NULL label)")
    if first:
        design.pilot = np.array(
            [np.nanmax(_column(result, f"p{i}", fill=np.nan)) if n else 0.0 for i in range(n)]
        ) if numeric_names else np.zeros(0)
        design.pilot = np.nan_to_num(design.pilot)
    key_values = [result.column(f"k{a}") for a in range(len(design.categorical))]
    if design.categories is None:
        design.categories = {
            col: _sorted_categories(values) for col, values in zip(design.categorical, key_values, strict=True)
        }
    index = _indicator_index(design, key_values, owner)
    size = design.size
    num_at = np.arange(size - n, size)
    grams = []
    for m in range(len(weights)):
        s0 = _column(result, f"w{m}")
        s1 = np.stack([_column(result, f"w{m}_{i}") for i in range(n)], axis=1) if n else np.zeros((len(s0), 0))
        gram = np.zeros((size, size))
        rows = [np.zeros(len(s0), dtype=np.int64), *index]
        for a in rows:
            for b in rows:
                _scatter(gram, a, b, s0)
            for i in range(n):
                _scatter(gram, a, np.full(len(s0), num_at[i]), s1[:, i])
        for i in range(n):
            for j in range(i, n):
                total = _column(result, f"w{m}_{i}_{j}").sum()
                gram[num_at[i], num_at[j]] = gram[num_at[j], num_at[i]] = total
        for a in rows:  # numeric x indicator: mirror the block filled above
            for i in range(n):
                _scatter(gram, np.full(len(s0), num_at[i]), a, s1[:, i])
        grams.append(gram)
    crosses = []
    for r in range(len(targets)):
        t0 = _column(result, f"t{r}")
        vec = np.zeros(size)
        for a in [np.zeros(len(t0), dtype=np.int64), *index]:
            vec += np.bincount(a, weights=t0, minlength=size)
        for i in range(n):
            vec[num_at[i]] = _column(result, f"t{r}_{i}").sum()
        crosses.append(vec)
    combined = {}
    for name, (_, how) in extras.items():
        values = _column(result, f"e_{name}", fill=np.nan)
        reduce = {"sum": np.nansum, "min": np.nanmin, "max": np.nanmax}[how]
        combined[name] = float(reduce(values)) if not np.all(np.isnan(values)) else math.nan
    return Stats(gram=grams, cross=crosses, extras=combined, n_groups=result.num_rows)


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


def _indicator_index(design: Design, key_values: list[Any], owner: str) -> list[np.ndarray]:
    """Per categorical column, each group's indicator index in z-space (vectorised: there
    is one group per distinct combination, which can be many)."""
    out = []
    for col, values in zip(design.categorical, key_values, strict=True):
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
