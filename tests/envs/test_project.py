"""Declarations in pyproject.toml: validation, lookup, and the project's own envs."""

from __future__ import annotations

import os
import re
import runpy
import shutil
import subprocess
from pathlib import Path

import pytest

from neve import envs
from neve.envs._interpreters import find_interpreter
from neve.envs._lock import lock_is_current
from neve.envs._project import Project

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("decl", "message"),
    [
        ({"python": "3.11", "dependencies": ["six"], "pyhton": "3.8"}, "unknown key(s) pyhton"),
        ({"python": "3.11", "dependencies": "six"}, "dependencies must be a list"),
        ({"python": "3.11", "requirements": "nope.txt"}, "requirements file"),
        ({"python": "3.11", "include_neve": "yes", "dependencies": ["six"]}, "include_neve must be"),
        ({"python": "3.11", "include_neve": False}, "installs nothing"),
    ],
)
def test_bad_declarations_name_the_field(project: Path, declare, decl: dict, message: str) -> None:
    declare(tiny=decl)
    with pytest.raises(envs.EnvDeclarationError, match=re.escape(message)) as info:
        envs.declarations(project)
    assert "[tool.neve.envs.tiny]" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_requirements_file_and_constraints_are_read(project: Path, declare) -> None:
    (project / "reqs.txt").write_text("six\n")
    declare(tiny={"python": "3.11", "requirements": "reqs.txt", "constraints": ["six<1.16"],
                  "include_neve": False})
    [result] = envs.build(["tiny"], project=project)
    assert "six==1.15.0" in (project / "envs" / "tiny.lock").read_text()
    # Editing the requirements file is a declaration change: the lock goes out of date.
    (project / "reqs.txt").write_text("six\nrequests\n")
    [st] = envs.status(project=project)
    assert st.state == "stale" and result.built


def test_python_finds_the_project_from_the_calling_file(project: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    dags = project / "dags"
    dags.mkdir()
    (dags / "dag.py").write_text("import neve.envs\nPYTHON = neve.envs.python('tiny')\n")
    monkeypatch.chdir(tmp_path)  # Airflow parses DAGs from anywhere
    monkeypatch.delenv("NEVE_PROJECT", raising=False)
    namespace = runpy.run_path(str(dags / "dag.py"))
    assert namespace["PYTHON"] == str(project / ".neve" / "envs" / "tiny" / "bin" / "python")
    assert os.path.exists(namespace["PYTHON"])  # the not-built stub, nothing was built
    with pytest.raises(envs.EnvDeclarationError, match="env 'tyni' is not declared"):
        envs.python("tyni", project=project)


def test_interpreter_by_path(project: Path) -> None:
    by_version = find_interpreter("3.11")
    by_path = find_interpreter(str(by_version.path))
    assert by_path.version == by_version.version
    with pytest.raises(envs.InterpreterNotFoundError, match="does not exist"):
        find_interpreter("/no/such/python", env="tiny")


@pytest.mark.parametrize("name", ["taxi", "legacy"])
def test_committed_locks_match_the_declarations(name: str) -> None:
    spec = Project(REPO).spec(name)
    interp = find_interpreter(spec.python)
    assert lock_is_current(spec, interp, REPO / "envs" / f"{name}.lock"), (
        f"envs/{name}.lock is out of date: run `neve env build {name}` and commit it"
    )


def test_project_envs_use_two_python_minors() -> None:
    specs = Project(REPO).specs()
    assert specs["taxi"].python == "3.11" and specs["taxi"].include_neve
    assert "scikit-learn==" in " ".join(specs["taxi"].dependencies)
    assert specs["legacy"].python != specs["taxi"].python and not specs["legacy"].include_neve


def test_legacy_env_builds_from_its_committed_lock_on_another_python(tmp_path: Path) -> None:
    root = tmp_path / "copy"
    (root / "envs").mkdir(parents=True)
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    shutil.copy(REPO / "envs" / "legacy.lock", root / "envs" / "legacy.lock")
    [result] = envs.build(["legacy"], project=root, locked=True)  # as the Docker image does
    assert result.built
    out = subprocess.run([envs.python("legacy", project=root), "-c",
                          "import sys, tabulate; print(sys.version_info[:2], tabulate.__version__)"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "(3, 10) 0.9.0"
