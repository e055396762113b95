"""Many binary logistic regressions (every fold x every C) fitted by Newton's method together:
one aggregate query per Newton pass serves them all.

A model here is a training fold (or every row), a penalty and a feature map. Each row's
fold is computed once per pass in a subquery; model ``m`` trained without fold ``k`` weighs
a row by ``p_m(1 - p_m)`` when its fold is not ``k`` and by 0 otherwise, so the pass's one
query (grouped by the categorical columns, as a single fit's is) yields every model's
training Hessian and gradient directly, and, as sums over fold ``k`` alone, its held-out
log loss and correct predictions. The first pass is shared outright: at zero coefficients
every model's weights are the constant 1/4, so the plain per-fold sums of the first query
(which also fit each fold's preprocessing) give every model's first step.

A model that has converged leaves the Hessian sums; its held-out scores are read in the next
pass (at its final coefficients), so the scores cost one pass after the slowest model. A model
that ``follows`` another (the previous C on its fold) waits, and starts from the other's
coefficients once those are near their optimum: warm starts along the path of Cs, which cut
a weakly penalised model's iterations on near-separable data by half or more.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import numpy as np
from sklearn.exceptions import ConvergenceWarning

from neve import _sql_templates as T
from neve.linear_model._logistic import LogisticRegression, _rebase
from neve.linear_model._stats import Design, Stats, gather

__all__ = ["PathModel", "fit_paths"]

_FOLD = "__neve_fold"
_Y = "__neve_y"
#: A model that ``follows`` another starts from the other's coefficients once the other's
#: Newton step is this small (relative to its largest coefficient): near enough that the two
#: optima are closer than either is to zero. Waiting for full convergence would add the
#: leader's last passes to the chain; starting earlier starts from a point still moving.
WARM_START_AT = 1e-2


@dataclass(eq=False)
class PathModel:
    """One logistic regression of a path: trained on every fold but ``fold`` (``None``: every
    row), penalised by ``strength`` (``1/C``; 0 for none), over the features ``a_full``
    (the intercept row, then each feature as a linear map of unshifted z)."""

    fold: int | None
    strength: float
    fit_intercept: bool
    a_full: np.ndarray
    theta: np.ndarray | None = None
    n_iter: int = 0
    converged: bool = False
    held_out: dict[str, float] = field(default_factory=dict)
    #: The model's own stopping rule (``None``: ``fit_paths``'s).
    tol: float | None = None
    max_iter: int | None = None
    _loss: float = math.inf
    _step: np.ndarray | None = None
    #: The trust region (see ``_adapt_radius``): the longest step the next may take (largest
    #: coordinate), the fraction of Newton's step taken, and Newton's ``∇·Δ``.
    _radius: float = math.inf
    _alpha: float = 1.0
    _gain: float = 0.0
    _scored: bool = False
    #: The model whose path this one continues (the previous C on the same fold): it starts
    #: from that model's coefficients once they are near its optimum (``WARM_START_AT``).
    follows: PathModel | None = None


def fit_paths(
    design: Design, fold_of: Callable[[ir.Table], ir.Value] | None, positive: ir.FloatingValue,
    models: Sequence[PathModel], unit: Sequence[Stats], positives: Sequence[float], *,
    tol: float, max_iter: int, owner: str,
) -> int:
    """Fit every model of ``models`` to convergence and score it on its held-out fold;
    return the number of queries run.

    ``unit`` are the first query's plain statistics per fold (``unit[k].gram[-1]`` the
    rows' Σzzᵀ, ``positives[k]`` the positive labels' Σz as a vector): the shared first
    pass. ``positive`` is the label as 0/1 over ``design.table``."""
    unshift = unit[0].unshift(design)
    solver = {fi: LogisticRegression(fit_intercept=fi) for fi in (True, False)}
    for model in models:
        model.tol = tol if model.tol is None else model.tol
        model.max_iter = max_iter if model.max_iter is None else model.max_iter
        if model.theta is None and (model.follows is None or model.follows.converged):
            rows = [s for k, s in enumerate(unit) if k != model.fold]
            gram = sum(s.gram[-1] for s in rows)
            pos = sum(p for k, p in enumerate(positives) if k != model.fold)
            # At zero every probability is 1/2: Hessian weights 1/4, gradient targets y - 1/2.
            first = Stats(gram=[0.25 * gram], cross=[pos - 0.5 * gram[0]], extras={}, n_groups=0)
            _start_from(model, np.zeros((1, model.a_full.shape[0])), first, float(gram[0, 0]) * math.log(2.0),
                        solver[model.fit_intercept], unshift, model.a_full)
    queries = 0
    work, keep = _working_design(design, fold_of, positive, models)
    unshift = unit[0].unshift(work)  # the map depends on the design alone
    a_work = {id(m): m.a_full[:, keep] for m in models}
    while True:
        active = [m for m in models if m.theta is not None and not m.converged and m.n_iter <= m.max_iter]
        scoring = [m for m in models if m.converged and not m._scored and m.fold is not None]
        if not active and not scoring:
            break
        evaluated = active + scoring
        # Held-out scores are read at a model's final coefficients only: the pass after it
        # converged, or its last allowed iteration.
        held = [m for m in evaluated if m.fold is not None and (m in scoring or m.n_iter >= m.max_iter)]
        staged = work.with_linear_predictors({f"__neve_eta{i}": a_work[id(m)].T @ m.theta[0]
                                              for i, m in enumerate(evaluated)})
        staged = _row_terms(staged, evaluated, active, held)
        weights = [staged[f"__neve_h{i}"] for i, m in enumerate(evaluated) if m in active]
        targets = [staged[f"__neve_g{i}"] for i, m in enumerate(evaluated) if m in active]
        extras = {}
        for i, model in enumerate(evaluated):
            if model in active:
                extras[f"loss{i}"] = (staged[f"__neve_l{i}"].sum(), "sum")
            if model in held:
                extras[f"held_loss{i}"] = (staged[f"__neve_hl{i}"].sum(), "sum")
                extras[f"held_right{i}"] = (staged[f"__neve_hr{i}"].sum(), "sum")
        for k in sorted({m.fold for m in held}):
            extras[f"held_rows{k}"] = (staged[f"__neve_out{k}"].sum(), "sum")
        # The blocks shape, as the fold query took (grouping by every encoded column would
        # return about one group per row, each with every model's sums).
        stats = gather(_rebase(work, staged), weights=weights, targets=targets, extras=extras, owner=owner,
                       blocks=len(work.categorical) >= 3, costly_rows=fold_of is not None)
        queries += 1
        #: models at (or near) their optimum this pass: where they were evaluated, their own
        #: statistics there and their data loss, from which a follower starts.
        near: dict[PathModel, tuple[np.ndarray, Stats, float]] = {}
        for i, model in enumerate(evaluated):
            if model in held:
                rows = stats.extras[f"held_rows{model.fold}"]
                model.held_out = {"neg_log_loss": -stats.extras[f"held_loss{i}"] / rows,
                                  "accuracy": stats.extras[f"held_right{i}"] / rows}
            if model not in active:
                model._scored = True
                continue
            at = active.index(model)
            theta = model.theta
            own = Stats(gram=[stats.gram[at]], cross=[stats.cross[at]], extras={}, n_groups=0)
            loss = stats.extras[f"loss{i}"] + 0.5 * model.strength * float(np.sum(theta[:, 1:] ** 2))
            if loss > model._loss * (1 + 1e-12) + 1e-300:
                # Overshoot (near-separable data): back half way, evaluate there next pass.
                model._step = model._step / 2
                model.theta = theta + model._step
                model._alpha /= 2
                model._radius = float(np.max(np.abs(model._step)))
                continue
            _adapt_radius(model, model._loss - loss)
            model._loss = loss
            near[model] = (theta, own, stats.extras[f"loss{i}"])
            if model.n_iter == model.max_iter:
                model.n_iter += 1  # leaves the active set; scored at these coefficients
                model.converged = True
                warnings.warn(f"{owner}: Newton's method did not converge in max_iter={model.max_iter} "
                              f"iterations", ConvergenceWarning, stacklevel=3)
                model._scored = model.fold is not None
                continue
            newton, model._gain = solver[model.fit_intercept]._newton_step(
                own, unshift, a_work[id(model)], theta, model.strength, 1, with_gain=True)
            model.converged = _small(model, newton)
            size = float(np.max(np.abs(newton), initial=0.0))
            if not model.converged and size > WARM_START_AT * max(1.0, float(np.max(np.abs(theta)))):
                del near[model]
            model._alpha = min(1.0, model._radius / size) if size > 0 else 1.0
            model._step = model._alpha * newton
            model.theta = theta - model._step
            model.n_iter += 1
        for model in models:
            if model.theta is None and model.follows in near:
                theta, own, data_loss = near[model.follows]
                _start_from(model, theta, own, data_loss, solver[model.fit_intercept], unshift, a_work[id(model)])
    for model in models:
        model.n_iter = min(model.n_iter, model.max_iter)
    return queries


def _row_terms(
    table: ir.Table, evaluated: Sequence[PathModel], active: Sequence[PathModel], held: Sequence[PathModel],
) -> ir.Table:
    """``table`` (with each evaluated model's predictor ``__neve_eta{i}``) and, per model, the
    columns its sums read: Hessian weight ``h``, gradient target ``g`` and training loss ``l``
    (``active`` models, zero outside their training rows), held-out loss ``hl`` and correct
    predictions ``hr`` (``held`` models); ``out{k}`` is 1 on fold ``k``'s rows.

    Two projections written as SQL text (``neve._sql_templates``): as Ibis expressions, a
    25-model pass built and compiled ~150 columns each time, 0.3 s of Python a pass. The
    fold restricts a sum by a product with a 0/1 column computed once a pass, where a CASE
    per model and sum costs a branch each."""
    inputs: dict[Any, ir.Value] = {}

    def col(name: str) -> T.Input:
        inputs.setdefault(name, table[name])
        return T.Input(name)

    one, zero = T.Const(1.0), T.Const(0.0)
    y = col(_Y)
    first: list[tuple[str, Any]] = [(c, c) for c in table.columns]
    for k in sorted({m.fold for m in held}):
        on_fold = T.Member(col(_FOLD), (k,), never_null=False)
        first.append((f"__neve_out{k}", T.Text(T.Case(((on_fold, one),), zero), dt.float64, inputs)))
    for k in sorted({m.fold for m in active if m.fold is not None}):
        on_fold = T.Member(col(_FOLD), (k,), never_null=False)
        first.append((f"__neve_in{k}", T.Text(T.Case(((on_fold, zero),), one), dt.float64, inputs)))
    for i, model in enumerate(evaluated):
        eta = col(f"__neve_eta{i}")
        p = _op("/", one, _op("+", one, T.Call("EXP", (_op("-", zero, eta),))))
        # log(1 + exp(eta)) without overflow
        softplus = _op("+", T.Call("GREATEST", (eta, zero)),
                       T.Call("LN", (_op("+", one, T.Call("EXP", (_op("-", zero, T.Call("ABS", (eta,))),))),)))
        first.append((f"__neve_p{i}", T.Text(p, dt.float64, inputs)))
        first.append((f"__neve_loss{i}", T.Text(_op("-", softplus, _op("*", y, eta)), dt.float64, inputs)))
        if model in held:
            right = _op("=", _op(">", eta, zero), _op(">", y, T.Const(0.5)))
            first.append((f"__neve_right{i}", T.Text(T.Case(((right, one),), zero), dt.float64, inputs)))
    table = T.select_text(table, first)
    inputs = {}
    second: list[tuple[str, Any]] = [(c, c) for c in table.columns]
    y = col(_Y)
    for i, model in enumerate(evaluated):
        p, loss = col(f"__neve_p{i}"), col(f"__neve_loss{i}")
        terms: dict[str, Any] = {}
        if model in active:
            terms.update(h=_op("*", p, _op("-", one, p)), g=_op("-", y, p), l=loss)
            if model.fold is not None:
                trains = col(f"__neve_in{model.fold}")
                terms = {t: _op("*", e, trains) for t, e in terms.items()}
        if model in held:
            out = col(f"__neve_out{model.fold}")
            terms.update(hl=_op("*", loss, out), hr=_op("*", col(f"__neve_right{i}"), out))
        second += [(f"__neve_{t}{i}", T.Text(e, dt.float64, inputs)) for t, e in terms.items()]
    return T.select_text(table, second)


def _start_from(
    model: PathModel, theta: np.ndarray, own: Stats, data_loss: float, solver: LogisticRegression,
    unshift: np.ndarray, a_work: np.ndarray,
) -> None:
    """Take ``model``'s first Newton step from ``theta``: zero (the first query's plain sums)
    or where another model on the same training rows was just evaluated. ``own`` holds the
    Hessian and gradient sums at ``theta``, ``data_loss`` the loss there without the penalty:
    the data terms are the same for every penalty, so the step needs no pass of its own."""
    model._loss = data_loss + 0.5 * model.strength * float(np.sum(theta[:, 1:] ** 2))
    model._step, model._gain = solver._newton_step(own, unshift, a_work, theta, model.strength, 1, with_gain=True)
    model.theta = theta - model._step
    model.converged = _small(model, model._step)
    model.n_iter = 1


def _op(op: str, left: Any, right: Any) -> T.Arith:
    return T.Arith(op, left, right)


def _working_design(
    design: Design, fold_of: Callable[[ir.Table], ir.Value] | None, positive: ir.FloatingValue,
    models: Sequence[PathModel],
) -> tuple[Design, np.ndarray]:
    """The design the passes read: only the numeric columns some model uses (a Pipeline's
    design holds every numeric column of the table), each computed once, with the fold and
    the 0/1 label, in a projection of the table; and the kept positions of z."""
    n_num = len(design.numeric)
    used = np.any(np.stack([np.any(m.a_full[:, design.size - n_num:] != 0, axis=0) for m in models]), axis=0)
    names = [n for n, u in zip(design.numeric, used, strict=True) if u]
    table = design.table
    columns = {f"__neve_x{j}": design.numeric[n] for j, n in enumerate(names)}
    columns[_Y] = positive
    if fold_of is not None:
        columns[_FOLD] = fold_of(table)
    base = table.mutate(**columns)
    work = Design(table=base, categorical=list(design.categorical),
                  numeric={n: base[f"__neve_x{j}"] for j, n in enumerate(names)},
                  categories=design.categories, pilot=np.asarray(design.pilot)[used],
                  observed_groups=design.observed_groups, frequency=design.frequency)
    keep = np.concatenate([np.arange(design.size - n_num), design.size - n_num + np.flatnonzero(used)])
    return work, keep.astype(np.int64)


def _small(model: PathModel, step: np.ndarray) -> bool:
    """Newton's own step (before the trust region shortens it) is below ``tol`` times the largest coefficient."""
    return bool(np.max(np.abs(step), initial=0.0) <= model.tol * max(1.0, np.max(np.abs(model.theta))))


def _adapt_radius(model: PathModel, decrease: float) -> None:
    """A trust region on the step's length (its largest coordinate), from how well the
    quadratic model predicted the decrease of the step just taken. On near-separable data a
    weakly penalised model's Newton steps keep proposing coefficients ten times past the last
    step that lowered the loss, and each halving back costs a pass over the table (C=100 on
    200k taxi rows: 30 of its 53 passes). The optimum is the same; fewer passes overshoot it.
    Near the optimum the steps are far inside the region and Newton's converge as before."""
    predicted = (model._alpha - model._alpha ** 2 / 2) * model._gain
    if not predicted > 0:
        return
    taken = float(np.max(np.abs(model._step), initial=0.0))
    ratio = decrease / predicted
    if ratio < 0.25:
        model._radius = taken / 2
    elif ratio > 0.75 and model._alpha < 1.0:
        model._radius = 2 * taken
