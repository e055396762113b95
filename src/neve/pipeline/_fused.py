"""Fitting a whole Pipeline (encoders, affine scalers, a linear estimator) in one query.

A one-hot column is an indicator and an affine scaler is ``a + b·x``, so every feature
the estimator sees is a linear map of z-space (the constant, one indicator per
category of the encoded columns, the raw numeric columns). The statistics query over
the *untransformed* table (grouped by the encoded columns, see :mod:`._stats`) yields
the categories, the scalers' statistics (min, max, counts and centred sums) and the
model's Gram matrix in z-space; the steps' own fitting formulas then run on those
statistics in the client, and the Gram matrix is mapped through the fitted transforms.
No one-hot column is ever written or computed row by row.

Steps that do not have this shape (imputers, discretizers, robust scaling, steps
reading other steps' outputs) leave the pipeline to the stepwise path.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import ibis.expr.types as ir
import numpy as np

from neve._table import missing_to_null
from neve.linear_model._base import LABEL, LinearEstimator, as_float, small_solves
from neve.linear_model._stats import Design, Stats
from neve.preprocessing import MaxAbsScaler, MinMaxScaler, OneHotEncoder, StandardScaler
from neve.preprocessing._base import BaseTransformer
from neve.preprocessing._categories import is_missing

__all__ = ["FitSummary", "FusedPlan", "fit_fused", "plan_fused"]

SCALERS = (MaxAbsScaler, MinMaxScaler, StandardScaler)

#: column name -> (constant, z-space coefficients): the column as a linear map of z.
Affine = dict[str, np.ndarray]


def _fusable(steps: Sequence[BaseTransformer], table: ir.Table, reserved: set[str]) -> bool:
    seen: set[str] = set()
    schema = table.schema()
    for step in steps:
        if type(step) is OneHotEncoder:
            if (step.min_frequency is not None or step.max_categories is not None
                    or not isinstance(step.categories, str) or step.drop not in (None, "first")):
                return False
        elif type(step) not in SCALERS or getattr(step, "clip", False):
            return False
        if step.input_cols is None:
            return False
        cols = [step.input_cols] if isinstance(step.input_cols, str) else list(step.input_cols)
        outs = cols if step.output_cols is None else (
            [step.output_cols] if isinstance(step.output_cols, str) else list(step.output_cols))
        if any(c not in schema or c in seen or c in reserved for c in cols) or step.drop_input_cols:
            return False
        if type(step) in SCALERS and not all(schema[c].is_numeric() or schema[c].is_boolean() for c in cols):
            return False
        if any(o in seen or (o in schema and o not in cols) for o in outs):
            return False  # an output overwriting another column: keep the stepwise semantics
        seen.update(cols)
        seen.update(outs)
    return True


@contextmanager
def _given_stats(step: BaseTransformer, stats: dict[str, Any]):
    """Run the step's own ``_fit`` formulas on statistics computed elsewhere."""
    step._stats = lambda *args, **kwargs: stats
    try:
        yield
    finally:
        del step._stats


@dataclass
class FusedPlan:
    """What a fused fit gathers and how it turns statistics into fitted steps: the design
    (untransformed table, encoded and numeric columns), label, weight, the scalers' extra
    aggregates, and ``features(design, stats) -> (names, A)``, which fits every step from
    the statistics and returns the estimator's features as linear maps of z."""

    design: Design
    label: Any
    weight: Any
    extras: dict[str, Any]
    features: Any
    encoded: list[str]
    scaled: list[str]


def fit_fused(
    steps: Sequence[BaseTransformer], estimator: LinearEstimator, table: ir.Table
) -> bool:
    """Fit ``steps`` and ``estimator`` from the statistics of ``table``; ``False`` (nothing
    fitted, no query run) when the steps do not have the fusable shape."""
    plan = plan_fused(steps, estimator, table)
    if plan is None:
        return False
    extras = dict(plan.extras)
    with small_solves():
        stats = estimator._fit_design(plan.design, plan.label, plan.weight, plan.features, extras)
    if estimator._gram_counts_rows:
        estimator.fit_summary_ = _summary(table, plan.design, stats)
    return True


def plan_fused(
    steps: Sequence[BaseTransformer], estimator: LinearEstimator, table: ir.Table
) -> FusedPlan | None:
    """The fused fit's plan for ``steps`` and ``estimator`` over ``table`` (no query runs;
    the steps' column state is set), or ``None`` when the steps are not fusable."""
    label_col = estimator._label_col(table)
    reserved = {label_col, estimator._weight_col(list(table.columns))} - {None}
    if not _fusable(steps, table, reserved):
        return None
    design, label, weight = estimator.prepare(table, label_col)
    base = design.table
    encoded, scaled, standardised = [], [], set()
    for step in steps:
        cols = step._start_fit(base)
        (encoded if type(step) is OneHotEncoder else scaled).extend(cols)
        if type(step) is StandardScaler:
            standardised.update(cols)
    design.categorical = encoded
    columns = list(base.columns)
    # Untouched numeric columns may be features too; which ones is known only after the
    # steps are fitted (output names), so every numeric candidate joins the design.
    schema = base.schema()
    candidates = [c for c in columns if c not in encoded and c not in reserved
                  and (schema[c].is_numeric() or schema[c].is_boolean())]
    design.numeric.update({c: missing_to_null(as_float(base[c])) for c in candidates})
    weights_extra: dict[str, Any] = {}
    for col in scaled:  # only what each scaler's formulas read (StandardScaler no extremes)
        x = design.numeric[col]
        if col in standardised:
            weights_extra[f"n:{col}"] = (x.count(), "sum")
        else:
            weights_extra[f"min:{col}"] = (x.min(), "min")
            weights_extra[f"max:{col}"] = (x.max(), "max")

    def features(design: Design, stats: Stats) -> tuple[list[str], np.ndarray]:
        affine = _fit_steps(steps, design, stats, columns)
        final = columns
        for step in steps:
            final = step.output_columns(final)
        names = estimator._input_cols_from(final)
        unknown = [n for n in names if n not in affine]
        if unknown:
            raise _not_numeric(estimator, unknown)
        return names, np.stack([affine[n] for n in names]) if names else np.zeros((0, design.size))

    return FusedPlan(design, label, weight, weights_extra, features, encoded, scaled)


@dataclass(frozen=True)
class FitSummary:
    """What a fused fit learnt about its training table besides the model, kept so that
    logging the model need not count it again (see ``Registry.log_model``).

    ``rows`` counts the rows fitted on (a NULL label drops a row); ``counts`` holds, per
    encoded column, each category's row count (``None`` for NULL). The lineage fingerprint is
    not here: hashing every row is work the fit does not use, so ``log_model`` does it in the
    scan it runs for the baseline anyway.
    """

    table: ir.Table
    rows: int
    counts: dict[str, dict[Any, int]]


def _summary(table: ir.Table, design: Design, stats: Stats) -> FitSummary:
    unit = stats.gram[-1]  # unweighted: the diagonal of an indicator block counts its rows
    assert design.categories is not None
    counts = {
        col: {None if is_missing(c) else c: int(round(unit[at + k, at + k])) for k, c in enumerate(cats)}
        for col, at in design.offsets.items()
        for cats in [design.categories[col]]
    }
    return FitSummary(table=table, rows=int(round(unit[0, 0])), counts=counts)


def _not_numeric(estimator: LinearEstimator, names: list[str]) -> Exception:
    from neve.errors import ColumnTypeError

    return ColumnTypeError(
        f"{type(estimator).__name__} needs numeric features, but {names} are not numeric after the "
        f"pipeline's steps; encode them (OneHotEncoder) or leave them out of input_cols"
    )


def _fit_steps(steps: Sequence[BaseTransformer], design: Design, stats: Stats, columns: list[str]) -> Affine:
    """Set every step's fitted state from the statistics; return each resulting numeric
    column as a row of the z-space map."""
    size = design.size
    unit = stats.gram[-1]  # unweighted when a weight is given (see LinearEstimator)
    affine: Affine = {}
    for name in design.numeric:
        if name != LABEL:
            row = np.zeros(size)
            row[design.numeric_index(name)] = 1.0
            affine[name] = row
    for step in steps:
        if type(step) is OneHotEncoder:
            step.categories_ = {c: design.categories[c] for c in step.input_cols_}
            step.infrequent_indices_ = {c: None for c in step.input_cols_}
            step.drop_idx_by_col_ = step._drop_indices(step.input_cols_)
            step._settle_names(step.input_cols_)
            for col, out in zip(step.input_cols_, step.output_cols_, strict=True):
                at = design.offsets[col]
                # No infrequent grouping here (see _fusable): each kept group is one category.
                for (_, (k,)), name in zip(step._kept_groups(col), step._output_names(col, out), strict=True):
                    row = np.zeros(size)
                    row[at + k] = 1.0
                    affine[name] = row
                affine.pop(col, None)
            continue
        cols = step.input_cols_
        idx = {c: design.numeric_index(c) for c in cols}
        s: dict[str, Any] = {"rows": int(unit[0, 0])}
        if type(step) is not StandardScaler:
            s.update(min={c: stats.extras[f"min:{c}"] for c in cols}, max={c: stats.extras[f"max:{c}"] for c in cols})
        else:
            n = {c: stats.extras[f"n:{c}"] for c in cols}
            s.update(
                n=n,
                mean={c: unit[0, idx[c]] / n[c] for c in cols},
                sq={c: unit[idx[c], idx[c]] / n[c] for c in cols},
                shift={c: float(design.pilot[list(design.numeric).index(c)]) for c in cols},
            )
        with _given_stats(step, s):
            step._fit(design.table, cols)
        # The step's transform on a column that is exactly ``x`` gives ``a + b·x``: read
        # a and b off the fitted state through its own expression on two constant rows.
        for col, out in zip(cols, step.output_cols_, strict=True):
            a, b = _affine_of(step, col)
            affine[out] = a * _unit(size, 0) + b * affine[col]
    return affine


def _unit(size: int, at: int) -> np.ndarray:
    row = np.zeros(size)
    row[at] = 1.0
    return row


def _affine_of(step: BaseTransformer, col: str) -> tuple[float, float]:
    """``(a, b)`` with ``step(x) = a + b·x`` for one column of a fitted affine scaler."""
    if type(step) is MaxAbsScaler:
        return 0.0, 1.0 / step.scale_[col]
    if type(step) is MinMaxScaler:
        return step.min_[col], step.scale_[col]
    mean = step.mean_[col] if step.with_mean else 0.0
    scale = step.scale_[col] if step.with_std else 1.0
    return -mean / scale, 1.0 / scale
