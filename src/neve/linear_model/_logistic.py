"""Logistic regression by Newton's method (IRLS): one aggregate query per iteration."""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import scipy.linalg
from sklearn.exceptions import ConvergenceWarning

from neve._columns import SklearnClass
from neve._sql_literals import double
from neve.engine import _queries
from neve.errors import EmptyInputError, InvalidParameterError
from neve.linear_model._base import FeatureMap, LinearEstimator
from neve.linear_model._stats import Design, Stats, congruence, gather, matmul

__all__ = ["LogisticRegression"]


def _softplus(eta: ir.FloatingValue) -> ir.FloatingValue:
    """``log(1 + exp(eta))`` without overflow."""
    return ibis.greatest(eta, double(0.0)) + (double(1.0) + (-eta.abs()).exp()).ln()


class ClassifierOutputs:
    """The probability and decision outputs a fitted linear classifier adds to ``predict``,
    scored in the engine as ``predict`` is (shared by LogisticRegression and its CV twin)."""

    def predict_proba(self, X: Any) -> Any:
        """``X`` with one ``PREDICT_PROBA_<class>`` column per class."""
        return self._run(X, "predict_proba")

    def decision_function(self, X: Any) -> Any:
        return self._run(X, "decision_function")


class LogisticRegression(ClassifierOutputs, LinearEstimator):
    """Binary and multinomial logistic regression with an L2 penalty (or none).

    The optimum is scikit-learn's (``solver="newton-cholesky"`` at a tight ``tol``),
    whatever ``solver`` says: each Newton step gathers the weighted Gram matrix and the
    gradient at the current coefficients in one aggregate query (each encoded column's
    coefficients looked up by a CASE or, past ``JOIN_ABOVE`` categories, a join to a small
    constant table), and the client solves the small system. A first query
    reads the classes, so a fit runs ``n_iter_ + 1`` queries. Iteration stops when the
    largest step is below ``tol`` times the largest coefficient (Newton converges
    quadratically, so the coefficients are then exact to about ``tol**2``).
    Only ``penalty`` ``"l2"`` and ``None`` are supported. Column keywords and NULL policy as
    :class:`LinearRegression`; predictions as SnowML: ``OUTPUT_<label>``,
    ``PREDICT_PROBA_<class>``, ``DECISION_FUNCTION`` (binary) or ``DECISION_FUNCTION_<class>``.
    """

    _sklearn_class = SklearnClass("sklearn.linear_model.LogisticRegression")
    _is_classifier = True
    _sklearn_attrs = ("coef_", "intercept_", "n_features_in_", "feature_names_in_", "classes_", "n_iter_")

    def __init__(
        self,
        penalty: str | None = "l2",
        *,
        dual: bool = False,
        tol: float = 1e-4,
        C: float = 1.0,
        fit_intercept: bool = True,
        intercept_scaling: float = 1,
        class_weight: Any = None,
        random_state: Any = None,
        solver: str = "lbfgs",
        max_iter: int = 100,
        verbose: int = 0,
        warm_start: bool = False,
        n_jobs: int | None = None,
        l1_ratio: float | None = None,
        input_cols: str | list[str] | None = None,
        label_cols: str | list[str] | None = None,
        output_cols: str | list[str] | None = None,
        sample_weight_col: str | None = None,
        passthrough_cols: str | list[str] | None = None,
        drop_input_cols: bool = False,
    ) -> None:
        self.penalty = penalty
        self.dual = dual
        self.tol = tol
        self.C = C
        self.fit_intercept = fit_intercept
        self.intercept_scaling = intercept_scaling
        self.class_weight = class_weight
        self.random_state = random_state
        self.solver = solver
        self.max_iter = max_iter
        self.verbose = verbose
        self.warm_start = warm_start
        self.n_jobs = n_jobs
        self.l1_ratio = l1_ratio
        self.input_cols = input_cols
        self.label_cols = label_cols
        self.output_cols = output_cols
        self.sample_weight_col = sample_weight_col
        self.passthrough_cols = passthrough_cols
        self.drop_input_cols = drop_input_cols

    def _sklearn_params(self) -> dict[str, Any]:
        params = super()._sklearn_params()
        params["solver"] = "newton-cholesky"
        return params

    def _validate_params(self) -> None:
        super()._validate_params()
        if self.penalty not in ("l2", None) or self.dual or self.class_weight is not None:
            raise InvalidParameterError(
                "LogisticRegression: only penalty='l2' or None, dual=False and class_weight=None are "
                f"supported in the engine (got penalty={self.penalty!r}, dual={self.dual!r}, "
                f"class_weight={self.class_weight!r}); use scikit-learn on an extract for the others"
            )

    # --- fit --------------------------------------------------------------

    def _fit_design(
        self, design: Design, label: ir.Value, weight: ir.Value | None, features: FeatureMap,
        extras: dict[str, Any],
    ) -> Stats:
        owner = type(self).__name__
        design.check_width(owner)
        classes = _queries.to_pyarrow(design.table.select(v=label).distinct()).column("v").to_pylist()
        if not classes:
            raise EmptyInputError(f"{owner}.fit got a table with no rows with a label")
        self.classes_ = np.unique(np.asarray(classes))
        if len(self.classes_) < 2:
            raise InvalidParameterError(
                f"{owner}: the label column {self.label_cols_[0]!r} has one class ({self.classes_[0]!r}); "
                f"logistic regression needs at least two"
            )
        onehot = [(label == ibis.literal(c.item() if isinstance(c, np.generic) else c)).ifelse(double(1.0), double(0.0))
                  for c in self.classes_]
        n_models = 1 if len(self.classes_) == 2 else len(self.classes_)
        y = onehot[1:] if n_models == 1 else onehot
        w = double(1.0) if weight is None else weight
        strength = 0.0 if self.penalty is None else 1.0 / self.C
        theta: np.ndarray | None = None  # (n_models, 1 + n_features) in feature space
        a_full: np.ndarray | None = None
        previous_loss, step, stats = np.inf, None, None
        self.n_iter_ = np.array([0])
        for iteration in range(self.max_iter + 1):
            # The linear predictors become columns of a subquery: the probabilities and
            # Hessian weights then name them instead of repeating their expressions.
            names = [f"__neve_eta{k}" for k in range(n_models)]
            if theta is None:
                staged = design.table.mutate(**dict.fromkeys(names, double(0.0)))
            else:
                staged = design.with_linear_predictors(dict(zip(names, theta @ a_full, strict=True)))
            staged = staged.mutate(**_probabilities([staged[n] for n in names]))
            step_design = _rebase(design, staged)
            rebound = [_rebind(e, design.table, staged) for e in (*y, w)]
            weights, targets, loss = _newton_terms([staged[n] for n in names], rebound[:-1], rebound[-1], n_models)
            query_extras = {"loss": (loss.sum(), "sum")}
            if stats is None:
                checks = self.null_checks(design, weight)
                query_extras.update({k: (_rebind(e, design.table, staged), how)
                                     for k, (e, how) in {**extras, **checks}.items()})
                if extras:
                    # Steps fitted from these statistics (a fused Pipeline's scalers) read the last
                    # Gram as plain row sums; the Hessian blocks carry the IRLS weights.
                    weights = [*weights, None]
            stats = gather(step_design, weights=weights, targets=targets, extras=query_extras, owner=owner)
            design.categories, design.pilot = step_design.categories, step_design.pilot
            design.observed_groups, design.frequency = step_design.observed_groups, step_design.frequency
            design.shape = step_design.shape
            if a_full is None:
                names, a = features(design, stats)
                self._check_stats(design, stats, a)
                self._set_features(names)
                a_full = np.vstack([np.eye(1, design.size), a])  # intercept row, then features
                theta = np.zeros((n_models, a_full.shape[0]))
                unshift = stats.unshift(design)
            loss_now = stats.extras["loss"] + 0.5 * strength * float(np.sum(theta[:, 1:] ** 2))
            if step is not None and loss_now > previous_loss * (1 + 1e-12) + 1e-300:
                # Overshoot (rare: near-separable data): go back half way and evaluate there.
                step = step / 2
                theta = theta + step
                continue
            previous_loss = loss_now
            if iteration == self.max_iter:
                warnings.warn(
                    f"{owner}: Newton's method did not converge in max_iter={self.max_iter} iterations",
                    ConvergenceWarning, stacklevel=3,
                )
                break
            step = self._newton_step(stats, unshift, a_full, theta, strength, n_models)
            theta = theta - step
            self.n_iter_ = np.array([iteration + 1])
            if np.max(np.abs(step), initial=0.0) <= self.tol * max(1.0, np.max(np.abs(theta))):
                break
        self._finish(theta, n_models)
        return stats

    def _newton_step(
        self, stats: Stats, unshift: np.ndarray, a_full: np.ndarray, theta: np.ndarray,
        strength: float, n_models: int, *, with_gain: bool = False,
    ) -> Any:
        """Solve ``H Δ = ∇`` for the objective ``Σ w·loss + (strength/2)·|β|²``; with
        ``with_gain``, also ``∇·Δ``, from which the quadratic model predicts the objective's
        decrease along ``-αΔ``: ``(α - α²/2)·∇·Δ``."""
        to_features = matmul(a_full, unshift)
        k = theta.shape[1]
        penalty = np.full(k, strength)
        penalty[0] = 0.0
        hessian = np.zeros((n_models * k, n_models * k))
        blocks = iter(stats.gram)
        for i in range(n_models):
            for j in range(i, n_models):
                block = congruence(to_features, next(blocks))
                hessian[i * k:(i + 1) * k, j * k:(j + 1) * k] = block
                hessian[j * k:(j + 1) * k, i * k:(i + 1) * k] = block
        hessian += np.diag(np.tile(penalty, n_models))
        gradient = np.concatenate([-(to_features @ stats.cross[i]) + penalty * theta[i] for i in range(n_models)])
        if n_models > 1:
            # The softmax ignores a shift common to all classes: pin it with the term
            # (Σ_classes θ_c)²/2 on each coordinate whose own penalty does not, which leaves
            # the optimum unchanged and picks the symmetric one (classes summing to zero).
            for c in range(k):
                if penalty[c] == 0.0:
                    at = np.arange(n_models) * k + c
                    hessian[np.ix_(at, at)] += 1.0
                    gradient[at] += theta[:, c].sum()
        free = np.ones(n_models * k, dtype=bool)
        if not self.fit_intercept:
            free[::k] = False  # the intercepts stay at 0
        step = np.zeros(n_models * k)
        h, g = hessian[np.ix_(free, free)], gradient[free]
        try:
            step[free] = scipy.linalg.solve(h, g, assume_a="pos")
        except (np.linalg.LinAlgError, scipy.linalg.LinAlgError, ValueError):
            step[free] = scipy.linalg.lstsq(h, g)[0]  # singular: the multinomial's free shift
        if with_gain:
            return step.reshape(n_models, k), float(g @ step[free])
        return step.reshape(n_models, k)

    def _finish(self, theta: np.ndarray, n_models: int) -> None:
        if n_models > 1:
            # The softmax is unchanged by a shift common to every class; scikit-learn reports
            # the symmetric solution (columns summing to zero).
            theta = theta - theta.mean(axis=0)
        self.intercept_ = theta[:, 0].copy() if self.fit_intercept else np.zeros(n_models)
        self.coef_ = theta[:, 1:].copy()


def _rebind(expr: Any, old: ir.Table, new: ir.Table) -> Any:
    """``expr`` over ``new``, a projection of ``old`` keeping its columns."""
    if not isinstance(expr, ir.Expr):
        return expr
    # Bound to ``old`` first: ``expr`` may name a column of a relation ``old`` projects.
    (expr,) = old.bind(expr)
    return expr.op().replace({old.op(): new.op()}).to_expr()


def _rebase(design: Design, table: ir.Table) -> Design:
    return dataclasses.replace(
        design, table=table, numeric={n: _rebind(e, design.table, table) for n, e in design.numeric.items()}
    )


def _probabilities(etas: list[ir.FloatingValue]) -> dict[str, ir.FloatingValue]:
    """The fitted probabilities (the positive class's alone when binary), as columns."""
    if len(etas) == 1:
        return {"__neve_p0": double(1.0) / (double(1.0) + (-etas[0]).exp())}
    top = ibis.greatest(*etas)
    exps = [(e - top).exp() for e in etas]
    norm = exps[0]
    for e in exps[1:]:
        norm = norm + e
    return {"__neve_lse": top + norm.ln(), **{f"__neve_p{k}": e / norm for k, e in enumerate(exps)}}


def _newton_terms(
    etas: list[ir.FloatingValue], y: list[ir.FloatingValue], w: ir.FloatingValue, n_models: int
) -> tuple[list[ir.FloatingValue], list[ir.FloatingValue], ir.FloatingValue]:
    """Row weights of the Hessian blocks (upper triangle), gradient targets and the loss,
    over the staged table whose ``__neve_p*`` columns hold the probabilities."""
    table = etas[0].op().rel.to_expr()
    p = [table[f"__neve_p{k}"] for k in range(n_models)]
    if n_models == 1:
        return [w * p[0] * (double(1.0) - p[0])], [w * (y[0] - p[0])], w * (_softplus(etas[0]) - y[0] * etas[0])
    weights = [w * p[i] * ((double(1.0) if i == j else double(0.0)) - p[j])
               for i in range(n_models) for j in range(i, n_models)]
    targets = [w * (y[i] - p[i]) for i in range(n_models)]
    observed = y[0] * etas[0]
    for i in range(1, n_models):
        observed = observed + y[i] * etas[i]
    return weights, targets, w * (table["__neve_lse"] - observed)
