"""Resolving a declaration to ``envs/<name>.lock`` and hashing what a build depends on.

The lock is the contract between dev, CI and the Docker image: it is resolved
once with ``uv pip compile --universal`` (so it holds for every platform),
committed, and re-resolved only when the declaration changes (its header
records a fingerprint of the declaration) or on ``--upgrade``. A build's hash
covers the exact interpreter, the resolved set and, with ``include_neve``,
neve's own source, so the same inputs always map to the same folder.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import re
import tempfile
import tomllib
from functools import cache
from pathlib import Path

import neve
from neve.envs._check import decl_fingerprint
from neve.envs._errors import EnvDeclarationError
from neve.envs._interpreters import Interpreter
from neve.envs._project import EnvSpec
from neve.envs._uv import run_uv

__all__ = ["compile_lock", "env_hash", "lock_input", "lock_is_current", "neve_source"]

#: neve's own dependencies that tasks never need inside an env.
_NOT_IN_ENVS = {"uv"}
_INPUT = re.compile(r"^# input: ([0-9a-f]{64})$", re.MULTILINE)
#: Bumped whenever the build recipe changes, so existing builds are not mistaken for new ones.
_HASH_FORMAT = "neve-env-2"


def _pyproject(root: Path) -> dict:
    try:
        with (root / "pyproject.toml").open("rb") as fh:
            return tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError):
        return {}


def neve_source(project_root: Path | None = None) -> Path | None:
    """The source checkout of the running neve (editable install, or the project itself)."""
    package = Path(neve.__file__).resolve().parent
    for root in (package.parent.parent, project_root):
        if (root is not None and (root / "src" / "neve" / "__init__.py").is_file()
                and _pyproject(root).get("project", {}).get("name") == "neve"):
            return root
    return None


@cache
def _neve_requirements(source: Path | None) -> tuple[tuple[str, ...], str]:
    """neve's core requirements (no extras: no Airflow) and its requires-python."""
    if source is not None:
        meta = _pyproject(source).get("project", {})
        reqs, python = meta.get("dependencies", []), meta.get("requires-python", "")
    else:
        reqs = [r for r in importlib.metadata.requires("neve") or [] if "extra ==" not in r]
        python = importlib.metadata.metadata("neve").get("Requires-Python", "")
    name = re.compile(r"^\s*([A-Za-z0-9_.-]+)")
    kept = tuple(r for r in reqs if (m := name.match(r)) and m.group(1).lower() not in _NOT_IN_ENVS)
    return kept, python


def check_neve_python(spec: EnvSpec, interp: Interpreter) -> None:
    _, requires = _neve_requirements(neve_source(spec.project))
    if m := re.search(r">=\s*(\d+)\.(\d+)", requires):
        floor = (int(m.group(1)), int(m.group(2)))
        if interp.version[:2] < floor:
            raise EnvDeclarationError(
                f"env '{spec.name}' uses Python {interp.version_str} but include_neve installs neve, "
                f"which needs Python {requires}; set include_neve = false or python >= "
                f"\"{floor[0]}.{floor[1]}\""
            )


def neve_fingerprint(project_root: Path) -> str:
    """sha256 of the neve source an ``include_neve`` env installs."""
    source = neve_source(project_root)
    package = source / "src" / "neve" if source else Path(neve.__file__).resolve().parent
    digest = hashlib.sha256()
    files = sorted(p for p in package.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                   and p.suffix != ".pyc")
    if source:
        files.append(source / "pyproject.toml")
    base = source or package.parent
    for path in files:
        digest.update(str(path.relative_to(base)).encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def lock_input(spec: EnvSpec, interp: Interpreter) -> str:
    """Fingerprint of everything the resolution depends on; recorded in the lock header."""
    parts = [decl_fingerprint(spec.raw, str(spec.project)), interp.minor]
    if spec.include_neve:
        parts.extend(_neve_requirements(neve_source(spec.project))[0])
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def lock_is_current(spec: EnvSpec, interp: Interpreter, lock: Path) -> bool:
    try:
        m = _INPUT.search(lock.read_text())
    except OSError:
        return False
    return bool(m) and m.group(1) == lock_input(spec, interp)


def compile_lock(spec: EnvSpec, interp: Interpreter, lock: Path, *, upgrade: bool = False) -> None:
    """Resolve ``spec`` for ``interp``'s minor version into ``lock`` (atomically)."""
    lines = list(spec.dependencies)
    if spec.requirements is not None:
        lines.append(f"-r {spec.requirements}")
    if spec.include_neve:
        lines.extend(_neve_requirements(neve_source(spec.project))[0])
    lock.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"neve-lock-{spec.name}-") as tmp:
        source, out = Path(tmp) / "requirements.in", Path(tmp) / "requirements.lock"
        source.write_text("\n".join(lines) + "\n")
        args = ["pip", "compile", str(source), "-o", str(out), "--universal", "--python-version",
                interp.minor, "--no-header", "--no-annotate", "--quiet"]
        if spec.constraints or spec.constraints_file:
            cfile = spec.constraints_file
            if cfile is None:
                cfile = Path(tmp) / "constraints.txt"
                cfile.write_text("\n".join(spec.constraints) + "\n")
            args += ["--constraint", str(cfile)]
        if not upgrade and lock.is_file():
            # uv prefers the pins already in the output file: a changed declaration moves
            # only the packages it has to, as pip-tools does.
            out.write_text(lock_body(lock.read_text()) + "\n")
        if upgrade:
            args.append("--upgrade")
        run_uv(args, f"resolving env '{spec.name}'")
        header = (
            f"# neve env lock for '{spec.name}': commit it; regenerate with "
            f"`neve env build {spec.name} --upgrade`.\n"
            f"# python: {interp.minor}\n"
            f"# input: {lock_input(spec, interp)}\n"
        )
        tmp_lock = lock.with_name(f".{lock.name}.{os.getpid()}.tmp")
        tmp_lock.write_text(header + out.read_text())
        os.replace(tmp_lock, lock)


def lock_body(text: str) -> str:
    """The resolved requirements without comments, so a header change alone never rebuilds."""
    return "\n".join(line for line in text.splitlines() if line and not line.startswith("#"))


def env_hash(spec: EnvSpec, interp: Interpreter, lock_text: str) -> str:
    digest = hashlib.sha256()
    for part in (_HASH_FORMAT, interp.tag, lock_body(lock_text)):
        digest.update(part.encode() + b"\0")
    if spec.include_neve:
        digest.update(neve_fingerprint(spec.project).encode())
    return digest.hexdigest()[:12]
