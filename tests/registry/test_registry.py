"""Registry behaviour: logging, loading, metrics, tags, aliases, browsing and bad input."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler as SkScaler

import neve
from neve.errors import (
    DuplicateVersionError,
    EmptyInputError,
    InvalidNameError,
    ModelNotFoundError,
    NeveInputError,
)
from neve.preprocessing import StandardScaler


def _state(reg: neve.Registry) -> tuple:
    """Everything a user can see, to check that failed calls change nothing."""
    models = reg.show_models()
    versions = {m: reg.get_model(m).show_versions().to_dict("list") for m in models.model_name}
    return models.to_dict("list"), versions


def test_round_trip_predictions_identical(reg, fitted):
    model, X = fitted
    mv = reg.log_model(model, "trip", sample_input=X.head(5))
    assert mv.version_name == "v1"
    np.testing.assert_array_equal(mv.load().predict(X), model.predict(X))


@pytest.mark.parametrize(
    "make",
    [
        lambda: make_pipeline(SkScaler(), RandomForestRegressor(n_estimators=5, random_state=0)),
        lambda: RandomForestRegressor(n_estimators=3, random_state=0),
    ],
)
def test_round_trip_pipelines_and_trees(reg, fitted, train_df, make):
    _, X = fitted
    model = make().fit(X, train_df.DURATION)
    loaded = reg.log_model(model, "trees", sample_input=X.head(3)).load()
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_versions_are_numbered_and_named(reg, fitted):
    model, X = fitted
    names = [reg.log_model(model, "m").version_name for _ in range(3)]
    assert names == ["v1", "v2", "v3"]
    assert reg.log_model(model, "m", version_name="candidate").version_name == "candidate"
    assert reg.log_model(model, "m").version_name == "v4"
    assert [v.version_name for v in reg.get_model("m").versions()] == ["v1", "v2", "v3", "candidate", "v4"]


def test_metrics_history_and_current(reg, fitted):
    model, _ = fitted
    mv = reg.log_model(model, "m", metrics={"mse": 2.0, "r2": 0.5})
    mv.set_metric("mse", 1.5)
    mv.set_metric("mse", 1.25)
    assert mv.metrics == {"mse": 1.25, "r2": 0.5}
    assert list(mv.metric_history("mse")["value"]) == [2.0, 1.5, 1.25]


def test_tags_comment(reg, fitted):
    model, _ = fitted
    mv = reg.log_model(model, "m", tags={"stage": "dev", "owner": "ana"}, comment="first try")
    mv.set_tag("stage", "prod")
    mv.unset_tag("owner")
    mv.comment = "promoted"
    assert mv.tags == {"stage": "prod"}
    assert mv.comment == "promoted"
    reg.get_model("m").set_tag("team", "taxi")
    assert reg.get_model("m").tags == {"team": "taxi"}
    assert mv.tags == {"stage": "prod"}  # model-level tags stay off the version


def test_aliases_move_and_resolve(reg, fitted):
    model, _ = fitted
    m = reg.log_model(model, "m").model
    reg.log_model(model, "m")
    m.set_alias("production", "v1")
    assert m.version("production").version_name == "v1"
    m.set_alias("production", "v2")
    assert m.aliases == {"production": "v2"}
    assert m.version("production").version_name == "v2"
    m.unset_alias("production")
    assert m.aliases == {}
    with pytest.raises(ModelNotFoundError, match="production"):
        m.version("production")


def test_an_alias_whose_version_is_deleted_is_hidden_not_rolled_back(reg, fitted):
    """The newest alias event decides: once its version is deleted the alias is gone, and
    it does not fall back to a version it pointed at before (nor does an unalias)."""
    model, _ = fitted
    m = reg.log_model(model, "m").model
    for _ in range(2):
        reg.log_model(model, "m")
    m.set_alias("production", "v1")
    m.set_alias("production", "v2")
    m.set_alias("staging", "v3")
    m.set_alias("canary", "v1")
    m.unset_alias("canary")
    m.delete_version("v2")
    assert m.aliases == {"staging": "v3"}
    assert reg.show_models().set_index("model_name").aliases["m"] == {"staging": "v3"}
    m.set_alias("production", "v1")
    assert m.aliases == {"production": "v1", "staging": "v3"}


def test_default_version(reg, fitted):
    model, _ = fitted
    for _ in range(3):
        reg.log_model(model, "m")
    m = reg.get_model("m")
    assert m.default.version_name == "v3"
    m.default = "v2"
    assert m.default.version_name == "v2"


def test_delete_version_hides_it_and_removes_files(reg, fitted):
    model, _ = fitted
    reg.log_model(model, "m")
    mv = reg.log_model(model, "m")
    mv.model.set_alias("production", "v2")
    folder = reg.stage.path("m", "v2")
    mv.model.delete_version("v2")
    assert [v.version_name for v in reg.get_model("m").versions()] == ["v1"]
    assert reg.get_model("m").aliases == {}
    assert not reg.stage.fs.exists(folder)
    with pytest.raises(ModelNotFoundError, match="v2"):
        reg.get_model("m").version("v2")
    assert reg.log_model(model, "m").version_name == "v3"  # names are never reused


def test_show_versions_and_models(reg, fitted):
    model, _ = fitted
    reg.log_model(model, "a", metrics={"mse": 3.0}, tags={"k": "v"})
    reg.log_model(model, "a", metrics={"mse": 2.0, "mae": 1.0})
    reg.log_model(model, "b")
    reg.get_model("a").set_alias("production", "v2")
    sv = reg.get_model("a").show_versions()
    assert list(sv.version_name) == ["v1", "v2"]
    assert {"created_at", "aliases", "tags", "mse", "mae"} <= set(sv.columns)
    assert list(sv.mse) == [3.0, 2.0]
    assert math.isnan(sv.mae[0]) and sv.mae[1] == 1.0
    assert sv.aliases[1] == ["production"] and sv.tags[0] == {"k": "v"}
    sm = reg.show_models()
    assert list(sm.model_name) == ["a", "b"]
    assert list(sm.versions) == [2, 1]
    assert sm.aliases[0] == {"production": "v2"}


def test_lineage(reg, session, train_df, fitted, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CTX_DAG_ID", "taxi")
    monkeypatch.setenv("AIRFLOW_CTX_DAG_RUN_ID", "run-1")
    monkeypatch.setenv("AIRFLOW_CTX_TASK_ID", "train")
    table = session.create_table("TRAIN", train_df)
    pipe = neve.Pipeline([("sc", StandardScaler(input_cols=["DIST", "HOUR"]))]).fit(table)
    model, X = fitted
    mv = reg.log_model(model, "m", feature_pipeline=pipe, training_data=table, sample_input=X.head(5))
    lineage = mv.lineage()
    data = lineage["training_data"]
    assert data["tables"] == [t for t in data["tables"] if t.endswith("TRAIN")] and data["tables"]
    assert data["row_count"] == len(train_df)
    assert data["schema"]["ZONE"] == "string"
    assert "TRAIN" in data["sql"]
    assert lineage["airflow"] == {"dag_id": "taxi", "dag_run_id": "run-1", "task_id": "train"}
    assert lineage["feature_pipeline"] == pipe.to_dict()
    assert mv.pipeline().to_dict() == pipe.to_dict()
    # The fingerprint follows content: the same rows in another order match, one changed value does not.
    same = reg.log_model(model, "m", training_data=session.create_table("T2", train_df.iloc[::-1]))
    changed_df = train_df.copy()
    changed_df.loc[7, "DIST"] += 1
    changed = reg.log_model(model, "m", training_data=session.create_table("T3", changed_df))
    fp = data["fingerprint"]
    assert fp and same.lineage()["training_data"]["fingerprint"] == fp
    assert changed.lineage()["training_data"]["fingerprint"] != fp
    baseline = mv.baseline()
    assert set(baseline["columns"]) == {"DIST", "HOUR"}  # the sample's feature columns


def test_registry_persists_across_sessions(engine_url, tmp_path, fitted):
    model, X = fitted
    stage = str(tmp_path / "r.stage")
    with neve.connect(engine_url) as s:
        neve.Registry(s, stage=stage).log_model(model, "m", metrics={"mse": 1.0})
    with neve.connect(engine_url) as s:
        reg = neve.Registry(s, stage=stage)  # creating again is a no-op
        mv = reg.get_model("m").version("v1")
        assert mv.metrics == {"mse": 1.0}
        np.testing.assert_array_equal(mv.load().predict(X), model.predict(X))


def test_schema_argument_puts_tables_there(session, fitted):
    model, _ = fitted
    reg = neve.Registry(session, schema="ml")
    reg.log_model(model, "m")
    assert "NEVE_EVENTS" in session.engine.list_tables(database="ml")
    assert "NEVE_EVENTS" not in session.list_tables()


# -- bad input: a clear error and nothing changed ------------------------------------------


def test_unknown_model_suggests(reg, fitted):
    reg.log_model(fitted[0], "trip_duration")
    with pytest.raises(ModelNotFoundError, match="did you mean 'trip_duration'"):
        reg.get_model("trip_duraton")


def test_unknown_version_suggests(reg, fitted):
    reg.log_model(fitted[0], "m", version_name="candidate")
    with pytest.raises(ModelNotFoundError, match="did you mean 'candidate'"):
        reg.get_model("m").version("candidat")
    with pytest.raises(ModelNotFoundError, match="no alias 'prod'"):
        reg.get_model("m").unset_alias("prod")


def test_duplicate_version_name(reg, fitted):
    reg.log_model(fitted[0], "m", version_name="best", metrics={"mse": 1.0})
    before = _state(reg)
    with pytest.raises(DuplicateVersionError, match="'best'"):
        reg.log_model(fitted[0], "m", version_name="best", metrics={"mse": 9.0})
    assert _state(reg) == before


@pytest.mark.parametrize("value", [float("nan"), float("inf"), "1.0", None])
def test_non_finite_metric(reg, fitted, value):
    mv = reg.log_model(fitted[0], "m", metrics={"mse": 1.0})
    before = _state(reg)
    with pytest.raises(NeveInputError, match="'mse'"):
        reg.log_model(fitted[0], "m", metrics={"mse": value})
    with pytest.raises(NeveInputError, match="'mse'"):
        mv.set_metric("mse", value)
    assert _state(reg) == before


@pytest.mark.parametrize(
    "bad", ["m'; DROP TABLE NEVE_EVENTS; --", 'a"b', "a b", "../up", "", "x/y"]
)
def test_bad_names_rejected(reg, fitted, bad):
    reg.log_model(fitted[0], "m")
    before = _state(reg)
    with pytest.raises(InvalidNameError):
        reg.log_model(fitted[0], bad)
    with pytest.raises(InvalidNameError):
        reg.log_model(fitted[0], "m", version_name=bad)
    with pytest.raises(InvalidNameError):
        reg.get_model("m").set_alias(bad, "v1")
    if bad != "x/y":  # metric and tag keys may contain '/', as in "val/mse"
        with pytest.raises(InvalidNameError):
            reg.get_model("m").version("v1").set_tag(bad, "x")
    assert _state(reg) == before


def test_lookups_bind_hostile_strings(reg, fitted):
    """Lookups take any string: it is bound as a value, so it just finds nothing."""
    reg.log_model(fitted[0], "m")
    with pytest.raises(ModelNotFoundError):
        reg.get_model("m").version("x' OR '1'='1")
    assert reg.get_model("m").version("v1").metric_history("k' OR 1=1 --").empty


def test_model_that_cannot_predict_sample(reg, fitted):
    before = _state(reg)
    with pytest.raises(NeveInputError, match="sample_input"):
        reg.log_model(fitted[0], "m", sample_input=pd.DataFrame({"OTHER": [1.0]}))
    assert _state(reg) == before


def test_reads_of_one_version_see_only_its_current_state(reg, fitted):
    model, _ = fitted
    first = reg.log_model(model, "m", metrics={"mse": 3.0}, comment="one")
    second = reg.log_model(model, "m", metrics={"mse": 2.0}, comment="two")
    first.set_metric("mse", 1.0)
    second.comment = "two, revised"
    m = reg.get_model("m")
    m.set_alias("best", "v1")
    assert (first.metrics, second.metrics) == ({"mse": 1.0}, {"mse": 2.0})
    assert (first.comment, second.comment) == ("one", "two, revised")
    sv = m.show_versions()
    assert list(sv.mse) == [1.0, 2.0] and list(sv.comment) == ["one", "two, revised"]
    assert list(sv.aliases) == [["best"], []]
    assert m.version("best") == first and m.version("v2") == second
    m.delete_version("v1")
    with pytest.raises(ModelNotFoundError, match="'best'.*versions: v2"):
        m.version("best")  # the alias outlives its version but no longer resolves
    assert m.show_versions().aliases.tolist() == [[]]


@pytest.mark.parametrize("device", ["CON", "nul", "Aux.v1", "com3", "LPT9.model", "prn.tar.gz"])
def test_windows_device_names_are_refused(reg, fitted, device):
    with pytest.raises(InvalidNameError, match="device name on Windows"):
        reg.log_model(fitted[0], device)
    with pytest.raises(InvalidNameError, match="device name on Windows"):
        reg.log_model(fitted[0], "m", version_name=device)
    assert reg.models() == []  # nothing was stored
    assert reg.log_model(fitted[0], "console", version_name="nullable").version_name == "nullable"


def test_names_that_differ_only_by_case_are_refused(reg, fitted):
    model, _ = fitted
    reg.log_model(model, "Trip", version_name="Release-1")
    with pytest.raises(InvalidNameError, match="'trip' differs from the existing 'Trip' only by case"):
        reg.log_model(model, "trip")
    with pytest.raises(InvalidNameError, match="'release-1' differs from the existing 'Release-1' only by case"):
        reg.log_model(model, "Trip", version_name="release-1")
    with pytest.raises(InvalidNameError, match="automatic 'v2'"):
        reg.log_model(model, "Trip", version_name="V2")
    assert [m.name for m in reg.models()] == ["Trip"]
    assert [v.version_name for v in reg.get_model("Trip").versions()] == ["Release-1"]
    reg.get_model("Trip").delete_version("Release-1")  # its folder is gone: the other spelling is free
    assert reg.log_model(model, "Trip", version_name="release-1").version_name == "release-1"


def test_log_model_with_empty_training_data_stores_nothing(reg, session, fitted, train_df):
    empty = session.create_table("EMPTY_TRAIN", train_df.head(0))
    with pytest.raises(EmptyInputError, match="table 'EMPTY_TRAIN': it has no rows"):
        reg.log_model(fitted[0], "trip", training_data=empty)
    assert reg.models() == []
