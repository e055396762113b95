"""Category fitting shared by the encoders: one counting query, scikit-learn's ordering
and infrequent-category rules, and the SQL pieces their transforms are built from.

Missing values (NULL, and NaN in float columns) form one category, stored as
``float("nan")`` and placed last, as scikit-learn does for NaN.
"""

from __future__ import annotations

import functools
import math
import numbers
import operator
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import numpy as np

from neve import _sql_templates as T
from neve._table import ROW_COUNT, missing_to_null, raise_in_query
from neve.engine import _queries
from neve.errors import ColumnTypeError, InvalidParameterError, NeveInputError, UnknownCategoryError

__all__ = [
    "MISSING",
    "OneHotPlan",
    "count_query",
    "identify_infrequent",
    "is_missing",
    "learn_categories",
    "unknown_category_error",
]

MISSING = float("nan")
_UNKNOWN = "neve: unknown category in column "
_UNKNOWN_END = "; not seen during fit"


def is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def label(value: Any) -> str:
    """The category as scikit-learn prints it in feature names (``str``; missing is ``nan``)."""
    return "nan" if is_missing(value) else str(value)


def check_types(owner: str, table: ir.Table, cols: Sequence[str]) -> None:
    schema = table.schema()
    for col in cols:
        dtype = schema[col]
        if not (
            dtype.is_string() or dtype.is_integer() or dtype.is_floating() or dtype.is_boolean()
        ):
            raise ColumnTypeError(
                f"{owner}: column {col!r} has type {dtype}; categories must be strings, "
                f"integers, floats or booleans, so cast it first"
            )


def count_query(table: ir.Table, cols: Sequence[str]) -> ir.Table:
    """One query, one row: per column the distinct values with their counts.

    Each column is grouped on its own and collapsed into lists; the one-row
    results are cross-joined, so all columns come back together. Values and
    counts are collected in the same order so they line up. Written as SQL text
    (:mod:`neve._sql_templates`): through Ibis's expression API it cost more Python than
    the engine spends counting 2M rows. Ibis writes the NaN test and the ordered
    ARRAY_AGGs, whose spelling differs per dialect.
    """
    schema = table.schema()
    parts, columns = [], []
    for i, col in enumerate(cols):
        dtype = schema[col]
        inputs = {}
        value: Any = T.Col(col)
        if dtype.is_floating():
            inputs["v"] = missing_to_null(table[col])
            value = T.Input("v")
        groups = T.query_text(
            [table], [("v", value, dtype), ("n", T.Call("COUNT"), "int64")], inputs, group_by=[value]
        )
        grouped = (("v", dtype), ("n", dt.int64))
        collected = [
            (f"values__{i}", T.Dialectal(_collect_values, grouped), dt.Array(dtype)),
            (f"counts__{i}", T.Dialectal(_collect_counts, grouped), dt.Array(dt.int64)),
            (f"missing__{i}", T.Dialectal(_count_missing, grouped), dt.int64),
            (f"rows__{i}", T.Call("SUM", (T.Col("n"),)), dt.int64),
        ]
        parts.append(T.query_text([groups], collected))
        columns += [(name, T.Col(name, i), dtype) for name, _, dtype in collected]
    row_count = T.Call("COALESCE", (T.Col("rows__0", 0), T.Const(0)))
    return T.query_text(parts, [*columns, (ROW_COUNT, row_count, "int64")])


def _collect_values(groups: ir.Table) -> ir.Value:
    return groups.v.collect(order_by=groups.v)


def _collect_counts(groups: ir.Table) -> ir.Value:
    return groups.n.collect(where=groups.v.notnull(), order_by=groups.v)


def _count_missing(groups: ir.Table) -> ir.Value:
    return groups.n.sum(where=groups.v.isnull())


def _coerce(owner: str, col: str, dtype: dt.DataType, values: Any) -> list[Any]:
    """User-given categories for ``col`` as plain Python values of the column's kind,
    checked as scikit-learn checks them."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__") or len(values) == 0:
        raise InvalidParameterError(
            f"{owner}: categories for column {col!r} must be a non-empty list, got {values!r}"
        )
    out: list[Any] = []
    for value in list(values):
        value = value.item() if isinstance(value, np.generic) else value
        if is_missing(value):
            out.append(MISSING)
        elif (
            dtype.is_string()
            and isinstance(value, str)
            or dtype.is_boolean()
            and isinstance(value, bool)
        ):
            out.append(value)
        elif dtype.is_integer() and isinstance(value, numbers.Real) and float(value).is_integer():
            out.append(int(value))
        elif (
            dtype.is_floating() and isinstance(value, numbers.Real) and not isinstance(value, bool)
        ):
            out.append(float(value))
        else:
            raise InvalidParameterError(
                f"{owner}: category {value!r} does not match the type {dtype} of column {col!r}"
            )
    if any(is_missing(v) for v in out[:-1]):
        raise InvalidParameterError(
            f"{owner}: NaN must be the last of the categories given for column {col!r}, got {out}"
        )
    present = [v for v in out if not is_missing(v)]
    if len(set(present)) != len(present):
        raise InvalidParameterError(
            f"{owner}: the categories given for column {col!r} contain duplicates: {out}"
        )
    if not dtype.is_string() and present != sorted(present):
        raise InvalidParameterError(
            f"{owner}: unsorted categories are not supported for numerical categories "
            f"(column {col!r}: {out})"
        )
    return out


def learn_categories(
    owner: str,
    table: ir.Table,
    row: dict[str, Any],
    cols: Sequence[str],
    categories: Any,
    *,
    check_unknown: bool,
) -> tuple[dict[str, list[Any]], dict[str, list[int]], int]:
    """Categories and their counts per column from a :func:`count_query` row.

    ``categories`` is ``"auto"`` (sorted as ``np.unique`` sorts, missing last)
    or one list per column; with ``check_unknown`` a value outside the given
    list raises, as scikit-learn's fit does for ``handle_unknown="error"``.
    """
    if categories != "auto" and len(categories) != len(cols):
        raise InvalidParameterError(
            f"{owner}: categories has {len(categories)} lists for {len(cols)} input columns "
            f"{list(cols)}; give one list per column"
        )
    schema = table.schema()
    given = (
        None
        if categories == "auto"
        else [_coerce(owner, col, schema[col], categories[i]) for i, col in enumerate(cols)]
    )
    cats_out: dict[str, list[Any]] = {}
    counts_out: dict[str, list[int]] = {}
    for i, col in enumerate(cols):
        # The missing group is counted apart; engines whose ARRAY_AGG keeps the NULLs that
        # Snowflake's drops (fakesnow, DuckDB's array_agg under it) also list it here.
        pairs = zip(row[f"values__{i}"] or [], row[f"counts__{i}"] or [], strict=True)
        seen = {v: c for v, c in pairs if v is not None}
        n_missing = int(row[f"missing__{i}"] or 0)
        if any(isinstance(v, float) and math.isinf(v) for v in seen):
            raise NeveInputError(
                f"{owner}: column {col!r} contains infinity, which scikit-learn rejects too; "
                f"filter or impute those rows first"
            )
        if given is None:
            cats = sorted(seen) + ([MISSING] if n_missing else [])
        else:
            cats = given[i]
            if check_unknown:
                known = {c for c in cats if not is_missing(c)}
                unknown = [label(v) for v in seen if v not in known]
                if n_missing and not is_missing(cats[-1]):
                    unknown.append("nan")
                if unknown:
                    raise UnknownCategoryError(
                        f"{owner}: found unknown categories {sorted(unknown)[:10]} in column "
                        f"{col!r} during fit; add them to categories or set handle_unknown"
                    )
        cats_out[col] = cats
        counts_out[col] = [n_missing if is_missing(c) else int(seen.get(c, 0)) for c in cats]
    return cats_out, counts_out, int(row[ROW_COUNT])


def infrequent_enabled(min_frequency: Any, max_categories: Any) -> bool:
    return (max_categories is not None and max_categories >= 1) or min_frequency is not None


def identify_infrequent(
    counts: Sequence[int], n_samples: int, min_frequency: Any, max_categories: Any
) -> list[int] | None:
    """scikit-learn's ``_BaseEncoder._identify_infrequent``: indices of infrequent categories."""
    count = np.asarray(counts, dtype=np.int64)
    if isinstance(min_frequency, numbers.Integral):
        mask = count < min_frequency
    elif isinstance(min_frequency, numbers.Real):
        mask = count < n_samples * min_frequency
    else:
        mask = np.zeros(count.shape[0], dtype=bool)
    n_current = count.size - mask.sum() + 1
    if max_categories is not None and max_categories < n_current:
        frequent = max_categories - 1
        if frequent == 0:
            mask[:] = True
        else:
            # stable sort, so ties keep category order, exactly as scikit-learn
            mask[np.argsort(count, kind="mergesort")[:-frequent]] = True
    found = np.flatnonzero(mask).tolist()
    return found or None


# --- SQL pieces -------------------------------------------------------------


@dataclass
class OneHotPlan:
    """One input column's one-hot block as :mod:`neve._sql_templates` templates.

    ``outputs`` are ``(name, condition)``: the column is 1 where the condition holds and 0
    elsewhere, and at most one condition holds in a row. ``guard`` is ``(condition, value)``
    checked before the first output (the unknown-category error). ``inputs`` are the Ibis
    values the templates name by key. Each condition is one expression however many
    categories it covers, so building costs O(output columns).
    """

    inputs: dict[Any, ir.Value]
    outputs: list[tuple[str, Any]] = field(default_factory=list)
    guard: tuple[Any, Any] | None = None

    def columns(self, dtype: dt.DataType, one: ir.Value, zero: ir.Value) -> list[tuple[str, T.Text]]:
        """``(name, Text)`` per output: ``CASE WHEN [guard THEN error WHEN] cond THEN 1 ELSE 0``."""
        inputs = {**self.inputs, "one": one, "zero": zero}
        result = []
        for i, (name, cond) in enumerate(self.outputs):
            branches = ((cond, T.Input("one")),)
            if i == 0 and self.guard is not None:
                branches = (self.guard, *branches)
            result.append((name, T.Text(T.Case(branches, T.Input("zero")), dtype, inputs)))
        return result


def one_hot_plan(
    col: str,
    x: ir.Value,
    categories: list[Any],
    infrequent: set[int],
    groups: list[tuple[str, list[int]]],
    out: str,
    *,
    infrequent_is_rest: bool,
    error: ir.Value | None,
) -> OneHotPlan:
    """The :class:`OneHotPlan` of ``x`` for the kept ``groups`` (label, category indices).

    With ``infrequent_is_rest`` (unknown values are infrequent, or abort the query) the
    infrequent column is "not a frequent category", one condition on the few frequent
    ones whatever the number of rare ones.
    """
    key = ("x", col)
    X = T.Input(key)
    plan = OneHotPlan(inputs={key: x})
    for name, members in groups:
        if name == "infrequent_sklearn" and infrequent_is_rest:
            frequent = tuple(c for i, c in enumerate(categories) if i not in infrequent)
            cond: Any = T.Not(T.Member(X, frequent, never_null=True))
        else:
            cond = T.Member(X, tuple(categories[i] for i in members), never_null=False)
        plan.outputs.append((f"{out}_{name}", cond))
    if error is not None and plan.outputs:
        plan.inputs[("error", col)] = error
        plan.guard = (T.Not(T.Member(X, tuple(categories), never_null=True)), T.Input(("error", col)))
    return plan


def fail_unknown(x: ir.Value, col: str) -> ir.Value:
    """Abort the query, naming ``col`` and the offending value (a NULL as NULL, unquoted)."""
    shown = (ibis.literal("'") + x.cast("string") + ibis.literal("'")).fill_null("NULL")
    message = ibis.literal(f"{_UNKNOWN}{col!r}: ") + shown + ibis.literal(_UNKNOWN_END)
    return raise_in_query(message)


def unknown_message(owner: str, col: str, shown: str, categories: Sequence[Any]) -> str:
    """``shown``: the unseen value as SQL prints it, ``'text'`` or ``NULL``."""
    known = [label(c) for c in categories]
    listed = ", ".join(map(repr, known[:10])) + (", ..." if len(known) > 10 else "")
    return (
        f"{owner}: unknown category {shown} in column {col!r}, not seen during fit "
        f"(handle_unknown='error'); known categories: {listed}"
    )


def unknown_category_error(
    exc: BaseException, owner: str, categories: dict[str, list[Any]]
) -> UnknownCategoryError | None:
    """The neve error for an engine error raised by :func:`fail_unknown`, else ``None``."""
    text = str(exc)
    start = text.find(_UNKNOWN)
    if start < 0:
        return None
    rest = text[start + len(_UNKNOWN) :]
    for col, cats in categories.items():
        head = f"{col!r}: "
        if rest.startswith(head):
            match = re.match(r"(.*?)" + re.escape(_UNKNOWN_END), rest[len(head) :], re.DOTALL)
            shown = match.group(1) if match else rest[len(head) :]
            return UnknownCategoryError(unknown_message(owner, col, shown, cats))
    return UnknownCategoryError(f"{owner}: {text[start:].splitlines()[0]}")


def member(x: ir.Value, values: Sequence[Any]) -> ir.BooleanValue:
    """``x`` is one of ``values`` (missing matches a NaN entry), never NULL: the unknown-value
    check below negates it."""
    present = [v for v in values if not is_missing(v)]
    if not present:
        cond: ir.BooleanValue = ibis.literal(False)
    elif len(present) == 1:
        cond = (x == present[0]).fill_null(False)
    else:
        cond = x.isin(present).fill_null(False)
    if len(present) < len(values):
        cond = cond | x.isnull()
    return cond


def first_unknown(table: ir.Table, categories: dict[str, list[Any]]) -> tuple[str, str] | None:
    """``(column, value as SQL prints it)`` of one value outside ``categories``, or ``None``:
    one query that stops at the first such row."""
    unknown = {col: ~member(missing_to_null(table[col]), cats) for col, cats in categories.items()}
    if not unknown:
        return None
    found = table.filter(functools.reduce(operator.or_, unknown.values())).select(
        **{f"u{i}": cond for i, cond in enumerate(unknown.values())},
        **{f"v{i}": table[col].cast("string") for i, col in enumerate(unknown)},
    ).limit(1)
    rows = _queries.to_pyarrow(found).to_pylist()
    if not rows:
        return None
    for i, col in enumerate(unknown):
        if rows[0][f"u{i}"]:
            value = rows[0][f"v{i}"]
            return col, "NULL" if value is None else f"'{value}'"
    return None
