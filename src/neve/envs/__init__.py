"""Task environments: declared in pyproject.toml, built with uv, cached by content hash.

Declare an env under ``[tool.neve.envs.<name>]``::

    [tool.neve.envs.taxi]
    python = "3.11"                       # a version on this machine, or a path
    dependencies = ["scikit-learn==1.7.2"] # and/or requirements = "envs/taxi.in"
    include_neve = true                   # default: tasks get sessions and the registry
    # constraints = "constraints.txt"     # or a list

``neve env build`` resolves it to ``envs/<name>.lock`` (commit it), builds
``.neve/envs/<name>-<hash>`` and points ``.neve/envs/<name>`` at it. In a DAG::

    @task.external_python(python=neve.envs.python("taxi"))

:func:`python` only computes a path, so DAG files import anywhere, built or
not. A task that starts on an env that is not built, or whose declaration or
lock changed since its build, fails at once with the command that fixes it.

This package imports neither Airflow nor the registry.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path

from neve.envs._build import BuildResult, EnvStatus, Step, ensure_stub
from neve.envs._build import build as _build
from neve.envs._build import prune as _prune
from neve.envs._build import require as _require
from neve.envs._build import status as _status
from neve.envs._errors import (
    EnvBuildError,
    EnvDeclarationError,
    EnvError,
    EnvNotBuiltError,
    EnvStaleError,
    InterpreterNotFoundError,
)
from neve.envs._project import PROJECT_VARIABLE, EnvSpec, Project, find_project

__all__ = [
    "BuildResult",
    "EnvBuildError",
    "EnvDeclarationError",
    "EnvError",
    "EnvNotBuiltError",
    "EnvSpec",
    "EnvStaleError",
    "EnvStatus",
    "InterpreterNotFoundError",
    "build",
    "declarations",
    "prune",
    "python",
    "require",
    "status",
]

Where = str | os.PathLike[str] | None


def _project(project: Where) -> Project:
    return Project(project) if project is not None else Project.find()


def declarations(project: Where = None) -> dict[str, EnvSpec]:
    """Every env declared in the project, validated."""
    return _project(project).specs()


def python(name: str, project: Where = None) -> str:
    """The interpreter path of env ``name``: ``<project>/.neve/envs/<name>/bin/python``.

    Safe at DAG-parse time: it needs no build and runs nothing. The project is
    ``project``, else ``$NEVE_PROJECT``, else the nearest one above the calling
    file (the DAG), else above the working directory. Before the first build the
    path leads to a stub that fails with "env '<name>' is not built: run
    `neve env build <name>`", so the task log says what to do.
    """
    if project is None and not os.environ.get(PROJECT_VARIABLE):
        caller = sys._getframe(1).f_globals.get("__file__")
        root = (find_project(caller) if caller else None) or find_project(Path.cwd())
    else:
        root = find_project(project)
    if root is None:
        return str(Path.cwd() / ".neve" / "envs" / name / "bin" / "python")
    proj = Project(root)
    proj.spec(name)  # a misspelt env name is a bug in the DAG: say so at import
    ensure_stub(proj, name)
    return str(proj.python(name))


def build(names: Iterable[str] | None = None, *, project: Where = None, upgrade: bool = False,
          locked: bool = False, on_step: Step | None = None) -> list[BuildResult]:
    """Build the named envs (default: all declared), reusing any unchanged build."""
    proj = _project(project)
    specs = proj.specs() if names is None else {n: proj.spec(n) for n in names}
    return [_build(spec, upgrade=upgrade, locked=locked, on_step=on_step) for spec in specs.values()]


def status(names: Iterable[str] | None = None, *, project: Where = None) -> list[EnvStatus]:
    proj = _project(project)
    specs = proj.specs() if names is None else {n: proj.spec(n) for n in names}
    return [_status(spec) for spec in specs.values()]


def require(name: str, project: Where = None) -> str:
    """The interpreter of a fresh build of ``name``; raises EnvNotBuiltError/EnvStaleError."""
    return str(_require(_project(project).spec(name)))


def prune(project: Where = None) -> list[Path]:
    """Remove builds no env currently points at; returns the folders removed."""
    return _prune(_project(project))
