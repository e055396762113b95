"""Drift of new data against a training baseline, measured in one query.

Per feature, against ``baseline.json`` (see :func:`neve.monitoring.baseline`):

- **PSI** over the baseline's bins: deciles for numeric columns, the training
  categories (plus one bucket for everything else) for categorical ones.
- **KS** statistic from the binned CDFs (the largest gap between the two
  cumulative distributions at the baseline's decile edges).
- **Mean shift** in baseline standard deviations (numeric columns).
- **Null-fraction change** (current minus baseline).
- **Unseen share**: the fraction of non-null rows whose category never
  occurred in training (categorical columns).

A feature drifts when any measure passes its threshold. The defaults (PSI >
0.2, |mean shift| > 0.5 sd, null fraction +0.1, unseen share > 0.05) were
checked on the taxi samples: trained on 2019-01/02, March 2019 passes and the
April 2020 lockdown month is flagged (README, "Drift").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import ibis.expr.types as ir
import pandas as pd

from neve._table import as_table, missing_to_null
from neve.engine import _queries
from neve.errors import ColumnNotFoundError, ColumnTypeError, DriftError, EmptyInputError, InvalidParameterError
from neve.monitoring._baseline import BASELINE_FORMAT, describe

__all__ = ["DriftReport", "DriftThresholds", "drift"]

#: Floor for bin fractions in PSI, so an empty bin does not make the index infinite.
PSI_FLOOR = 1e-4
OTHER = "(other)"


@dataclass(frozen=True)
class DriftThresholds:
    """When a feature counts as drifted. ``None`` switches a check off (it is still reported)."""

    psi: float | None = 0.2
    mean_shift: float | None = 0.5
    null_fraction: float | None = 0.1
    unseen: float | None = 0.05
    ks: float | None = None

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if value is not None and not (isinstance(value, (int, float)) and value >= 0):
                raise InvalidParameterError(f"drift threshold {name} must be >= 0 or None, got {value!r}")


@dataclass
class _Feature:
    name: str
    kind: str
    psi: float
    ks: float | None
    mean_shift: float | None
    null_fraction_change: float
    unseen_share: float | None
    labels: list[str] = field(default_factory=list)
    expected: list[float] = field(default_factory=list)
    actual: list[float] = field(default_factory=list)


@dataclass
class DriftReport:
    """Per-feature drift measures. ``features`` is a DataFrame; ``ok`` is True when nothing drifted."""

    features: pd.DataFrame
    thresholds: DriftThresholds
    row_count: int
    baseline_row_count: int
    _details: dict[str, _Feature] = field(default_factory=dict, repr=False)

    @property
    def drifted(self) -> list[str]:
        return list(self.features.loc[self.features["drifted"], "feature"])

    @property
    def ok(self) -> bool:
        return not self.drifted

    def __bool__(self) -> bool:  # a report is truthy when the data is fine
        return self.ok

    def summary(self) -> str:
        if self.ok:
            return f"no drift in {len(self.features)} features ({self.row_count} rows)"
        rows = self.features[self.features["drifted"]]
        parts = [f"{r.feature} ({r.reason})" for r in rows.itertuples()]
        return f"drift in {len(parts)} of {len(self.features)} features: " + "; ".join(parts)

    def raise_if_drifted(self) -> DriftReport:
        """Raise :class:`~neve.errors.DriftError` naming the drifted features and values."""
        if not self.ok:
            raise DriftError(self.summary(), report=self)
        return self

    def to_dict(self, *, bins: bool = False) -> dict[str, Any]:
        """Plain JSON data: for logs, XCom and the registry. ``bins=True`` adds each feature's
        bin labels with the training (``expected``) and current (``actual``) shares, what a
        plot of the report draws."""
        records = self.features.astype(object).where(self.features.notna(), None).to_dict("records")
        out = {
            "ok": self.ok,
            "drifted": self.drifted,
            "row_count": self.row_count,
            "baseline_row_count": self.baseline_row_count,
            "thresholds": asdict(self.thresholds),
            "features": records,
        }
        if bins:
            out["bins"] = {
                name: {"labels": [str(label) for label in d.labels], "expected": [float(x) for x in d.expected],
                       "actual": [float(x) for x in d.actual]}
                for name, d in self._details.items()
            }
        return out

    def to_rich_table(self, title: str | None = None) -> Any:
        from rich.table import Table

        table = Table(title=title or ("Drift: none" if self.ok else f"Drift: {', '.join(self.drifted)}"))
        for column in ("feature", "type", "PSI", "KS", "mean shift (sd)", "null Δ", "unseen", "drifted"):
            table.add_column(column, justify="left" if column in ("feature", "type") else "right")
        for row in self.features.itertuples():
            table.add_row(
                row.feature,
                row.type,
                _fmt(row.psi),
                _fmt(row.ks),
                _fmt(row.mean_shift, signed=True),
                _fmt(row.null_fraction_change, signed=True),
                _fmt(row.unseen_share),
                "[bold red]yes[/]" if row.drifted else "[green]no[/]",
            )
        return table

    def plot(self, path: str | Path, *, top: int = 4) -> Path:
        """Write a PNG comparing baseline and current distributions of the ``top`` worst features."""
        from neve.monitoring._plot import plot_report

        return plot_report(self, Path(path), top=top)


def _fmt(value: Any, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def drift(
    data: Any,
    baseline: dict[str, Any],
    *,
    columns: Sequence[str] | None = None,
    thresholds: DriftThresholds | None = None,
) -> DriftReport:
    """Compare ``data`` (an Ibis table, pandas or pyarrow) with ``baseline`` in one query."""
    if not isinstance(baseline, dict) or baseline.get("format") != BASELINE_FORMAT:
        raise InvalidParameterError(f"not a neve baseline (want format {BASELINE_FORMAT!r})")
    thresholds = thresholds or DriftThresholds()
    table, _ = as_table(data)
    profiles = baseline["columns"]
    names = list(columns) if columns is not None else list(profiles)
    unknown = [c for c in names if c not in profiles]
    if unknown:
        raise ColumnNotFoundError(f"no baseline for {unknown}; the baseline has {', '.join(profiles)}")
    missing = [c for c in names if c not in table.columns]
    if missing:
        raise ColumnNotFoundError(
            f"drift check needs columns {missing}, missing from the table "
            f"(columns: {', '.join(table.columns)})"
        )
    numeric = [c for c in names if profiles[c]["type"] == "numeric" and profiles[c]["edges"]]
    categorical = [c for c in names if profiles[c]["type"] == "categorical"]
    schema = table.schema()
    changed = [c for c in numeric if not schema[c].is_numeric() or schema[c].is_boolean()]
    if changed:
        raise ColumnTypeError(
            f"drift check on {describe(table)}: "
            + ", ".join(f"column {c!r} was numeric at training and is now {schema[c]}" for c in changed)
            + "; cast it back to a number, or leave it out with columns=[...]"
        )
    row = _measure(table, numeric, categorical, profiles)
    n = int(row["n"])
    if n == 0:
        raise EmptyInputError(f"drift check on {describe(table)}: it has no rows")
    details = {}
    for i, name in enumerate(numeric):
        details[name] = _numeric_drift(name, profiles[name], row, f"n{i}", n)
    for i, name in enumerate(categorical):
        details[name] = _categorical_drift(name, profiles[name], row, f"c{i}", n)
    records = []
    for name in names:
        if name not in details:
            continue
        f = details[name]
        reasons = _reasons(f, thresholds)
        records.append(
            {
                "feature": name,
                "type": f.kind,
                "psi": f.psi,
                "ks": f.ks,
                "mean_shift": f.mean_shift,
                "null_fraction_change": f.null_fraction_change,
                "unseen_share": f.unseen_share,
                "drifted": bool(reasons),
                "reason": ", ".join(reasons),
            }
        )
    frame = pd.DataFrame.from_records(
        records,
        columns=["feature", "type", "psi", "ks", "mean_shift", "null_fraction_change",
                 "unseen_share", "drifted", "reason"],
    )
    return DriftReport(frame, thresholds, n, int(baseline.get("row_count") or 0), details)


def _measure(
    table: ir.Table, numeric: list[str], categorical: list[str], profiles: dict[str, Any]
) -> dict[str, Any]:
    """One query: moments and bin counts for numeric columns, value counts for categorical ones."""
    metrics: dict[str, ir.Scalar] = {"n": table.count()}
    for i, name in enumerate(numeric):
        x = missing_to_null(table[name].cast("float64"))
        metrics[f"n{i}_count"] = x.count()
        metrics[f"n{i}_mean"] = x.mean()
        for k, edge in enumerate(_inner_edges(profiles[name])):
            metrics[f"n{i}_le{k}"] = (x <= edge).ifelse(1, 0).sum()
    for i, name in enumerate(categorical):
        metrics[f"c{i}_count"] = table[name].count()
    result = table.aggregate(**metrics)
    for i, name in enumerate(categorical):
        counts = table.group_by(v=table[name].cast("string")).aggregate(k=table.count())
        counts = counts.filter(counts.v.notnull())
        collected = counts.aggregate(**{f"c{i}_values": counts.v.collect(), f"c{i}_counts": counts.k.collect()})
        result = result.cross_join(collected)
    return _queries.to_pyarrow(result).to_pylist()[0]


def _inner_edges(profile: dict[str, Any]) -> list[float]:
    """The baseline's decile edges without the min and max, duplicates removed (ties)."""
    return sorted({e for e in profile["edges"][1:-1] if e is not None})


def _psi(expected: list[float], actual: list[float]) -> float:
    total = 0.0
    for e, a in zip(expected, actual, strict=True):
        e, a = max(e, PSI_FLOOR), max(a, PSI_FLOOR)
        total += (a - e) * math.log(a / e)
    return total


def _numeric_drift(name: str, profile: dict[str, Any], row: dict[str, Any], key: str, n: int) -> _Feature:
    edges = _inner_edges(profile)
    # Baseline cumulative share at each inner edge, from its per-decile fractions.
    base_edges, base_cum, running = profile["edges"][1:-1], {}, 0.0
    for edge, fraction in zip(base_edges, profile["fractions"], strict=False):
        running += fraction
        base_cum[edge] = running
    count = int(row[f"{key}_count"] or 0)
    expected_cum = [base_cum[e] for e in edges]
    actual_cum = [int(row[f"{key}_le{k}"] or 0) / count if count else 0.0 for k in range(len(edges))]
    expected = _diff([*expected_cum, 1.0])
    actual = _diff([*actual_cum, 1.0])
    mean = row[f"{key}_mean"]
    std = profile.get("std")
    if mean is None or profile.get("mean") is None:
        shift = None
    elif std:
        shift = (float(mean) - profile["mean"]) / std
    else:
        shift = 0.0 if float(mean) == profile["mean"] else math.inf
    ks = max((abs(a - e) for a, e in zip(actual_cum, expected_cum, strict=True)), default=0.0)
    labels = [f"≤ {e:.4g}" for e in edges] + [f"> {edges[-1]:.4g}" if edges else "all"]
    return _Feature(
        name, "numeric", _psi(expected, actual), ks, shift,
        (n - count) / n - profile["null_fraction"], None, labels, expected, actual,
    )


def _categorical_drift(name: str, profile: dict[str, Any], row: dict[str, Any], key: str, n: int) -> _Feature:
    known = {str(t["value"]): t["fraction"] for t in profile["top"]}
    non_null_base = sum(known.values()) + profile.get("other_fraction", 0.0)
    count = int(row[f"{key}_count"] or 0)
    current = dict(zip(row[f"{key}_values"] or [], row[f"{key}_counts"] or [], strict=True))
    unseen_rows = sum(c for v, c in current.items() if v not in known)
    labels = [*known, OTHER]
    expected = [f / non_null_base if non_null_base else 0.0 for f in known.values()]
    expected.append(profile.get("other_fraction", 0.0) / non_null_base if non_null_base else 0.0)
    actual = [current.get(v, 0) / count if count else 0.0 for v in known]
    actual.append(unseen_rows / count if count else 0.0)
    # With a truncated baseline (other_fraction > 0) "unseen" includes rare training values.
    unseen = unseen_rows / count if count else 0.0
    return _Feature(
        name, "categorical", _psi(expected, actual), None, None,
        (n - count) / n - profile["null_fraction"], unseen, labels, expected, actual,
    )


def _diff(cumulative: list[float]) -> list[float]:
    return [b - a for a, b in zip([0.0, *cumulative[:-1]], cumulative, strict=True)]


def _reasons(f: _Feature, t: DriftThresholds) -> list[str]:
    reasons = []
    if t.psi is not None and f.psi > t.psi:
        reasons.append(f"PSI {f.psi:.3f} > {t.psi}")
    if t.ks is not None and f.ks is not None and f.ks > t.ks:
        reasons.append(f"KS {f.ks:.3f} > {t.ks}")
    if t.mean_shift is not None and f.mean_shift is not None and abs(f.mean_shift) > t.mean_shift:
        reasons.append(f"mean shift {f.mean_shift:+.3f} sd beyond ±{t.mean_shift}")
    if t.null_fraction is not None and f.null_fraction_change > t.null_fraction:
        reasons.append(f"null fraction +{f.null_fraction_change:.3f} > {t.null_fraction}")
    if t.unseen is not None and f.unseen_share is not None and f.unseen_share > t.unseen:
        reasons.append(f"unseen categories {f.unseen_share:.3f} > {t.unseen}")
    return reasons
