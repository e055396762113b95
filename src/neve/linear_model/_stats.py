"""Sufficient statistics of a linear model in one aggregate query.

A linear model fitted by least squares (or one Newton step of a GLM) needs only
weighted sums over the rows: ``Σω``, ``Σω·z``, ``Σω·z·zᵀ`` and ``Σt·z`` for a few
row weights ``ω`` and targets ``t``. The model's inputs ``z`` are described in
*z-space*: a constant 1, one 0/1 indicator per category of each categorical column,
then the numeric columns. Indicators are never written out: the query groups by the
categorical columns, and within a group every indicator is a constant, so the group's
counts and sums fill every block of the Gram matrix (scattered in the client).
With no categorical column the query is a plain aggregate (one row). When grouping by
every categorical column would give about as many groups as rows (independent columns),
the query takes the blocks shape instead: a block of XᵀX involves at most two categorical
columns, so row counts per pair of them (GROUPING SETS), the numeric sums per single column
and the numeric Gram in a plain aggregate hold every block (see ``_StatisticsQuery``).
Which shape is chosen before the first query, by a survey of the table's first rows
(``_survey``).

Numeric columns are shifted by a pilot value (their mean over the surveyed rows) before
squaring, so a column such as ``1e9 + noise`` keeps its variance: centred sums are formed
from small numbers.
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
import scipy.sparse
import sqlglot.expressions as sge

from neve import _sql_templates as T
from neve._sql_literals import double, typed
from neve._table import missing_to_null
from neve.engine import _queries
from neve.engine._drivers import driver_for_backend
from neve.errors import EmptyInputError, NeveInputError
from neve.preprocessing._categories import MISSING, is_missing

__all__ = ["MAX_FEATURES", "MAX_NUMERIC", "Design", "Stats", "gather", "gather_by"]

#: Widest design solved densely in the client (a 5000x5000 float64 matrix is 200 MB).
MAX_FEATURES = 5000
#: Most numeric columns whose products one query sums (n(n+1)/2 sums per row weight).
MAX_NUMERIC = 300
#: Groups per row (expected by the survey, or seen by a query) above which the statistics
#: query takes the blocks shape (see ``_use_blocks``); 0 takes it whenever it can.
BLOCKS_ABOVE = 0.25
#: Categories above which a linear predictor looks a column's coefficients up by a join rather
#: than a CASE. On DuckDB at 1M rows a join costs ~17 ms whatever the categories, a CASE ~7 ms
#: plus ~0.5 ms a branch (~18 ms at 24 branches, ~170 ms at 260 taxi zones).
JOIN_ABOVE = 24
#: A CASE's fixed cost in branches (7 ms / 0.5 ms). One join serves every predictor of a pass,
#: where each needs its own CASE, so ``m`` predictors join a column of ``c`` categories when
#: ``m * (CASE_BASE + c) > CASE_BASE + JOIN_ABOVE`` (a single predictor: past ``JOIN_ABOVE``).
CASE_BASE = 14
#: Category types written as SQL literals in a fit's text templates (others go through Ibis).
_LITERAL_TYPES = (str, int, float, bool)


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
    #: The statistics query's shape the survey chose before the first query (see ``_survey``).
    shape: str | None = None

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
            if all(is_missing(c) or type(c) in _LITERAL_TYPES for c, _ in weights):
                # One CASE written as text: an Ibis node per category costs ~1 ms to build and
                # more to rebind on every Newton step.
                case = self._case_text(col, T.Input("x"), gamma[at:at + len(cats)])
                terms.append(T.value_text(case, dt.float64, {"x": x}))
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

    def _case_text(self, col: str, x: Any, coefficients: np.ndarray) -> Any:
        """``col``'s coefficients as one CASE template over ``x`` (its categories' nonzero
        ones). Most frequent first: a row leaves the CASE at its own branch, so the engine
        makes far fewer comparisons on skewed categories (taxi zones)."""
        cats = self.categories[col]
        order = np.argsort(-self.frequency[col], kind="stable") if self.frequency is not None else range(len(cats))
        branches = tuple((T.Member(x, (cats[k],), never_null=False), T.Const(float(coefficients[k])))
                         for k in order if coefficients[k] != 0.0)
        return T.Case(branches, T.Const(0.0))

    def with_linear_predictors(self, gammas: Mapping[str, np.ndarray]) -> ir.Table:
        """``table`` with one more column per entry of ``gammas``: ``gamma · z`` per row.

        A categorical column has its coefficients, for every gamma at once, in a small
        constant table joined on the column when its CASEs would cost more (see
        ``CASE_BASE``): the engine probes a hash table once per row, where each gamma's CASE
        compares the row with its branches one by one (a Newton pass reads every row's
        predictors). Categories of other types than text, numbers and booleans (dates) keep
        the CASE."""
        assert self.categories is not None
        literal = (is_missing(c) or type(c) in _LITERAL_TYPES for col in self.categorical for c in self.categories[col])
        if not all(literal):
            return self.table.mutate(**{name: self.linear_predictor(g) for name, g in gammas.items()})
        names = list(gammas)
        coefficients = np.stack([np.asarray(gammas[n], dtype=float) for n in names])
        lookups: list[T.Lookup] = []
        inputs: dict[Any, ir.Value] = {}
        terms: list[list[Any]] = [[T.Const(float(g))] for g in coefficients[:, 0]]
        for col, at in self.offsets.items():
            cats = self.categories[col]
            block = coefficients[:, at:at + len(cats)]
            key = ("category", col)
            inputs[key] = missing_to_null(self.table[col])
            cased = int(np.count_nonzero(np.any(block != 0, axis=1)))
            if cased * (CASE_BASE + len(cats)) <= CASE_BASE + JOIN_ABOVE:
                for m in range(len(names)):
                    if np.any(block[m]):
                        terms[m].append(self._case_text(col, T.Input(key), block[m]))
                continue
            rows = tuple((c, tuple(float(v) for v in block[:, k])) for k, c in enumerate(cats)
                         if not is_missing(c) and np.any(block[:, k]))
            if rows:
                lookups.append(T.Lookup(key, rows))
            missing = [k for k, c in enumerate(cats) if is_missing(c)]
            for m in range(len(names)):
                term = T.Call("COALESCE", (T.Looked(len(lookups) - 1, m), T.Const(0.0))) if rows else None
                if missing and block[m, missing[0]] != 0.0:
                    null = T.Member(T.Input(key), (None,), never_null=False)
                    term = T.Case(((null, T.Const(float(block[m, missing[0]]))),), term or T.Const(0.0))
                if term is not None:
                    terms[m].append(term)
        for name, expr in self.numeric.items():
            key = ("numeric", name)
            inputs[key] = expr
            for m in range(len(names)):
                g = float(coefficients[m, self.numeric_index(name)])
                if g != 0.0:
                    terms[m].append(T.Arith("*", T.Input(key), T.Const(g)))
        columns: list[tuple[str, Any]] = [(c, c) for c in self.table.columns]
        for name, parts in zip(names, terms, strict=True):
            columns.append((name, T.Text(functools.reduce(lambda a, b: T.Arith("+", a, b), parts), dt.float64, {})))
        return T.lookup_text(self.table, columns, lookups, inputs)


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


def mostly_zeros(a: np.ndarray) -> Any:
    """``a`` as a sparse matrix when at most 5% of it is non-zero, else ``a`` itself. The maps
    between z-space and the features (an encoder's indicators, a scaler's factors, the pilot
    shift) hold one or two entries a row: as dense 550x550 products they cost a
    LogisticRegressionCV pass 0.3 s of Python; as sparse ones, milliseconds."""
    return scipy.sparse.csr_array(a) if np.count_nonzero(a) <= 0.05 * a.size else a


def matmul(a: np.ndarray, b: np.ndarray) -> Any:
    """``a @ b``, sparse when both are mostly zeros (see ``mostly_zeros``)."""
    sa, sb = mostly_zeros(a), mostly_zeros(b)
    return sa @ sb if scipy.sparse.issparse(sa) and scipy.sparse.issparse(sb) else a @ b


def congruence(t: Any, gram: np.ndarray) -> np.ndarray:
    """``t @ gram @ t.T`` for a symmetric ``gram``, as ``t @ (t @ gram).T``: two products
    that stay cheap when ``t`` is sparse (see ``mostly_zeros``)."""
    return np.asarray(t @ np.asarray(t @ gram).T)


def gather(
    design: Design,
    *,
    weights: Sequence[ir.FloatingValue | None],
    targets: Sequence[ir.FloatingValue],
    extras: Mapping[str, tuple[ir.Scalar | Callable[[], ir.Scalar], Combine]] = {},
    owner: str,
    blocks: bool | None = None,
    costly_rows: bool = False,
) -> Stats:
    """Run the one statistics query over ``design.table`` and combine its groups.

    ``weights`` are row weights ``ω`` (``None``: 1), ``targets`` row values ``t``;
    ``extras`` are further aggregates (any ibis reduction over ``design.table``).
    The first call learns ``design.categories`` and ``design.pilot``. ``blocks`` forces the
    blocks shape (or the one GROUP BY); by default ``_use_blocks`` decides. ``costly_rows``
    says that ``design.table``'s rows cost more to compute than to store (a fold's hash), so
    that the blocks shape computes them once (see ``_StatisticsQuery._materialized``).
    """
    return gather_by(design, None, 0, weights=weights, targets=targets, extras=extras, owner=owner,
                     blocks=blocks, costly_rows=costly_rows)[0]


def gather_by(
    design: Design,
    part: ir.IntegerValue | None,
    n_parts: int,
    *,
    weights: Sequence[ir.FloatingValue | None],
    targets: Sequence[ir.FloatingValue],
    extras: Mapping[str, tuple[ir.Scalar | Callable[[], ir.Scalar], Combine]] = {},
    owner: str,
    blocks: bool | None = None,
    costly_rows: bool = False,
) -> list[Stats]:
    """:func:`gather`, with the rows also grouped by ``part`` (an integer expression over
    ``design.table`` in ``0 .. n_parts - 1``, such as a cross-validation fold): one query,
    one :class:`Stats` per part, all over the same z-space (the categories of every part).
    With ``part`` None, one :class:`Stats` for the whole table.

    With a part and three or more categorical columns the query takes the blocks shape:
    grouping by every categorical column and the part would have about as many groups as
    rows (each full group split across the parts), and its result would be the table again."""
    if design.pilot is None:
        _survey(design, owner)
    if blocks is None:
        blocks = len(design.categorical) >= 3 if part is not None else _use_blocks(design)
    shape = _shape(design, blocks=blocks)
    query = _StatisticsQuery(design, part, weights, targets, extras, costly_rows=costly_rows)
    result = query.run(shape)
    blocks = _blocks(result, len(design.categorical), shape)
    whole = _whole(blocks)
    counts = _column(whole.rows, "n_rows")
    if whole.rows.num_rows == 0 or counts.sum() == 0:
        raise EmptyInputError(f"{owner}.fit got a table with no rows (after dropping rows with a NULL label)")
    _learn(design, blocks, owner)
    if shape == "full":
        design.observed_groups = (whole.rows.num_rows, int(counts.sum()))
    if part is None:
        return [_combine(design, query, blocks, extras, result.num_rows)]
    which = [np.asarray(b.rows.column(_PART).to_numpy(zero_copy_only=False)) for b in blocks]
    out = []
    for k in range(n_parts):
        masks = [w == k for w in which]
        own = [_Block(b.rows.filter(pa.array(m)), b.columns, {a: i[m] for a, i in b.index.items()})
               for b, m in zip(blocks, masks, strict=True)]
        if _whole(own).rows.num_rows == 0:
            raise EmptyInputError(
                f"{owner}: fold {k} of {n_parts} has no rows (the table has {int(counts.sum())} rows with a "
                f"label); use fewer folds or more rows"
            )
        out.append(_combine(design, query, own, extras, int(masks[0].sum())))
    return out


#: Rows the survey reads (the first ones, ``LIMIT``) to choose the query's shape, and to choose
#: the pilot when the shape is not in question.
SURVEY_ROWS = 20_000
PILOT_ROWS = 1_000


def _survey(design: Design, owner: str) -> None:
    """Learn the pilot values and the statistics query's shape before the first query, from the
    table's first rows (``LIMIT``), in one query that returns one row: the pilot is each numeric
    column's mean over them; each categorical column's distinct values there bound the design's
    width (``_refuse_too_wide``); and with three or more categorical columns, the combinations
    the first ``SURVEY_ROWS`` rows show predict how many the whole table has
    (``_expected_groups``), so the table's row count is asked too."""
    table = design.table
    names = list(design.numeric)
    keys = {f"k{a}": missing_to_null(table[col]) for a, col in enumerate(design.categorical)}
    values = {f"x{i}": design.numeric[n] for i, n in enumerate(names)}
    decide = len(keys) >= 3 and BLOCKS_ABOVE > 0
    sample = table.select(**keys, **values).limit(SURVEY_ROWS if keys else PILOT_ROWS)
    facts: dict[str, ir.Scalar] = {"sampled": sample.count()}
    facts.update({f"m{i}": sample[f"x{i}"].mean() for i in range(len(names))})
    # NULL is a category too (scikit-learn's missing one): nunique skips it, so count it apart.
    facts.update({f"d{a}": sample[f"k{a}"].nunique() + sample[f"k{a}"].isnull().any().ifelse(1, 0)
                  for a in range(len(keys))})
    query = sample.aggregate(**facts)
    if decide:
        combinations = sample.select(*keys).distinct()
        query = query.cross_join(combinations.aggregate(combinations=combinations.count()))
        query = query.cross_join(table.aggregate(rows=table.count()))
    row = _queries.to_pyarrow(query, kind="survey").to_pylist()[0]
    mean = np.array([np.nan if row[f"m{i}"] is None else row[f"m{i}"] for i in range(len(names))], dtype=float)
    design.pilot = np.where(np.isfinite(mean), mean, 0.0)  # no value (or an overflowing sum): no shift
    _refuse_too_wide(design, {col: int(row[f"d{a}"]) for a, col in enumerate(design.categorical)},
                     int(row["sampled"]), owner)
    if not keys:
        design.shape = "plain"
    elif len(keys) < 3:
        design.shape = "full"  # a pair is the whole grouping
    elif not decide:
        design.shape = "blocks"
    else:
        rows = int(row["rows"])
        groups = _expected_groups(int(row["combinations"]), int(row["sampled"]), rows)
        design.shape = "blocks" if groups > BLOCKS_ABOVE * max(rows, 1) else "full"


def _refuse_too_wide(design: Design, seen: dict[str, int], sampled: int, owner: str) -> None:
    """Refuse, before the statistics query, a design whose surveyed rows alone already hold more
    categories than a dense solve takes (``seen``: distinct values per categorical column): a
    column of millions of values (an id) would otherwise bring millions of groups into the client."""
    width = 1 + sum(seen.values()) + len(design.numeric)
    if width > MAX_FEATURES:
        widest = max(seen, key=seen.get)
        raise NeveInputError(
            f"{owner}: the first {sampled:,} rows already hold {seen[widest]:,} distinct values of "
            f"{widest!r}" + (f" ({width:,} features in all)" if len(seen) > 1 else "") + f", more than a dense "
            f"solve in the client takes (limit {MAX_FEATURES:,} features); leave an identifier-like column out "
            f"of the encoder, or group rare categories (OneHotEncoder(min_frequency=..., max_categories=...), "
            f"which fits stepwise)"
        )


def _expected_groups(distinct: int, sampled: int, rows: int) -> float:
    """How many distinct combinations ``rows`` rows hold, when ``sampled`` rows held ``distinct``:
    the number ``D`` of equally likely combinations that explains the sample
    (``distinct = D·(1 - exp(-sampled/D))``), then ``D·(1 - exp(-rows/D))``. Skewed data (a few
    combinations common, many rare) is explained by a smaller ``D`` than it has, so the guess
    errs towards the one GROUP BY, which later queries leave if it proves large."""
    if rows <= sampled:
        return float(distinct)
    if distinct >= sampled:
        return float(rows)
    lo, hi = float(distinct), float(distinct)
    while hi * -math.expm1(-sampled / hi) < distinct:
        hi *= 2
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if mid * -math.expm1(-sampled / mid) < distinct else (lo, mid)
    return hi * -math.expm1(-rows / hi)


Shape = str  # "plain" (no categorical column) | "full" (GROUP BY every one) | "blocks" (below)


def _shape(design: Design, *, blocks: bool) -> Shape:
    if not design.categorical:
        return "plain"
    return "blocks" if blocks and len(design.categorical) >= 3 else "full"


class _StatisticsQuery:
    """The statistics query over a projection of ``design.table`` that computes each input once:
    the grouping keys, the NaN-guarded numeric columns shifted by the pilot (``z``), the row
    weights and targets; the sums over it are written as SQL directly (a wide design asks for
    tens of thousands of them, and an ibis expression per sum costs more than the query).

    Three shapes (see ``_use_blocks``):

    * ``plain``: one aggregate, no categorical column;
    * ``full``: GROUP BY every categorical column; each group's sums fill every block of the
      Gram matrix. One scan, small when the columns are correlated (taxi zones and hours);
    * ``blocks``: when the full grouping would hold about as many groups as rows, each sum goes
      only to the grouping that needs it, as three branches of one UNION ALL: row counts (or
      weight sums) per pair of categorical columns (GROUPING SETS), the numeric columns' sums
      per single column, and the numeric Gram and the extras in one plain aggregate.

    Sums are named ``a0, a1, ...`` (short: PostgreSQL cuts identifiers at 63 bytes); ``sum_of``
    maps a product of projected columns to its name.
    """

    def __init__(self, design: Design, part: ir.IntegerValue | None, weights: Sequence[Any],
                 targets: Sequence[Any], extras: Mapping[str, tuple[Any, Combine]], *,
                 costly_rows: bool = False) -> None:
        table = design.table
        self.n_keys = len(design.categorical)
        self.has_part = part is not None
        self.costly_rows = costly_rows
        names = list(design.numeric)
        columns: dict[str, ir.Value] = {}
        for a, col in enumerate(design.categorical):
            columns[f"{_BASE}k{a}"] = missing_to_null(table[col])
        if part is not None:
            columns[f"{_BASE}part"] = part
        for i, name in enumerate(names):
            columns[f"{_BASE}z{i}"] = design.numeric[name] - double(design.pilot[i])
        #: per weight, the projected column it multiplies by (None: unweighted).
        self.weights: list[str | None] = []
        for m, weight in enumerate(weights):
            if weight is None:
                self.weights.append(None)
            else:
                columns[f"{_BASE}w{m}"] = weight
                self.weights.append(f"{_BASE}w{m}")
        self.targets = []
        for r, target in enumerate(targets):
            columns[f"{_BASE}t{r}"] = target
            self.targets.append(f"{_BASE}t{r}")
        self.z = [f"{_BASE}z{i}" for i in range(len(names))]
        self.base = base = table.mutate(**columns)
        self.backend = _queries.backend_of(table)
        self.base_sql = self.backend.compiler.to_sqlglot(base)
        # The branches are written over a placeholder table that stands for the projection
        # (swapped in as SQL at the end): ibis then writes only the keys and the extras.
        self.placeholder = ibis.table(base.schema(), name=_BASE_TABLE)
        self.extras = {f"e_{name}": expr() if callable(expr) else expr for name, (expr, _) in extras.items()}
        self.extra_types = {name: expr.type() for name, expr in self.extras.items()}
        self.key_types = {f"k{a}": base[f"{_BASE}k{a}"].type() for a in range(self.n_keys)}
        self.sums: dict[tuple[str, ...], str] = {}

    # -- which sums -------------------------------------------------------------------------

    def sum_of(self, *factors: str | None) -> str:
        """The result column holding the sum of the product of ``factors`` (``()``: the row count)."""
        return self.sums[tuple(f for f in factors if f is not None)]

    def _products(self, level: str) -> list[tuple[str, ...]]:
        """The products a grouping needs: ``pair`` (two categorical columns) only the weights;
        ``single`` also each numeric column and the targets; ``total`` everything."""
        out: list[tuple[str, ...]] = []
        for w in self.weights:
            wf = (w,) if w else ()
            out.append(wf)
            if level == "pair":
                continue
            out += [(*wf, z) for z in self.z]
            if level == "total":
                out += [(*wf, z, y) for i, z in enumerate(self.z) for y in self.z[i:]]
        if level != "pair":
            out += [(t,) for t in self.targets]
        if level == "total":
            out += [(t, z) for t in self.targets for z in self.z]
        return [p for p in dict.fromkeys(out) if p]  # the row count is n_rows

    # -- SQL ------------------------------------------------------------------------------

    def run(self, shape: Shape) -> Any:
        self.sums = {(): "n_rows"}
        for product in self._products("total"):
            self.sums[product] = f"a{len(self.sums) - 1}"
        if shape == "blocks":
            branches = [self._branch("pair"), self._branch("single"), self._branch("total")]
            tree = functools.reduce(lambda a, b: sge.union(a, b, distinct=False), branches)
        else:
            tree = self._branch(None if shape == "plain" else "full")
        dialect = self.backend.dialect
        # The projection is rendered once, as text: as sqlglot nodes it was copied into each
        # branch and rendered three times (a LogisticRegressionCV pass projects 25 models'
        # predictors: seconds a pass), and the engine parsed it three times.
        base = self.base_sql.sql(dialect=dialect)
        if shape == "blocks":
            text = f"WITH {_quoted(_BASE_TABLE, dialect)} AS {self._materialized()}({base}) {tree.sql(dialect=dialect)}"
        else:
            text = tree.sql(dialect=dialect).replace(_quoted(_BASE_TABLE, dialect), f"({base})")
        for level in ("pair", "single", "total", "full", None):
            slot = _quoted(_slot(level), dialect)
            if slot in text:
                text = text.replace(slot, self._sums_text(level, dialect), 1)
        return _queries.sql_to_pyarrow(self.backend, text, ibis.schema(self._columns(shape)))

    def _materialized(self) -> str:
        """The blocks shape's three branches read one projection. Computing it once pays when
        it is costly: many models' predictors (25 in a LogisticRegressionCV pass: 2.2 s -> 1.1 s
        on DuckDB at 200k rows), or a cross-validation's fold, an MD5 per row (ridge search:
        200 -> 114 ms). For plain sums, storing the projection costs more than reading the
        table three times (wide least squares at 1M rows: 0.52 s -> 1.2 s)."""
        if not driver_for_backend(self.backend).cte_materialization:
            return ""
        models = sum(w is not None for w in self.weights)
        costly = models > 1 or self.has_part or self.costly_rows
        return "MATERIALIZED " if costly else "NOT MATERIALIZED "

    def _sums_text(self, level: str | None, dialect: Any) -> str:
        """The sums of one SELECT as SQL text (a NULL where its grouping does not need one):
        thousands of them are text in milliseconds, while as sqlglot nodes they take seconds."""
        wanted = set(self._products("total" if level in (None, "full") else level))
        null = f"CAST(NULL AS {sge.DataType.build('DOUBLE').sql(dialect=dialect)})"
        out = []
        for product, name in self.sums.items():
            if product:
                factors = " * ".join(_quoted(f, dialect) for f in product)
                out.append(f"{f'SUM({factors})' if product in wanted else null} AS {_quoted(name, dialect)}")
        return ", ".join(out)

    def _columns(self, shape: Shape | None) -> dict[str, dt.DataType]:
        """Every result column and its type, in order (every branch of a UNION ALL lists them all)."""
        out: dict[str, dt.DataType] = {}
        if shape != "plain":
            out.update(self.key_types)
        if self.has_part:
            out[_PART] = dt.int64
        if shape == "blocks":
            out[_GROUPING_ID] = dt.int64
        out["n_rows"] = dt.int64
        out.update({name: dt.float64 for product, name in self.sums.items() if product})
        out.update(self.extra_types)
        return out

    def _listed(self, shape: Shape, level: str | None) -> list[str]:
        """The SELECT list's names: the sums are one slot, filled in as text (``_sums_text``)."""
        sums = {name for product, name in self.sums.items() if product}
        listed = [name for name in self._columns(shape) if name not in sums]
        if not sums:
            return listed
        at = listed.index("n_rows") + 1
        return [*listed[:at], _slot(level), *listed[at:]]

    def _branch(self, level: str | None) -> sge.Select:
        """One SELECT: ``level`` None a plain aggregate; ``full`` grouped by every key; ``pair``,
        ``single`` or ``total`` a branch of the blocks shape."""
        p = self.base
        keys = {f"k{a}": p[f"{_BASE}k{a}"] for a in range(self.n_keys)} if level != "total" and level else {}
        if self.has_part:
            keys[_PART] = p[f"{_BASE}part"]
        wants_extras = level in (None, "full", "total")
        aggregates = {"n_rows": p.count(), **(self.extras if wants_extras else {})}
        # Over the projection, ibis reads the extras' columns through it; then the projection
        # becomes the placeholder.
        query = p.group_by(**keys).aggregate(**aggregates) if keys else p.aggregate(**aggregates)
        query = query.op().replace({p.op(): self.placeholder.op()}).to_expr()
        tree = self.backend.compiler.to_sqlglot(query)
        made = {e.alias_or_name: e for e in tree.expressions}
        made[_slot(level)] = sge.column(_slot(level), quoted=True)
        if level in ("pair", "single"):
            key_exprs = [made[f"k{a}"].this for a in range(self.n_keys)]
            always = [made[_PART].this] if self.has_part else []
            if level == "pair":
                sets = [[key_exprs[a], key_exprs[b]] for a, b in itertools.combinations(range(self.n_keys), 2)]
            else:
                sets = [[key] for key in key_exprs]
            tree.set("group", sge.Group(grouping_sets=[sge.GroupingSets(expressions=[
                sge.Tuple(expressions=[e.copy() for e in (*s, *always)]) for s in sets])]))
            made[_GROUPING_ID] = _grouping_id(key_exprs).as_(_GROUPING_ID, quoted=True)
        elif level == "total":
            made[_GROUPING_ID] = sge.convert((1 << self.n_keys) - 1).as_(_GROUPING_ID, quoted=True)
        if level in ("full", "total") and keys:
            # Ibis groups by position; the SELECT list is reordered below (the total branch puts
            # its NULL keys before the part), so group by the expressions themselves.
            tree.set("group", sge.Group(expressions=[made[name].this.copy() for name in keys]))
        shape = "blocks" if level in ("pair", "single", "total") else ("plain" if level is None else "full")
        type_of = self.backend.compiler.type_mapper.from_ibis
        types = self._columns(shape)
        tree.set("expressions", [made[name] if name in made else
                                 sge.Cast(this=sge.Null(), to=type_of(types[name])).as_(name, quoted=True)
                                 for name in self._listed(shape, level)])
        return tree


def _slot(level: str | None) -> str:
    return f"__neve_sums_{level or 'plain'}"


@functools.cache
def _quoted(name: str, dialect: Any) -> str:
    return sge.to_identifier(name, quoted=True).sql(dialect=dialect)


def _grouping_id(keys: list[sge.Expression]) -> sge.Expression:
    """GROUPING(k0, ..., kn) as a sum of one-column GROUPING()s (the bit of each column *not*
    grouped, k0 the highest): Spark's GROUPING takes one column (its many-column form is
    grouping_id), and the sum means the same everywhere."""
    n = len(keys)
    bits = [sge.Mul(this=sge.Anonymous(this="GROUPING", expressions=[k.copy()]),
                    expression=sge.convert(1 << (n - 1 - i))) for i, k in enumerate(keys)]
    total = functools.reduce(lambda a, b: sge.Add(this=a, expression=b), bits)
    return sge.Cast(this=total, to=sge.DataType.build("BIGINT"))


def _learn(design: Design, blocks: list[_Block], owner: str) -> None:
    """Learn the categories and frequencies from the first query's result, and each group's
    indicator positions in z-space."""
    owner_of = {a: _owner(blocks, a) for a in range(len(design.categorical))}
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
    design: Design, query: _StatisticsQuery, blocks: list[_Block], extras: Mapping[str, tuple[Any, Combine]],
    n_groups: int,
) -> Stats:
    """The Gram matrices, cross products and extras of ``blocks``' rows, in z-space."""
    whole = _whole(blocks).rows
    n = len(design.numeric)
    owner_of = {a: _owner(blocks, a) for a in range(len(design.categorical))}
    size = design.size
    num_at = np.arange(size - n, size)
    z = query.z

    def total(*factors: str | None) -> float:
        return float(_column(whole, query.sum_of(*factors)).sum())

    grams = []
    for w in query.weights:
        gram = np.zeros((size, size))
        gram[0, 0] = total(w)
        for i in range(n):
            gram[0, num_at[i]] = gram[num_at[i], 0] = total(w, z[i])
            for j in range(i, n):
                gram[num_at[i], num_at[j]] = gram[num_at[j], num_at[i]] = total(w, z[i], z[j])
        # Each indicator block against itself, the constant and the numeric columns comes from
        # a grouping holding its column; two indicator blocks from one holding both.
        for a, block in owner_of.items():
            s0 = _column(block.rows, query.sum_of(w))
            at = block.index[a]
            one = np.zeros(len(s0), dtype=np.int64)
            _scatter(gram, at, at, s0)
            _scatter(gram, one, at, s0)
            _scatter(gram, at, one, s0)
            for i in range(n):
                s1 = _column(block.rows, query.sum_of(w, z[i]))
                _scatter(gram, at, np.full(len(s0), num_at[i]), s1)
                _scatter(gram, np.full(len(s0), num_at[i]), at, s1)
        for a, b in itertools.combinations(range(len(design.categorical)), 2):
            block = next(x for x in blocks if a in x.columns and b in x.columns)
            s0 = _column(block.rows, query.sum_of(w))
            _scatter(gram, block.index[a], block.index[b], s0)
            _scatter(gram, block.index[b], block.index[a], s0)
        grams.append(gram)
    crosses = []
    for t in query.targets:
        vec = np.zeros(size)
        vec[0] = total(t)
        for a, block in owner_of.items():
            vec += np.bincount(block.index[a], weights=_column(block.rows, query.sum_of(t)), minlength=size)
        for i in range(n):
            vec[num_at[i]] = total(t, z[i])
        crosses.append(vec)
    combined = {}
    for name, (_, how) in extras.items():
        values = _column(whole, f"e_{name}", fill=np.nan)
        reduce = {"sum": np.nansum, "min": np.nanmin, "max": np.nanmax}[how]
        combined[name] = float(reduce(values)) if not np.all(np.isnan(values)) else math.nan
    return Stats(gram=grams, cross=crosses, extras=combined, n_groups=n_groups)


def _use_blocks(design: Design) -> bool:
    """Whether the statistics take the blocks shape (see ``_StatisticsQuery``) rather than one
    GROUP BY of every categorical column.

    With three or more categorical columns the full GROUP BY can have about as many groups as
    the table has rows (the product of their cardinalities is large and they are independent),
    and its result would then be the table again. The blocks shape gives every block of the
    Gram matrix in O(cardinality²) groups whatever the data, at the price of a scan per branch,
    so it is chosen when the survey (``_survey``) expects more than ``BLOCKS_ABOVE`` groups per
    row -- or when a query has shown the full grouping to be that large (the survey's guess
    errs towards the one GROUP BY).
    """
    if len(design.categorical) < 3:
        return False  # a pair is the whole grouping
    if BLOCKS_ABOVE <= 0:
        return True
    if design.observed_groups is not None:
        groups, rows = design.observed_groups
        if groups > BLOCKS_ABOVE * rows:
            return True
    return design.shape == "blocks"


@dataclass
class _Block:
    """The result rows of one grouping and the categorical columns (by position) it groups."""

    rows: Any
    columns: tuple[int, ...]
    index: dict[int, np.ndarray] = field(default_factory=dict)


def _blocks(result: Any, n_keys: int, shape: Shape) -> list[_Block]:
    """The result split by grouping: one block for the plain and full shapes; for the blocks
    shape one per pair, one per single column, then the total."""
    if shape != "blocks":
        return [_Block(result, tuple(range(n_keys)))]
    gid = np.asarray(result.column(_GROUPING_ID).to_numpy(zero_copy_only=False))
    out = []
    groupings = [*itertools.combinations(range(n_keys), 2), *((a,) for a in range(n_keys)), ()]
    for columns in groupings:
        # GROUPING(k0, ..., kn) sets the bit of each column *not* grouped, k0 the highest.
        mask = sum(1 << (n_keys - 1 - c) for c in range(n_keys) if c not in columns)
        out.append(_Block(result.filter(pa.array(gid == mask)), columns))
    return out


def _whole(blocks: list[_Block]) -> _Block:
    """The block holding the totals: the one grouping the fewest columns (each covers every row)."""
    return min(blocks, key=lambda b: len(b.columns))


def _owner(blocks: list[_Block], a: int) -> _Block:
    """The block with the fewest columns that groups categorical column ``a``."""
    return min((b for b in blocks if a in b.columns), key=lambda b: len(b.columns))


_GROUPING_ID = "__neve_grouping"
_PART = "__neve_part"
#: Prefix of the projected columns, and the placeholder the sums are written over.
_BASE = "__neve_s_"
_BASE_TABLE = "__neve_stats_base"


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
