"""A linear scikit-learn model's fitted state without scikit-learn, for scoring in SQL.

:meth:`neve.registry.ModelVersion.run` of a linear model reads its coefficients from
``model.json``; building the scikit-learn estimator around them would import
``sklearn.linear_model`` (and through it ``sklearn.model_selection``, ``sklearn.metrics``
and joblib's process pool), a few tenths of a second of a fresh process that only
compiles the coefficients into SQL. :func:`linear_state` makes a stand-in that
:func:`neve.scoring.score` compiles as the class it names; anything that needs the real
estimator (the client-side fallback, a direct ``predict``) gets it, built on first use.
"""

from __future__ import annotations

from functools import cache, partial
from typing import Any

__all__ = ["LinearState", "linear_state"]

#: The prediction functions of each class :func:`linear_state` stands in for.
FUNCTIONS = {
    "LinearRegression": ("predict",),
    "Ridge": ("predict",),
    "Lasso": ("predict",),
    "ElasticNet": ("predict",),
    "LogisticRegression": ("predict", "predict_proba", "predict_log_proba", "decision_function"),
}


class LinearState:
    """Fitted attributes (``coef_``, ``intercept_``, ``classes_``, ``feature_names_in_``,
    ``n_features_in_``) and parameters of a scikit-learn linear model; its subclass per
    model class (:func:`linear_state`) carries that class's name, so messages read as for
    the model itself."""

    def __init__(self, params: dict[str, Any], attributes: dict[str, Any]) -> None:
        self.params = dict(params)
        self.__dict__.update(attributes)

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return dict(self.params)

    def estimator(self) -> Any:
        """The scikit-learn estimator with this state (built once)."""
        built = self.__dict__.get("_estimator")
        if built is None:
            import sklearn.linear_model

            built = getattr(sklearn.linear_model, type(self).__name__)(**self.params)
            for attr, value in self.__dict__.items():
                if attr.endswith("_") and not attr.startswith("_"):
                    setattr(built, attr, value)
            self.__dict__["_estimator"] = built
        return built

    def _call(self, function_name: str, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.estimator(), function_name)(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        # Only the class's prediction functions: a missing fitted attribute stays missing.
        # The estimator is built when a function is called, not when it is looked up
        # (score() checks that the function exists before it compiles the SQL).
        if name in FUNCTIONS.get(type(self).__name__, ()):
            return partial(self._call, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")


@cache
def _class_for(name: str) -> type[LinearState]:
    return type(name, (LinearState,), {"__module__": __name__, "__qualname__": name})


def linear_state(class_name: str, params: dict[str, Any], attributes: dict[str, Any]) -> LinearState:
    """The stand-in for a fitted ``sklearn.linear_model.<class_name>``; ``KeyError`` for a
    class not in :data:`FUNCTIONS`."""
    if class_name not in FUNCTIONS:
        raise KeyError(class_name)
    return _class_for(class_name)(params, attributes)
