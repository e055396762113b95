"""What a fresh process imports on its way to a result: reading the registry needs
neither scikit-learn nor skops (the CLI and Airflow's UI start faster for it), and
connecting needs no scikit-learn."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import neve

HEAVY = ("sklearn", "skops", "ibis", "pandas", "sklearn.linear_model")
#: The probes run in a fresh process, which local Spark would give an empty catalog of its own.
IN_ANOTHER_PROCESS = pytest.mark.engines(
    "duckdb", "postgres", reason="local Spark's catalog lives in its process (docs/spark.md)"
)


def _imported(code: str, env: dict[str, str] | None = None) -> dict[str, bool]:
    """Run ``code`` in a fresh interpreter; which of HEAVY (and its own checks) it imported."""
    probe = (
        f"{code}\nimport json, sys\n"
        f"print(json.dumps({{m: m in sys.modules for m in {HEAVY!r}}}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env={**os.environ, **(env or {})},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def _sklearn_skops(found: dict[str, bool]) -> dict[str, bool]:
    return {m: found[m] for m in ("sklearn", "skops")}


@pytest.fixture
def logged(engine_url: str, tmp_path: Path, fitted) -> dict[str, str]:
    model, X = fitted
    stage = str(tmp_path / "imports.stage")
    with neve.connect(engine_url) as session:
        reg = neve.Registry(session, stage=stage)
        mv = reg.log_model(model, model_name="ridge", sample_input=X.head(3), metrics={"mse": 1.5})
        reg.get_model("ridge").set_alias("production", mv.version_name)
    return {"NEVE_URL": engine_url, "STAGE": stage}


@IN_ANOTHER_PROCESS
def test_reading_model_metadata_imports_neither_sklearn_nor_skops(logged):
    read = f"""
import neve
reg = neve.Registry({logged["NEVE_URL"]!r}, stage={logged["STAGE"]!r})
assert list(reg.show_models().model_name) == ["ridge"]
model = reg.get_model("ridge")
assert len(model.show_versions()) == 1
mv = model.version("production")
assert mv.metrics == {{"mse": 1.5}} and mv.version_name == "v1"
mv.tags, mv.comment
"""
    assert _sklearn_skops(_imported(read)) == {"sklearn": False, "skops": False}


@IN_ANOTHER_PROCESS
def test_the_cli_lists_and_shows_models_without_sklearn_ibis_or_pandas(logged):
    """``neve models list/show`` read on the engine's own cursor (neve/registry/_browse.py)."""
    env = {"NEVE_URL": logged["NEVE_URL"]}
    for argv in (["models", "list"], ["models", "show", "ridge"], ["models", "show", "ridge", "v1"]):
        code = (
            "from neve.cli import main\n"
            f"code = main({[*argv, '--stage', logged['STAGE']]!r})\n"
            "assert code in (0, None), code"
        )
        assert _imported(code, env) == dict.fromkeys(HEAVY, False), argv


@IN_ANOTHER_PROCESS
def test_loading_a_model_imports_skops(logged):
    load = f"""
import neve
mv = neve.Registry({logged["NEVE_URL"]!r}, stage={logged["STAGE"]!r}).get_model("ridge").version("v1")
assert type(mv.load()).__name__ == "Ridge"
"""
    assert _sklearn_skops(_imported(load)) == {"sklearn": True, "skops": True}


@IN_ANOTHER_PROCESS
def test_scoring_a_linear_version_imports_no_skops(logged):
    # Its coefficients are in model.json; skops' import alone costs ~2 s (it imports
    # every scikit-learn estimator to list trusted types).
    run = f"""
import pandas as pd
import neve
s = neve.connect({logged["NEVE_URL"]!r})
s.create_table("RUN_X", pd.DataFrame({{"DIST": [1.0, 2.0], "HOUR": [3, 4]}}), overwrite=True)
mv = neve.Registry(s, stage={logged["STAGE"]!r}).get_model("ridge").version("v1")
assert mv.run(s.table("RUN_X")).to_pyarrow().num_rows == 2
"""
    found = _imported(run)
    assert _sklearn_skops(found) == {"sklearn": True, "skops": False}
    # Nor scikit-learn's linear models: the SQL is compiled from a stand-in (_fitted_state).
    assert found["sklearn.linear_model"] is False


@pytest.mark.engines("duckdb", reason="which modules connect imports does not depend on the engine")
def test_connect_imports_no_sklearn(engine_url):
    assert _imported(f"import neve\nneve.connect({engine_url!r}).close()")["sklearn"] is False
