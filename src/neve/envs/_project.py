"""Where a project's envs are declared and where their builds live."""

from __future__ import annotations

import os
import re
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neve.envs._errors import EnvDeclarationError

__all__ = ["EnvSpec", "Project", "find_project"]

PROJECT_VARIABLE = "NEVE_PROJECT"
_FIELDS = {"python", "requirements", "dependencies", "include_neve", "constraints"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _declares_envs(pyproject: Path) -> bool:
    try:
        with pyproject.open("rb") as fh:
            return "neve" in tomllib.load(fh).get("tool", {})
    except (OSError, tomllib.TOMLDecodeError):
        return False


def find_project(start: str | os.PathLike[str] | None = None) -> Path | None:
    """The nearest folder at or above ``start`` whose pyproject.toml has a ``[tool.neve]`` table.

    ``$NEVE_PROJECT`` wins when set, so a deployment can place DAGs far from the project.
    """
    if start is None and os.environ.get(PROJECT_VARIABLE):
        return Path(os.environ[PROJECT_VARIABLE]).resolve()
    here = Path(start if start is not None else Path.cwd()).resolve()
    if here.is_file():
        here = here.parent
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file() and _declares_envs(folder / "pyproject.toml"):
            return folder
    return None


@dataclass(frozen=True)
class EnvSpec:
    """One ``[tool.neve.envs.<name>]`` table, validated."""

    name: str
    project: Path
    python: str
    dependencies: tuple[str, ...] = ()
    requirements: Path | None = None
    constraints: tuple[str, ...] = ()
    constraints_file: Path | None = None
    include_neve: bool = True
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def python_is_path(self) -> bool:
        return "/" in self.python or self.python.startswith("~")


def _str_list(name: str, key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise EnvDeclarationError(
            f"[tool.neve.envs.{name}] {key} must be a list of requirement strings, got {value!r}"
        )
    return tuple(value)


def _parse(name: str, raw: Any, project: Path) -> EnvSpec:
    where = f"[tool.neve.envs.{name}]"
    if not _NAME.match(name):
        raise EnvDeclarationError(
            f"env name {name!r} must start with a letter or digit and use only letters, "
            "digits, '.', '_' and '-'"
        )
    if not isinstance(raw, dict):
        raise EnvDeclarationError(f"{where} must be a table, got {raw!r}")
    unknown = sorted(set(raw) - _FIELDS)
    if unknown:
        raise EnvDeclarationError(
            f"{where} has unknown key(s) {', '.join(unknown)}; known keys: {', '.join(sorted(_FIELDS))}"
        )
    python = raw.get("python", f"{sys.version_info.major}.{sys.version_info.minor}")
    if not isinstance(python, str) or not python:
        raise EnvDeclarationError(f"{where} python must be a version such as \"3.11\" or a path, got {python!r}")
    include_neve = raw.get("include_neve", True)
    if not isinstance(include_neve, bool):
        raise EnvDeclarationError(f"{where} include_neve must be true or false, got {include_neve!r}")
    deps = _str_list(name, "dependencies", raw.get("dependencies", []))
    requirements = None
    if "requirements" in raw:
        if not isinstance(raw["requirements"], str):
            raise EnvDeclarationError(f"{where} requirements must be a file path, got {raw['requirements']!r}")
        requirements = project / raw["requirements"]
        if not requirements.is_file():
            raise EnvDeclarationError(f"{where} requirements file {requirements} does not exist")
    constraints: tuple[str, ...] = ()
    constraints_file = None
    if isinstance(raw.get("constraints"), str):
        constraints_file = project / raw["constraints"]
        if not constraints_file.is_file():
            raise EnvDeclarationError(f"{where} constraints file {constraints_file} does not exist")
    elif "constraints" in raw:
        constraints = _str_list(name, "constraints", raw["constraints"])
    if not deps and requirements is None and not include_neve:
        raise EnvDeclarationError(
            f"{where} installs nothing: give dependencies, requirements or include_neve = true"
        )
    return EnvSpec(name, project, python, deps, requirements, constraints, constraints_file,
                   include_neve, dict(raw))


class Project:
    """A folder with a pyproject.toml declaring envs, and its ``.neve/envs`` build area."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()
        self.envs_dir = self.root / ".neve" / "envs"
        self.locks_dir = self.root / "envs"

    @classmethod
    def find(cls, start: str | os.PathLike[str] | None = None) -> Project:
        root = find_project(start)
        if root is None:
            raise EnvDeclarationError(
                f"no pyproject.toml with a [tool.neve] table at or above {Path(start or Path.cwd()).resolve()}"
                f"; declare envs under [tool.neve.envs.<name>] or set ${PROJECT_VARIABLE}"
            )
        return cls(root)

    def raw_envs(self) -> dict[str, Any]:
        path = self.root / "pyproject.toml"
        try:
            with path.open("rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError as exc:
            raise EnvDeclarationError(f"{path} does not exist") from exc
        except tomllib.TOMLDecodeError as exc:
            raise EnvDeclarationError(f"{path} is not valid TOML: {exc}") from exc
        envs = data.get("tool", {}).get("neve", {}).get("envs", {})
        if not isinstance(envs, dict):
            raise EnvDeclarationError(f"[tool.neve.envs] in {path} must be a table of tables")
        return envs

    def specs(self) -> dict[str, EnvSpec]:
        return {name: _parse(name, raw, self.root) for name, raw in self.raw_envs().items()}

    def spec(self, name: str) -> EnvSpec:
        envs = self.raw_envs()
        if name not in envs:
            known = ", ".join(sorted(envs)) or "none"
            raise EnvDeclarationError(
                f"env {name!r} is not declared in {self.root / 'pyproject.toml'} "
                f"(declared: {known}); add a [tool.neve.envs.{name}] table"
            )
        return _parse(name, envs[name], self.root)

    def link(self, name: str) -> Path:
        return self.envs_dir / name

    def python(self, name: str) -> Path:
        return self.link(name) / "bin" / "python"

    def build_dir(self, name: str, digest: str) -> Path:
        return self.envs_dir / f"{name}-{digest}"

    def lock_path(self, name: str) -> Path:
        return self.locks_dir / f"{name}.lock"

    def stub_dir(self, name: str) -> Path:
        return self.envs_dir / ".unbuilt" / name

    def file_lock(self, name: str) -> Path:
        return self.envs_dir / f".{name}.building"
