"""Training baseline statistics, computed in the engine.

:func:`baseline` profiles the feature columns of a training table: for numeric
columns the count, null fraction, mean, standard deviation, min, max and decile
edges with the fraction of rows in each bin; for categorical columns the top-k
values with their frequencies (k defaults to 1000, so that drift checks can
tell an unseen category from a rare one). The registry stores the result as
``baseline.json`` beside each model version; :func:`drift` compares scoring
data against it.

All numeric columns are profiled by ONE query (moments and deciles in a
sub-select, bin fractions in the outer aggregate over the same scan), and all
categorical columns by one more (a UNION ALL of per-column top-k counts).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import ibis
import ibis.expr.types as ir

from neve.engine import _queries
from neve.errors import ColumnNotFoundError, EmptyInputError, InvalidParameterError
from neve.preprocessing._base import as_table, missing_to_null

__all__ = ["BASELINE_FORMAT", "baseline", "describe"]

BASELINE_FORMAT = "neve.baseline/1"


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
    data: Any, columns: Sequence[str] | None = None, *, bins: int = 10, top_k: int = 1000
) -> dict[str, Any]:
    """Profile ``columns`` (default: all) of ``data`` (an ibis table, pandas or pyarrow).

    Numeric columns treat NaN as missing, as scikit-learn does. ``std`` is the sample
    standard deviation (ddof=1). Returns plain JSON data.
    """
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
    if numeric:
        row_count, stats = _numeric(table, numeric, bins)
        out["row_count"] = row_count
        out["columns"].update(stats)
    if categorical:
        row_count, stats = _categorical(table, categorical, top_k)
        out["row_count"] = row_count
        out["columns"].update(stats)
    if "row_count" not in out:
        out["row_count"] = int(_queries.execute(table.count()))
        if out["row_count"] == 0:
            raise EmptyInputError(f"cannot profile {describe(table)}: it has no rows")
    out["columns"] = {c: out["columns"][c] for c in names if c in out["columns"]}
    return out


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


def _categorical(table: ir.Table, columns: list[str], top_k: int) -> tuple[int, dict[str, Any]]:
    parts = []
    for i, name in enumerate(columns):
        counts = table.group_by(VALUE=table[name].cast("string")).aggregate(N=table.count())
        total = counts.N.sum().over()
        rank = ibis.row_number().over(order_by=[ibis.desc("N"), ibis.asc("VALUE")])
        counts = counts.mutate(COL=ibis.literal(i, "int64"), TOTAL=total, RANK=rank)
        # The NULL group is always kept: it carries the null fraction.
        parts.append(counts.filter((counts.RANK <= top_k) | counts.VALUE.isnull()))
    frame = _queries.execute(ibis.union(*parts, distinct=False))
    result: dict[str, Any] = {}
    n = int(frame["TOTAL"].iloc[0]) if len(frame) else 0
    if n == 0:
        raise EmptyInputError(f"cannot profile {describe(table)}: it has no rows")
    for i, name in enumerate(columns):
        rows = frame[frame["COL"] == i]
        nulls = int(rows.loc[rows["VALUE"].isna(), "N"].sum())
        values = rows[rows["VALUE"].notna()].sort_values(["N", "VALUE"], ascending=[False, True])
        top = [{"value": v, "fraction": int(c) / n} for v, c in zip(values["VALUE"], values["N"], strict=True)]
        result[name] = {
            "type": "categorical",
            "count": n - nulls,
            "null_fraction": nulls / n if n else 0.0,
            "top": top[:top_k],
            "other_fraction": max(0.0, 1.0 - nulls / n - sum(t["fraction"] for t in top[:top_k])) if n else 0.0,
        }
    return n, result
