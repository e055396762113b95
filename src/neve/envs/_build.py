"""Building envs into ``.neve/envs/<name>-<hash>`` and switching ``.neve/envs/<name>`` to them.

A build is complete when its marker file exists; the marker is written last,
so a crash leaves a folder the next build recognises as unfinished and redoes.
The symlink switch is one ``os.replace``: a task either starts on the old
build or on the new one, never on a half-built one. One file lock per env
makes concurrent ``neve env build`` calls (two CI jobs, two Airflow workers)
wait for each other; the second then finds the build done and returns.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from neve.envs import _check
from neve.envs._check import MARKER, decl_fingerprint, stale_message
from neve.envs._errors import EnvBuildError, EnvError, EnvNotBuiltError, EnvStaleError
from neve.envs._interpreters import Interpreter, find_interpreter
from neve.envs._lock import (
    check_neve_python,
    compile_lock,
    env_hash,
    lock_is_current,
    neve_fingerprint,
    neve_source,
)
from neve.envs._project import EnvSpec, Project
from neve.envs._uv import run_uv

__all__ = ["BuildResult", "EnvStatus", "build", "ensure_stub", "prune", "require", "status"]

Step = Callable[[str, str], None]
_CHECK_PTH = "import _neve_env_check; _neve_env_check.run()\n"


@dataclass(frozen=True)
class BuildResult:
    name: str
    hash: str
    path: Path
    built: bool  # False: an existing complete build was reused
    seconds: float


@dataclass(frozen=True)
class EnvStatus:
    name: str
    python: str  # as declared
    state: str  # "fresh", "stale", "not built" or "error"
    reason: str = ""
    hash: str | None = None
    path: Path | None = None
    built_at: str | None = None
    interpreter: str | None = None

    def size(self) -> int:
        if self.path is None:
            return 0
        return sum(p.lstat().st_size for p in self.path.rglob("*") if not p.is_symlink())


@contextmanager
def _file_lock(path: Path, *, blocking: bool = True) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        yield
    finally:
        os.close(fd)  # closing releases the lock, also if the process dies


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read_marker(build: Path) -> dict | None:
    try:
        return json.loads((build / MARKER).read_text())
    except (OSError, ValueError):
        return None


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def _switch(project: Project, name: str, target: Path) -> None:
    link = project.link(name)
    if link.exists() and not link.is_symlink():
        raise EnvBuildError(f"{link} is a real folder, not neve's symlink; move it away and rebuild")
    tmp = link.with_name(f".{name}.{os.getpid()}.link")
    tmp.unlink(missing_ok=True)
    os.symlink(os.path.relpath(target, link.parent), tmp)
    os.replace(tmp, link)  # atomic: tasks see the old build or the new one


def current_build(project: Project, name: str) -> Path | None:
    """The complete build ``.neve/envs/<name>`` points at, if any."""
    link = project.link(name)
    if not link.is_symlink():
        return None
    target = (link.parent / os.readlink(link)).resolve()
    if target.parent != project.envs_dir.resolve() or _read_marker(target) is None:
        return None  # the not-built stub, or a build deleted by hand
    return target


def ensure_stub(project: Project, name: str) -> None:
    """Make ``.neve/envs/<name>/bin/python`` exist before the first build.

    Airflow runs that path for an external-python task; the stub prints the fix
    and fails, instead of Airflow's generic "Python path does not exist".
    """
    link = project.link(name)
    if os.path.lexists(link):
        return
    try:
        stub = project.stub_dir(name) / "bin" / "python"
        stub.parent.mkdir(parents=True, exist_ok=True)
        stub.write_text(
            "#!/bin/sh\n"
            f"echo \"env '{name}' is not built: run \\`neve env build {name}\\`\" >&2\n"
            "exit 1\n"
        )
        stub.chmod(0o755)
        tmp = link.with_name(f".{name}.{os.getpid()}.link")
        tmp.unlink(missing_ok=True)
        os.symlink(os.path.relpath(project.stub_dir(name), link.parent), tmp)
        if not os.path.lexists(link):
            os.replace(tmp, link)
        else:
            tmp.unlink()
    except OSError:
        pass  # a read-only deployment: the path is still right, only the message is plainer


def _install_check(build: Path) -> None:
    site = next(build.glob("lib/python*/site-packages"), None)
    if site is None:
        raise EnvBuildError(f"{build} has no lib/python*/site-packages; uv venv did not finish")
    shutil.copyfile(_check.__file__, site / "_neve_env_check.py")
    (site / "_neve_env_check.pth").write_text(_CHECK_PTH)


def _install_neve(spec: EnvSpec, py: Path, build: Path) -> None:
    source = neve_source(spec.project)
    if source is not None:
        # --refresh-package: uv caches local builds by pyproject mtime, not by source edits.
        run_uv(["pip", "install", "--python", str(py), "--no-deps", "--reinstall-package", "neve",
                "--refresh-package", "neve", "--compile-bytecode", "--quiet", str(source)],
               f"installing neve into '{spec.name}'")
        return
    import neve  # an installed wheel without its checkout: copy the pure-Python package

    site = next(build.glob("lib/python*/site-packages"))
    shutil.copytree(Path(neve.__file__).parent, site / "neve",
                    ignore=shutil.ignore_patterns("__pycache__"))


def _marker(spec: EnvSpec, interp: Interpreter, digest: str, lock: Path) -> dict:
    return {
        "name": spec.name,
        "hash": digest,
        "project": str(spec.project),
        "python": interp.tag,
        "interpreter": str(interp.path),
        "lock_sha256": _sha256(lock),
        "decl_sha256": decl_fingerprint(spec.raw, str(spec.project)),
        "neve_sha256": neve_fingerprint(spec.project) if spec.include_neve else None,
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def build(spec: EnvSpec, *, upgrade: bool = False, locked: bool = False,
          on_step: Step | None = None) -> BuildResult:
    """Lock (if needed), build (if needed) and switch one env. Safe to call concurrently."""
    step = on_step or (lambda name, message: None)
    project = Project(spec.project)
    started = time.perf_counter()
    with _file_lock(project.file_lock(spec.name)):
        step(spec.name, "finding Python " + spec.python)
        interp = find_interpreter(spec.python, base=spec.project, env=spec.name)
        if spec.include_neve:
            check_neve_python(spec, interp)
        lock = project.lock_path(spec.name)
        if upgrade or not lock_is_current(spec, interp, lock):
            if locked:
                raise EnvStaleError(
                    f"{lock} does not match env '{spec.name}''s declaration; run "
                    f"`neve env build {spec.name}` without --locked and commit the lock"
                )
            step(spec.name, f"resolving for Python {interp.minor}")
            compile_lock(spec, interp, lock, upgrade=upgrade)
        digest = env_hash(spec, interp, lock.read_text())
        target = project.build_dir(spec.name, digest)
        marker = _read_marker(target)
        if marker is not None:
            fresh = _marker(spec, interp, digest, lock)
            if (marker.get("lock_sha256"), marker.get("decl_sha256")) != (
                    fresh["lock_sha256"], fresh["decl_sha256"]):
                # Same resolved set under a reworded declaration: record it, do not rebuild.
                _write_json(target / MARKER, {**marker, "lock_sha256": fresh["lock_sha256"],
                                              "decl_sha256": fresh["decl_sha256"]})
            if current_build(project, spec.name) != target.resolve():
                _switch(project, spec.name, target)
            return BuildResult(spec.name, digest, target, False, time.perf_counter() - started)
        if target.exists():
            shutil.rmtree(target)  # left by a build that died before its marker
        try:
            step(spec.name, f"creating venv on Python {interp.version_str}")
            run_uv(["venv", str(target), "--python", str(interp.path), "--no-project", "--quiet"],
                   f"creating env '{spec.name}'")
            py = target / "bin" / "python"
            count = sum(1 for line in lock.read_text().splitlines()
                        if line and not line.startswith(("#", " ")))
            step(spec.name, f"installing {count} locked packages")
            # Bytecode at build time: otherwise the first task after every build pays for
            # compiling scikit-learn and pandas, and a read-only image pays on every start.
            run_uv(["pip", "sync", str(lock), "--python", str(py), "--compile-bytecode", "--quiet"],
                   f"installing env '{spec.name}'")
            if spec.include_neve:
                step(spec.name, "installing neve")
                _install_neve(spec, py, target)
            _install_check(target)
            _write_json(target / MARKER, _marker(spec, interp, digest, lock))
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)
            raise
        step(spec.name, "switching")
        _switch(project, spec.name, target)
        return BuildResult(spec.name, digest, target, True, time.perf_counter() - started)


def status(spec: EnvSpec) -> EnvStatus:
    """Whether the env's current build matches its declaration, lock, Python and neve."""
    project = Project(spec.project)
    build_dir = current_build(project, spec.name)
    if build_dir is None:
        return EnvStatus(spec.name, spec.python, "not built")
    marker = _read_marker(build_dir) or {}
    common = {"hash": marker.get("hash"), "path": build_dir, "built_at": marker.get("built_at"),
              "interpreter": marker.get("python")}
    try:
        interp = find_interpreter(spec.python, base=spec.project, env=spec.name)
    except EnvError as exc:
        return EnvStatus(spec.name, spec.python, "error", str(exc), **common)
    lock = project.lock_path(spec.name)
    reason = ""
    if not lock_is_current(spec, interp, lock):
        reason = "its declaration changed since it was locked"
    elif marker.get("python") != interp.tag:
        reason = f"Python is now {interp.tag}, the build has {marker.get('python')}"
    elif env_hash(spec, interp, lock.read_text()) != marker.get("hash"):
        reason = (f"envs/{spec.name}.lock changed since it was built"
                  if marker.get("lock_sha256") != _sha256(lock) else "neve's source changed")
    elif marker.get("decl_sha256") != decl_fingerprint(spec.raw, str(spec.project)):
        reason = "its declaration in pyproject.toml changed since it was built"
    return EnvStatus(spec.name, spec.python, "stale" if reason else "fresh", reason, **common)


def require(spec: EnvSpec) -> Path:
    """The interpreter of a fresh build, else the error a task should fail with."""
    state = status(spec)
    if state.state == "not built":
        raise EnvNotBuiltError(f"env '{spec.name}' is not built: run `neve env build {spec.name}`")
    if state.state != "fresh":
        raise EnvStaleError(stale_message(spec.name, state.reason))
    return Project(spec.project).python(spec.name)


def prune(project: Project) -> list[Path]:
    """Delete builds no ``.neve/envs/<name>`` symlink points at; skip envs being built."""
    if not project.envs_dir.is_dir():
        return []
    referenced = {(project.envs_dir / os.readlink(p)).resolve()
                  for p in project.envs_dir.iterdir() if p.is_symlink()}
    removed = []
    for entry in sorted(project.envs_dir.iterdir()):
        if entry.is_symlink() or not entry.is_dir() or entry.name.startswith("."):
            continue
        name, _, digest = entry.name.rpartition("-")
        if not name or len(digest) != 12 or entry.resolve() in referenced:
            continue
        try:
            with _file_lock(project.file_lock(name), blocking=False):
                if current_build(project, name) == entry.resolve():
                    continue  # a build finished and switched to it since the scan
                shutil.rmtree(entry)
                removed.append(entry)
        except BlockingIOError:
            continue  # a build of that env is running and may be creating this very folder
    return removed
