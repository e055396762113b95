"""Linear models fitted where the data lives: the sufficient statistics (``XᵀX``,
``Xᵀy``; per Newton step for logistic regression) come from one aggregate query and
the client solves a small dense system. scikit-learn's parameters, SnowML's column
keywords, lazy SQL predictions, and ``to_sklearn()`` for the fitted scikit-learn twin."""

from __future__ import annotations

from neve.linear_model._base import ConditioningWarning, LinearEstimator
from neve.linear_model._linear import LinearRegression, Ridge
from neve.linear_model._logistic import LogisticRegression
from neve.linear_model._logistic_cv import LogisticRegressionCV
from neve.linear_model._ridge_cv import RidgeCV

__all__ = [
    "ConditioningWarning", "LinearEstimator", "LinearRegression", "LogisticRegression", "LogisticRegressionCV",
    "Ridge", "RidgeCV",
]
