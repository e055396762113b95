"""Finding the Python an env asks for among those already on the machine.

neve never downloads interpreters (builds must work offline and in locked-down
images), so it looks in the places people install them: pyenv's versions
folder, uv's managed installs, ``python3.X`` on PATH, and finally uv's own
discovery. Folder names give versions for free; anything else is asked once.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from neve.envs._errors import InterpreterNotFoundError

__all__ = ["Interpreter", "discover", "find_interpreter", "query"]

_VERSION_DIR = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")
_UV_DIR = re.compile(r"^(cpython|pypy)-(\d+)\.(\d+)\.(\d+)-")
_REQUEST = re.compile(r"^(\d+)(?:\.(\d+))?(?:\.(\d+))?$")
_QUERY = (
    "import sys, platform; sys.stdout.write('%s %d.%d.%d' % "
    "((platform.python_implementation().lower(),) + tuple(sys.version_info[:3])))"
)


@dataclass(frozen=True)
class Interpreter:
    path: Path
    version: tuple[int, int, int]
    implementation: str = "cpython"

    @property
    def version_str(self) -> str:
        return ".".join(map(str, self.version))

    @property
    def minor(self) -> str:
        return f"{self.version[0]}.{self.version[1]}"

    @property
    def tag(self) -> str:
        """What the env hash records about the interpreter: not its path, so hosts agree."""
        return f"{self.implementation}-{self.version_str}"


def query(path: str | os.PathLike[str]) -> Interpreter:
    """Ask an interpreter for its implementation and version."""
    try:
        out = subprocess.run([str(path), "-c", _QUERY], capture_output=True, text=True,
                             timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise InterpreterNotFoundError(f"{path} is not a working Python interpreter: {exc}") from exc
    impl, version = out.split()
    major, minor, micro = (int(p) for p in version.split("."))
    return Interpreter(Path(path), (major, minor, micro), impl)


def _pyenv_root() -> Path:
    return Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")


def _uv_python_dir() -> Path:
    if os.environ.get("UV_PYTHON_INSTALL_DIR"):
        return Path(os.environ["UV_PYTHON_INSTALL_DIR"])
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "uv" / "python"


def _bin_python(prefix: Path, major: int, minor: int) -> Path | None:
    for candidate in (f"python{major}.{minor}", f"python{major}", "python"):
        path = prefix / "bin" / candidate
        if os.access(path, os.X_OK):
            return path
    return None


def _from_folders() -> Iterator[Interpreter]:
    versions = _pyenv_root() / "versions"
    if versions.is_dir():
        for entry in sorted(versions.iterdir()):
            if m := _VERSION_DIR.match(entry.name):
                major, minor, micro = map(int, m.groups())
                if path := _bin_python(entry, major, minor):
                    yield Interpreter(path, (major, minor, micro))
    managed = _uv_python_dir()
    if managed.is_dir():
        for entry in sorted(managed.iterdir()):
            if m := _UV_DIR.match(entry.name):
                major, minor, micro = map(int, m.groups()[1:])
                if path := _bin_python(entry, major, minor):
                    yield Interpreter(path, (major, minor, micro), m.group(1))


def _from_path() -> Iterator[Interpreter]:
    seen: set[Path] = set()
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        if not folder or Path(folder).name == "shims":
            continue  # pyenv shims fail for every version but the global one
        for name in ["python3", *(f"python3.{n}" for n in range(6, 20))]:
            path = Path(folder) / name
            if not os.access(path, os.X_OK) or path.resolve() in seen:
                continue
            seen.add(path.resolve())
            try:
                yield query(path)
            except InterpreterNotFoundError:
                continue


def _from_uv(request: str) -> Interpreter | None:
    from neve.envs._uv import uv_command, uv_env

    try:
        out = subprocess.run([*uv_command(), "python", "find", request], capture_output=True,
                             text=True, timeout=60, env=uv_env(), check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0 or not out.stdout.strip():
        return None
    try:
        return query(out.stdout.strip())
    except InterpreterNotFoundError:
        return None


def _uv_listed() -> list[Interpreter]:
    from neve.envs._uv import uv_command, uv_env

    try:
        out = subprocess.run([*uv_command(), "python", "list", "--only-installed",
                              "--output-format", "json"], capture_output=True, text=True,
                             timeout=60, env=uv_env(), check=False)
        rows = json.loads(out.stdout or "[]")
    except (OSError, subprocess.SubprocessError, ValueError):
        return []
    found = []
    for row in rows:
        try:
            major, minor, micro = (int(p) for p in row["version"].split(".")[:3])
            found.append(Interpreter(Path(row["path"]), (major, minor, micro), row["implementation"]))
        except (KeyError, ValueError):
            continue
    return found


def discover() -> list[Interpreter]:
    """Every interpreter neve can see, newest first (slow: asks each PATH entry and uv)."""
    found = {i.path.resolve(): i for i in [*_from_folders(), *_from_path(), *_uv_listed()]}
    return sorted(found.values(), key=lambda i: i.version, reverse=True)


def _matches(request: tuple[int | None, ...], version: tuple[int, int, int]) -> bool:
    return all(want is None or want == got for want, got in zip(request, version, strict=False))


def find_interpreter(request: str, *, base: Path | None = None, env: str = "") -> Interpreter:
    """The newest interpreter satisfying ``request`` ("3.11", "3.11.7" or a path)."""
    label = f" for env '{env}'" if env else ""
    if "/" in request or request.startswith("~"):
        path = Path(request).expanduser()
        if not path.is_absolute() and base is not None:
            path = base / path
        if not os.access(path, os.X_OK):
            raise InterpreterNotFoundError(f"Python interpreter {path}{label} does not exist")
        return query(path)
    m = _REQUEST.match(request.strip())
    if not m:
        raise InterpreterNotFoundError(
            f"python = {request!r}{label} is neither a version such as \"3.11\" nor a path"
        )
    wanted = tuple(int(g) if g is not None else None for g in m.groups())
    candidates = [i for i in _from_folders() if _matches(wanted, i.version)]
    if not candidates:
        candidates = [i for i in _from_path() if _matches(wanted, i.version)]
    if not candidates and (found := _from_uv(request)) and _matches(wanted, found.version):
        candidates = [found]
    if candidates:
        return max(candidates, key=lambda i: i.version)
    versions = sorted({i.version for i in discover()})
    listed = ", ".join(".".join(map(str, v)) for v in versions) or "none"
    raise InterpreterNotFoundError(
        f"Python {request}{label} is not installed on this machine; found: {listed}. "
        f"Searched {_pyenv_root() / 'versions'}, {_uv_python_dir()}, PATH and uv's discovery; "
        f"install it (e.g. `pyenv install {request}` or `uv python install {request}`) "
        "or change the env's python"
    )
