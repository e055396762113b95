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
