"""GridSearchCV from fold-wise statistics against scikit-learn over random data, grids and fold counts."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from sklearn import linear_model as skl
from sklearn import preprocessing as skp
from sklearn.compose import ColumnTransformer
from sklearn.model_selection import GridSearchCV as SkGridSearchCV
from sklearn.model_selection import PredefinedSplit
from sklearn.pipeline import Pipeline as SkPipeline

import neve
from neve import Pipeline
from neve.errors import EmptyInputError
from neve.linear_model import Ridge
from neve.model_selection import GridSearchCV, KFold
from neve.preprocessing import MaxAbsScaler, OneHotEncoder, StandardScaler
from tests.model_selection.test_kfold import reference_folds

SESSION = None


def _session() -> neve.Session:
    global SESSION
    if SESSION is None:
        SESSION = neve.connect("duckdb://")
    return SESSION


@st.composite
def problems(draw):
    n = draw(st.integers(12, 120))
    n_splits = draw(st.integers(2, 6))
    seed = draw(st.integers(0, 2**31 - 1))
    levels = draw(st.integers(1, 8))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    df = pd.DataFrame({
        "ID": np.arange(n),
        "G": rng.choice([f"g{i}" for i in range(levels)], n, p=np.sort(rng.dirichlet(np.ones(levels)))[::-1]),
        "X": rng.normal(draw(st.sampled_from([0.0, 50.0, -1e4])), draw(st.sampled_from([0.1, 1.0, 30.0])), n),
        "W": rng.exponential(1.0, n).round(draw(st.sampled_from([1, 6]))),
    })
    df["Y"] = rng.normal(size=n) + 0.5 * df.X + (df.G == "g0") * 2.0
    alphas = draw(st.lists(st.sampled_from([0.0, 1e-4, 0.01, 0.5, 3.0, 100.0, 1e5]), min_size=1, max_size=5, unique=True))
    intercepts = draw(st.sampled_from([[True], [False], [True, False]]))
    scoring = draw(st.sampled_from(["r2", "neg_mean_squared_error", "neg_root_mean_squared_error"]))
    return df, n_splits, seed, alphas, intercepts, scoring


@pytest.mark.slow
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_random_searches_match_scikit_learn(problem) -> None:
    df, n_splits, seed, alphas, intercepts, scoring = problem
    session = _session()
    table = session.create_table("T", df, overwrite=True)
    pipe = Pipeline([("ohe", OneHotEncoder(input_cols=["G"], handle_unknown="ignore")),
                     ("std", StandardScaler(input_cols=["X"])), ("mas", MaxAbsScaler(input_cols=["W"])),
                     ("model", Ridge(label_cols="Y", passthrough_cols=["ID"]))])
    grid = {"model__alpha": alphas, "model__fit_intercept": intercepts}
    folds = reference_folds(df.ID, n_splits, seed)
    search = GridSearchCV(pipe, grid, cv=KFold(n_splits, random_state=seed, key="ID"), scoring=scoring)
    if len(np.unique(folds)) < n_splits:
        with pytest.raises(EmptyInputError, match="has no rows"):
            search.fit(table)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ill-conditioned folds warn on both sides
        search.fit(table)
        sk = SkPipeline([("ct", ColumnTransformer([
            ("ohe", skp.OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["G"]),
            ("std", skp.StandardScaler(), ["X"]), ("mas", skp.MaxAbsScaler(), ["W"])])),
            ("model", skl.Ridge(solver="cholesky"))])
        theirs = SkGridSearchCV(sk, grid, cv=PredefinedSplit(folds), scoring=scoring).fit(df[["G", "X", "W"]], df.Y)
    ours_scores = np.array([search.cv_results_[f"split{k}_test_score"] for k in range(n_splits)])
    their_scores = np.array([theirs.cv_results_[f"split{k}_test_score"] for k in range(n_splits)])
    # alpha=0 on a singular design: both take a least-squares solution; compare where the
    # solution is unique (alpha > 0) tightly, and every score loosely.
    unique = np.array([p["model__alpha"] > 0 for p in search.cv_results_["params"]])
    scale = np.nanmax(np.abs(their_scores)) + 1.0
    assert_allclose(ours_scores[:, unique], their_scores[:, unique], rtol=1e-8, atol=1e-8 * scale)
    if unique.all():
        assert search.best_params_ == theirs.best_params_ or np.isclose(
            search.best_score_, theirs.best_score_, rtol=1e-10)
