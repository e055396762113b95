"""Cross-validation and grid search in the engine: scikit-learn's ``cross_validate`` and
``GridSearchCV`` over a table, with folds assigned in SQL (:class:`KFold`).

Three ways to a score, chosen before any query runs:

- **from statistics** (a fusable Pipeline, see :mod:`neve.pipeline._fused`, ending in
  LinearRegression or Ridge, or such an estimator alone, scored by ``neg_mean_squared_error``,
  ``neg_root_mean_squared_error`` or ``r2``): one aggregate query grouped by fold serves
  every fold and candidate, each fold's preprocessing refitted from its training folds'
  statistics; the best candidate is refitted from the totals with no further scan.
  Candidates whose statistics differ in shape (other encoded or scaled columns) cost one
  query per shape.
- **shared Newton passes** (a fusable Pipeline ending in a binary LogisticRegression, scored
  by ``accuracy`` and/or ``neg_log_loss``): a classes query, then one query per Newton pass
  for every candidate and fold together (:mod:`neve.linear_model._newton_paths`), each
  fold's preprocessing refitted from the first pass's per-fold statistics; the best is
  refitted by an ordinary fit.
- **fold by fold** (anything else): each candidate is fitted on each training fold (its own
  queries) and scored on the held-out fold in SQL (one query per scorer). This is where
  steps whose statistics do not decompose by fold run (quantiles: RobustScaler,
  KBinsDiscretizer(strategy="quantile"), SimpleImputer(strategy="median"); and, not yet
  fused, SimpleImputer(mean/constant), OneHotEncoder(min_frequency/max_categories), clipping
  scalers), and the scorers that need rows (``neg_mean_absolute_error``, ``roc_auc``), and
  multiclass or weighted LogisticRegression.

Which preprocessing decomposes per fold (fitted from the one query's per-fold statistics,
exactly as on the training rows): OneHotEncoder (categories seen in the training folds),
MaxAbsScaler, MinMaxScaler, StandardScaler.
"""

from __future__ import annotations

import difflib
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy.stats import rankdata
from sklearn.base import BaseEstimator, clone
from sklearn.model_selection import ParameterGrid

from neve import metrics
from neve._table import as_table
from neve.errors import InvalidParameterError, NeveInputError, NotFittedError
from neve.linear_model import LinearEstimator
from neve.model_selection._split import KFold, check_cv
from neve.pipeline import Pipeline
from neve.pipeline._fused_cv import (
    Candidate,
    fusable,
    fusable_paths,
    refit_from_stats,
    search_from_stats,
    search_paths,
)

__all__ = ["GridSearchCV", "cross_validate"]

REGRESSION_SCORERS = ("neg_mean_squared_error", "neg_root_mean_squared_error", "r2", "neg_mean_absolute_error")
CLASSIFICATION_SCORERS = ("accuracy", "neg_log_loss", "roc_auc")


def _final(estimator: Any) -> Any:
    return estimator.steps[-1][1] if isinstance(estimator, Pipeline) else estimator


def _check_estimator(estimator: Any, owner: str) -> LinearEstimator:
    final = _final(estimator)
    if not isinstance(final, LinearEstimator):
        raise InvalidParameterError(
            f"{owner}: the estimator must be a neve.linear_model estimator or a neve Pipeline ending in one, "
            f"got {type(final).__name__}; for a scikit-learn model use sklearn.model_selection on an extract"
        )
    return final


def _scorers(scoring: Any, final: LinearEstimator, owner: str) -> list[str]:
    """The scorer names, checked against the estimator's kind (before any query)."""
    if scoring is None:
        names = ["accuracy" if final._is_classifier else "r2"]
    elif isinstance(scoring, str):
        names = [scoring]
    elif isinstance(scoring, (list, tuple, set)) and all(isinstance(s, str) for s in scoring):
        names = list(scoring)
    else:
        raise InvalidParameterError(
            f"{owner}: scoring must be a scorer name or a list of them (callables cannot run in the "
            f"engine), got {scoring!r}; known: {', '.join(REGRESSION_SCORERS + CLASSIFICATION_SCORERS)}"
        )
    if not names or len(set(names)) != len(names):
        raise InvalidParameterError(f"{owner}: scoring must name distinct scorers, got {scoring!r}")
    kind, fits = (("classifier", CLASSIFICATION_SCORERS) if final._is_classifier
                  else ("regressor", REGRESSION_SCORERS))
    for name in names:
        if name in fits:
            continue
        if name in REGRESSION_SCORERS + CLASSIFICATION_SCORERS:
            raise InvalidParameterError(
                f"{owner}: scorer {name!r} does not fit {type(final).__name__}, a {kind}; "
                f"use one of {', '.join(fits)}"
            )
        hint = difflib.get_close_matches(name, REGRESSION_SCORERS + CLASSIFICATION_SCORERS, n=1)
        raise InvalidParameterError(
            f"{owner}: unknown scorer {name!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
            + f"; known for a {kind}: {', '.join(fits)}"
        )
    return names


def _check_grid(estimator: Any, param_grid: Any, owner: str) -> list[dict[str, Any]]:
    grids = [param_grid] if isinstance(param_grid, Mapping) else list(param_grid)
    valid = estimator.get_params(deep=True)
    for grid in grids:
        if not isinstance(grid, Mapping):
            raise InvalidParameterError(f"{owner}: param_grid must be a dict or a list of dicts, got {grid!r}")
        # A step the grid swaps in brings its own parameters (``{"model": [Ridge()], "model__alpha": ...}``).
        swapped = {f"{name}__{p}" for name, values in grid.items() if not isinstance(values, str)
                   for v in (values if isinstance(values, Sequence | np.ndarray) else [])
                   if hasattr(v, "get_params") and not isinstance(v, type) for p in v.get_params(deep=True)}
        for name, values in grid.items():
            if name not in valid and name not in swapped:
                hint = difflib.get_close_matches(name, list(valid), n=1)
                raise InvalidParameterError(
                    f"{owner}: {type(estimator).__name__} has no parameter {name!r}"
                    + (f" (did you mean {hint[0]!r}?)" if hint else "")
                    + "; a Pipeline's are named step__param, e.g. "
                    + next((repr(k) for k in valid if "__" in k), "'model__alpha'")
                )
            if isinstance(values, str) or not isinstance(values, Sequence | np.ndarray) or len(values) == 0:
                raise InvalidParameterError(
                    f"{owner}: param_grid[{name!r}] must be a non-empty list of values, got {values!r}"
                )
    return list(ParameterGrid(grids))


def _candidate(estimator: Any, params: dict[str, Any]) -> Any:
    model = clone(estimator)
    # The grid's values cloned, as scikit-learn does: a swapped-in step (``{"model": [Ridge()]}``)
    # is one object shared by every candidate of its grid, and set_params mutates it.
    model.set_params(**clone(params, safe=False))
    return model


def _as_candidate(model: Any) -> Candidate:
    if isinstance(model, Pipeline):
        steps = [step for _, step in model.steps]
        return Candidate(steps=steps[:-1], estimator=steps[-1])
    return Candidate(steps=[], estimator=model)


def _evaluate(
    models: list[Any], table: Any, cv: KFold, scorers: list[str]
) -> tuple[list[list[dict[str, float]]], np.ndarray, np.ndarray, int | None]:
    """Scores per model and fold, fit and score times, and the number of queries when
    shared statistics or shared Newton passes served them (``None``: fold by fold)."""
    n_folds = cv.get_n_splits()
    candidates = [_as_candidate(m) for m in models]
    if all(fusable(c.steps, c.estimator, scorers) for c in candidates):
        result = search_from_stats(candidates, table, cv.fold_of, n_folds, scorers)
        if result is not None:
            for model, cand in zip(models, candidates, strict=True):
                model._neve_candidate = cand
            return result.scores, result.fit_times, result.score_times, result.queries
    elif all(fusable_paths(c.steps, c.estimator, scorers) for c in candidates):
        result = search_paths(candidates, table, cv.fold_of, n_folds, scorers)
        if result is not None:
            return result.scores, result.fit_times, result.score_times, result.queries
    return (*_fold_by_fold(models, table, cv, scorers), None)


def _fold_by_fold(
    models: list[Any], table: Any, cv: KFold, scorers: list[str]
) -> tuple[list[list[dict[str, float]]], np.ndarray, np.ndarray]:
    n_folds = cv.get_n_splits()
    splits = list(cv.split(table))
    scores = [[{} for _ in range(n_folds)] for _ in models]
    fit_times, score_times = np.zeros((len(models), n_folds)), np.zeros((len(models), n_folds))
    for c, model in enumerate(models):
        for k, (train, test) in enumerate(splits):
            fitted = clone(model)
            t0 = time.perf_counter()
            try:
                fitted.fit(train)
            except NeveInputError as exc:
                # Name the fold: the same estimator fits the whole table (one class in a
                # training fold, an empty fold).
                raise type(exc)(f"fold {k} of {n_folds} (training rows: every other fold): {exc}") from exc
            t1 = time.perf_counter()
            scores[c][k] = _score_rows(fitted, test, scorers)
            score_times[c, k] = time.perf_counter() - t1
            fit_times[c, k] = t1 - t0
    return scores, fit_times, score_times


def _score_rows(model: Any, test: Any, scorers: list[str]) -> dict[str, float]:
    """Each scorer of ``model`` on the held-out rows, in SQL."""
    final = _final(model)
    label = final.label_cols_[0]
    out: dict[str, float] = {}
    regression = [s for s in scorers if s in REGRESSION_SCORERS]
    if regression:
        column = final._default_outputs("predict", 1)[0]
        values = metrics.regression_metrics(model.predict(test), label, column)
        names = {"neg_mean_squared_error": -values["mse"], "neg_root_mean_squared_error": -values["rmse"],
                 "neg_mean_absolute_error": -values["mae"], "r2": values["r2"]}
        out.update({s: names[s] for s in regression})
    if "accuracy" in scorers:
        column = final._default_outputs("predict", 1)[0]
        out["accuracy"] = metrics.accuracy_score(model.predict(test), label, column)
    if "neg_log_loss" in scorers or "roc_auc" in scorers:
        classes = list(final.classes_)
        names = final._default_outputs("predict_proba", len(classes))
        proba = model.predict_proba(test)
        if "neg_log_loss" in scorers:
            out["neg_log_loss"] = -metrics.log_loss(proba, label, names, labels=classes)
        if "roc_auc" in scorers:
            if len(classes) != 2:
                raise InvalidParameterError(
                    f"roc_auc needs a binary label; {label!r} has {len(classes)} classes in a training fold"
                )
            out["roc_auc"] = metrics.roc_auc_score(proba, label, names[1], pos_label=_py(classes[1]))
    return out


def _py(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _results(
    params: list[dict[str, Any]], scores: list[list[dict[str, float]]], fit_times: np.ndarray,
    score_times: np.ndarray, scorers: list[str], multimetric: bool,
) -> dict[str, Any]:
    """``cv_results_`` in scikit-learn's layout."""
    n, n_folds = fit_times.shape
    results: dict[str, Any] = {
        "mean_fit_time": fit_times.mean(axis=1), "std_fit_time": fit_times.std(axis=1),
        "mean_score_time": score_times.mean(axis=1), "std_score_time": score_times.std(axis=1),
    }
    for name in sorted({k for p in params for k in p}):
        column = np.ma.MaskedArray(np.empty(n, dtype=object), mask=True)
        for i, p in enumerate(params):
            if name in p:
                column[i] = p[name]
        results[f"param_{name}"] = column
    results["params"] = params
    for scorer in scorers:
        suffix = scorer if multimetric else "score"
        table = np.array([[scores[c][k][scorer] for k in range(n_folds)] for c in range(n)], dtype=float)
        for k in range(n_folds):
            results[f"split{k}_test_{suffix}"] = table[:, k]
        mean = table.mean(axis=1)
        results[f"mean_test_{suffix}"] = mean
        results[f"std_test_{suffix}"] = table.std(axis=1)
        # scikit-learn's ranking: ties share the best rank, NaN ranks last.
        finite = np.where(np.isnan(mean), np.nanmin(mean) - 1 if np.isfinite(mean).any() else 0.0, mean)
        results[f"rank_test_{suffix}"] = np.asarray(rankdata(-finite, method="min"), dtype=np.int32)
    return results


def _refit_best(model: Any, table: Any) -> Any:
    cand = getattr(model, "_neve_candidate", None)
    if cand is not None:
        del model._neve_candidate
        refit_from_stats(cand, table)
        if isinstance(model, Pipeline):
            model.columns_in_ = list(table.columns)
        return model
    return clone(model).fit(table)


class GridSearchCV(BaseEstimator):
    """scikit-learn's ``GridSearchCV`` over a table, in the engine.

    ``estimator`` is a neve Pipeline ending in a ``neve.linear_model`` estimator, or the
    estimator alone; ``param_grid`` a dict (or list of dicts) of ``step__param`` lists, which
    may vary the model (``alpha``, ``C``, ``fit_intercept``, the estimator itself) and the
    preprocessing (e.g. an encoder's ``handle_unknown``). ``cv`` is an integer (``KFold(cv)``
    over every column) or a :class:`neve.model_selection.KFold`. ``scoring`` is a scorer
    name or a list of them (then ``refit`` names the one that picks the best).

    Fitted attributes as scikit-learn's: ``cv_results_`` (``params``, ``param_<name>``,
    ``split{k}_test_score``, ``mean_test_score``, ``std_test_score``, ``rank_test_score``,
    fit and score times), ``best_index_``, ``best_params_``, ``best_score_``,
    ``best_estimator_`` (fitted on the whole table), ``scorer_``, ``n_splits_``,
    ``refit_time_``, and ``multimetric_``. How scores are computed, and which candidates
    share one query, is said in :mod:`neve.model_selection`'s notes; ``n_queries_``
    counts the queries of a search served by shared statistics or shared Newton passes
    (``None`` when it ran fold by fold).

    Differences from scikit-learn: ``n_jobs``, ``pre_dispatch`` and ``verbose`` are accepted
    and ignored (the engine parallelises); ``return_train_score=True`` is not supported; the
    fit time of a candidate on a fold computed from statistics is its share of the query
    plus its own solve; ``error_score`` is NaN for a held-out category the training folds
    lack under ``handle_unknown="error"`` (as scikit-learn's default gives) and otherwise
    neve errors are raised.
    """

    def __init__(
        self,
        estimator: Any,
        param_grid: Any,
        *,
        scoring: Any = None,
        n_jobs: int | None = None,
        refit: bool | str = True,
        cv: Any = None,
        verbose: int = 0,
        pre_dispatch: Any = "2*n_jobs",
        error_score: Any = np.nan,
        return_train_score: bool = False,
    ) -> None:
        self.estimator = estimator
        self.param_grid = param_grid
        self.scoring = scoring
        self.n_jobs = n_jobs
        self.refit = refit
        self.cv = cv
        self.verbose = verbose
        self.pre_dispatch = pre_dispatch
        self.error_score = error_score
        self.return_train_score = return_train_score

    def fit(self, X: Any, y: Any = None) -> GridSearchCV:
        """Score every candidate on every fold of ``X`` and refit the best on all of it."""
        owner = type(self).__name__
        if y is not None:
            raise InvalidParameterError(f"{owner}.fit takes the label inside the table (label_cols); call fit(table)")
        if self.return_train_score:
            raise InvalidParameterError(f"{owner}: return_train_score=True is not supported")
        final = _check_estimator(self.estimator, owner)
        scorers = _scorers(self.scoring, final, owner)
        multimetric = not isinstance(self.scoring, str) and self.scoring is not None
        refit_metric = self._refit_metric(scorers, multimetric)
        params = _check_grid(self.estimator, self.param_grid, owner)
        cv = check_cv(self.cv, owner)
        table, _ = as_table(X)
        models = [_candidate(self.estimator, p) for p in params]
        scores, fit_times, score_times, queries = _evaluate(models, table, cv, scorers)
        self.cv_results_ = _results(params, scores, fit_times, score_times, scorers, multimetric)
        self.n_splits_ = cv.get_n_splits()
        self.multimetric_ = multimetric
        self.scorer_ = scorers if multimetric else scorers[0]
        self.n_queries_ = queries
        if refit_metric is not None:
            suffix = refit_metric if multimetric else "score"
            self.best_index_ = int(self.cv_results_[f"rank_test_{suffix}"].argmin())
            self.best_score_ = float(self.cv_results_[f"mean_test_{suffix}"][self.best_index_])
            self.best_params_ = params[self.best_index_]
            t0 = time.perf_counter()
            self.best_estimator_ = _refit_best(models[self.best_index_], table)
            self.refit_time_ = time.perf_counter() - t0
        for model in models:
            model.__dict__.pop("_neve_candidate", None)
        return self

    def _refit_metric(self, scorers: list[str], multimetric: bool) -> str | None:
        if self.refit is False:
            return None
        if not multimetric:
            return scorers[0]
        if isinstance(self.refit, str) and self.refit in scorers:
            return self.refit
        raise InvalidParameterError(
            f"{type(self).__name__}: with several scorers, refit must name the one that picks the best "
            f"(one of {scorers}) or be False, got {self.refit!r}"
        )

    def _best(self) -> Any:
        if not hasattr(self, "best_estimator_"):
            raise NotFittedError(
                f"This {type(self).__name__} has no best_estimator_: call fit(table) first (with refit set)"
            )
        return self.best_estimator_

    def predict(self, X: Any) -> Any:
        return self._best().predict(X)

    def predict_proba(self, X: Any) -> Any:
        return self._best().predict_proba(X)

    def decision_function(self, X: Any) -> Any:
        return self._best().decision_function(X)

    def score(self, X: Any, y: Any = None) -> float:
        return self._best().score(X)


def cross_validate(
    estimator: Any,
    X: Any,
    y: Any = None,
    *,
    cv: Any = None,
    scoring: Any = None,
    return_estimator: bool = False,
    n_jobs: int | None = None,
    verbose: int = 0,
    error_score: Any = np.nan,
) -> dict[str, np.ndarray]:
    """scikit-learn's ``cross_validate`` over a table: ``fit_time``, ``score_time`` and
    ``test_score`` (``test_<scorer>`` for a list of scorers) per fold, computed as
    :class:`GridSearchCV` computes one candidate (from statistics when it can: one query).
    ``return_estimator=True`` adds each fold's fitted estimator (refitted fold by fold)."""
    owner = "cross_validate"
    if y is not None:
        raise InvalidParameterError(f"{owner} takes the label inside the table (label_cols); pass the table alone")
    final = _check_estimator(estimator, owner)
    scorers = _scorers(scoring, final, owner)
    multimetric = not isinstance(scoring, str) and scoring is not None
    folds = check_cv(cv, owner)
    table, _ = as_table(X)
    model = clone(estimator)
    scores, fit_times, score_times, _ = _evaluate([model], table, folds, scorers)
    model.__dict__.pop("_neve_candidate", None)
    out: dict[str, Any] = {"fit_time": fit_times[0], "score_time": score_times[0]}
    for scorer in scorers:
        out[f"test_{scorer}" if multimetric else "test_score"] = np.array([s[scorer] for s in scores[0]])
    if return_estimator:
        out["estimator"] = [clone(estimator).fit(train) for train, _ in folds.split(table)]
    return out

