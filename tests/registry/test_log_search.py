"""log_model of a model chosen by cross-validation: the search's best estimator is the
version (scored in SQL by mv.run), every candidate's scores are kept as JSON beside it, and
the chosen candidate's mean and std per scorer are the version's metrics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from neve import Pipeline
from neve.errors import ArtifactError, NeveInputError, NotFittedError
from neve.linear_model import LinearRegression, Ridge, RidgeCV
from neve.model_selection import GridSearchCV, KFold
from neve.preprocessing import MaxAbsScaler, OneHotEncoder
from neve.registry import _cv_results

ALPHAS = [float(a) for a in np.logspace(-3, 3, 7)]
SCORERS = ["neg_mean_squared_error", "r2"]


def _frame(n: int = 500, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"ID": np.arange(n), "ZONE": rng.choice(list("abcde"), n), "DIST": rng.gamma(2.0, 2.0, n)})
    df["Y"] = 3 * df.DIST + df.ZONE.map({"a": 0, "b": 5, "c": 9, "d": 2, "e": 4}) + rng.normal(0, 1.0, n)
    return df


def _model(cls=LinearRegression, **kw):
    return cls(label_cols=["Y"], passthrough_cols=["ID"], output_cols=["PREDICTION"], **kw)


def _pipeline(model) -> Pipeline:
    return Pipeline([
        ("ohe", OneHotEncoder(input_cols=["ZONE"], output_cols=["ZONE"], handle_unknown="ignore")),
        ("mas", MaxAbsScaler(input_cols=["DIST"], output_cols=["DIST"])),
        ("model", model),
    ])


def _search(scoring=SCORERS, refit="neg_mean_squared_error", **kw) -> GridSearchCV:
    return GridSearchCV(
        _pipeline(_model()),
        [{"model": [_model(Ridge)], "model__alpha": ALPHAS}, {"model": [_model()]}],
        cv=KFold(5, random_state=3, key="ID"), scoring=scoring, refit=refit, **kw,
    )


def _predictions(session, table) -> np.ndarray:
    return session.execute(table).sort_values("ID")["PREDICTION"].to_numpy()


def test_a_logged_search_keeps_every_candidate_and_its_best_estimator_scores_in_sql(reg, session):
    table = session.create_table("TRAIN", _frame())
    search = _search().fit(table)
    mv = reg.log_model(search, model_name="taxi", training_data=table.drop("Y"), metrics={"mse_test": 1.5})

    logged = mv.search_results()
    assert (logged.best_index_, logged.n_splits_, logged.refit) == (search.best_index_, 5, "neg_mean_squared_error")
    assert logged.scorers == SCORERS and logged.search == "GridSearchCV"
    ours, theirs = logged.cv_results_, search.cv_results_
    assert set(ours) == set(theirs)
    for key in theirs:
        if key.startswith(("split", "mean_", "std_", "rank_")):
            assert_allclose(ours[key], theirs[key], rtol=0, err_msg=key)  # exact: JSON floats round-trip
    # Every candidate's params come back as they were: floats, and neve estimators rebuilt.
    for got, want in zip(ours["params"], theirs["params"], strict=True):
        assert got.keys() == want.keys()
        assert type(got["model"]) is type(want["model"]) and got["model"].get_params() == want["model"].get_params()
        assert got.get("model__alpha") == want.get("model__alpha")
    assert ours["param_model__alpha"].mask.tolist() == theirs["param_model__alpha"].mask.tolist()

    best = search.best_index_
    assert mv.metrics == pytest.approx({
        "mse_test": 1.5,
        **{f"cv_{stat}_test_{s}": theirs[f"{stat}_test_{s}"][best] for s in SCORERS for stat in ("mean", "std")},
    }, rel=1e-15)
    params = mv.lineage()["params"]
    chosen = search.best_params_
    assert params["model"] == " ".join(repr(chosen["model"]).split())
    assert params.get("model__alpha") == chosen.get("model__alpha")

    # The version is the best estimator: mv.run scores it in SQL as best_estimator_ predicts.
    new = session.create_table("NEW", _frame(200, seed=1))
    scored = mv.run(new)
    assert scored.path == "sql"
    assert_allclose(_predictions(session, scored), _predictions(session, search.best_estimator_.predict(new)),
                    rtol=1e-12)

    # Stored as plain JSON in the version's package, covered by the manifest.
    assert _cv_results.FILE in mv.manifest["files"]
    raw = reg.stage.read("taxi", mv.version_name, _cv_results.FILE)
    assert json.loads(raw)["format"] == _cv_results.FORMAT


def test_a_single_scorer_search_is_recorded_under_its_scorer_s_name(reg, session):
    table = session.create_table("TRAIN", _frame(300))
    search = _search(scoring="r2", refit=True).fit(table)
    mv = reg.log_model(search, model_name="taxi")
    logged = mv.search_results()
    assert logged.scorers == ["r2"] and logged.best_score_ == search.best_score_
    assert_allclose(logged.cv_results_["mean_test_r2"], search.cv_results_["mean_test_score"], rtol=0)
    assert_allclose(logged.cv_results_["split4_test_r2"], search.cv_results_["split4_test_score"], rtol=0)
    assert set(mv.metrics) == {"cv_mean_test_r2", "cv_std_test_r2"}
    rows = logged.candidates()
    assert [r["chosen"] for r in rows].count(True) == 1 and rows[search.best_index_]["chosen"]


def test_a_ridge_cv_pipeline_records_its_alphas(reg, session):
    table = session.create_table("TRAIN", _frame(300))
    pipe = _pipeline(_model(RidgeCV, alphas=ALPHAS, cv=KFold(5, random_state=3, key="ID"))).fit(table)
    ridge = pipe.named_steps["model"]
    mv = reg.log_model(pipe, model_name="ridge")
    logged = mv.search_results()
    assert [p["model__alpha"] for p in logged.cv_results_["params"]] == ALPHAS
    assert logged.best_params_ == {"model__alpha": ridge.alpha_}
    assert_allclose(logged.cv_results_["mean_test_r2"], ridge.cv_scores_.mean(axis=1), rtol=0)
    assert mv.metrics["cv_mean_test_r2"] == pytest.approx(ridge.best_score_, rel=1e-15)
    assert mv.lineage()["params"] == {"model__alpha": ridge.alpha_}
    assert_allclose(_predictions(session, mv.run(table)), _predictions(session, pipe.predict(table)), rtol=1e-12)


def test_a_version_logged_without_a_search_has_no_search_results(reg, session):
    table = session.create_table("TRAIN", _frame(100))
    mv = reg.log_model(_pipeline(_model()).fit(table), model_name="plain")
    assert mv.search_results() is None and _cv_results.FILE not in mv.manifest["files"]


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda table: _search(), NotFittedError, "GridSearchCV is not fitted"),
        (lambda table: _search(refit=False).fit(table), NeveInputError, "refit=False"),
        (lambda table: _pipeline(_model(RidgeCV, alphas=ALPHAS)), NotFittedError, "not fitted"),
    ],
    ids=["unfitted", "refit-false", "unfitted-ridge-cv"],
)
def test_a_search_with_nothing_to_log_is_refused_and_nothing_is_written(reg, session, make, error, message):
    table = session.create_table("TRAIN", _frame(100))
    model = make(table)
    with pytest.raises(error, match=message):
        reg.log_model(model, model_name="taxi", training_data=table)
    assert reg.show_models().empty and reg.events().empty
    assert not list(reg.stage.folders())


def test_a_modified_record_is_refused(reg, session):
    table = session.create_table("TRAIN", _frame(100))
    mv = reg.log_model(_search(scoring="r2", refit=True).fit(table), model_name="taxi")
    stored = Path(reg.stage.path("taxi", mv.version_name)) / _cv_results.FILE  # the tests' stages are folders
    stored.write_bytes(stored.read_bytes().replace(b'"best_index": ', b'"best_index": 1'))
    with pytest.raises(ArtifactError, match="cv_results.json does not match its manifest"):
        mv.search_results()


@pytest.mark.engines("duckdb", reason="reads a crafted file, no engine involved")
def test_a_record_naming_a_foreign_class_never_imports_it():
    record = {
        "format": _cv_results.FORMAT, "search": "GridSearchCV", "scorers": ["r2"], "refit": "r2",
        "best_index": 0, "n_splits": 2,
        "cv_results": {
            "params": [{"model": {"$estimator": "subprocess.Popen", "params": {"args": ["touch", "x"]},
                                  "repr": "Popen(...)"}},
                       {"model": {"$estimator": "neve.linear_model._linear.Ridge", "params": {"alpha": 2.0},
                                  "repr": "Ridge(alpha=2.0)"}}],
            "mean_test_r2": [0.5, {"$float": "nan"}], "std_test_r2": [0.1, 0.2], "rank_test_r2": [1, 2],
        },
    }
    logged = _cv_results.load(json.dumps(record).encode(), "stage/m/v1")
    foreign, ridge = (p["model"] for p in logged.cv_results_["params"])
    assert foreign == "Popen(...)"
    assert isinstance(ridge, Ridge) and ridge.alpha == 2.0
    assert np.isnan(logged.cv_results_["mean_test_r2"][1])
    with pytest.raises(ArtifactError, match="not a cross-validation record"):
        _cv_results.load(json.dumps({**record, "cv_results": {}}).encode(), "stage/m/v1")


@pytest.mark.engines("duckdb", reason="scikit-learn's search on pandas; the registry part is engine-free")
def test_scikit_learn_s_grid_search_is_logged_the_same_way(reg):
    from sklearn.linear_model import Ridge as SkRidge
    from sklearn.model_selection import GridSearchCV as SkGridSearchCV

    df = _frame(200)
    X = df[["DIST"]]
    search = SkGridSearchCV(SkRidge(), {"alpha": ALPHAS}, cv=4, scoring="neg_mean_squared_error").fit(X, df.Y)
    mv = reg.log_model(search, model_name="sk", sample_input=X.head(5))
    assert mv.metrics["cv_mean_test_neg_mean_squared_error"] == pytest.approx(search.best_score_, rel=1e-15)
    assert mv.search_results().best_params_ == search.best_params_
    assert_allclose(mv.load().predict(X), search.best_estimator_.predict(X), rtol=0)
