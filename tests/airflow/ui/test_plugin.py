"""The plugin as Airflow loads it: through the entry point, and light to import."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import entry_points

HEAVY = ["ibis", "pandas", "sklearn", "pyarrow", "duckdb", "skops", "neve.registry._registry", "matplotlib"]


def test_the_plugin_module_imports_nothing_heavy():
    """Every Airflow component imports plugins at start-up; the registry's stack waits for a page."""
    code = (
        "import json, sys; import neve.airflow.ui.plugin as p; p.NevePlugin.fastapi_apps[0]['app']; "
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_the_entry_point_names_the_plugin_and_its_views():
    (found,) = [e for e in entry_points(group="airflow.plugins") if e.name == "neve"]
    plugin = found.load()
    assert plugin.__name__ == "NevePlugin" and plugin.name == "neve"
    (app,) = plugin.fastapi_apps
    assert app["url_prefix"] == "/neve"
    views = {v["destination"]: v for v in plugin.external_views}
    assert views["nav"]["href"] == "neve/models" and views["nav"]["category"] == "browse"
    assert views["dag_run"]["href"] == "neve/runs/{DAG_ID}/{RUN_ID}"
    assert all(not v["href"].startswith("/") for v in plugin.external_views)


def test_airflow_loads_the_plugin(metadata_db):
    from airflow import plugins_manager

    apps, _ = plugins_manager.get_fastapi_plugins()
    assert any(a["url_prefix"] == "/neve" for a in apps)
    views, _ = plugins_manager._get_ui_plugins()
    assert {v["url_route"] for v in views} >= {"neve-models", "neve-run-model"}
