"""ModelVersion.run: the logged pipeline and model scored in the engine."""

from __future__ import annotations

import json
from pathlib import Path

import ibis
import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.neighbors import KNeighborsRegressor

from neve import Pipeline
from neve.errors import ArtifactError
from neve.preprocessing import MaxAbsScaler, OneHotEncoder
from neve.registry import _scoring_state
from neve.scoring import score


def _data(n=400, seed=0):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"ZONE": rng.choice(["a", "b", "c"], n), "DIST": rng.gamma(2.0, 2.0, n)})
    df["Y"] = 3 * df.DIST + df.ZONE.map({"a": 0, "b": 5, "c": 9}) + rng.normal(0, 0.1, n)
    return df


def _fit(session, model_cls=LinearRegression, **kw):
    df = _data()
    session.create_table("TRAIN", df)
    pipe = Pipeline(
        [
            ("ohe", OneHotEncoder(input_cols=["ZONE"], output_cols=["ZONE"], handle_unknown="ignore")),
            ("mas", MaxAbsScaler(input_cols=["DIST"], output_cols=["DIST_S"], drop_input_cols=True)),
        ]
    ).fit(session.table("TRAIN"))
    features = pipe.transform(df)
    X = features.drop(columns=["Y"])
    return pipe, model_cls(**kw).fit(X, df.Y if model_cls is not LogisticRegression else df.Y > 12), X


def test_run_scores_in_sql_and_matches_scikit_learn(reg, session):
    pipe, model, X = _fit(session)
    mv = reg.log_model(model, model_name="m", feature_pipeline=pipe, sample_input=X.head(5))
    new = _data(seed=1)
    session.create_table("NEW", new)
    preds = mv.run(session.table("NEW"))
    assert preds.path == "sql"
    out = preds.to_pandas()
    assert list(out.columns) == ["ZONE", "DIST", "Y", "PREDICTION"]
    expected = model.predict(pipe.transform(new).drop(columns=["Y"]))
    assert_allclose(out["PREDICTION"], expected, rtol=1e-9)


def test_run_predict_proba_columns(reg, session):
    pipe, model, X = _fit(session, LogisticRegression)
    mv = reg.log_model(model, model_name="clf", feature_pipeline=pipe, sample_input=X.head(5))
    out = mv.run(session.table("TRAIN"), function_name="predict_proba").to_pandas()
    probs = out.filter(like="PROBABILITY_")
    # One column per class, in the model's classes_ order, each equal to the model's own
    # probability: a swap of the two columns sums to 1 just as well, so compare values.
    assert list(probs.columns) == [f"PROBABILITY_{c}" for c in model.classes_]
    scored_rows = out[["ZONE", "DIST", "Y"]]  # whatever order the engine returned them in
    expected = model.predict_proba(pipe.transform(scored_rows).drop(columns=["Y"]))
    assert_allclose(probs.to_numpy(), expected, rtol=1e-9)


def test_run_falls_back_for_models_it_cannot_compile(reg, session):
    pipe, model, X = _fit(session, KNeighborsRegressor, n_neighbors=3)
    mv = reg.log_model(model, model_name="knn", feature_pipeline=pipe, sample_input=X.head(5))
    # Its KD-tree is outside the types neve trusts by itself: an explicit, reviewed opt-in.
    kd_tree = ["sklearn.neighbors._kd_tree.KDTree", "sklearn.metrics._dist_metrics.EuclideanDistance64"]
    preds = mv.run(session.table("TRAIN"), trusted=kd_tree)
    assert preds.path == "fallback"
    out = preds.to_pandas().sort_values("DIST")
    df = _data().sort_values("DIST")
    assert_allclose(out["PREDICTION"], model.predict(pipe.transform(df).drop(columns=["Y"])), rtol=1e-9)


@pytest.mark.parametrize("cls", [LinearRegression, LogisticRegression])
def test_run_of_a_linear_version_compiles_the_same_sql_as_the_loaded_model(reg, session, cls):
    # run() rebuilds a linear model from model.json instead of loading model.skops (no
    # skops import); it must score exactly as the model load() returns.
    pipe, model, X = _fit(session, cls)
    mv = reg.log_model(model, model_name="m", feature_pipeline=pipe)
    assert "model.json" in mv.manifest["files"]
    table = session.table("TRAIN")
    for function_name in ("predict", *(["predict_proba"] if cls is LogisticRegression else [])):
        via_json = mv.run(table, function_name=function_name)
        via_skops = score(table, mv.load(), pipeline=mv.pipeline(), function_name=function_name)
        assert ibis.to_sql(via_json) == ibis.to_sql(via_skops)


def test_run_verifies_the_skops_file_it_does_not_read(reg, session):
    pipe, model, X = _fit(session)
    mv = reg.log_model(model, model_name="m", feature_pipeline=pipe)
    path = Path(reg.stage.path("m", mv.version_name)) / "model.skops"
    path.write_bytes(path.read_bytes()[:-1] + b"x")
    with pytest.raises(ArtifactError, match=r"model\.skops"):
        mv.run(session.table("TRAIN"))


def test_the_rebuilt_model_predicts_as_the_logged_one_in_the_client(reg, session):
    """run() compiles a stand-in holding the coefficients; what needs the estimator itself
    (the client-side fallback) gets scikit-learn's, with the same predictions."""
    pipe, model, X = _fit(session, LogisticRegression)
    mv = reg.log_model(model, model_name="m", feature_pipeline=pipe)
    standin = mv._scoring_model(None)
    assert type(standin).__name__ == "LogisticRegression" and not isinstance(standin, LogisticRegression)
    assert_allclose(standin.predict_proba(X), model.predict_proba(X), rtol=1e-12)
    assert isinstance(standin.estimator(), LogisticRegression)
    assert not hasattr(standin, "n_iter_") and not hasattr(standin, "fit")


def test_model_json_rebuilds_only_the_linear_classes():
    assert _scoring_state.state_of(KNeighborsRegressor().fit([[0.0], [1.0]], [0.0, 1.0])) is None
    forged = json.dumps({"class": "KNeighborsRegressor", "params": {}, "state": {}}).encode()
    with pytest.raises(ArtifactError, match="KNeighborsRegressor"):
        _scoring_state.rebuild(forged, "stage/m/v1")
