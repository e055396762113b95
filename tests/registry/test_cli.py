"""``neve models`` / ``neve registry`` against a real registry file."""

from __future__ import annotations

from pathlib import Path

import pytest

import neve
from neve.cli import main


@pytest.fixture
def stage(tmp_path: Path) -> str:
    # A server engine has no file to put the default stage beside; name one for all engines.
    return str(tmp_path / "cli.stage")


@pytest.fixture
def url(engine_url: str, stage: str, fitted) -> str:
    reg = neve.Registry(engine_url, stage=stage)
    reg.log_model(fitted[0], "trip_duration", metrics={"mse": 1.5})
    reg.log_model(fitted[0], "trip_duration", metrics={"mse": 1.25})
    return engine_url


def test_list_show_promote(url, stage, capsys):
    at = ["--url", url, "--stage", stage]
    assert main(["models", "list", *at]) == 0
    assert "trip_duration" in capsys.readouterr().out
    assert main(["models", "promote", "trip_duration", "v1", "--alias", "production", *at]) == 0
    assert "production -> v1" in capsys.readouterr().out
    aliases = neve.Registry(url, stage=stage).get_model("trip_duration").aliases
    assert aliases == {"production": "v1"}
    assert main(["models", "show", "trip_duration", *at]) == 0
    out = capsys.readouterr().out
    assert "v2" in out and "1.25" in out
    assert main(["models", "show", "trip_duration", "production", *at]) == 0
    assert "mse=1.5" in capsys.readouterr().out


def test_unknown_model_is_a_clean_error(url, stage, capsys):
    assert main(["models", "show", "trip_duraton", "--url", url, "--stage", stage]) == 1
    assert "did you mean 'trip_duration'" in capsys.readouterr().err


def test_init_and_gc(engine_url, stage, capsys):
    assert main(["registry", "init", "--url", engine_url, "--stage", stage]) == 0
    assert "ready" in capsys.readouterr().out
    stray = Path(stage) / "m" / "v1"
    stray.mkdir(parents=True)
    assert main(["registry", "gc", "--url", engine_url, "--stage", stage]) == 0
    assert "1 folder(s) removed" in capsys.readouterr().out
    assert not stray.exists()


@pytest.mark.parametrize("command", [["models", "list"], ["models", "show", "m"], ["models", "drift", "m", "T"]])
def test_read_only_commands_on_a_mistyped_duckdb_path_create_nothing(command, tmp_path, capsys):
    typo = tmp_path / "typo" / "neve.duckdb"
    assert main([*command, "--url", f"duckdb://{typo}"]) == 1
    err = capsys.readouterr().err.replace("\n", "")  # rich wraps long lines
    assert str(typo) in err and "neve registry init" in err
    assert list(tmp_path.iterdir()) == []


def test_read_only_commands_on_a_database_without_a_registry_say_how_to_create_one(engine_url, capsys):
    with neve.connect(engine_url) as session:
        tables_before = set(session.list_tables())
    assert main(["models", "list", "--url", engine_url]) == 1
    err = capsys.readouterr().err.replace("\n", "")
    assert "no model registry in" in err and "neve registry init --url" in err
    with neve.connect(engine_url) as session:
        assert set(session.list_tables()) == tables_before  # no NEVE_* table appeared


def test_show_fits_a_screen_by_default_and_full_and_json_carry_everything(engine_url, stage, fitted, capsys):
    import json

    import numpy as np

    model = fitted[0]
    wide = {f"FEATURE_{i}": float(i) for i in range(300)}  # as the taxi model's per-feature stds
    neve.Registry(engine_url, stage=stage).log_model(
        model, "wide", metrics={"mse": 2.0}, params={"feature_stds": wide, "features": list(wide)}
    )
    at = ["--url", engine_url, "--stage", stage]
    assert main(["models", "show", "wide", "v1", *at]) == 0
    out = capsys.readouterr().out
    assert len(out.splitlines()) < 40
    assert "feature_stds=<300 entries>" in out and "mse=2" in out and "FEATURE_299" not in out
    assert main(["models", "show", "wide", "v1", "--full", *at]) == 0
    assert "FEATURE_299" in capsys.readouterr().out
    assert main(["models", "show", "wide", "v1", "--json", *at]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["metrics"] == {"mse": 2.0}
    assert np.isclose(record["params"]["feature_stds"]["FEATURE_299"], 299.0)


def _run_cli(argv: list[str], columns: int) -> str:
    """The CLI in a fresh process, in a terminal ``columns`` wide (rich reads $COLUMNS)."""
    import os
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "neve.cli", *argv], capture_output=True, text=True, timeout=300,
        env={**os.environ, "COLUMNS": str(columns)},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.engines("duckdb", "postgres", reason="local Spark's catalog lives in its process (docs/spark.md)")
def test_list_fits_80_columns_with_names_whole_and_times_to_the_minute(engine_url, stage, fitted):
    import re

    reg = neve.Registry(engine_url, stage=stage)
    long_name = "trip_duration_estimator_nyc_2019"
    mv = reg.log_model(fitted[0], long_name, metrics={"mse": 1.5}, tags={"stage": "dev"})
    reg.get_model(long_name).set_alias("production", mv.version_name)
    reg.get_model(long_name).set_alias("challenger", mv.version_name)
    reg.get_model(long_name).set_tag("team", "forecasting")
    reg.log_model(fitted[0], "m", version_name="release-2024-06-01")
    for argv in (["models", "list"], ["models", "show", long_name]):
        out = _run_cli([*argv, "--url", engine_url, "--stage", stage], columns=80)
        lines = out.splitlines()
        assert max(map(len, lines)) <= 80, out
        times = re.findall(r"\d{4}-\d\d-\d\d \d\d:\d\d(?::\d\d)?", out)
        assert times and all(len(t) == 16 for t in times), out  # to the minute, never seconds
        assert "…" not in out, out
    listed = _run_cli(["models", "list", "--url", engine_url, "--stage", stage], columns=80)
    assert any(line.startswith(long_name + " ") for line in listed.splitlines()), listed
    assert "release-2024-06-01" in listed and "production=v1" in listed.replace("\n", "")
