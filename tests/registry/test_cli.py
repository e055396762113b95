"""``neve models`` / ``neve registry`` against a real registry file."""

from __future__ import annotations

from pathlib import Path

import pytest

import neve
from neve.cli import main


@pytest.fixture
def url(tmp_path: Path, fitted) -> str:
    url = f"duckdb:///{tmp_path / 'cli.duckdb'}"
    reg = neve.Registry(url)
    reg.log_model(fitted[0], "trip_duration", metrics={"mse": 1.5})
    reg.log_model(fitted[0], "trip_duration", metrics={"mse": 1.25})
    return url


def test_list_show_promote(url, capsys):
    assert main(["models", "list", "--url", url]) == 0
    assert "trip_duration" in capsys.readouterr().out
    assert main(["models", "promote", "trip_duration", "v1", "--alias", "production", "--url", url]) == 0
    assert "production -> v1" in capsys.readouterr().out
    assert neve.Registry(url).get_model("trip_duration").aliases == {"production": "v1"}
    assert main(["models", "show", "trip_duration", "--url", url]) == 0
    out = capsys.readouterr().out
    assert "v2" in out and "1.25" in out
    assert main(["models", "show", "trip_duration", "production", "--url", url]) == 0
    assert "mse=1.5" in capsys.readouterr().out


def test_unknown_model_is_a_clean_error(url, capsys):
    assert main(["models", "show", "trip_duraton", "--url", url]) == 1
    assert "did you mean 'trip_duration'" in capsys.readouterr().err


def test_init_and_gc(tmp_path, capsys):
    url = f"duckdb:///{tmp_path / 'fresh.duckdb'}"
    assert main(["registry", "init", "--url", url]) == 0
    assert "ready" in capsys.readouterr().out
    stray = tmp_path / "fresh.stage" / "m" / "v1"
    stray.mkdir(parents=True)
    assert main(["registry", "gc", "--url", url]) == 0
    assert "1 folder(s) removed" in capsys.readouterr().out
    assert not stray.exists()
