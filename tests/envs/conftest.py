"""Temporary projects that declare tiny envs, built for real with uv (its cache keeps it fast)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def write_pyproject(root: Path, envs: dict[str, dict]) -> None:
    lines = ['[project]\nname = "demo"\nversion = "0"\n']
    for name, decl in envs.items():
        lines.append(f"[tool.neve.envs.{name}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in decl.items()]
        lines.append("")
    (root / "pyproject.toml").write_text("\n".join(lines))


TINY = {"python": "3.11", "dependencies": ["six==1.16.0"], "include_neve": False}


@pytest.fixture
def tiny() -> dict:
    """The ``tiny`` declaration, to copy and vary."""
    return dict(TINY)


@pytest.fixture
def declare(project: Path):
    """Rewrite the project's declarations: ``declare(tiny={...})``."""
    return lambda **envs: write_pyproject(project, envs)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project declaring env ``tiny``: Python 3.11 with six 1.16.0, without neve."""
    root = tmp_path / "proj"
    root.mkdir()
    write_pyproject(root, {"tiny": TINY})
    return root
