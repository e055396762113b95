"""Every candidate of a search, on every fold, from one statistics query.

A candidate is a fusable pipeline (see :mod:`neve.pipeline._fused`) ending in LinearRegression or Ridge,
or such an estimator alone. Candidates whose statistics have the same shape (the same
encoded, scaled and numeric columns) share one query grouped by fold as well; for each
fold, the steps are refitted from the training folds' statistics exactly as scikit-learn's
GridSearchCV refits the pipeline on the training rows (categories seen in those rows only,
scalers from their min/max/sums), the model solved for every alpha from one
eigendecomposition, and scored on the held-out fold's statistics. The chosen candidate is
refitted from the totals with no further scan.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import ibis.expr.types as ir
import numpy as np

from neve.linear_model._base import LABEL, LinearEstimator, as_float, small_solves
from neve.linear_model._cv import STATS_SCORERS, Eigen, HeldOut, residual_map, restrict, sum_stats
from neve.linear_model._linear import LinearRegression, Ridge, _feature_system
from neve.linear_model._logistic import LogisticRegression
from neve.linear_model._logistic_cv import PATH_SCORERS, binary_classes, first_pass, positive_of
from neve.linear_model._newton_paths import PathModel, fit_paths
from neve.linear_model._stats import Design, Stats, gather_by
from neve.pipeline._fused import FusedPlan, _summary, plan_fused
from neve.preprocessing import BaseTransformer, OneHotEncoder

__all__ = ["Candidate", "FoldScores", "fusable", "fusable_paths", "search_from_stats", "search_paths"]


@dataclass
class Candidate:
    """One point of the grid: its (cloned, parameterised) steps and estimator."""

    steps: list[BaseTransformer]
    estimator: LinearEstimator
    plan: FusedPlan | None = None
    group: _Group | None = None


@dataclass
class FoldScores:
    """Per candidate, per fold: the scores, the fit and score times (seconds)."""

    scores: list[list[dict[str, float]]]
    fit_times: np.ndarray
    score_times: np.ndarray
    queries: int


@dataclass
class _Group:
    design: Design
    folds: list[Stats]
    hows: dict[str, str]
    total: Stats | None = None
    _training: dict[int, Stats] = field(default_factory=dict)

    def training(self, k: int) -> Stats:
        if k not in self._training:
            self._training[k] = sum_stats([s for j, s in enumerate(self.folds) if j != k], self.hows)
        return self._training[k]


def fusable(steps: Sequence[BaseTransformer], estimator: Any, scorers: Sequence[str]) -> bool:
    """Whether a candidate can be cross-validated from statistics (before any query)."""
    return (type(estimator) in (LinearRegression, Ridge) and estimator.sample_weight_col is None
            and all(s in STATS_SCORERS for s in scorers))


def fusable_paths(steps: Sequence[BaseTransformer], estimator: Any, scorers: Sequence[str]) -> bool:
    """Whether a candidate can be cross-validated by shared Newton passes (before any query)."""
    return (type(estimator) is LogisticRegression and estimator.sample_weight_col is None
            and estimator.penalty in ("l2", None) and not estimator.dual and estimator.class_weight is None
            and all(s in PATH_SCORERS for s in scorers))


def search_paths(
    candidates: Sequence[Candidate], table: ir.Table, fold_of: Callable[[ir.Table], ir.Value], n_folds: int,
    scorers: Sequence[str],
) -> FoldScores | None:
    """Scores of every LogisticRegression candidate on every fold, all fitted together by
    shared Newton passes (one query per pass for every candidate and fold; see
    :mod:`neve.linear_model._newton_paths`), each fold's steps refitted from the first
    pass's training statistics. ``None`` (no query run) when some candidate's steps are
    not fusable, or (after the classes query) when the label is not binary."""
    for cand in candidates:
        cand.plan = plan_fused(cand.steps, cand.estimator, table)
        if cand.plan is None:
            return None
    started = time.perf_counter()
    groups: dict[Any, list[Candidate]] = {}
    for cand in candidates:
        key = (tuple(cand.plan.encoded), tuple(cand.plan.scaled), tuple(cand.plan.design.numeric),
               cand.estimator._label_col(table))
        groups.setdefault(key, []).append(cand)
    queries = 0
    n = len(candidates)
    scores: list[list[dict[str, float]]] = [[{} for _ in range(n_folds)] for _ in range(n)]
    with small_solves():
        for members in groups.values():
            lead = members[0]
            design, est = lead.plan.design, lead.estimator
            owner = type(est).__name__
            design.check_width(owner)
            classes = binary_classes(design, lead.plan.label, est.label_cols_[0], owner)
            queries += 1
            if len(classes) != 2:
                return None
            positive = positive_of(lead.plan.label, classes)
            extras = {**lead.plan.extras, **est.null_checks(design, None)}
            hows = {name: how for name, (_, how) in extras.items()}
            folds, positives = first_pass(design, fold_of(design.table), n_folds, positive, extras,
                                          est.label_cols_[0], owner)
            queries += 1
            group = _Group(design, folds, hows)
            models: list[tuple[int, int, PathModel]] = []
            fitted: dict[Any, tuple[np.ndarray, str | None]] = {}
            for cand in members:
                c = candidates.index(cand)
                cand.group = group
                cand.estimator.classes_ = classes
                for k in range(n_folds):
                    key = (k, _preprocessing_key(cand))
                    if key not in fitted:
                        fitted[key] = _fold_features(cand, group, k)
                    a_full, unseen = fitted[key]
                    if unseen:
                        _warn_unseen(c, k, unseen)
                        scores[c][k] = {s: float("nan") for s in scorers}
                        continue
                    est = cand.estimator
                    strength = 0.0 if est.penalty is None else 1.0 / est.C
                    models.append((c, k, PathModel(fold=k, strength=strength, fit_intercept=est.fit_intercept,
                                                   a_full=a_full, tol=est.tol, max_iter=est.max_iter)))
            queries += fit_paths(design, fold_of, positive, [m for *_, m in models], folds, positives,
                                 tol=1e-4, max_iter=100, owner=owner)
            for c, k, model in models:
                scores[c][k] = {s: model.held_out[s] for s in scorers}
    share = (time.perf_counter() - started) / (n * n_folds)
    fit_times = np.full((n, n_folds), share)
    return FoldScores(scores, fit_times, np.zeros((n, n_folds)), queries)


def _fold_features(cand: Candidate, group: _Group, k: int) -> tuple[np.ndarray, str | None]:
    """The candidate's steps fitted on fold ``k``'s training statistics: its features (with
    the intercept row) as maps of the whole z-space, and any held-out category its encoder
    would refuse."""
    train = group.training(k)
    sub, part, sel = restrict(group.design, train)
    names, a_sub = cand.plan.features(sub, part)
    cand.estimator._check_stats(sub, part, a_sub)
    cand.estimator._set_features(names)
    a_full = np.zeros((1 + len(names), group.design.size))
    a_full[0, 0] = 1.0
    a_full[1:, sel] = a_sub
    return a_full, _unseen(cand, group, k, sel)


def _warn_unseen(c: int, k: int, unseen: str) -> None:
    warnings.warn(
        f"GridSearchCV: candidate {c} fold {k}: {unseen} in the held-out fold is a category "
        f"the training folds lack and handle_unknown='error'; its score is NaN, as "
        f"scikit-learn's error_score=nan gives", UserWarning, stacklevel=5)


def search_from_stats(
    candidates: Sequence[Candidate], table: ir.Table, fold_of: Callable[[ir.Table], ir.Value], n_folds: int,
    scorers: Sequence[str],
) -> FoldScores | None:
    """Scores of every candidate on every fold, or ``None`` (no query run) when some
    candidate's steps are not fusable."""
    for cand in candidates:
        cand.plan = plan_fused(cand.steps, cand.estimator, table)
        if cand.plan is None:
            return None
    groups: dict[Any, _Group] = {}
    queries = 0
    started = time.perf_counter()
    with small_solves():
        for cand in candidates:
            key = (tuple(cand.plan.encoded), tuple(cand.plan.scaled), tuple(cand.plan.design.numeric))
            if key not in groups:
                groups[key] = _gather(cand, fold_of, n_folds)
                queries += 1
            cand.group = groups[key]
        query_time = (time.perf_counter() - started) / (len(candidates) * n_folds)
        n = len(candidates)
        fit_times, score_times = np.zeros((n, n_folds)), np.zeros((n, n_folds))
        scores: list[list[dict[str, float]]] = [[{} for _ in range(n_folds)] for _ in range(n)]
        solved: dict[Any, tuple[Any, ...]] = {}
        held = {id(g): [HeldOut.of(g.design, s) for s in g.folds] for g in groups.values()}
        for c, cand in enumerate(candidates):
            group = cand.group
            est = cand.estimator
            for k in range(n_folds):
                t0 = time.perf_counter()
                # Candidates differing only in alpha share the fold's fitted steps and spectrum.
                key = (id(group), k, _preprocessing_key(cand), est.fit_intercept)
                if key not in solved:
                    solved[key] = _fold_system(cand, group, k)
                sel, a_sub, eigen, mean_f, mean_y, unseen = solved[key]
                alpha = float(est.alpha) if isinstance(est, Ridge) else 0.0
                coef = eigen.solve(alpha)
                intercept = float(mean_y - mean_f @ coef) if est.fit_intercept else 0.0
                t1 = time.perf_counter()
                fit_times[c, k] = query_time + t1 - t0
                if unseen:
                    _warn_unseen(c, k, unseen)
                    scores[c][k] = {s: float("nan") for s in scorers}
                else:
                    residual = residual_map(group.design, a_sub, coef, intercept, sel)
                    all_scores = held[id(group)][k].scores(residual)
                    scores[c][k] = {s: all_scores[s] for s in scorers}
                score_times[c, k] = time.perf_counter() - t1
    return FoldScores(scores, fit_times, score_times, queries)


def refit_from_stats(cand: Candidate, table: ir.Table) -> None:
    """Fit ``cand``'s steps and estimator on the whole table from its group's totals (no query)."""
    group = cand.group
    if group.total is None:
        group.total = sum_stats(group.folds, group.hows)
    with small_solves():
        names, a = cand.plan.features(group.design, group.total)
        cand.estimator.fit_from_stats(group.design, group.total, names, a)
    cand.estimator.fit_summary_ = _summary(table, group.design, group.total)


def _gather(cand: Candidate, fold_of: Callable[[ir.Table], ir.Value], n_folds: int) -> _Group:
    plan, est = cand.plan, cand.estimator
    design = plan.design
    design.numeric[LABEL] = as_float(plan.label)
    owner = type(est).__name__
    design.check_width(owner)
    extras = {**plan.extras, **est.null_checks(design, None)}
    folds = gather_by(design, fold_of(design.table), n_folds, weights=[None], targets=[], extras=extras,
                      owner=owner)
    return _Group(design, folds, {name: how for name, (_, how) in extras.items()})


def _preprocessing_key(cand: Candidate) -> str:
    return repr([(type(s).__name__, sorted(s.get_params(deep=False).items(), key=lambda kv: kv[0]))
                 for s in cand.steps])


def _fold_system(cand: Candidate, group: _Group, k: int) -> tuple[Any, ...]:
    """Fit the candidate's steps on fold ``k``'s training statistics; its feature system's
    spectrum, and which held-out category no step may meet (handle_unknown='error')."""
    train = group.training(k)
    sub, part, sel = restrict(group.design, train)
    names, a_sub = cand.plan.features(sub, part)
    est = cand.estimator
    est._check_stats(sub, part, a_sub)
    est._set_features(names)
    gram_f, cross, mean_f, mean_y = _feature_system(sub, part, a_sub, est.fit_intercept)
    return sel, a_sub, Eigen(gram_f, cross), mean_f, mean_y, _unseen(cand, group, k, sel)


def _unseen(cand: Candidate, group: _Group, k: int, sel: np.ndarray) -> str | None:
    """A held-out category that the training folds lack, in a column whose encoder raises on it."""
    design = group.design
    held = np.diag(group.folds[k].gram[-1])
    kept = set(sel.tolist())
    for step in cand.steps:
        if type(step) is not OneHotEncoder or step.handle_unknown != "error":
            continue
        for col in step.input_cols_:
            at = design.offsets[col]
            for j, cat in enumerate(design.categories[col]):
                if held[at + j] > 0 and at + j not in kept:
                    return f"{col}={cat!r}"
    return None
