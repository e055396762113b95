"""GridSearchCV and cross_validate in the engine against scikit-learn's on the same folds.

The oracle is scikit-learn's own GridSearchCV / cross_validate with a PredefinedSplit built
from neve's fold column, exact dense solvers (LinearRegression, Ridge(solver="cholesky"),
LogisticRegression(solver="newton-cholesky")), and a ColumnTransformer refitted per fold.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from sklearn import linear_model as skl
from sklearn import preprocessing as skp
from sklearn.compose import ColumnTransformer
from sklearn.model_selection import GridSearchCV as SkGridSearchCV
from sklearn.model_selection import PredefinedSplit
from sklearn.model_selection import cross_validate as sk_cross_validate
from sklearn.pipeline import Pipeline as SkPipeline

import neve
from neve import Pipeline
from neve.errors import EmptyInputError, InvalidParameterError, NeveInputError
from neve.linear_model import LinearRegression, LogisticRegression, Ridge
from neve.model_selection import GridSearchCV, KFold, cross_validate
from neve.preprocessing import MaxAbsScaler, MinMaxScaler, OneHotEncoder, StandardScaler
from tests.model_selection.test_kfold import reference_folds

FEATURES = ["A", "B", "X", "V", "W"]
SEED = 11


def _frame(n: int = 400, seed: int = 0, n_splits: int = 5) -> pd.DataFrame:
    """Two categorical columns (one with rare values), three numeric; category "zz" lives in
    fold 2 alone, so the encoder fitted without fold 2 never saw it."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "ID": np.arange(n),
        "A": rng.choice(list("abcdef"), n, p=[0.35, 0.3, 0.2, 0.1, 0.04, 0.01]),
        "B": rng.integers(0, 4, n),
        "X": rng.normal(1e3, 2.0, n),  # a large mean next to its spread: the pilot shift at work
        "V": rng.uniform(-5, 5, n),
        "W": rng.exponential(1.0, n),
    })
    fold = reference_folds(df.ID, n_splits, SEED)
    df.loc[np.flatnonzero(fold == 2)[:3], "A"] = "zz"
    effect = df.A.map({"a": 0.0, "b": 1.0, "c": -1.0, "d": 2.0, "e": 0.5, "f": 3.0, "zz": 4.0})
    df["Y"] = effect + 0.4 * df.B + 0.8 * (df.X - 1e3) + 0.3 * df.V - df.W + rng.normal(0, 1.0, n)
    df["C"] = (df.Y > df.Y.median()).astype("int64")
    return df


def _neve_pipeline(model) -> Pipeline:
    return Pipeline([
        ("ohe", OneHotEncoder(input_cols=["A", "B"], handle_unknown="ignore")),
        ("std", StandardScaler(input_cols=["X"])),
        ("mm", MinMaxScaler(input_cols=["V"])),
        ("mas", MaxAbsScaler(input_cols=["W"])),
        ("model", model),
    ])


def _sk_pipeline(model, handle_unknown: str = "ignore") -> SkPipeline:
    return SkPipeline([
        ("ohe", ColumnTransformer([
            ("ohe", skp.OneHotEncoder(handle_unknown=handle_unknown, sparse_output=False), ["A", "B"]),
            ("std", skp.StandardScaler(), ["X"]),
            ("mm", skp.MinMaxScaler(), ["V"]),
            ("mas", skp.MaxAbsScaler(), ["W"]),
        ])),
        ("model", model),
    ])


def _ridge(**kw) -> Ridge:
    return Ridge(label_cols="Y", passthrough_cols=["ID", "C"], **kw)


def _split(df: pd.DataFrame, n_splits: int = 5) -> PredefinedSplit:
    return PredefinedSplit(reference_folds(df.ID, n_splits, SEED))


def _assert_same_results(ours: dict, theirs: dict, names: list[str], n_splits: int, rtol: float) -> None:
    for name in names:
        for k in range(n_splits):
            assert_allclose(ours[f"split{k}_test_{name}"], theirs[f"split{k}_test_{name}"], rtol=rtol, atol=1e-300)
        assert_allclose(ours[f"mean_test_{name}"], theirs[f"mean_test_{name}"], rtol=rtol)
        assert_allclose(ours[f"std_test_{name}"], theirs[f"std_test_{name}"], rtol=1e-6, atol=1e-12)
        assert ours[f"rank_test_{name}"].tolist() == theirs[f"rank_test_{name}"].tolist()


def test_ridge_search_is_one_query_and_matches_scikit_learn_split_by_split(session: neve.Session) -> None:
    df = _frame()
    table = session.create_table("T", df)
    alphas = [1e-3, 0.1, 1.0, 10.0, 300.0]
    search = GridSearchCV(
        _neve_pipeline(_ridge()),
        [{"model__alpha": alphas, "model__fit_intercept": [True, False]},
         {"model": [LinearRegression(label_cols="Y", passthrough_cols=["ID", "C"])]}],
        cv=KFold(5, random_state=SEED, key="ID"),
        scoring=["r2", "neg_mean_squared_error", "neg_root_mean_squared_error"], refit="r2",
    )
    with neve.capture_queries() as log:
        search.fit(table)
    assert len(log.scans) == 1 and search.n_queries_ == 1
    theirs = SkGridSearchCV(
        _sk_pipeline(skl.Ridge(solver="cholesky")),
        [{"model__alpha": alphas, "model__fit_intercept": [True, False]}, {"model": [skl.LinearRegression()]}],
        cv=_split(df), scoring=["r2", "neg_mean_squared_error", "neg_root_mean_squared_error"], refit="r2",
    ).fit(df[FEATURES], df.Y)
    assert [p.get("model__alpha") for p in search.cv_results_["params"]] == [
        p.get("model__alpha") for p in theirs.cv_results_["params"]]
    _assert_same_results(search.cv_results_, theirs.cv_results_,
                         ["r2", "neg_mean_squared_error", "neg_root_mean_squared_error"], 5, rtol=1e-8)
    assert search.best_index_ == theirs.best_index_
    assert search.best_params_ == theirs.best_params_
    assert search.best_score_ == pytest.approx(theirs.best_score_, rel=1e-8)
    # The refit is from the totals: no query until the prediction itself.
    predicted = session.execute(search.predict(table)).sort_values("ID")
    assert_allclose(predicted["OUTPUT_Y"], theirs.predict(df[FEATURES]), rtol=1e-9, atol=1e-9)
    assert search.best_estimator_.named_steps["ohe"].categories_["A"] == ["a", "b", "c", "d", "e", "f", "zz"]


def test_preprocessing_parameters_in_the_grid_refit_per_fold(session: neve.Session) -> None:
    df = _frame(300, seed=1)
    table = session.create_table("T", df)
    search = GridSearchCV(_neve_pipeline(_ridge()), {"ohe__drop": [None, "first"], "model__alpha": [0.5, 50.0]},
                          cv=KFold(5, random_state=SEED, key="ID"), scoring="neg_mean_squared_error").fit(table)
    theirs = SkGridSearchCV(_sk_pipeline(skl.Ridge(solver="cholesky")),
                            {"ohe__ohe__drop": [None, "first"], "model__alpha": [0.5, 50.0]},
                            cv=_split(df), scoring="neg_mean_squared_error").fit(df[FEATURES], df.Y)
    _assert_same_results(search.cv_results_, theirs.cv_results_, ["score"], 5, rtol=1e-8)
    assert search.n_queries_ == 1


def test_unknown_held_out_category_with_handle_unknown_error_scores_nan_as_scikit_learn() -> None:
    df = _frame()
    table = neve.connect("duckdb://").create_table("T", df)
    pipe = _neve_pipeline(_ridge()).set_params(ohe__handle_unknown="error")
    with pytest.warns(UserWarning, match="A='zz'"):
        ours = GridSearchCV(pipe, {"model__alpha": [1.0]}, cv=KFold(5, random_state=SEED, key="ID"),
                            scoring="r2").fit(table)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = SkGridSearchCV(_sk_pipeline(skl.Ridge(solver="cholesky"), handle_unknown="error"),
                                {"model__alpha": [1.0]}, cv=_split(df), scoring="r2").fit(df[FEATURES], df.Y)
    assert np.isnan(ours.cv_results_["split2_test_score"][0]) and np.isnan(theirs.cv_results_["split2_test_score"][0])
    for k in (0, 1, 3, 4):
        assert ours.cv_results_[f"split{k}_test_score"][0] == pytest.approx(
            theirs.cv_results_[f"split{k}_test_score"][0], rel=1e-8)


def test_cross_validate_from_statistics_and_row_scorers_match_scikit_learn(session: neve.Session) -> None:
    df = _frame(300, seed=2)
    table = session.create_table("T", df)
    cv = KFold(5, random_state=SEED, key="ID")
    with neve.capture_queries() as log:
        ours = cross_validate(_neve_pipeline(_ridge(alpha=2.0)), table, cv=cv, scoring="r2")
    assert len(log.scans) == 1
    theirs = sk_cross_validate(_sk_pipeline(skl.Ridge(alpha=2.0, solver="cholesky")), df[FEATURES], df.Y,
                               cv=_split(df), scoring="r2")
    assert_allclose(ours["test_score"], theirs["test_score"], rtol=1e-8)
    # A scorer that needs the rows: each fold fitted and scored in the engine.
    ours = cross_validate(_neve_pipeline(_ridge(alpha=2.0)), table, cv=cv,
                          scoring=["neg_mean_absolute_error", "neg_root_mean_squared_error"])
    theirs = sk_cross_validate(_sk_pipeline(skl.Ridge(alpha=2.0, solver="cholesky")), df[FEATURES], df.Y,
                               cv=_split(df), scoring=["neg_mean_absolute_error", "neg_root_mean_squared_error"])
    for name in ("neg_mean_absolute_error", "neg_root_mean_squared_error"):
        assert_allclose(ours[f"test_{name}"], theirs[f"test_{name}"], rtol=1e-8)
    assert set(ours) == {"fit_time", "score_time", "test_neg_mean_absolute_error", "test_neg_root_mean_squared_error"}


@pytest.mark.long  # minutes on PostgreSQL and Spark: make test-long (CI runs it)
def test_logistic_search_fold_by_fold_matches_scikit_learn(session: neve.Session) -> None:
    df = _frame(300, seed=3)
    table = session.create_table("T", df)
    pipe = _neve_pipeline(LogisticRegression(tol=1e-10, label_cols="C", passthrough_cols=["ID", "Y"]))
    scoring = ["neg_log_loss", "accuracy", "roc_auc"]
    ours = GridSearchCV(pipe, {"model__C": [0.1, 10.0]}, cv=KFold(3, random_state=SEED, key="ID"),
                        scoring=scoring, refit="neg_log_loss").fit(table)
    theirs = SkGridSearchCV(
        _sk_pipeline(skl.LogisticRegression(solver="newton-cholesky", tol=1e-10, max_iter=200)),
        {"model__C": [0.1, 10.0]}, cv=PredefinedSplit(reference_folds(df.ID, 3, SEED)), scoring=scoring,
        refit="neg_log_loss",
    ).fit(df[FEATURES], df.C)
    _assert_same_results(ours.cv_results_, theirs.cv_results_, scoring, 3, rtol=1e-6)
    assert ours.best_params_ == theirs.best_params_
    proba = session.execute(ours.predict_proba(table)).sort_values("ID")
    assert_allclose(proba["PREDICT_PROBA_1"], theirs.predict_proba(df[FEATURES])[:, 1], atol=1e-6)


@pytest.mark.long  # minutes on PostgreSQL and Spark: make test-long (CI runs it)
def test_logistic_search_shares_each_newton_pass_and_matches_scikit_learn(session: neve.Session) -> None:
    df = _frame(400, seed=5)
    table = session.create_table("T", df)
    pipe = _neve_pipeline(LogisticRegression(tol=1e-10, label_cols="C", passthrough_cols=["ID", "Y"]))
    grid = {"model__C": [0.01, 1.0, 100.0], "ohe__drop": [None, "first"]}
    scoring = ["neg_log_loss", "accuracy"]
    search = GridSearchCV(pipe, grid, cv=KFold(5, random_state=SEED, key="ID"), scoring=scoring,
                          refit="neg_log_loss")
    with neve.capture_queries() as log:
        search.fit(table)
    refit = search.best_estimator_.named_steps["model"].n_iter_[0] + 1
    # 30 models (6 candidates x 5 folds) share every pass: the search's queries are the
    # slowest model's passes, not their sum.
    assert len(log.scans) == search.n_queries_ + refit and search.n_queries_ <= 15
    theirs = SkGridSearchCV(
        _sk_pipeline(skl.LogisticRegression(solver="newton-cholesky", tol=1e-10, max_iter=200)),
        {"model__C": [0.01, 1.0, 100.0], "ohe__ohe__drop": [None, "first"]}, cv=_split(df), scoring=scoring,
        refit="neg_log_loss",
    ).fit(df[FEATURES], df.C)
    _assert_same_results(search.cv_results_, theirs.cv_results_, scoring, 5, rtol=1e-6)
    assert search.best_index_ == theirs.best_index_
    assert search.best_params_["model__C"] == theirs.best_params_["model__C"]
    proba = session.execute(search.predict_proba(table)).sort_values("ID")
    assert_allclose(proba["PREDICT_PROBA_1"], theirs.predict_proba(df[FEATURES])[:, 1], atol=1e-6)


@pytest.mark.long  # minutes on PostgreSQL and Spark: make test-long (CI runs it)
def test_three_encoded_columns_group_by_fold_and_pairs_and_match_scikit_learn(session: neve.Session) -> None:
    """With three encoded columns the fold query groups by each pair of them and the fold
    (GROUPING SETS), a missing category included; ridge and logistic searches still match."""
    df = _frame(500, seed=7)
    df["H"] = np.random.default_rng(1).choice(np.array(["x", "y", "z", None], dtype=object), len(df))
    df["Y"] = df.Y + df.H.map({"x": 1.0, "y": -1.0, "z": 0.5}).fillna(2.0).astype(float)
    table = session.create_table("T", df)
    cols = ["A", "B", "H"]

    def ours(model) -> Pipeline:
        return Pipeline([("ohe", OneHotEncoder(input_cols=cols, handle_unknown="ignore")),
                         ("sc", StandardScaler(input_cols=["X", "V"])), ("model", model)])

    def theirs(model) -> SkPipeline:
        return SkPipeline([("ct", ColumnTransformer([
            ("ohe", skp.OneHotEncoder(handle_unknown="ignore", sparse_output=False), cols),
            ("sc", skp.StandardScaler(), ["X", "V"])])), ("model", model)])

    X = df[[*cols, "X", "V"]]
    cv = KFold(5, random_state=SEED, key="ID")
    with neve.capture_queries() as log:
        ridge = GridSearchCV(ours(Ridge(label_cols="Y", passthrough_cols=["ID", "C", "W"])),
                             {"model__alpha": [0.1, 10.0]}, cv=cv).fit(table)
    assert len(log.scans) == 1 and "GROUPING SETS" in log.scans[0].upper()
    sk = SkGridSearchCV(theirs(skl.Ridge(solver="cholesky")), {"model__alpha": [0.1, 10.0]}, cv=_split(df)).fit(X, df.Y)
    _assert_same_results(ridge.cv_results_, sk.cv_results_, ["score"], 5, rtol=1e-8)
    logistic = GridSearchCV(ours(LogisticRegression(tol=1e-10, label_cols="C", passthrough_cols=["ID", "Y", "W"])),
                            {"model__C": [0.1, 10.0]}, cv=cv, scoring="neg_log_loss").fit(table)
    sk = SkGridSearchCV(theirs(skl.LogisticRegression(solver="newton-cholesky", tol=1e-10, max_iter=200)),
                        {"model__C": [0.1, 10.0]}, cv=_split(df), scoring="neg_log_loss").fit(X, df.C)
    _assert_same_results(logistic.cv_results_, sk.cv_results_, ["score"], 5, rtol=1e-6)


def test_bad_search_input_is_refused_before_any_query() -> None:
    table = neve.connect("duckdb://").create_table("T", _frame(50))
    pipe = _neve_pipeline(_ridge())
    cases = [
        (GridSearchCV(pipe, {"model__alpah": [1.0]}), "no parameter 'model__alpah' \\(did you mean 'model__alpha'\\?\\)"),
        (GridSearchCV(pipe, {"model__alpha": []}), "must be a non-empty list"),
        (GridSearchCV(pipe, {"model__alpha": [1.0]}, scoring="roc_auc"), "'roc_auc' does not fit Ridge, a regressor"),
        (GridSearchCV(pipe, {"model__alpha": [1.0]}, scoring="neg_mean_squared_eror"),
         "unknown scorer 'neg_mean_squared_eror' \\(did you mean 'neg_mean_squared_error'\\?\\)"),
        (GridSearchCV(pipe, {"model__alpha": [1.0]}, scoring=["r2", "neg_mean_squared_error"]),
         "refit must name the one that picks the best"),
        (GridSearchCV(pipe, {"model__alpha": [1.0]}, cv="five"), "cv must be an integer or a neve.model_selection.KFold"),
        (GridSearchCV(pipe, {"model__alpha": [1.0]}, cv=1), "n_splits must be an integer of at least 2"),
    ]
    for search, match in cases:
        with neve.capture_queries() as log, pytest.raises(InvalidParameterError, match=match):
            search.fit(table)
        assert len(log) == 0, match


def test_more_folds_than_rows_names_the_empty_fold() -> None:
    table = neve.connect("duckdb://").create_table("T", _frame(6))
    with pytest.raises(EmptyInputError, match=r"fold \d+ of 10 has no rows"):
        GridSearchCV(_neve_pipeline(_ridge()), {"model__alpha": [1.0]}, cv=KFold(10, key="ID")).fit(table)


def test_a_training_fold_with_one_class_is_named() -> None:
    df = _frame(200)
    fold = reference_folds(df.ID, 4, SEED)
    df["C"] = (fold == 0).astype("int64")  # fold 0 holds every positive: its training folds have one class
    table = neve.connect("duckdb://").create_table("T", df)
    pipe = _neve_pipeline(LogisticRegression(label_cols="C", passthrough_cols=["ID", "Y"]))
    with pytest.raises(NeveInputError, match=r"fold 0 of 4\b.*(has|hold) one class"):
        GridSearchCV(pipe, {"model__C": [1.0]}, cv=KFold(4, random_state=SEED, key="ID"), scoring="accuracy").fit(table)
