"""Pipelines of pushdown transformers, optionally ending in an estimator.

``Pipeline`` chains neve transformers into one SELECT (:mod:`._pipeline`); a final
estimator is fitted and scored as :mod:`._final_estimator` describes, fused with the
transformers' statistics when it fits from sufficient statistics (:mod:`._fused`);
other estimators get compact codes (:mod:`._sparse`). ``to_sklearn`` exports the fitted
pipeline to scikit-learn (:mod:`._sklearn_export`).
"""

from neve.pipeline._pipeline import Pipeline

__all__ = ["Pipeline"]
