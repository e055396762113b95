"""A grid that swaps the model step and varies the swapped-in step's parameters, as the taxi
DAG's search does: ``[{"model": [Ridge()], "model__alpha": [...]}, {"model": [LinearRegression()]}]``.
scikit-learn clones each grid value per candidate; without that, every Ridge candidate shares
one object and ends with the last alpha."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn import linear_model as skl
from sklearn.model_selection import GridSearchCV as SkGridSearchCV

import neve
from neve.linear_model import LinearRegression, Ridge
from neve.model_selection import GridSearchCV, KFold
from tests.model_selection.test_search import (
    FEATURES,
    SEED,
    _assert_same_results,
    _frame,
    _neve_pipeline,
    _sk_pipeline,
    _split,
)


def test_swapping_the_model_step_with_its_own_grid_matches_scikit_learn(session: neve.Session) -> None:
    df = _frame(300, seed=4)
    table = session.create_table("T", df)
    alphas = list(np.logspace(-3, 3, 7))
    ridge = Ridge(label_cols="Y", passthrough_cols=["ID", "C"])
    search = GridSearchCV(
        _neve_pipeline(LinearRegression(label_cols="Y", passthrough_cols=["ID", "C"])),
        [{"model": [ridge], "model__alpha": alphas},
         {"model": [LinearRegression(label_cols="Y", passthrough_cols=["ID", "C"])]}],
        cv=KFold(5, random_state=SEED, key="ID"), scoring="neg_mean_squared_error",
    ).fit(table)
    theirs = SkGridSearchCV(
        _sk_pipeline(skl.LinearRegression()),
        [{"model": [skl.Ridge(solver="cholesky")], "model__alpha": alphas}, {"model": [skl.LinearRegression()]}],
        cv=_split(df), scoring="neg_mean_squared_error",
    ).fit(df[FEATURES], df.Y)
    _assert_same_results(search.cv_results_, theirs.cv_results_, ["score"], 5, rtol=1e-8)
    # Seven different Ridge scores, not one alpha's seven times.
    assert len(set(np.round(search.cv_results_["mean_test_score"][:7], 12))) == 7
    assert search.n_queries_ == 1  # Ridge and LinearRegression candidates share the statistics
    assert ridge.alpha == 1.0  # the grid's own object is left as it was
    best = search.best_estimator_.named_steps["model"]
    assert type(best).__name__ == type(theirs.best_estimator_.named_steps["model"]).__name__
    assert getattr(best, "alpha", None) == pytest.approx(theirs.best_params_.get("model__alpha", None))
    predicted = session.execute(search.predict(table)).sort_values("ID")
    assert_allclose(predicted["OUTPUT_Y"], theirs.predict(df[FEATURES]), rtol=1e-9, atol=1e-9)
