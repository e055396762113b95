"""Training baseline statistics, computed in the engine.

:func:`baseline` profiles the feature columns of a training table: for numeric
columns the count, null fraction, mean, standard deviation, min, max and decile
edges with the fraction of rows in each bin; for categorical columns the top-k
values with their frequencies (k defaults to 1000, so that drift checks can
tell an unseen category from a rare one). The registry stores the result as
``baseline.json`` beside each model version; :func:`drift` compares scoring
data against it.

Two queries profile every column, whatever the row count. The first is one cheap
aggregate scan: the row count, the range of each integer column (engines keep min/max
per block, so this is nearly free) and an estimate of the number of distinct values of
each other numeric column (the registry adds its lineage fingerprint to this scan). The
second counts each value of every column with at most ``max_distinct`` values (a UNION
ALL of one GROUP BY per column; the top-k for categorical ones), and the moments, exact
deciles and bin fractions of a numeric column follow from its value counts on the
client. Real training columns have few distinct values (ids, hours, distances in
hundredths of a mile), so nothing is sorted. Only numeric columns with more distinct
values cost a third query: exact moments, deciles and bin counts in the engine.
Value counts an earlier query already made (a fused fit's categories, see
``known_counts``) are not counted again.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from neve._table import as_table, missing_to_null
from neve.engine import _queries
from neve.errors import ColumnNotFoundError, EmptyInputError, InvalidParameterError

__all__ = ["BASELINE_FORMAT", "MAX_DISTINCT", "baseline", "baseline_with", "describe"]

BASELINE_FORMAT = "neve.baseline/1"
#: Numeric columns with at most this many distinct values are profiled from their value counts.
MAX_DISTINCT = 100_000


def _float(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def describe(table: ir.Table) -> str:
    """The tables ``table`` reads, for error messages: "table 'TAXI'", or "the data" for a frame."""
    import ibis.expr.operations as ops

    names = sorted({node.name for node in table.op().find(ops.DatabaseTable)})
    if not names:
        return "the data"
    return f"table {names[0]!r}" if len(names) == 1 else f"tables {', '.join(map(repr, names))}"


def baseline(
    data: Any,
    columns: Sequence[str] | None = None,
    *,
    bins: int = 10,
    top_k: int = 1000,
    max_distinct: int = MAX_DISTINCT,
) -> dict[str, Any]:
    """Profile ``columns`` (default: all) of ``data`` (an ibis table, pandas or pyarrow).

    Numeric columns treat NaN as missing, as scikit-learn does. ``std`` is the sample
    standard deviation (ddof=1). Returns plain JSON data.
    """
    profile, _ = baseline_with(data, columns, bins=bins, top_k=top_k, max_distinct=max_distinct)
    return profile


def baseline_with(
    data: Any,
    columns: Sequence[str] | None = None,
    extra: Mapping[str, ir.Scalar] | None = None,
    *,
    known_counts: tuple[int, Mapping[str, Mapping[Any, int]]] | None = None,
    bins: int = 10,
    top_k: int = 1000,
    max_distinct: int = MAX_DISTINCT,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """:func:`baseline`, plus the values of ``extra`` aggregates over ``data`` computed
    in the same first scan (the registry's lineage fingerprint rides along there).

    ``known_counts`` is ``(rows, {column: {value: count}})``, value counts some earlier
    query already made (a fused fit's statistics; ``None`` counts NULLs): categorical
    columns found there are not counted again, provided ``data`` has exactly ``rows`` rows
    (the first scan checks; otherwise they are counted as usual)."""
    if bins < 2:
        raise InvalidParameterError(f"bins must be >= 2, got {bins}")
    if top_k < 1:
        raise InvalidParameterError(f"top_k must be >= 1, got {top_k}")
    table, _ = as_table(data)
    names = list(table.columns) if columns is None else list(columns)
    missing = [c for c in names if c not in table.columns]
    if missing:
        raise ColumnNotFoundError(
            f"baseline columns {missing} not in the table (columns: {', '.join(table.columns)})"
        )
    schema = table.schema()
    numeric = [c for c in names if schema[c].is_numeric() and not schema[c].is_boolean()]
    categorical = [c for c in names if schema[c].is_string() or schema[c].is_boolean()]
    out: dict[str, Any] = {"format": BASELINE_FORMAT, "bins": bins, "top_k": top_k, "columns": {}}
    skipped = [c for c in names if c not in numeric and c not in categorical]
    if skipped:
        out["skipped"] = skipped

    exact_ints = {c for c in numeric if schema[c].is_integer()}
    # Integer columns stay as they are stored: a cast would hide the min/max engines keep.
    values = {c: table[c] if c in exact_ints else missing_to_null(table[c]).cast("float64") for c in numeric}
    first = _queries.execute(table.aggregate(**_extent(values, exact_ints), **(extra or {}))).iloc[0]
    n = int(first["n"])
    if n == 0:
        raise EmptyInputError(f"cannot profile {describe(table)}: it has no rows")
    out["row_count"] = n
    rows, known = known_counts or (n, {})
    # String columns only: their values are what drift compares (other types go through text).
    reused = {c: known[c] for c in categorical if c in known and schema[c].is_string()} if rows == n else {}
    categorical = [c for c in categorical if c not in reused]
    counted = [c for i, c in enumerate(numeric) if _distinct_at_most(first, f"c{i}", c in exact_ints, max_distinct)]
    counts = _value_counts(table, values, counted, categorical, top_k)
    stats: dict[str, Any] = {}
    for i, c in enumerate(counted):
        rows = counts[counts["COL"] == i]
        stats[c] = _from_counts(rows["VALUE_NUM"].to_numpy(), rows["N"].to_numpy(dtype=np.int64), n, bins)
    sorted_out = [c for c in numeric if c not in counted]
    if sorted_out:
        stats.update(_numeric(table, sorted_out, bins)[1])
    out["columns"].update(stats)
    for j, c in enumerate(categorical):
        rows = counts[counts["COL"] == len(counted) + j]
        out["columns"][c] = _categorical_entry(rows, n, top_k)
    for c, by_value in reused.items():
        rows_of = pd.DataFrame({"VALUE_STR": list(by_value), "N": list(by_value.values())})
        out["columns"][c] = _categorical_entry(rows_of, n, top_k)
    out["columns"] = {c: out["columns"][c] for c in names if c in out["columns"]}
    return out, {key: first[key] for key in (extra or {})}


def _extent(values: Mapping[str, ir.NumericValue], exact_ints: set[str]) -> dict[str, ir.Scalar]:
    """Row count and, per numeric column, what decides how to profile it: the value range of
    an integer column (free: engines keep min/max per block) or an estimate of the number of
    distinct values of any other."""
    extent: dict[str, ir.Scalar] = {"n": ibis._.count()}
    for i, (name, col) in enumerate(values.items()):
        if name in exact_ints:
            extent.update({f"c{i}_min": col.min(), f"c{i}_max": col.max()})
        else:
            extent[f"c{i}_distinct"] = col.approx_nunique()
    return extent


def _distinct_at_most(row: Any, key: str, integer: bool, limit: int) -> bool:
    if integer:
        low, high = row[f"{key}_min"], row[f"{key}_max"]
        return low is None or pd.isna(low) or high - low < limit
    return int(row[f"{key}_distinct"] or 0) <= limit


def _value_counts(
    table: ir.Table,
    values: Mapping[str, ir.NumericValue],
    numeric: list[str],
    categorical: list[str],
    top_k: int,
) -> pd.DataFrame:
    """``COL, VALUE_NUM, VALUE_STR, N``: every non-null value of each ``numeric`` column and
    the top-k values (plus NULL) of each ``categorical`` one, in one UNION ALL."""
    parts = []
    for i, name in enumerate(numeric):
        x = values[name]
        counts = table.filter(x.notnull()).group_by(VALUE=x).aggregate(N=ibis._.count())
        parts.append(
            counts.select(
                COL=ibis.literal(i, "int64"),
                VALUE_NUM=counts.VALUE.cast("float64"),
                VALUE_STR=ibis.null("string"),
                N="N",
            )
        )
    for j, name in enumerate(categorical):
        counts = table.group_by(VALUE_STR=table[name].cast("string")).aggregate(N=ibis._.count())
        rank = ibis.row_number().over(order_by=[ibis.desc("N"), ibis.asc("VALUE_STR")])
        counts = counts.mutate(RANK=rank)
        # The NULL group is always kept: it carries the null fraction.
        kept = counts.filter((counts.RANK <= top_k) | counts.VALUE_STR.isnull())
        parts.append(
            kept.select(
                COL=ibis.literal(len(numeric) + j, "int64"),
                VALUE_NUM=ibis.null("float64"),
                VALUE_STR="VALUE_STR",
                N="N",
            )
        )
    if not parts:
        return pd.DataFrame({"COL": [], "VALUE_NUM": [], "VALUE_STR": [], "N": []})
    return _queries.execute(ibis.union(*parts, distinct=False))


def _from_counts(values: np.ndarray, counts: np.ndarray, n: int, bins: int) -> dict[str, Any]:
    """A numeric column's profile, exactly, from its distinct non-null values and their counts:
    moments, decile edges (numpy's linear quantiles) and the fraction of rows in each bin."""
    total = int(counts.sum())
    entry: dict[str, Any] = {
        "type": "numeric",
        "count": total,
        "null_fraction": (n - total) / n if n else 0.0,
        "mean": None, "std": None, "min": None, "max": None, "edges": [], "fractions": [],
    }  # fmt: skip
    if not total:
        return entry
    order = np.argsort(values)
    values, counts = values[order].astype(np.float64), counts[order]
    mean = float(np.dot(values, counts) / total)
    entry.update(mean=_float(mean), min=_float(values[0]), max=_float(values[-1]))
    if total > 1:
        entry["std"] = _float(math.sqrt(float(np.dot((values - mean) ** 2, counts)) / (total - 1)))
    ends = np.cumsum(counts)  # the rank just past each value's last row

    def at(rank: np.ndarray) -> np.ndarray:
        return values[np.searchsorted(ends, rank, side="right")]

    positions = (total - 1) * np.arange(1, bins) / bins
    low = np.floor(positions)
    lo, hi, t = at(low), at(np.minimum(low + 1, total - 1)), positions - low
    quantiles = np.where(t >= 0.5, hi - (hi - lo) * (1 - t), lo + t * (hi - lo))  # numpy's lerp
    cum = [int(ends[np.searchsorted(values, q, side="right") - 1]) for q in quantiles] + [total]
    entry["edges"] = [entry["min"], *(_float(q) for q in quantiles), entry["max"]]
    entry["fractions"] = [(b - a) / total for a, b in zip([0, *cum[:-1]], cum, strict=True)]
    return entry


def _categorical_entry(rows: pd.DataFrame, n: int, top_k: int) -> dict[str, Any]:
    nulls = int(rows.loc[rows["VALUE_STR"].isna(), "N"].sum())
    values = rows[rows["VALUE_STR"].notna()].sort_values(["N", "VALUE_STR"], ascending=[False, True])
    top = [{"value": v, "fraction": int(c) / n} for v, c in zip(values["VALUE_STR"], values["N"], strict=True)]
    top = top[:top_k]
    return {
        "type": "categorical",
        "count": n - nulls,
        "null_fraction": nulls / n if n else 0.0,
        "top": top,
        "other_fraction": max(0.0, 1.0 - nulls / n - sum(t["fraction"] for t in top)) if n else 0.0,
    }


def _numeric(table: ir.Table, columns: list[str], bins: int) -> tuple[int, dict[str, Any]]:
    qs = [i / bins for i in range(1, bins)]
    x = {f"c{i}": missing_to_null(table[c]).cast("float64") for i, c in enumerate(columns)}
    inner = table.select(**x)
    moments: dict[str, ir.Scalar] = {"n": inner.count()}
    for key, col in ((k, inner[k]) for k in x):
        moments.update(
            {
                f"{key}_count": col.count(),
                f"{key}_mean": col.mean(),
                f"{key}_std": col.std(how="sample"),
                f"{key}_min": col.min(),
                f"{key}_max": col.max(),
                f"{key}_q": col.quantile(qs),
            }
        )
    stats = inner.aggregate(**moments)
    joined = inner.cross_join(stats)
    outer: dict[str, ir.Scalar] = {name: joined[name].max() for name in moments}
    for key in x:
        col, edges = joined[key], joined[f"{key}_q"]
        for k in range(len(qs)):
            outer[f"{key}_le{k}"] = (col <= edges[k]).ifelse(1, 0).sum()
    row = _queries.execute(joined.aggregate(**outer)).iloc[0]
    result = {}
    n = int(row["n"] or 0)
    if n == 0:  # an empty cross join aggregates to NULLs, not zeros
        raise EmptyInputError(f"cannot profile {describe(table)}: it has no rows")
    for i, name in enumerate(columns):
        key = f"c{i}"
        count = int(row[f"{key}_count"])
        entry: dict[str, Any] = {
            "type": "numeric",
            "count": count,
            "null_fraction": (n - count) / n if n else 0.0,
            "mean": _float(row[f"{key}_mean"]),
            "std": _float(row[f"{key}_std"]),
            "min": _float(row[f"{key}_min"]),
            "max": _float(row[f"{key}_max"]),
        }
        quantiles = row[f"{key}_q"]
        if count and quantiles is not None:
            cum = [int(row[f"{key}_le{k}"] or 0) for k in range(len(qs))] + [count]
            entry["edges"] = [entry["min"], *(_float(q) for q in quantiles), entry["max"]]
            entry["fractions"] = [(b - a) / count for a, b in zip([0, *cum[:-1]], cum, strict=True)]
        else:
            entry["edges"], entry["fractions"] = [], []
        result[name] = entry
    return n, result
