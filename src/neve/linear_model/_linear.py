"""Least squares from one aggregate query: LinearRegression and Ridge."""

from __future__ import annotations

from typing import Any

import ibis.expr.types as ir
import numpy as np
import scipy.linalg

from neve._columns import SklearnClass
from neve.errors import InvalidParameterError
from neve.linear_model._base import LABEL, FeatureMap, LinearEstimator, as_float
from neve.linear_model._stats import Design, Stats, congruence, gather, matmul, mostly_zeros

__all__ = ["LinearRegression", "Ridge"]

#: Gram eigenvalues at or below this fraction of the largest are treated as exact zeros
#: (a rank-deficient one-hot design), giving lstsq's minimum-norm solution.
RANK_TOLERANCE = 1e-12


class _LeastSquares(LinearEstimator):
    """Shared fit: one query yields the centred Gram of features and label."""

    _sklearn_attrs = ("coef_", "intercept_", "n_features_in_", "feature_names_in_", "rank_", "singular_")
    _gram_counts_rows = True

    def _fit_design(
        self, design: Design, label: ir.Value, weight: ir.Value | None, features: FeatureMap,
        extras: dict[str, Any],
    ) -> Stats:
        design.numeric[LABEL] = as_float(label)
        design.check_width(type(self).__name__)
        # Scalers fitted from these statistics (a fused Pipeline) need unweighted sums too.
        weights = [weight, None] if weight is not None and extras else [weight]
        stats = gather(
            design, weights=weights, targets=[], owner=type(self).__name__,
            extras={**extras, **self.null_checks(design, weight)},
        )
        names, a = features(design, stats)
        self.fit_from_stats(design, stats, names, a, weighted=weight is not None)
        return stats

    def fit_from_stats(self, design: Design, stats: Stats, names: list[str], a: np.ndarray, *,
                       weighted: bool = False) -> None:
        """Set the fitted state from statistics already gathered (``a`` maps z to the features
        ``names``): how a cross-validated search refits its best candidate without a scan."""
        self._check_stats(design, stats, a)
        self._set_features(names)
        gram_f, cross, mean_f, mean_y = _feature_system(design, stats, a, self.fit_intercept)
        coef, spectrum = self._solve(gram_f, cross)
        self.coef_ = coef
        self.intercept_ = float(mean_y - mean_f @ coef) if self.fit_intercept else 0.0
        self.singular_ = np.sqrt(np.clip(spectrum[::-1], 0.0, None))
        self.n_samples_seen_ = None if weighted else int(stats.gram[0][0, 0])


def _feature_system(
    design: Design, stats: Stats, a: np.ndarray, fit_intercept: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """``(XᵀX, Xᵀy, mean(X), mean(y))`` in feature space, centred when fitting an intercept.

    Centring happens in shifted z-space, where the means are small, so no large
    numbers cancel; the feature map ``a`` is linear, so it commutes with centring.
    """
    gram = stats.gram[0]
    unshift = stats.unshift(design)
    y_at = design.numeric_index(LABEL)
    if fit_intercept:
        total = gram[0, 0]
        mean = gram[0] / total
        centred = gram - total * np.outer(mean, mean)
        mean_z = unshift @ mean
        t = mostly_zeros(a)
        return congruence(t, centred), np.asarray(t @ centred[:, y_at]), np.asarray(t @ mean_z), float(mean_z[y_at])
    # Without centring, map the features into shifted z (``a·S``) rather than unshifting the
    # Gram: a standardised column of mean 1e4 and spread 0.1 is ``1e5·x - 1e5·mean``, and those
    # two terms cancel once per feature here, not once per entry of a Gram of values ~1e8.
    a_shifted = matmul(a, unshift)
    return congruence(a_shifted, gram), np.asarray(a_shifted @ (gram @ unshift[y_at])), np.zeros(a.shape[0]), 0.0


class LinearRegression(_LeastSquares):
    """Ordinary least squares, fitted from ``XᵀX`` and ``Xᵀy`` gathered in one aggregate query.

    The solution is scikit-learn's: the minimum-norm least-squares solution of the
    centred design (eigenvalues of ``XᵀX`` at or below ``1e-12·λmax`` count as zero, so a
    one-hot design without ``drop`` gets the same coefficients as ``lstsq``).
    ``condition_number_`` is ``λmax/λmin`` over the retained eigenvalues; above 1e10
    a :class:`ConditioningWarning` is raised. ``positive=True`` is not supported.

    Column keywords as SnowML: ``input_cols`` (default: every column but the label,
    weight and passthrough columns), ``label_cols`` (one column), ``output_cols``
    (default ``OUTPUT_<label>``), ``sample_weight_col``, ``passthrough_cols``,
    ``drop_input_cols``. Rows with a NULL label are dropped; a NULL feature is an error.
    """

    _sklearn_class = SklearnClass("sklearn.linear_model.LinearRegression")

    def __init__(
        self,
        *,
        fit_intercept: bool = True,
        copy_X: bool = True,
        tol: float = 1e-6,
        n_jobs: int | None = None,
        positive: bool = False,
        input_cols: str | list[str] | None = None,
        label_cols: str | list[str] | None = None,
        output_cols: str | list[str] | None = None,
        sample_weight_col: str | None = None,
        passthrough_cols: str | list[str] | None = None,
        drop_input_cols: bool = False,
    ) -> None:
        self.fit_intercept = fit_intercept
        self.copy_X = copy_X
        self.tol = tol
        self.n_jobs = n_jobs
        self.positive = positive
        self.input_cols = input_cols
        self.label_cols = label_cols
        self.output_cols = output_cols
        self.sample_weight_col = sample_weight_col
        self.passthrough_cols = passthrough_cols
        self.drop_input_cols = drop_input_cols

    def _validate_params(self) -> None:
        super()._validate_params()
        if self.positive:
            raise InvalidParameterError(
                "LinearRegression: positive=True needs an iterative solver over the data; "
                "use sklearn.linear_model.LinearRegression on an extract"
            )

    def _solve(self, gram: np.ndarray, cross: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if gram.shape[0] == 0:
            return np.zeros(0), np.zeros(0)
        values, vectors = np.linalg.eigh(gram)
        top = max(values[-1], 0.0)
        keep = values > RANK_TOLERANCE * top
        self.rank_ = int(keep.sum())
        kept = values[keep]
        self.condition_number_ = float(kept[-1] / kept[0]) if kept.size else np.inf
        if kept.size:
            self._warn_conditioning(self.condition_number_)
        v = vectors[:, keep]
        return v @ ((v.T @ cross) / kept), values


class Ridge(_LeastSquares):
    """Least squares with an L2 penalty ``alpha``, from one aggregate query.

    The solution is scikit-learn's ``solver="cholesky"`` on the centred design,
    ``(XᵀX + αI) β = Xᵀy``, whatever ``solver`` says (the exact solution is
    cheap here, so the iterative solvers' approximations are not reproduced).
    ``condition_number_`` is that of ``XᵀX + αI``. Column keywords and NULL policy
    as :class:`LinearRegression`; ``alpha`` must be a scalar (one label column).
    """

    _sklearn_class = SklearnClass("sklearn.linear_model.Ridge")
    _sklearn_attrs = ("coef_", "intercept_", "n_features_in_", "feature_names_in_", "n_iter_")

    def __init__(
        self,
        alpha: float = 1.0,
        *,
        fit_intercept: bool = True,
        copy_X: bool = True,
        max_iter: int | None = None,
        tol: float = 1e-4,
        solver: str = "auto",
        positive: bool = False,
        random_state: Any = None,
        input_cols: str | list[str] | None = None,
        label_cols: str | list[str] | None = None,
        output_cols: str | list[str] | None = None,
        sample_weight_col: str | None = None,
        passthrough_cols: str | list[str] | None = None,
        drop_input_cols: bool = False,
    ) -> None:
        self.alpha = alpha
        self.fit_intercept = fit_intercept
        self.copy_X = copy_X
        self.max_iter = max_iter
        self.tol = tol
        self.solver = solver
        self.positive = positive
        self.random_state = random_state
        self.input_cols = input_cols
        self.label_cols = label_cols
        self.output_cols = output_cols
        self.sample_weight_col = sample_weight_col
        self.passthrough_cols = passthrough_cols
        self.drop_input_cols = drop_input_cols

    def _validate_params(self) -> None:
        super()._validate_params()
        if np.ndim(self.alpha) != 0:
            raise InvalidParameterError(f"Ridge: alpha must be a scalar for one label column, got {self.alpha!r}")
        if self.positive:
            raise InvalidParameterError("Ridge: positive=True is not supported; use scikit-learn on an extract")

    def _solve(self, gram: np.ndarray, cross: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.n_iter_ = None
        if gram.shape[0] == 0:
            return np.zeros(0), np.zeros(0)
        values = np.linalg.eigvalsh(gram)
        penalised = gram + self.alpha * np.eye(gram.shape[0])
        low = values[0] + self.alpha
        self.condition_number_ = float((values[-1] + self.alpha) / low) if low > 0 else np.inf
        self._warn_conditioning(self.condition_number_)
        try:
            coef = scipy.linalg.solve(penalised, cross, assume_a="pos")
        except (np.linalg.LinAlgError, scipy.linalg.LinAlgError):
            coef = scipy.linalg.lstsq(penalised, cross)[0]  # alpha=0 on a singular design, as sklearn
        return coef, values
