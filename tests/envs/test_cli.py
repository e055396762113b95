"""``neve env`` through the real CLI entry point."""

from __future__ import annotations

from pathlib import Path

import pytest

from neve.cli import main


def test_build_list_python_run_prune(project: Path, declare, tiny: dict,
                                     capfd: pytest.CaptureFixture[str]) -> None:
    where = ["--project", str(project)]
    assert main(["env", "list", *where]) == 0
    assert "not built" in capfd.readouterr().out

    assert main(["env", "build", *where]) == 0
    assert "built" in capfd.readouterr().err  # rich progress goes to stderr

    assert main(["env", "python", "tiny", *where]) == 0
    python = capfd.readouterr().out.strip()
    assert python == str(project / ".neve" / "envs" / "tiny" / "bin" / "python")

    code = main(["env", "run", "tiny", *where, "--", "python", "-c",
                 "import six, sys; print(six.__version__); sys.exit(3)"])
    assert code == 3  # the command's own exit status
    assert capfd.readouterr().out.strip() == "1.16.0"

    assert main(["env", "list", *where]) == 0
    out = capfd.readouterr().out
    assert "tiny" in out and "fresh" in out and "3.11." in out

    declare(tiny={**tiny, "dependencies": ["six==1.15.0"]})
    assert main(["env", "list", *where]) == 0
    assert "stale" in capfd.readouterr().out
    assert main(["env", "run", "tiny", *where, "--", "python", "-c", "print(1)"]) == 1
    assert "env 'tiny' is stale" in capfd.readouterr().err

    assert main(["env", "build", "tiny", *where]) == 0
    capfd.readouterr()
    assert main(["env", "prune", *where]) == 0
    assert "removed" in capfd.readouterr().out
    builds = [p for p in (project / ".neve" / "envs").iterdir() if p.name.startswith("tiny-")]
    assert len(builds) == 1


def test_unknown_env_is_a_clear_error(project: Path, capfd: pytest.CaptureFixture[str]) -> None:
    assert main(["env", "build", "nope", "--project", str(project)]) == 1
    err = capfd.readouterr().err
    assert "env 'nope' is not declared" in err and "declared: tiny" in err


def test_run_without_a_command(project: Path, capfd: pytest.CaptureFixture[str]) -> None:
    assert main(["env", "run", "tiny", "--project", str(project)]) == 2
    assert "give a command after --" in capfd.readouterr().err
