"""``model.json``: the fitted state of a linear scikit-learn model as plain JSON, so that
:meth:`ModelVersion.run` can score without loading ``model.skops``.

Why: importing ``skops.io`` builds its trusted-type list by importing every scikit-learn
estimator module (pytest included), ~2 s of a fresh process that scores one table. A
linear model's predictions need only its coefficients, so for the classes below
:func:`build` also writes them as JSON, hashed in the manifest like every file.
:func:`rebuild` makes a stand-in for the same estimator from them
(:class:`neve.scoring._fitted_state.LinearState`, which SQL scoring compiles without
importing scikit-learn's linear models): a class from this fixed list, its JSON
parameters, and numeric arrays as fitted attributes; nothing the file says can name
another type. ``load()`` still returns the skops model, exactly as logged, and a
version whose ``model.skops`` names anything but such a model's plain types is scored
through ``load()``, so its trust checks refuse it for ``run`` as they do for ``load``.
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import numpy as np

from neve.errors import ArtifactError
from neve.registry._trust import _named_types
from neve.scoring._fitted_state import FUNCTIONS, linear_state

__all__ = ["FILE", "plain", "rebuild", "state_of"]

FILE = "model.json"

#: Classes whose predict, predict_proba and decision_function read only the attributes below.
_CLASSES = tuple(FUNCTIONS)
_ARRAYS = ("coef_", "intercept_", "classes_", "feature_names_in_")


#: The types a listed model's skops file names besides its own class.
_PLAIN = {
    "builtins": {"dict", "list", "str", "tuple", "int", "float", "bool", "NoneType"},
    "numpy": {"ndarray", "dtype", "float64", "float32", "int64", "int32", "bool_", "str_", "object_"},
}


def _class(name: str) -> type:
    import sklearn.linear_model

    return getattr(sklearn.linear_model, name)


def state_of(model: Any) -> bytes | None:
    """``model.json`` for a fitted model of one of the listed classes (exactly, not a
    subclass, which may predict differently), else ``None``."""
    name = type(model).__name__
    if name not in _CLASSES or type(model) is not _class(name):
        return None
    state: dict[str, Any] = {"n_features_in_": int(model.n_features_in_)}
    for attr in _ARRAYS:
        if hasattr(model, attr):
            value = np.asarray(getattr(model, attr))
            state[attr] = {"values": value.tolist(), "dtype": "object" if value.dtype == object else value.dtype.str}
    try:
        return json.dumps({"class": name, "params": model.get_params(deep=False), "state": state},
                          allow_nan=False).encode()
    except (TypeError, ValueError):  # a parameter or value JSON cannot hold: skops only
        return None


def plain(skops_data: bytes) -> bool:
    """Whether the skops file names only a listed model class and plain builtin and numpy
    types (read from its schema, without importing skops)."""
    try:
        with zipfile.ZipFile(io.BytesIO(skops_data)) as archive:
            schema = json.loads(archive.read("schema.json"))
    except Exception:  # noqa: BLE001 - unreadable: load() says why
        return False
    return all(
        cls in _PLAIN.get(module, ()) or (module.startswith("sklearn.linear_model.") and cls in _CLASSES)
        for module, cls in _named_types(schema)
    )


def rebuild(data: bytes, where: str) -> Any:
    """The stand-in for the estimator ``model.json`` describes (its bytes already verified
    against the manifest); ``.estimator()`` gives the scikit-learn estimator itself."""
    try:
        spec = json.loads(data)
        name = spec["class"]
        if name not in _CLASSES:
            raise ArtifactError(f"{where}: {name!r} is not a class neve rebuilds from JSON")
        if not isinstance(spec["params"], dict):
            raise TypeError("params is not an object")
        state = spec["state"]
        attributes: dict[str, Any] = {"n_features_in_": int(state["n_features_in_"])}
        for attr in _ARRAYS:
            if attr in state:
                value = state[attr]
                attributes[attr] = np.asarray(value["values"], dtype=np.dtype(value["dtype"]))
        # The stand-in, not the scikit-learn class: no sklearn.linear_model import to score in SQL.
        model = linear_state(name, spec["params"], attributes)
    except ArtifactError:
        raise
    except Exception as exc:  # any malformed content is the same failure
        raise ArtifactError(f"{where}: cannot rebuild the model from {FILE}: {exc}") from exc
    if model.intercept_.ndim == 0:
        model.intercept_ = float(model.intercept_)  # as fit leaves it for a single target
    return model
