"""LogisticRegressionCV: every fold and every C fitted together (one query per Newton pass),
against scikit-learn's LogisticRegressionCV(solver="newton-cholesky") on the same folds."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from sklearn import linear_model as skl
from sklearn.model_selection import KFold as SkKFold
from sklearn.model_selection import PredefinedSplit

import neve
from neve.errors import InvalidParameterError, NeveInputError
from neve.linear_model import LogisticRegression, LogisticRegressionCV
from neve.model_selection import KFold
from tests.model_selection.test_kfold import reference_folds
from tests.model_selection.test_search import FEATURES, SEED, _frame, _neve_pipeline, _sk_pipeline

CS = [0.01, 0.1, 1.0, 10.0, 100.0]


def _sk_cv(df: pd.DataFrame, n_splits: int = 5, **kw) -> skl.LogisticRegressionCV:
    return skl.LogisticRegressionCV(cv=PredefinedSplit(reference_folds(df.ID, n_splits, SEED)),
                                    solver="newton-cholesky", tol=1e-10, max_iter=200, **kw)


@pytest.mark.long  # minutes on PostgreSQL and Spark: make test-long (CI runs it)
@pytest.mark.parametrize("scoring", [None, "neg_log_loss"])
def test_pipeline_ending_in_logistic_cv_shares_each_pass_and_matches_scikit_learn(session: neve.Session,
                                                                                 scoring) -> None:
    df = _frame(400, seed=3)
    table = session.create_table("T", df)
    model = LogisticRegressionCV(Cs=CS, cv=KFold(5, random_state=SEED, key="ID"), tol=1e-10, scoring=scoring,
                                 label_cols="C", passthrough_cols=["ID", "Y"])
    pipe = _neve_pipeline(model)
    with neve.capture_queries() as log:
        pipe.fit(table)
    # 25 models: were each fitted on its own, the passes alone would be sum(n_iter_) queries; the
    # folds share every pass, so the queries are bounded by one fold's path (plus the refit).
    assert len(log.scans) == model.n_queries_ <= model.n_iter_[0].max(axis=0).sum() + 10 < model.n_iter_.sum()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn 1.9's FutureWarnings about defaults
        sk = _sk_pipeline(_sk_cv(df, Cs=CS, scoring=scoring)).fit(df[FEATURES], df.C)
    theirs = sk[-1]
    assert_allclose(model.scores_[1], theirs.scores_[1], rtol=1e-6)
    assert_allclose(model.coefs_paths_[1], theirs.coefs_paths_[1], rtol=1e-6, atol=1e-8)
    assert_allclose(model.Cs_, theirs.Cs_)
    assert model.C_.tolist() == theirs.C_.tolist()
    assert_allclose(model.coef_, theirs.coef_, rtol=1e-6, atol=1e-8)
    assert_allclose(model.intercept_, theirs.intercept_, rtol=1e-6, atol=1e-8)
    assert model.n_iter_.shape == (1, 5, len(CS))
    assert model.classes_.tolist() == [0, 1]
    proba = session.execute(pipe.predict_proba(table)).sort_values("ID")
    assert_allclose(proba["PREDICT_PROBA_1"], sk.predict_proba(df[FEATURES])[:, 1], atol=1e-6)
    predicted = session.execute(pipe.predict(table)).sort_values("ID")
    assert predicted["OUTPUT_C"].tolist() == sk.predict(df[FEATURES]).tolist()


def test_each_c_starts_from_the_previous_optimum_on_its_fold() -> None:
    # Warm starts along the path, as scikit-learn's LogisticRegressionCV: the weakest penalties
    # take fewer Newton iterations than the same fit from zero (measured on the taxi pipeline at
    # 1M rows: 7-8 against 15-23 for C=100).
    df = _frame(400, seed=3)
    model = LogisticRegressionCV(Cs=CS, cv=KFold(5, random_state=SEED, key="ID"), tol=1e-10, label_cols="C",
                                 passthrough_cols=["ID", "Y"])
    _neve_pipeline(model).fit(df)
    train = df[reference_folds(df.ID, 5, SEED) != 0]
    cold = [_neve_pipeline(LogisticRegression(C=c, tol=1e-10, label_cols="C", passthrough_cols=["ID", "Y"]))
            .fit(train).steps[-1][1].n_iter_[0] for c in CS[-2:]]
    assert (model.n_iter_[0, 0, -2:] < cold).all()


def test_logistic_cv_alone_without_intercept_and_without_refit() -> None:
    df = _frame(300, seed=4)
    df["S"] = np.where(df.C == 1, "yes", "no")  # string classes
    cv = KFold(3, random_state=SEED, key="ID")
    for refit in (True, False):
        ours = LogisticRegressionCV(Cs=4, cv=cv, tol=1e-10, fit_intercept=False, refit=refit,
                                    input_cols=["V", "W"], label_cols="S").fit(df)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = _sk_cv(df, 3, Cs=4, fit_intercept=False, refit=refit).fit(df[["V", "W"]], df.S)
        assert ours.classes_.tolist() == ["no", "yes"]
        assert_allclose(ours.scores_["yes"], theirs.scores_["yes"], rtol=1e-6)
        assert_allclose(ours.C_, theirs.C_, rtol=1e-12)
        assert_allclose(ours.coef_, theirs.coef_, rtol=1e-6, atol=1e-8)
        assert ours.intercept_.tolist() == [0.0]


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"Cs": []}, "Cs must be a positive integer or a non-empty list"),
    ({"Cs": [0.0, 1.0]}, "Cs must be a positive integer or a non-empty list of values > 0"),
    ({"scoring": "r2"}, "scoring must be None \\(accuracy\\) or one of accuracy, neg_log_loss"),
    ({"penalty": "l1"}, "only penalty='l2'"),
    ({"cv": SkKFold(3)}, "cv must be an integer or a neve.model_selection.KFold"),
    ({"sample_weight_col": "W"}, "sample_weight_col is not supported"),
])
def test_bad_parameters_are_refused_before_any_query(kwargs, match) -> None:
    with neve.capture_queries() as log, pytest.raises(InvalidParameterError, match=match):
        LogisticRegressionCV(input_cols=["V"], label_cols="C", **kwargs).fit(_frame(20))
    assert len(log) == 0


def test_multiclass_label_and_one_class_training_fold_are_named() -> None:
    df = _frame(200)
    df["K"] = df.B  # four classes
    with pytest.raises(InvalidParameterError, match="'K' has 4 classes.*GridSearchCV"):
        LogisticRegressionCV(cv=KFold(3, key="ID"), input_cols=["V"], label_cols="K").fit(df)
    df["C"] = (reference_folds(df.ID, 4, SEED) == 1).astype("int64")
    with pytest.raises(NeveInputError, match=r"fold 1 of 4: the training rows \(every other fold\) hold one class"):
        LogisticRegressionCV(cv=KFold(4, random_state=SEED, key="ID"), input_cols=["V"], label_cols="C").fit(df)
