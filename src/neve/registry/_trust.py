"""Which types a stored scikit-learn model may contain: decided by this code, never by the file.

A skops file names the type of every object in it as ``module`` + ``attribute``;
loading imports the module and calls or instantiates the attribute. Whoever may
log a model writes both the file and its manifest, so nothing stored can vouch
for a type. A reader accepts exactly:

* skops' own default list, which skops derives from the installed code (every
  scikit-learn estimator class, numpy dtypes and ufuncs, builtin containers);
* :data:`ALLOWED`: the internal types of the estimators neve scores in SQL
  (Cython tree storage, boosting predictors, binning, losses and links), each an
  exact ``(module, attribute)`` pair naming a class *defined* in that module, so
  that a function a scikit-learn module happens to import (``subprocess.check_output``
  is reachable as ``sklearn.utils._testing.check_output``) can never match;
* the names a caller passes to ``load(trusted=[...])`` after reviewing them,
  which is logged.

Types that pass still hold attacker-chosen arrays. scikit-learn indexes tree nodes
without bounds checks, so :func:`check_structure` verifies every tree's child and
feature indices before the model is returned: a crafted tree fails to load with
an :class:`ArtifactError` instead of crashing or hanging the process that scores it.
"""

from __future__ import annotations

import io
import json
import logging
import zipfile
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from neve.errors import ArtifactError

__all__ = ["ALLOWED", "ALLOWED_FUNCTIONS", "check_structure", "untrusted_types"]

logger = logging.getLogger("neve.registry")

_HGB = "sklearn.ensemble._hist_gradient_boosting"

#: ``(module, class)`` pairs beyond skops' defaults that neve loads without being asked.
ALLOWED: frozenset[tuple[str, str]] = frozenset(
    {
        ("sklearn.tree._tree", "Tree"),
        (f"{_HGB}.predictor", "TreePredictor"),
        (f"{_HGB}.binning", "_BinMapper"),
        *(
            ("sklearn._loss.loss", name)
            for name in (
                "AbsoluteError", "ExponentialLoss", "HalfBinomialLoss", "HalfGammaLoss",
                "HalfMultinomialLoss", "HalfPoissonLoss", "HalfSquaredError", "HalfTweedieLoss",
                "HalfTweedieLossIdentity", "HuberLoss", "PinballLoss",
            )
        ),
        *(
            ("sklearn._loss.link", name)
            for name in ("HalfLogitLink", "IdentityLink", "Interval", "LogLink", "LogitLink", "MultinomialLogit")
        ),
        ("functools", "partial"),
    }
)

#: ``(module, function)`` pairs a trusted model may hold by reference.
ALLOWED_FUNCTIONS: frozenset[tuple[str, str]] = frozenset({("sklearn.utils.validation", "check_array")})


def _named_types(node: Any) -> Iterator[tuple[str, str]]:
    """Every ``(module, class)`` a skops schema names, at any depth."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            module, cls = item.get("__module__"), item.get("__class__")
            if isinstance(module, str) and isinstance(cls, str):
                yield module, cls
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def untrusted_types(data: bytes, trusted: Iterable[str], where: str) -> list[str]:
    """Types in the skops ``data`` that neither skops' defaults, :data:`ALLOWED` nor
    ``trusted`` accept. Names skops itself flags are checked against the exact
    ``(module, class)`` pairs of the nodes that carry them."""
    import skops.io as sio

    try:
        beyond_default = set(sio.get_untrusted_types(data=data))
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            schema = json.loads(archive.read("schema.json"))
    except Exception as exc:  # noqa: BLE001 - any parse failure means the file is not a model we wrote
        raise ArtifactError(f"{where} is not a readable skops file: {type(exc).__name__}: {exc}") from None
    trusted = set(trusted)
    refused = set()
    named = set()
    for module, cls in _named_types(schema):
        name = f"{module}.{cls}"
        named.add(name)
        if name in beyond_default and (module, cls) not in ALLOWED | ALLOWED_FUNCTIONS and name not in trusted:
            refused.add(name)
    # Anything skops flags that no node names as a pair is refused unless explicitly trusted.
    refused |= {name for name in beyond_default - named if name not in trusted}
    return sorted(refused)


def accepted_names(data: bytes) -> list[str]:
    """The skops type names to hand to ``skops.io.loads`` for ``data``: those beyond its defaults."""
    import skops.io as sio

    return sorted(sio.get_untrusted_types(data=data))


def check_trusted_argument(trusted: Any) -> list[str]:
    if trusted is None:
        return []
    if isinstance(trusted, str) or not all(isinstance(t, str) for t in trusted):
        raise ArtifactError(
            "trusted must be a list of fully qualified type names, e.g. ['mypkg.models.MyEstimator']"
        )
    return list(trusted)


# -- structure of the trees a model holds ------------------------------------------------------


def _estimators(model: Any, depth: int = 0) -> Iterator[Any]:
    """``model`` and every estimator nested in it (pipelines, ensembles, boosting stages)."""
    if depth > 6:
        return
    yield model
    nested: list[Any] = []
    for attr in ("steps", "estimators_", "estimator_", "best_estimator_", "init_"):
        value = getattr(model, attr, None)
        if value is None or isinstance(value, str):
            continue
        if attr == "steps":
            nested.extend(step for _, step in value)
        elif isinstance(value, (list, tuple, np.ndarray)):
            nested.extend(np.asarray(value, dtype=object).ravel())
        else:
            nested.append(value)
    for item in nested:
        yield from _estimators(item, depth + 1)


def _check_children(left: np.ndarray, right: np.ndarray, leaf: np.ndarray, where: str, kind: str) -> None:
    n = len(left)
    index = np.arange(n)
    inner = ~leaf
    # Children always sit after their parent in the arrays scikit-learn writes; requiring it
    # rules out both out-of-range reads and cycles that would loop forever in predict.
    for side in (left, right):
        bad = inner & ((side <= index) | (side >= n))
        if bad.any():
            node = int(index[bad][0])
            raise ArtifactError(f"{where}: {kind} node {node} points to child {int(side[node])} of {n} nodes")


def _check_tree(tree: Any, n_features: int | None, where: str) -> None:
    left = np.asarray(tree.children_left, dtype=np.int64)
    right = np.asarray(tree.children_right, dtype=np.int64)
    leaf = left == -1
    if not np.array_equal(leaf, right == -1):
        raise ArtifactError(f"{where}: a decision tree node has one child")
    _check_children(left, right, leaf, where, "decision tree")
    features = np.asarray(tree.feature, dtype=np.int64)[~leaf]
    limit = tree.n_features if n_features is None else min(n_features, tree.n_features)
    if features.size and (features.min() < 0 or features.max() >= limit):
        raise ArtifactError(f"{where}: a decision tree splits on feature {int(features.max())} of {limit}")


def _check_predictor(predictor: Any, n_features: int | None, where: str) -> None:
    nodes = predictor.nodes
    leaf = nodes["is_leaf"].astype(bool)
    _check_children(nodes["left"].astype(np.int64), nodes["right"].astype(np.int64), leaf, where, "boosting tree")
    features = nodes["feature_idx"][~leaf]
    if features.size and n_features is not None and (features.min() < 0 or features.max() >= n_features):
        raise ArtifactError(f"{where}: a boosting tree splits on feature {int(features.max())} of {n_features}")
    categorical = nodes["bitset_idx"][~leaf & nodes["is_categorical"].astype(bool)]
    if categorical.size and categorical.max() >= len(predictor.raw_left_cat_bitsets):
        raise ArtifactError(f"{where}: a boosting tree refers to a category set it does not have")


def check_structure(model: Any, where: str) -> None:
    """Raise :class:`ArtifactError` if any tree in ``model`` has node indices scikit-learn
    would follow out of bounds or round in a cycle."""
    for estimator in _estimators(model):
        n_features = getattr(estimator, "n_features_in_", None)
        tree = getattr(estimator, "tree_", None)
        if tree is not None and hasattr(tree, "children_left"):
            _check_tree(tree, n_features, where)
        predictors = getattr(estimator, "_predictors", None)
        if predictors is not None:
            for stage in predictors:
                for predictor in stage:
                    _check_predictor(predictor, n_features, where)


def log_accepted(names: list[str], where: str) -> None:
    if names:
        logger.warning("loading %s with types trusted by the caller: %s", where, ", ".join(names))
