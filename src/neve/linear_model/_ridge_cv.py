"""RidgeCV: the penalty chosen by k-fold cross-validation from one statistics query."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ibis.expr.types as ir
import numpy as np

from neve._columns import SklearnClass
from neve.errors import InvalidParameterError
from neve.linear_model._base import LABEL, FeatureMap, as_float
from neve.linear_model._cv import STATS_SCORERS, fold_systems, residual_map, sum_stats
from neve.linear_model._linear import Ridge, _LeastSquares
from neve.linear_model._stats import Design, Stats, gather_by
from neve.model_selection._split import check_cv

__all__ = ["RidgeCV"]


class RidgeCV(_LeastSquares):
    """Ridge regression with ``alpha`` chosen by k-fold cross-validation, as scikit-learn's
    ``RidgeCV(alphas, cv=...)``, from one statistics query grouped by fold.

    Each fold's model is solved from the other folds' statistics for every alpha (one
    eigendecomposition per fold) and scored on the held-out fold's own statistics; the
    chosen ``alpha_`` (the best mean score, the first on ties, as scikit-learn) is then
    fitted on the whole table from the totals: one query in all. In a Pipeline the steps
    before it are fitted once on the whole table, as scikit-learn's Pipeline does.

    Differences from scikit-learn: ``cv=None`` means 5-fold :class:`KFold` over every column
    (scikit-learn's default, efficient leave-one-out, needs each row's leverage, which no
    aggregate gives); ``scoring`` is ``None`` (R², scikit-learn's default for k-fold),
    ``"r2"``, ``"neg_mean_squared_error"`` or ``"neg_root_mean_squared_error"``;
    ``gcv_mode``, ``store_cv_results`` and ``alpha_per_target`` are refused when set.
    Fitted: ``alpha_``, ``best_score_``, ``coef_``, ``intercept_``, ``n_features_in_``,
    ``feature_names_in_``, and ``cv_scores_`` (``len(alphas) x n_splits``). Column keywords and
    NULL policy as :class:`LinearRegression`; ``sample_weight_col`` is not supported.
    """

    _sklearn_class = SklearnClass("sklearn.linear_model.RidgeCV")
    _sklearn_attrs = ("coef_", "intercept_", "n_features_in_", "feature_names_in_", "alpha_", "best_score_")

    def __init__(
        self,
        alphas: Sequence[float] = (0.1, 1.0, 10.0),
        *,
        fit_intercept: bool = True,
        scoring: str | None = None,
        cv: Any = None,
        gcv_mode: str | None = None,
        store_cv_results: bool = False,
        alpha_per_target: bool = False,
        input_cols: str | list[str] | None = None,
        label_cols: str | list[str] | None = None,
        output_cols: str | list[str] | None = None,
        sample_weight_col: str | None = None,
        passthrough_cols: str | list[str] | None = None,
        drop_input_cols: bool = False,
    ) -> None:
        self.alphas = alphas
        self.fit_intercept = fit_intercept
        self.scoring = scoring
        self.cv = cv
        self.gcv_mode = gcv_mode
        self.store_cv_results = store_cv_results
        self.alpha_per_target = alpha_per_target
        self.input_cols = input_cols
        self.label_cols = label_cols
        self.output_cols = output_cols
        self.sample_weight_col = sample_weight_col
        self.passthrough_cols = passthrough_cols
        self.drop_input_cols = drop_input_cols

    def _sklearn_params(self) -> dict[str, Any]:
        params = super()._sklearn_params()
        params["cv"] = None  # the twin predicts; it is never refitted
        return params

    def _validate_params(self) -> None:
        super()._validate_params()
        alphas = np.atleast_1d(np.asarray(self.alphas, dtype=float))
        if alphas.ndim != 1 or alphas.size == 0 or not np.all(np.isfinite(alphas)) or np.any(alphas < 0):
            raise InvalidParameterError(f"RidgeCV: alphas must be a non-empty list of values >= 0, got {self.alphas!r}")
        if self.scoring not in (None, *STATS_SCORERS):
            raise InvalidParameterError(
                f"RidgeCV: scoring must be None (R²) or one of {', '.join(STATS_SCORERS)}, got {self.scoring!r}"
            )
        if self.gcv_mode is not None or self.store_cv_results or self.alpha_per_target:
            raise InvalidParameterError(
                "RidgeCV: gcv_mode, store_cv_results and alpha_per_target belong to leave-one-out "
                "cross-validation, which runs over rows; neve cross-validates by folds (cv=...)"
            )
        if self.sample_weight_col is not None:
            raise InvalidParameterError("RidgeCV: sample_weight_col is not supported; use GridSearchCV over Ridge")
        check_cv(self.cv, "RidgeCV")

    def _fit_design(
        self, design: Design, label: ir.Value, weight: ir.Value | None, features: FeatureMap,
        extras: dict[str, Any],
    ) -> Stats:
        cv = check_cv(self.cv, "RidgeCV")
        n_folds = cv.get_n_splits()
        design.numeric[LABEL] = as_float(label)
        design.check_width(type(self).__name__)
        extras = {**extras, **self.null_checks(design, weight)}
        hows = {name: how for name, (_, how) in extras.items()}
        folds = gather_by(design, cv.fold_of(design.table), n_folds, weights=[None], targets=[], extras=extras,
                          owner=type(self).__name__)
        total = sum_stats(folds, hows)
        names, a = features(design, total)
        self._check_stats(design, total, a)
        alphas = [float(v) for v in np.atleast_1d(np.asarray(self.alphas, dtype=float))]
        scorer = self.scoring or "r2"
        scores = np.zeros((len(alphas), n_folds))
        for k, (eigen, mean_f, mean_y, held) in enumerate(fold_systems(design, folds, hows, a, self.fit_intercept)):
            for i, alpha in enumerate(alphas):
                coef = eigen.solve(alpha)
                intercept = float(mean_y - mean_f @ coef) if self.fit_intercept else 0.0
                scores[i, k] = held.scores(residual_map(design, a, coef, intercept))[scorer]
        self.cv_scores_ = scores
        best = int(np.argmax(scores.mean(axis=1)))
        self.alpha_ = alphas[best]
        self.best_score_ = float(scores[best].mean())
        self.fit_from_stats(design, total, names, a)
        return total

    def _solve(self, gram: np.ndarray, cross: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ridge = Ridge(alpha=self.alpha_, fit_intercept=self.fit_intercept)
        solution = ridge._solve(gram, cross)
        self.condition_number_ = ridge.condition_number_
        return solution
