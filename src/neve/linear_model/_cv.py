"""Cross-validation of least squares from fold-wise sufficient statistics.

One statistics query grouped additionally by fold (:func:`._stats.gather_by`) gives each
fold's sums in one z-space. Fold ``k``'s training statistics are the sums of the other
folds'; the model is solved from them (one eigendecomposition serves every ``alpha``);
and fold ``k``'s held-out squared error is a quadratic form of its own statistics,
``Σ(y - ŷ)² = vᵀ(Σ z zᵀ)v`` for ``v`` the residual as a linear map of z: no second pass.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from neve.linear_model._base import LABEL
from neve.linear_model._linear import RANK_TOLERANCE, _feature_system
from neve.linear_model._stats import Design, Stats

__all__ = ["STATS_SCORERS", "Eigen", "HeldOut", "fold_systems", "residual_map", "restrict", "sum_stats"]

#: Scorers computed from a held-out fold's statistics (no rows needed).
STATS_SCORERS = ("neg_mean_squared_error", "neg_root_mean_squared_error", "r2")


def sum_stats(parts: Sequence[Stats], hows: Mapping[str, str]) -> Stats:
    """The statistics of the union of disjoint row sets (extras combined as they ask)."""
    gram = [sum(p.gram[m] for p in parts) for m in range(len(parts[0].gram))]
    cross = [sum(p.cross[r] for p in parts) for r in range(len(parts[0].cross))]
    extras = {}
    for name, how in hows.items():
        values = np.array([p.extras[name] for p in parts], dtype=float)
        reduce = {"sum": np.nansum, "min": np.nanmin, "max": np.nanmax}[how]
        extras[name] = float(reduce(values)) if not np.all(np.isnan(values)) else math.nan
    return Stats(gram=gram, cross=cross, extras=extras, n_groups=sum(p.n_groups for p in parts))


def restrict(design: Design, stats: Stats) -> tuple[Design, Stats, np.ndarray]:
    """The design and statistics over only the categories ``stats`` has rows of, as an
    encoder fitted on those rows alone would see them, and the kept positions of z.

    A category seen only in other folds has no indicator in the fold's model: its rows
    get all-zero indicators, as ``handle_unknown="ignore"`` gives them.
    """
    assert design.categories is not None
    unit = stats.gram[-1]
    keep = np.ones(design.size, dtype=bool)
    categories = {}
    for col, at in design.offsets.items():
        cats = design.categories[col]
        present = np.diag(unit)[at:at + len(cats)] > 0
        keep[at:at + len(cats)] = present
        categories[col] = [c for c, p in zip(cats, present, strict=True) if p]
    sel = np.flatnonzero(keep)
    sub = Design(table=design.table, categorical=list(design.categorical), numeric=dict(design.numeric),
                 categories=categories, pilot=design.pilot, frequency=None)
    part = Stats(gram=[g[np.ix_(sel, sel)] for g in stats.gram], cross=[c[sel] for c in stats.cross],
                 extras=stats.extras, n_groups=stats.n_groups)
    return sub, part, sel


@dataclass
class HeldOut:
    """A held-out fold's statistics, ready to score any linear predictor of z.

    ``centred`` is the fold's Gram in shifted z-space about the fold's own mean ``mean``:
    squared errors are formed from it and the mean separately, so the large raw sums never
    cancel against each other.
    """

    rows: float
    mean: np.ndarray
    centred: np.ndarray
    unshift: np.ndarray
    label_at: int

    @classmethod
    def of(cls, design: Design, stats: Stats) -> HeldOut:
        gram = stats.gram[-1]
        rows = float(gram[0, 0])
        mean = gram[0] / rows
        return cls(rows, mean, gram - rows * np.outer(mean, mean), stats.unshift(design),
                   design.numeric_index(LABEL))

    def squared_error(self, residual: np.ndarray) -> float:
        """``Σ (residual · z)²`` over the fold's rows, ``residual`` a map of unshifted z."""
        u = self.unshift.T @ residual
        return max(float(u @ self.centred @ u), 0.0) + self.rows * float(u @ self.mean) ** 2

    def scores(self, residual: np.ndarray) -> dict[str, float]:
        """scikit-learn's regression scorers of the predictor whose residual is ``residual``."""
        sse = self.squared_error(residual)
        total = max(float(self.centred[self.label_at, self.label_at]), 0.0)
        mse = sse / self.rows
        # scikit-learn's r2_score (force_finite): a constant y scores 1 when predicted exactly.
        if self.rows < 2:
            r2 = math.nan  # scikit-learn: R² is not defined for fewer than two samples
        else:
            r2 = (1.0 if sse == 0.0 else 0.0) if total == 0.0 else 1.0 - sse / total
        return {"neg_mean_squared_error": -mse, "neg_root_mean_squared_error": -math.sqrt(mse), "r2": r2}


class Eigen:
    """``XᵀX = V Λ Vᵀ`` of one training fold, solving for any penalty without refactoring."""

    def __init__(self, gram: np.ndarray, cross: np.ndarray) -> None:
        self.values, self.vectors = np.linalg.eigh(gram) if gram.size else (np.zeros(0), np.zeros((0, 0)))
        self.projected = self.vectors.T @ cross

    def solve(self, alpha: float) -> np.ndarray:
        """``(XᵀX + αI)⁻¹ Xᵀy``; with ``alpha`` 0 the minimum-norm least-squares solution
        (LinearRegression's, eigenvalues at or below ``RANK_TOLERANCE·λmax`` treated as zero)."""
        if self.values.size == 0:
            return np.zeros(0)
        if alpha == 0.0:
            keep = self.values > RANK_TOLERANCE * max(self.values[-1], 0.0)
            return self.vectors[:, keep] @ (self.projected[keep] / self.values[keep])
        return self.vectors @ (self.projected / (self.values + alpha))


def fold_systems(
    design: Design, folds: Sequence[Stats], hows: Mapping[str, str], a: np.ndarray, fit_intercept: bool,
) -> list[tuple[Eigen, np.ndarray, float, HeldOut]]:
    """Per fold, the training folds' feature system (its spectrum, feature and label means)
    and the held-out fold, for features ``a`` fixed across folds (a RidgeCV's inputs)."""
    out = []
    for k, held in enumerate(folds):
        train = sum_stats([s for j, s in enumerate(folds) if j != k], hows)
        gram_f, cross, mean_f, mean_y = _feature_system(design, train, a, fit_intercept)
        out.append((Eigen(gram_f, cross), mean_f, mean_y, HeldOut.of(design, held)))
    return out


def residual_map(design: Design, a: np.ndarray, coef: np.ndarray, intercept: float,
                 sel: np.ndarray | None = None) -> np.ndarray:
    """``y - ŷ`` as a map of unshifted z (``a`` over the positions ``sel`` of z, all by default)."""
    residual = np.zeros(design.size)
    residual[design.numeric_index(LABEL)] = 1.0
    residual[0] -= intercept
    if sel is None:
        residual -= a.T @ coef
    else:
        residual[sel] -= a.T @ coef
    return residual
