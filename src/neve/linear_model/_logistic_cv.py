"""LogisticRegressionCV: C chosen by k-fold cross-validation, every fold and every C fitted
together (one query per Newton pass, see :mod:`._newton_paths`)."""

from __future__ import annotations

import numbers
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np

from neve._columns import SklearnClass
from neve._sql_literals import double
from neve.engine import _queries
from neve.errors import EmptyInputError, InvalidParameterError, NeveInputError
from neve.linear_model._base import FeatureMap, LinearEstimator
from neve.linear_model._cv import sum_stats
from neve.linear_model._logistic import ClassifierOutputs
from neve.linear_model._newton_paths import PathModel, fit_paths
from neve.linear_model._stats import Design, Stats, gather_by
from neve.model_selection._split import check_cv

__all__ = ["LogisticRegressionCV", "binary_classes", "first_pass"]

#: Scorers computed from the Newton passes' sums (held-out log loss and correct predictions).
PATH_SCORERS = ("accuracy", "neg_log_loss")


def binary_classes(design: Design, label: ir.Value, label_col: str, owner: str) -> np.ndarray:
    """The label's classes (one query), refusing fewer than two."""
    classes = _queries.to_pyarrow(design.table.select(v=label).distinct()).column("v").to_pylist()
    if not classes:
        raise EmptyInputError(f"{owner}.fit got a table with no rows with a label")
    classes = np.unique(np.asarray(classes))
    if len(classes) < 2:
        raise InvalidParameterError(
            f"{owner}: the label column {label_col!r} has one class ({classes[0]!r}); "
            f"logistic regression needs at least two"
        )
    return classes


def positive_of(label: ir.Value, classes: np.ndarray) -> ir.FloatingValue:
    top = classes[1].item() if isinstance(classes[1], np.generic) else classes[1]
    return (label == ibis.literal(top)).ifelse(double(1.0), double(0.0))


def first_pass(
    design: Design, fold: ir.Value, n_folds: int, positive: ir.FloatingValue, extras: dict[str, Any],
    label_col: str, owner: str,
) -> tuple[list[Stats], list[np.ndarray]]:
    """The plain statistics per fold (the shared first Newton pass, and every fold's
    preprocessing) and each fold's Σz over positive rows; a training fold (the other
    folds together) holding a single class is refused, naming the fold."""
    folds = gather_by(design, fold, n_folds, weights=[None], targets=[positive], extras=extras, owner=owner)
    positives = [s.cross[0] for s in folds]
    rows = np.array([s.gram[-1][0, 0] for s in folds])
    pos = np.array([p[0] for p in positives])
    for k in range(n_folds):
        train_rows, train_pos = rows.sum() - rows[k], pos.sum() - pos[k]
        if train_pos == 0 or train_pos == train_rows:
            raise NeveInputError(
                f"{owner}: fold {k} of {n_folds}: the training rows (every other fold) hold one class "
                f"in {label_col!r}; logistic regression needs two (use fewer folds or another KFold key)"
            )
    return folds, positives


class LogisticRegressionCV(ClassifierOutputs, LinearEstimator):
    """Binary logistic regression with ``C`` chosen by k-fold cross-validation, as
    scikit-learn's ``LogisticRegressionCV(Cs, cv=...)`` with an exact solver.

    Every fold and every C are fitted together: one query per Newton pass serves all
    ``n_folds x len(Cs)`` models (each row weighted, in SQL, for the models whose training
    rows it belongs to), the first pass at zero coefficients is the plain statistics query
    (shared by every fold's first C), and the held-out scores come from the same sums, read
    one pass after a model converges. Each fold's path is warm-started in the order of
    ``Cs``, as scikit-learn's: a C starts from the previous C's coefficients (and that pass's
    sums there) once their Newton step is small, so the folds advance together along the
    path. The chosen C is then refitted on every row, warm-started from the folds' mean
    coefficients at that C (as scikit-learn does). Queries: one for the classes, one per
    pass along the path plus one for the scores, and the refit's passes. In a Pipeline the
    steps before it are fitted once on the whole table, as scikit-learn's Pipeline does; a
    GridSearchCV over a Pipeline ending in LogisticRegression refits them per fold.

    ``scoring``: ``None`` or ``"accuracy"`` (scikit-learn's default), ``"neg_log_loss"``.
    Fitted as scikit-learn's (legacy attributes): ``Cs_``, ``C_`` (shape (1,)),
    ``scores_`` and ``coefs_paths_`` (dicts keyed by the positive class, ``(n_folds, n_Cs)``
    and ``(n_folds, n_Cs, n_features (+1))``), ``n_iter_`` (``(1, n_folds, n_Cs)``),
    ``coef_``, ``intercept_``, ``classes_``, ``n_features_in_``, ``feature_names_in_``.

    Differences from scikit-learn: binary labels only (a multiclass label is refused:
    use GridSearchCV over LogisticRegression); ``penalty`` ``"l2"`` only; ``cv`` an
    integer or a :class:`neve.model_selection.KFold`; ``solver`` is accepted and ignored
    (the optimum is newton-cholesky's); ``refit=False`` keeps scikit-learn's averaging of
    the folds' coefficients at the best C. Column keywords and NULL policy as
    :class:`LogisticRegression`; ``sample_weight_col`` is not supported.
    """

    _sklearn_class = SklearnClass("sklearn.linear_model.LogisticRegressionCV")
    _is_classifier = True
    _sklearn_attrs = ("coef_", "intercept_", "n_features_in_", "feature_names_in_", "classes_", "C_", "Cs_",
                      "n_iter_")

    def __init__(
        self,
        *,
        Cs: int | Any = 10,
        fit_intercept: bool = True,
        cv: Any = None,
        dual: bool = False,
        penalty: str = "l2",
        scoring: str | None = None,
        solver: str = "lbfgs",
        tol: float = 1e-4,
        max_iter: int = 100,
        class_weight: Any = None,
        n_jobs: int | None = None,
        verbose: int = 0,
        refit: bool = True,
        intercept_scaling: float = 1.0,
        random_state: Any = None,
        input_cols: str | list[str] | None = None,
        label_cols: str | list[str] | None = None,
        output_cols: str | list[str] | None = None,
        sample_weight_col: str | None = None,
        passthrough_cols: str | list[str] | None = None,
        drop_input_cols: bool = False,
    ) -> None:
        self.Cs = Cs
        self.fit_intercept = fit_intercept
        self.cv = cv
        self.dual = dual
        self.penalty = penalty
        self.scoring = scoring
        self.solver = solver
        self.tol = tol
        self.max_iter = max_iter
        self.class_weight = class_weight
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.refit = refit
        self.intercept_scaling = intercept_scaling
        self.random_state = random_state
        self.input_cols = input_cols
        self.label_cols = label_cols
        self.output_cols = output_cols
        self.sample_weight_col = sample_weight_col
        self.passthrough_cols = passthrough_cols
        self.drop_input_cols = drop_input_cols

    def _sklearn_params(self) -> dict[str, Any]:
        params = super()._sklearn_params()
        params.update(cv=None, solver="newton-cholesky", penalty="deprecated", scoring=None)
        return params

    def _Cs(self) -> np.ndarray:
        if isinstance(self.Cs, numbers.Integral) and not isinstance(self.Cs, bool):
            return np.logspace(-4, 4, int(self.Cs)) if self.Cs >= 1 else np.zeros(0)
        return np.atleast_1d(np.asarray(self.Cs, dtype=float))

    def _validate_params(self) -> None:
        super()._validate_params()
        owner = type(self).__name__
        try:
            cs = self._Cs()
        except (TypeError, ValueError):
            cs = np.zeros(0)
        if cs.ndim != 1 or cs.size == 0 or not np.all(np.isfinite(cs)) or np.any(cs <= 0):
            raise InvalidParameterError(f"{owner}: Cs must be a positive integer or a non-empty list of "
                                        f"values > 0, got {self.Cs!r}")
        if self.penalty not in ("l2", "deprecated") or self.dual or self.class_weight is not None:
            raise InvalidParameterError(
                f"{owner}: only penalty='l2', dual=False and class_weight=None are supported in the engine "
                f"(got penalty={self.penalty!r}, dual={self.dual!r}, class_weight={self.class_weight!r})"
            )
        if self.scoring not in (None, *PATH_SCORERS):
            raise InvalidParameterError(
                f"{owner}: scoring must be None (accuracy) or one of {', '.join(PATH_SCORERS)}, got {self.scoring!r}"
            )
        if self.sample_weight_col is not None:
            raise InvalidParameterError(f"{owner}: sample_weight_col is not supported; use GridSearchCV over "
                                        f"LogisticRegression")
        if not isinstance(self.max_iter, numbers.Integral) or self.max_iter < 1:
            raise InvalidParameterError(f"{owner}: max_iter must be a positive integer, got {self.max_iter!r}")
        check_cv(self.cv, owner)

    def _fit_design(
        self, design: Design, label: ir.Value, weight: ir.Value | None, features: FeatureMap,
        extras: dict[str, Any],
    ) -> Stats:
        owner = type(self).__name__
        cv = check_cv(self.cv, owner)
        n_folds = cv.get_n_splits()
        design.check_width(owner)
        label_col = self.label_cols_[0]
        self.classes_ = binary_classes(design, label, label_col, owner)
        if len(self.classes_) != 2:
            raise InvalidParameterError(
                f"{owner}: {label_col!r} has {len(self.classes_)} classes; the engine's LogisticRegressionCV "
                f"is binary: use GridSearchCV(LogisticRegression(...), {{'C': [...]}}) for a multiclass label"
            )
        positive = positive_of(label, self.classes_)
        extras = {**extras, **self.null_checks(design, weight)}
        hows = {name: how for name, (_, how) in extras.items()}
        folds, positives = first_pass(design, cv.fold_of(design.table), n_folds, positive, extras, label_col, owner)
        total = sum_stats(folds, hows)
        names, a = features(design, total)
        self._check_stats(design, total, a)
        self._set_features(names)
        a_full = np.vstack([np.eye(1, design.size), a])
        self.Cs_ = self._Cs()
        models = [PathModel(fold=k, strength=1.0 / c, fit_intercept=self.fit_intercept, a_full=a_full)
                  for k in range(n_folds) for c in self.Cs_]
        for k in range(n_folds):  # warm starts along each fold's path, in the order of Cs
            for j in range(1, len(self.Cs_)):
                models[k * len(self.Cs_) + j].follows = models[k * len(self.Cs_) + j - 1]
        self.n_queries_ = 2 + fit_paths(design, cv.fold_of, positive, models, folds, positives,
                                        tol=self.tol, max_iter=self.max_iter, owner=owner)
        scorer = self.scoring or "accuracy"
        n_cs = len(self.Cs_)
        scores = np.array([m.held_out[scorer] for m in models]).reshape(n_folds, n_cs)
        paths = np.stack([m.theta[0] for m in models]).reshape(n_folds, n_cs, -1)
        # scikit-learn's layout: coefficients, then the intercept when fitted.
        paths = np.concatenate([paths[:, :, 1:], paths[:, :, :1]], axis=2) if self.fit_intercept else paths[:, :, 1:]
        top = self.classes_[1]
        self.scores_ = {top: scores}
        self.coefs_paths_ = {top: paths}
        self.n_iter_ = np.array([m.n_iter for m in models]).reshape(1, n_folds, n_cs)
        best = int(np.argmax(scores.sum(axis=0)))  # the first best on ties, as scikit-learn
        if self.refit:
            self.C_ = np.array([self.Cs_[best]])
            start = np.mean([models[k * n_cs + best].theta[0] for k in range(n_folds)], axis=0)
            refit = PathModel(fold=None, strength=1.0 / self.Cs_[best], fit_intercept=self.fit_intercept,
                              a_full=a_full, theta=start[None, :])
            refit._step = np.full_like(start, np.inf)
            self.n_queries_ += fit_paths(design, None, positive, [refit], folds, positives, tol=self.tol,
                                         max_iter=self.max_iter, owner=owner)
            theta = refit.theta[0]
        else:
            # scikit-learn: each fold's best C, coefficients averaged over the folds.
            per_fold = scores.argmax(axis=1)
            self.C_ = np.array([np.mean(self.Cs_[per_fold])])
            theta = np.mean([models[k * n_cs + per_fold[k]].theta[0] for k in range(n_folds)], axis=0)
        self.intercept_ = np.array([theta[0] if self.fit_intercept else 0.0])
        self.coef_ = theta[None, 1:].copy()
        return total
