"""A model chosen by cross-validation, as the registry keeps it.

``log_model`` of a fitted search (neve's or scikit-learn's ``GridSearchCV``, or a
``RidgeCV``, alone or ending a Pipeline) stores the chosen model as usual -- the search's
``best_estimator_``, which ``mv.run`` scores in SQL -- and beside it ``cv_results.json``:
every candidate's per-fold scores in ``cv_results_``'s layout, which scorer chose and
which candidate won. The chosen candidate's mean and std per scorer become the version's
metrics (``cv_mean_test_<scorer>``, ``cv_std_test_<scorer>``) and its params the version's
params. The file is plain JSON (:mod:`neve._json` spells NaN and tuples); a candidate's
estimator (a grid that swaps a step) is rebuilt on load only when it is a neve
transformer or linear model, else given back as its ``repr``: nothing is unpickled and no
class named in the file is imported.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.stats import rankdata

from neve import _json
from neve.errors import ArtifactError, NeveInputError, NotFittedError, SerializationError

__all__ = ["FILE", "Logged", "SearchResults", "from_model", "load"]

FILE = "cv_results.json"
FORMAT = "neve.cv_results/1"
# The only classes a stored candidate may be rebuilt as: neve's own, looked up by name in
# these modules (never imported from a name the file gives).
_REBUILDABLE = ("neve.linear_model", "neve.preprocessing")


@dataclass
class SearchResults:
    """What a logged search chose and how every candidate scored, in scikit-learn's names."""

    cv_results_: dict[str, Any]
    best_index_: int
    best_params_: dict[str, Any]
    best_score_: float
    scorers: list[str]
    refit: str
    n_splits_: int
    search: str

    def candidates(self) -> list[dict[str, Any]]:
        """One row per candidate: params, rank, and (mean, std) per scorer; ``chosen`` marks the winner."""
        results = self.cv_results_
        rows = []
        for i, params in enumerate(results["params"]):
            scores = {s: (float(results[f"mean_test_{s}"][i]), float(results[f"std_test_{s}"][i]))
                      for s in self.scorers}
            rows.append({"index": i, "params": params, "rank": int(results[f"rank_test_{self.refit}"][i]),
                         "scores": scores, "chosen": i == self.best_index_})
        return rows


@dataclass
class Logged:
    """What ``log_model`` stores for a search: the chosen model and what the search says about it."""

    model: Any
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    record: bytes | None = None


def from_model(model: Any) -> Logged:
    """``model`` as ``log_model`` stores it: a fitted search becomes its best estimator plus
    its results; anything else passes through. An unfitted search is refused here, before
    anything is written."""
    if _is_search(model):
        return _from_search(model)
    final = getattr(model, "_estimator", None) if hasattr(model, "feature_pipeline") else model
    if final is not None and hasattr(final, "cv_scores_") and hasattr(final, "alpha_"):
        step = model.steps[-1][0] if final is not model else None
        return _from_ridge_cv(model, final, step)
    return Logged(model)


def _is_search(model: Any) -> bool:
    return hasattr(model, "estimator") and (
        hasattr(model, "param_grid") or hasattr(model, "param_distributions") or hasattr(model, "cv_results_")
    )


def _from_search(search: Any) -> Logged:
    name = type(search).__name__
    if not hasattr(search, "cv_results_"):
        raise NotFittedError(f"this {name} is not fitted: call fit(table) before log_model")
    if not hasattr(search, "best_estimator_"):
        raise NeveInputError(
            f"this {name} was fitted with refit=False, so it has no best_estimator_ to log; "
            f"fit it with refit=True (or the scorer that picks the best)"
        )
    multimetric = bool(getattr(search, "multimetric_", False))
    results = search.cv_results_
    if multimetric:
        scorers = sorted(k[len("mean_test_"):] for k in results if k.startswith("mean_test_"))
        refit = str(search.refit)
        columns = {s: s for s in scorers}
    else:
        # A single scorer's columns end in "score"; stored under the scorer's own name.
        scorer = search.scorer_ if isinstance(getattr(search, "scorer_", None), str) else search.scoring
        refit = scorer if isinstance(scorer, str) else "score"
        scorers, columns = [refit], {refit: "score"}
    renamed = {_rename(key, columns): value for key, value in results.items()}
    return _logged(search.best_estimator_, name, renamed, scorers, refit, int(search.best_index_),
                   int(search.n_splits_), dict(search.best_params_))


def _from_ridge_cv(model: Any, ridge: Any, step: str | None) -> Logged:
    if not hasattr(ridge, "coef_"):
        raise NotFittedError(f"this {type(ridge).__name__} is not fitted: call fit(table) before log_model")
    scores = np.asarray(ridge.cv_scores_, dtype=float)
    alphas = [float(a) for a in np.atleast_1d(np.asarray(ridge.alphas, dtype=float))]
    key = f"{step}__alpha" if step else "alpha"
    scorer = ridge.scoring or "r2"
    mean = scores.mean(axis=1)
    results: dict[str, Any] = {f"param_{key}": np.ma.MaskedArray(alphas, mask=False),
                               "params": [{key: a} for a in alphas]}
    for k in range(scores.shape[1]):
        results[f"split{k}_test_{scorer}"] = scores[:, k]
    results[f"mean_test_{scorer}"] = mean
    results[f"std_test_{scorer}"] = scores.std(axis=1)
    results[f"rank_test_{scorer}"] = np.asarray(rankdata(-mean, method="min"), dtype=np.int32)
    best = int(np.argmax(mean))  # RidgeCV's own choice: the first best mean
    return _logged(model, type(ridge).__name__, results, [scorer], scorer, best, scores.shape[1],
                   {key: alphas[best]})


def _rename(key: str, columns: dict[str, str]) -> str:
    for scorer, suffix in columns.items():
        for stem in ("mean_test_", "std_test_", "rank_test_"):
            if key == stem + suffix:
                return stem + scorer
        if key.startswith("split") and key.endswith(f"_test_{suffix}"):
            return key[: -len(suffix)] + scorer
    return key


def _logged(
    model: Any, search: str, results: dict[str, Any], scorers: list[str], refit: str, best: int,
    n_splits: int, best_params: dict[str, Any],
) -> Logged:
    metrics = {}
    for scorer in scorers:
        for stat in ("mean", "std"):
            value = float(results[f"{stat}_test_{scorer}"][best])
            if np.isfinite(value):  # a NaN score (error_score) is no metric; the file keeps it
                metrics[f"cv_{stat}_test_{scorer}"] = value
    record = {
        "format": FORMAT, "search": search, "scorers": scorers, "refit": refit, "best_index": best,
        "n_splits": n_splits, "cv_results": {k: _encode_column(k, v) for k, v in results.items()},
    }
    raw = json.dumps(record, indent=1, allow_nan=False).encode()
    params = {k: _display(v) for k, v in best_params.items()}
    return Logged(model, metrics, params, raw)


def _encode_column(key: str, value: Any) -> Any:
    if key == "params":
        return [{k: _encode_value(v) for k, v in p.items()} for p in value]
    if isinstance(value, np.ma.MaskedArray):
        mask = np.ma.getmaskarray(value)
        return {"$masked": [None if m else _encode_value(v) for v, m in zip(value.data, mask, strict=True)],
                "mask": [bool(m) for m in mask]}
    return _json.encode(np.asarray(value))


def _encode_value(value: Any) -> Any:
    if hasattr(value, "get_params") and not isinstance(value, type):
        cls = type(value)
        try:
            params = _json.encode(value.get_params(deep=False))
        except SerializationError:
            return {"$repr": repr(value)}
        return {"$estimator": f"{cls.__module__}.{cls.__qualname__}", "params": params, "repr": repr(value)}
    try:
        return _json.encode(value)
    except SerializationError:
        return {"$repr": repr(value)}


def _display(value: Any) -> Any:
    """A chosen param as the version's params show it: plain values as they are, an
    estimator (a swapped step) as its repr."""
    encoded = _encode_value(value)
    if isinstance(encoded, dict) and ("$estimator" in encoded or "$repr" in encoded):
        return " ".join((encoded.get("repr") or encoded["$repr"]).split())  # scikit-learn's repr wraps lines
    return encoded


def load(raw: bytes, where: str) -> SearchResults:
    """The stored search, from ``cv_results.json``'s verified bytes."""
    try:
        record = json.loads(raw)
        if record.get("format") != FORMAT:
            raise ArtifactError(f"{where}/{FILE}: unknown format {record.get('format')!r}")
        results = {k: _decode_column(k, v) for k, v in record["cv_results"].items()}
        best = int(record["best_index"])
        refit = record["refit"]
        return SearchResults(
            cv_results_=results, best_index_=best, best_params_=dict(results["params"][best]),
            best_score_=float(results[f"mean_test_{refit}"][best]), scorers=list(record["scorers"]),
            refit=refit, n_splits_=int(record["n_splits"]), search=record["search"],
        )
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        if isinstance(exc, ArtifactError):
            raise
        raise ArtifactError(f"{where}/{FILE} is not a cross-validation record: {exc}") from None


def _decode_column(key: str, value: Any) -> Any:
    if key == "params":
        return [{k: _decode_value(v) for k, v in p.items()} for p in value]
    if isinstance(value, dict) and "$masked" in value:
        data = np.empty(len(value["mask"]), dtype=object)
        data[:] = [None if v is None else _decode_value(v) for v in value["$masked"]]
        return np.ma.MaskedArray(data, mask=value["mask"])
    decoded = _json.decode(value)
    return np.asarray(decoded, dtype=np.int32 if key.startswith("rank_test_") else float)


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict) and "$repr" in value:
        return value["$repr"]
    if isinstance(value, dict) and "$estimator" in value:
        return _rebuild(value)
    return _json.decode(value)


def _rebuild(value: dict[str, Any]) -> Any:
    """A neve estimator from its class path and params; anything else as its repr."""
    import importlib

    module, _, name = value["$estimator"].rpartition(".")
    package = next((p for p in _REBUILDABLE if module == p or module.startswith(p + ".")), None)
    if package is None:
        return value["repr"]
    cls = getattr(importlib.import_module(package), name, None)  # the package's public names only
    if not isinstance(cls, type) or not hasattr(cls, "get_params"):
        return value["repr"]
    try:
        return cls(**_json.decode(value["params"]))
    except (TypeError, ValueError):
        return value["repr"]
