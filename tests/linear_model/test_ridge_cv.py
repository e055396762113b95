"""RidgeCV: alpha chosen by k-fold cross-validation from one query, as scikit-learn's RidgeCV."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from sklearn import linear_model as skl
from sklearn import preprocessing as skp
from sklearn.compose import make_column_transformer
from sklearn.model_selection import KFold as SkKFold
from sklearn.model_selection import PredefinedSplit
from sklearn.pipeline import make_pipeline

import neve
from neve import Pipeline
from neve.errors import InvalidParameterError
from neve.linear_model import RidgeCV
from neve.model_selection import KFold
from neve.preprocessing import OneHotEncoder, StandardScaler
from tests.model_selection.test_kfold import reference_folds

ALPHAS = np.logspace(-3, 3, 13)


def _frame(n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    df = pd.DataFrame({"ID": np.arange(n), "A": rng.choice(list("abcde"), n), "X": rng.normal(3, 2, n),
                       "W": rng.exponential(1, n)})
    df["Y"] = df.A.map(dict(zip("abcde", range(5), strict=True))) + 2 * df.X - df.W + rng.normal(0, 3, n)
    return df


@pytest.mark.parametrize("scoring", [None, "neg_mean_squared_error"])
def test_pipeline_ending_in_ridge_cv_is_one_query_and_matches_scikit_learn(session: neve.Session, scoring) -> None:
    df = _frame()
    table = session.create_table("T", df)
    pipe = Pipeline([("ohe", OneHotEncoder(input_cols=["A"])), ("sc", StandardScaler(input_cols=["X", "W"])),
                     ("model", RidgeCV(alphas=ALPHAS, scoring=scoring, cv=KFold(4, random_state=2, key="ID"),
                                       label_cols="Y", passthrough_cols=["ID"]))])
    with neve.capture_queries() as log:
        pipe.fit(table)
    assert len(log.scans) == 1
    folds = reference_folds(df.ID, 4, 2)
    sk = make_pipeline(
        make_column_transformer((skp.OneHotEncoder(sparse_output=False), ["A"]), (skp.StandardScaler(), ["X", "W"])),
        skl.RidgeCV(alphas=ALPHAS, scoring=scoring, cv=PredefinedSplit(folds)),
    ).fit(df[["A", "X", "W"]], df.Y)
    ours, theirs = pipe.named_steps["model"], sk[-1]
    assert ours.alpha_ == theirs.alpha_
    assert ours.best_score_ == pytest.approx(theirs.best_score_, rel=1e-8)
    assert_allclose(ours.coef_, theirs.coef_, rtol=1e-9, atol=1e-12)
    predicted = session.execute(pipe.predict(table)).sort_values("ID")
    assert_allclose(predicted["OUTPUT_Y"], sk.predict(df[["A", "X", "W"]]), rtol=1e-9)


def test_ridge_cv_alone_on_numeric_columns() -> None:
    df = _frame(300)
    model = RidgeCV(alphas=[0.01, 1.0, 1e4], cv=KFold(3, random_state=0, key="ID"), input_cols=["X", "W"],
                    label_cols="Y").fit(df)
    sk = skl.RidgeCV(alphas=[0.01, 1.0, 1e4], cv=PredefinedSplit(reference_folds(df.ID, 3, 0))).fit(df[["X", "W"]], df.Y)
    assert model.alpha_ == sk.alpha_ and model.best_score_ == pytest.approx(sk.best_score_, rel=1e-8)
    assert_allclose(model.coef_, sk.coef_, rtol=1e-10)
    assert model.cv_scores_.shape == (3, 3)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"alphas": []}, "alphas must be a non-empty list"),
    ({"alphas": [-1.0]}, "alphas must be a non-empty list of values >= 0"),
    ({"scoring": "accuracy"}, "scoring must be None"),
    ({"store_cv_results": True}, "leave-one-out"),
    ({"cv": SkKFold(3)}, "cv must be an integer or a neve.model_selection.KFold"),
])
def test_bad_parameters_are_refused_before_any_query(kwargs, match) -> None:
    with neve.capture_queries() as log, pytest.raises(InvalidParameterError, match=match):
        RidgeCV(input_cols=["X"], label_cols="Y", **kwargs).fit(_frame(20))
    assert len(log) == 0
