"""The registry read path on the engine's own cursor (what ``neve models list/show`` and
Airflow's pages read through) returns what the Ibis-backed Registry returns."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

import neve
from neve.errors import ModelNotFoundError, TableNotFoundError
from neve.registry._browse import Browser


@pytest.fixture
def filled(engine_url: str, tmp_path: Path, fitted) -> neve.Registry:
    """Two models and everything the folds must get right: moved and unset aliases, unset
    tags, a replaced metric, a deleted version whose metric name no live version has."""
    model, X = fitted
    reg = neve.Registry(engine_url, stage=str(tmp_path / "browse.stage"))
    taxi = [reg.log_model(model, "taxi", metrics={"mse": 1.5, "r2": 0.5}, tags={"team": "ml"}, comment="first")]
    taxi.append(reg.log_model(model, "taxi", metrics={"mse": 1.25}, comment="it's better"))
    taxi.append(reg.log_model(model, "taxi", metrics={"only_deleted": 9.0}))
    taxi.append(reg.log_model(model, "taxi"))
    taxi[1].set_metric("mse", 1.0)
    taxi[0].set_tag("stage", "dev")
    taxi[0].unset_tag("team")
    m = reg.get_model("taxi")
    m.set_alias("production", "v1")
    m.set_alias("production", "v2")  # moved: one alias, the newest target
    m.set_alias("staging", "v1")
    m.set_alias("old", "v3")
    m.unset_alias("staging")
    m.set_tag("owner", "ana")
    m.set_tag("gone", "x")
    m.unset_tag("gone")
    m.delete_version("v3")
    reg.log_model(model, "churn-model.v2", version_name="2024-06-rc1", metrics={"auc": 0.8})
    reg.log_model(model, "emptied").model.delete_version("v1")
    return reg


def test_models_equal_show_models(filled, engine_url):
    with Browser.open(engine_url) as browser:
        models = browser.models()
    expected = filled.show_models()
    got = pd.DataFrame(models)
    assert list(got.columns) == list(expected.columns)
    assert got.model_name.tolist() == expected.model_name.tolist() == ["churn-model.v2", "emptied", "taxi"]
    for column in ("versions", "latest_version", "aliases", "tags"):
        want = [None if v is None or v != v else v for v in expected[column]]  # show_models' NaN: None
        assert [m[column] for m in models] == want, column
    assert [pd.Timestamp(t) for t in got.created_at] == expected.created_at.tolist()
    taxi = next(m for m in models if m["model_name"] == "taxi")
    assert taxi["aliases"] == {"production": "v2"} and taxi["tags"] == {"owner": "ana"}
    assert (taxi["versions"], taxi["latest_version"]) == (3, "v4")
    assert (models[1]["versions"], models[1]["latest_version"]) == (0, None)


def test_versions_equal_show_versions(filled, engine_url):
    with Browser.open(engine_url) as browser:
        rows, metrics = browser.versions("taxi")
    expected = filled.get_model("taxi").show_versions()
    got = pd.DataFrame(rows)
    assert list(got.columns) == list(expected.columns)
    assert metrics == ["mse", "only_deleted", "r2"]
    for column in ("version_name", "created_by", "aliases", "tags", "comment"):
        assert [r[column] for r in rows] == expected[column].tolist(), column
    assert [pd.Timestamp(t) for t in got.created_at] == expected.created_at.tolist()
    for key in metrics:
        pd.testing.assert_series_equal(got[key].astype(float), expected[key].astype(float), check_names=False)
    assert got.version_name.tolist() == ["v1", "v2", "v4"]
    assert rows[1]["mse"] == 1.0 and math.isnan(rows[2]["mse"]) and rows[1]["comment"] == "it's better"


def test_one_version_by_name_or_alias(filled, engine_url):
    mv = filled.get_model("taxi").version("v2")
    with Browser.open(engine_url) as browser:
        by_alias = browser.version("taxi", "production")
        assert browser.version("taxi", "v2") == by_alias
    assert by_alias["version"] == "v2" and by_alias["aliases"] == ["production"]
    assert by_alias["metrics"] == mv.metrics and by_alias["tags"] == mv.tags == {}
    assert by_alias["comment"] == mv.comment == "it's better"
    lineage = mv.lineage()
    logged_at = lineage.pop("logged_at")
    assert {k: by_alias[k] for k in lineage} == lineage
    assert pd.Timestamp(by_alias["logged_at"]) == logged_at


def test_unknown_names_fail_as_the_registry_does(filled, engine_url):
    with Browser.open(engine_url) as browser:
        with pytest.raises(ModelNotFoundError) as ours:
            browser.require_model("taxy")
        with pytest.raises(ModelNotFoundError) as theirs:
            filled.get_model("taxy")
        assert str(ours.value) == str(theirs.value)
        with pytest.raises(ModelNotFoundError) as ours:
            browser.version("taxi", "prod")
        with pytest.raises(ModelNotFoundError) as theirs:
            filled.get_model("taxi").version("prod")
        assert str(ours.value) == str(theirs.value)
        # A deleted version is gone by name, and an alias left pointing at it finds nothing.
        with pytest.raises(ModelNotFoundError):
            browser.version("taxi", "v3")
        with pytest.raises(ModelNotFoundError):
            browser.version("taxi", "old")


def test_a_database_without_a_registry_says_how_to_make_one(engine_url):
    with neve.connect(engine_url):
        pass  # the database exists, the registry does not
    with Browser.open(engine_url) as browser, pytest.raises(TableNotFoundError, match="neve registry init --url"):
        browser.models()


@pytest.mark.engines("duckdb", reason="only an embedded engine has a file to mistype")
def test_a_mistyped_duckdb_path_creates_nothing(tmp_path):
    typo = tmp_path / "typo" / "neve.duckdb"
    with pytest.raises(TableNotFoundError, match="no database at"):
        Browser.open(f"duckdb://{typo}")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.engines("duckdb", "postgres", reason="the registry in a named schema; local Spark names it a database")
def test_a_registry_in_a_named_schema(engine_url, tmp_path, fitted):
    reg = neve.Registry(engine_url, schema="ml_reg", stage=str(tmp_path / "schema.stage"))
    reg.log_model(fitted[0], "in_schema", metrics={"mse": 2.0})
    with Browser.open(engine_url, schema="ml_reg") as browser:
        assert [m["model_name"] for m in browser.models()] == ["in_schema"]
        assert browser.version("in_schema", "v1")["metrics"] == {"mse": 2.0}
    with Browser.open(engine_url) as browser, pytest.raises(TableNotFoundError, match="--schema|init"):
        browser.models()
