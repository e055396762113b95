"""Reading the event log back: Registry.events, Model.alias_history, recorded drift reports."""

from __future__ import annotations

import pytest

from neve.errors import InvalidNameError, NeveInputError


def test_alias_history_says_which_version_held_an_alias_when_and_who_moved_it(reg, fitted, monkeypatch):
    model, X = fitted
    v1 = reg.log_model(model, model_name="m")
    v2 = reg.log_model(model, model_name="m")
    m = reg.get_model("m")
    monkeypatch.setattr("neve.registry._lineage.user", lambda: "alice")
    m.set_alias("production", v1.version_name)
    m.set_alias("staging", v2.version_name)
    monkeypatch.setattr("neve.registry._lineage.user", lambda: "bob")
    m.set_alias("production", v2.version_name)
    m.unset_alias("staging")

    history = m.alias_history()
    assert history[["alias", "version_name", "action", "created_by"]].values.tolist() == [
        ["staging", "v2", "unset", "bob"],
        ["production", "v2", "set", "bob"],
        ["staging", "v2", "set", "alice"],
        ["production", "v1", "set", "alice"],
    ]
    assert history["created_at"].is_monotonic_decreasing
    assert m.alias_history("production")["version_name"].tolist() == ["v2", "v1"]
    assert reg.get_model("m").aliases == {"production": "v2"}  # reading changed nothing


def test_events_filter_by_model_version_kind_and_limit(reg, fitted):
    model, _ = fitted
    mv = reg.log_model(model, model_name="m", metrics={"mse": 2.0}, tags={"stage": "dev"})
    reg.log_model(model, model_name="other")
    mv.set_metric("mse", 1.5)

    events = reg.events("m")
    assert set(events["model_name"]) == {"m"}
    assert events["kind"].tolist() == ["metric", "tag", "metric", "commit"]  # newest first
    metrics = reg.events("m", mv.version_name, kinds=["metric"])
    assert metrics["value_num"].tolist() == [1.5, 2.0]
    assert len(reg.events(limit=2)) == 2
    assert set(reg.events(kinds=("commit",))["model_name"]) == {"m", "other"}
    assert isinstance(events["run_context"].iloc[0], dict) and "pid" in events["run_context"].iloc[0]


def test_events_of_an_airflow_run_are_the_ones_it_wrote(reg, fitted, monkeypatch):
    model, _ = fitted
    reg.log_model(model, model_name="m")  # outside Airflow
    monkeypatch.setenv("AIRFLOW_CTX_DAG_ID", "taxi")
    monkeypatch.setenv("AIRFLOW_CTX_DAG_RUN_ID", "manual__2026-01-01T00:00:00+00:00")
    monkeypatch.setenv("AIRFLOW_CTX_TASK_ID", "train")
    mv = reg.log_model(model, model_name="m")
    monkeypatch.setenv("AIRFLOW_CTX_DAG_RUN_ID", "manual__2026-01-02T00:00:00+00:00")
    reg.log_model(model, model_name="m")

    commits = reg.events(kinds=["commit"], dag_id="taxi", run_id="manual__2026-01-01T00:00:00+00:00")
    assert commits["version_name"].tolist() == [mv.version_name]
    assert commits["run_context"].iloc[0]["airflow"]["task_id"] == "train"
    assert len(reg.events(kinds=["commit"], dag_id="taxi")) == 2
    assert reg.events(dag_id="tax").empty  # a prefix of a DAG id is another DAG


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"kinds": ["nope"]}, NeveInputError, "unknown event kinds"),
        ({"limit": 0}, NeveInputError, "limit"),
        ({"model_name": "x'; drop table NEVE_EVENTS"}, InvalidNameError, "model name"),
    ],
)
def test_events_refuses_bad_filters(reg, kwargs, error, match):
    with pytest.raises(error, match=match):
        reg.events(**kwargs)


def test_recorded_drift_reports_come_back_newest_first_with_their_bins(reg, fitted, train_df, session):
    model, X = fitted
    session.create_table("TRAIN", train_df)
    session.create_table("NEW", train_df.assign(DIST=train_df.DIST * 3))
    mv = reg.log_model(model, model_name="m", training_data=session.table("TRAIN"), sample_input=X.head(5))
    assert mv.drift_reports() == []
    mv.drift(session.table("TRAIN"))  # not recorded by default
    assert mv.drift_reports() == []

    mv.drift(session.table("TRAIN"), record=True)
    mv.drift(session.table("NEW"), record=True)
    newest, older = mv.drift_reports()
    assert (newest["ok"], newest["drifted"], older["ok"]) == (False, ["DIST"], True)
    assert {f["feature"] for f in newest["features"]} == {"DIST", "HOUR"}
    bins = newest["bins"]["DIST"]
    assert len(bins["labels"]) == len(bins["expected"]) == len(bins["actual"])
    assert sum(bins["expected"]) == pytest.approx(1.0, abs=1e-6)
    assert newest["recorded_by"] and "pid" in newest["run_context"]
    assert len(mv.drift_reports(limit=1)) == 1
    with pytest.raises(NeveInputError, match="DriftReport"):
        mv.record_drift({"ok": True})


def test_show_models_latest_adds_what_a_browser_filters_and_sorts_on(reg, fitted):
    model, _ = fitted
    reg.log_model(model, model_name="a", metrics={"mse": 3.0}, tags={"stage": "dev"})
    reg.log_model(model, model_name="a", metrics={"mse": 2.0, "r2": 0.5}, tags={"stage": "prod"})
    reg.log_model(model, model_name="b", metrics={"mse": 1.0})
    reg.get_model("b").set_tag("team", "x")

    plain = reg.show_models()
    assert "latest_tags" not in plain and "mse" not in plain
    frame = reg.show_models(latest=True).set_index("model_name")
    assert frame.loc["a", "latest_tags"] == {"stage": "prod"}
    assert frame.loc["a", "mse"] == 2.0 and frame.loc["b", "mse"] == 1.0
    assert frame.loc["a", "r2"] == 0.5 and frame["r2"].isna()["b"]
    assert frame.loc["b", "tags"] == {"team": "x"}
    assert frame.loc["b", "updated_at"] >= frame.loc["a", "updated_at"]


def test_acting_as_attributes_events_to_the_signed_in_user(reg, fitted, monkeypatch):
    model, _ = fitted
    mv = reg.log_model(model, model_name="m")
    monkeypatch.setenv("AIRFLOW_CTX_DAG_RUN_ID", "left-over-from-a-task")
    with reg.acting_as("alice", via="airflow-ui"):
        reg.get_model("m").set_alias("production", mv.version_name)
    mv.set_tag("after", "1")
    alias, tag = reg.events("m", kinds=["alias"]).iloc[0], reg.events("m", kinds=["tag"]).iloc[0]
    assert (alias.created_by, alias.run_context["via"]) == ("alice", "airflow-ui")
    assert "airflow" not in alias.run_context
    assert tag.created_by != "alice" and "via" not in tag.run_context
    with pytest.raises(InvalidNameError):
        reg.acting_as("").__enter__()
