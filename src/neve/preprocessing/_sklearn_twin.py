"""``to_sklearn()``: the fitted scikit-learn twin of a neve step.

SnowML users hand fitted models to scikit-learn code this way: a step becomes the
scikit-learn transformer of the same class over its ``input_cols``. Fitted state is
copied, never refitted. Each transformer builds its twin in its ``_sklearn_twin`` hook
(scalers share :func:`copy_fitted_state`); this module holds what the hooks share.
A whole pipeline's twin is :mod:`neve.pipeline._sklearn_export`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from neve.preprocessing._base import BaseTransformer

__all__ = ["copy_fitted_state", "sklearn_params", "values_by_col", "with_names_in"]

_NEVE_ONLY = {"input_cols", "output_cols", "passthrough_cols", "drop_input_cols", "sparse"}


def sklearn_params(step: BaseTransformer, **overrides: Any) -> dict[str, Any]:
    """The step's parameters that its scikit-learn class takes, with ``overrides``."""
    accepted = step._sklearn_class().get_params()
    params = {k: v for k, v in step.get_params(deep=False).items() if k not in _NEVE_ONLY and k in accepted}
    return {**params, **overrides}


def values_by_col(step: BaseTransformer, values: Any) -> Any:
    """A per-column dict as scikit-learn's array in ``input_cols_`` order (other values as they are)."""
    if values is None or not isinstance(values, dict):
        return values
    return np.asarray([values[c] for c in step.input_cols_], dtype=np.float64)


def with_names_in(est: Any, step: BaseTransformer) -> Any:
    est.n_features_in_ = len(step.input_cols_)
    est.feature_names_in_ = np.asarray(step.input_cols_, dtype=object)
    return est


def copy_fitted_state(step: BaseTransformer) -> Any:
    """The twin of a step whose fitted attributes are scikit-learn's own (the scalers)."""
    est = step._sklearn_class(**sklearn_params(step))
    for attr in step._fitted_attrs:
        value = getattr(step, attr)
        if attr == "n_samples_seen_" and isinstance(value, dict):
            counts = np.asarray([value[c] for c in step.input_cols_], dtype=np.int64)
            value = int(counts[0]) if np.ptp(counts) == 0 else counts  # as scikit-learn stores it
        else:
            value = values_by_col(step, value)
        setattr(est, attr, value)
    return with_names_in(est, step)
