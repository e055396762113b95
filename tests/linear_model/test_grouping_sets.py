"""Statistics grouped by column pairs (GROUPING SETS) when the full grouping is as large as
the table: the same fits as scikit-learn's exact solvers, on every engine."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from sklearn import linear_model as skl
from sklearn import preprocessing as skp
from sklearn.compose import make_column_transformer
from sklearn.pipeline import make_pipeline

import neve
from neve import Pipeline
from neve.linear_model import LinearRegression, LogisticRegression, Ridge, _stats
from neve.preprocessing import MaxAbsScaler, OneHotEncoder

CATS = ["A", "B", "C", "D"]


def _frame(n: int = 600, seed: int = 0) -> pd.DataFrame:
    """Four categorical columns whose combinations are nearly all distinct, a NULL category,
    a numeric column with a large mean, labels and weights."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "A": rng.choice(["a1", "a2", "a3", "a4", "a5"], n),
        "B": rng.choice(["b1", "b2", "b3", "b4"], n).astype(object),
        "C": rng.integers(0, 12, n),
        "D": rng.choice(["d1", "d2", "d3"], n),
        "X": 1e6 + rng.normal(size=n),
    })
    df.loc[df.index % 17 == 0, "B"] = None
    effect = df.A.str[1].astype(int) * 0.7 - df.C * 0.2 + (df.D == "d2") * 1.5 + (df.X - 1e6)
    df["Y"] = effect + rng.normal(scale=0.5, size=n)
    df["LONG"] = (df.Y > df.Y.median()).astype("int64")
    df["W"] = 1.0 + (df.index % 3)
    return df


def _neve(model):
    return Pipeline([("ohe", OneHotEncoder(input_cols=CATS, handle_unknown="ignore")),
                     ("scale", MaxAbsScaler(input_cols=["X"])), ("model", model)])


def _sklearn(model):
    return make_pipeline(make_column_transformer(
        (skp.OneHotEncoder(handle_unknown="ignore", sparse_output=False), CATS), (skp.MaxAbsScaler(), ["X"])), model)


def _sk_frame(df: pd.DataFrame) -> pd.DataFrame:
    return df[[*CATS, "X"]].assign(B=df.B.fillna("~missing"))  # scikit-learn sorts None last too


@pytest.fixture
def pairs_always(monkeypatch):
    monkeypatch.setattr(_stats, "BLOCKS_ABOVE", 0.0)


@pytest.mark.filterwarnings("ignore::neve.linear_model.ConditioningWarning")  # X is 1e6 + noise, on purpose
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize(
    "ours, theirs",
    [
        (lambda w: LinearRegression(label_cols="Y", sample_weight_col=w), skl.LinearRegression()),
        (lambda w: Ridge(alpha=3.0, label_cols="Y", sample_weight_col=w), skl.Ridge(alpha=3.0, solver="cholesky")),
    ],
)
def test_least_squares_from_pair_sets_match_scikit_learn(session, pairs_always, ours, theirs, weighted):
    df = _frame()
    table = session.create_table("GS_LS", df.drop(columns=["LONG"] + ([] if weighted else ["W"])), overwrite=True)
    pipe = _neve(ours("W" if weighted else None))
    with neve.capture_queries() as log:
        pipe.fit(table)
    assert len(log.scans) == 1 and "GROUPING SETS" in log.scans[0].upper()
    sk = _sklearn(theirs).fit(_sk_frame(df), df.Y, **({f"{type(theirs).__name__.lower()}__sample_weight": df.W}
                                                      if weighted else {}))
    model = pipe.named_steps["model"]
    predicted = pipe.predict(table).to_pandas().sort_values(["A", "C", "X"]).reset_index(drop=True)
    expected = sk.predict(_sk_frame(df.sort_values(["A", "C", "X"]).reset_index(drop=True)))
    assert_allclose(predicted["OUTPUT_Y"], expected, rtol=1e-8, atol=1e-8)
    if isinstance(theirs, skl.Ridge):  # full rank: the coefficients themselves
        assert_allclose(model.coef_, sk[-1].coef_, rtol=1e-7, atol=1e-9)


def test_pair_sets_give_the_full_grouping_s_statistics(session, pairs_always, monkeypatch):
    table = session.create_table("GS_SAME", _frame().drop(columns=["LONG", "W"]), overwrite=True)
    pairs = _neve(Ridge(alpha=0.5, label_cols="Y")).fit(table)
    monkeypatch.setattr(_stats, "BLOCKS_ABOVE", 1e9)
    with neve.capture_queries() as log:
        full = _neve(Ridge(alpha=0.5, label_cols="Y")).fit(table)
    assert "GROUPING" not in log.scans[0]
    assert pairs.named_steps["ohe"].categories_ == full.named_steps["ohe"].categories_
    assert_allclose(pairs.named_steps["model"].coef_, full.named_steps["model"].coef_, rtol=1e-10, atol=1e-12)


def test_logistic_runs_every_pass_on_blocks_when_the_survey_sees_one_group_per_row(session):
    """No forcing: the survey before the first query sees about one combination per row, so
    every Newton pass groups by pairs (GROUPING SETS), reaching scikit-learn's optimum."""
    df = _frame(n=500, seed=3)
    table = session.create_table("GS_LOG", df.drop(columns=["Y", "W"]), overwrite=True)
    pipe = _neve(LogisticRegression(C=0.7, tol=1e-8, label_cols="LONG"))
    with neve.capture_queries() as log:
        pipe.fit(table)
    steps = [q for q in log.scans if "GROUP BY" in q.upper()]
    assert len(steps) >= 3 and all("GROUPING SETS" in q.upper() for q in steps)
    assert log.kinds.count("survey") == 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sk = _sklearn(skl.LogisticRegression(C=0.7, solver="newton-cholesky", tol=1e-12, max_iter=200))
        sk.fit(_sk_frame(df), df.LONG)
    assert_allclose(pipe.named_steps["model"].coef_, sk[-1].coef_, rtol=1e-6, atol=1e-8)
    assert_allclose(pipe.named_steps["model"].intercept_, sk[-1].intercept_, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize(
    "distinct, sampled, rows, expected",
    [
        (100, 100, 100, 100),  # the whole table was surveyed
        (20_000, 20_000, 10**6, 10**6),  # every surveyed row distinct: as many groups as rows
        (14_879, 20_000, 10**6, 31_000),  # taxi-like: few combinations, seen again and again
        (19_880, 20_000, 10**6, 740_000),  # three independent columns of 260, 260 and 24 values
    ],
)
def test_expected_groups_from_the_survey(distinct, sampled, rows, expected):
    assert _stats._expected_groups(distinct, sampled, rows) == pytest.approx(expected, rel=0.08)


def test_narrow_grouping_stays_one_group_by(session):
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"A": rng.choice(["x", "y"], 2000), "B": rng.choice(["u", "v"], 2000),
                       "C": rng.integers(0, 3, 2000), "D": rng.choice(["p", "q"], 2000), "X": rng.normal(size=2000)})
    df["LONG"] = (df.X + (df.A == "x") > 0.5).astype("int64")
    table = session.create_table("GS_NARROW", df, overwrite=True)
    with neve.capture_queries() as log:
        _neve(LogisticRegression(label_cols="LONG")).fit(table)
    assert not any("GROUPING" in q for q in log.queries)


def test_a_categorical_column_of_an_identifier_s_width_is_refused_before_the_statistics_query(session):
    """Millions of values would be millions of groups in the client: the survey's first rows
    already show more categories than a dense solve takes, and the fit stops there, naming
    the column."""
    n = _stats.MAX_FEATURES + 500
    df = pd.DataFrame({"ID": [f"id{i}" for i in range(n)], "A": ["a", "b"] * (n // 2),
                       "X": np.arange(n, dtype=float), "Y": np.arange(n, dtype=float) % 7})
    table = session.create_table("GS_ID", df, overwrite=True)
    pipe = Pipeline([("ohe", OneHotEncoder(input_cols=["ID", "A"])), ("model", LinearRegression(label_cols="Y"))])
    with neve.capture_queries() as log, pytest.raises(neve.errors.NeveInputError, match=r"'ID'.*limit 5,000"):
        pipe.fit(table)
    assert log.scans == [] and log.kinds == ["survey"]


def test_fold_wise_blocks_group_their_total_branch_by_fold(session):
    """Three categorical columns and a fold: the blocks shape's plain branch is grouped by the
    fold alone, with its keys NULL before it in the SELECT list (grouped by position, it was
    grouped by a NULL key and the engine refused the fold column)."""
    from neve.model_selection import GridSearchCV, KFold

    df = _frame(n=400, seed=5).drop(columns=["LONG", "W"]).assign(ID=np.arange(400))
    table = session.create_table("GS_FOLDS", df, overwrite=True)
    pipe = Pipeline([("ohe", OneHotEncoder(input_cols=CATS, handle_unknown="ignore")),
                     ("model", Ridge(label_cols="Y", passthrough_cols=["ID"]))])
    with neve.capture_queries() as log:
        search = GridSearchCV(pipe, {"model__alpha": [0.1, 1.0]}, cv=KFold(3, random_state=1, key="ID")).fit(table)
    assert any("UNION ALL" in q.upper() for q in log.scans)
    assert search.best_params_["model__alpha"] in (0.1, 1.0)
