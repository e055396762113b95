"""The start-up check that every built env runs, and the declaration fingerprint it shares.

This file is copied verbatim into each built env as ``_neve_env_check.py`` and
imported from a ``.pth`` line, so it runs on every interpreter start-up there,
whatever Python the env uses (3.8 and up) and without neve installed. That is
why it imports only the standard library and avoids syntax newer than 3.6. neve itself
imports :func:`decl_fingerprint` from here, so the builder and the check can
never disagree on what "the declaration changed" means.

The check makes a task that starts on a stale env fail at once with the command
that fixes it, instead of running against packages its declaration no longer
names. An env that was never built has no interpreter at all; see
``_paths.ensure_stub`` for that case.
"""

import hashlib
import json
import os
import sys

MARKER = "neve-env.json"
SKIP_VARIABLE = "NEVE_ENV_NO_CHECK"
_FILE_FIELDS = ("requirements", "constraints")


def _file_digest(path):
    try:
        with open(path, "rb") as fh:
            return hashlib.sha256(fh.read()).hexdigest()
    except OSError:
        return "missing"


def decl_fingerprint(decl, project):
    """sha256 of a declaration table plus the content of the files it names."""
    normal = dict(decl)
    normal.setdefault("include_neve", True)
    files = {}
    for field in _FILE_FIELDS:
        value = normal.get(field)
        if isinstance(value, str):
            files[field] = _file_digest(os.path.join(project, value))
    payload = json.dumps({"decl": normal, "files": files}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _load_toml(path):
    try:
        import tomllib as toml
    except ImportError:
        try:
            import tomli as toml
        except ImportError:
            return None
    try:
        with open(path, "rb") as fh:
            return toml.load(fh)
    except (OSError, ValueError):
        return None


def stale_reason(marker):
    """Why the build described by ``marker`` no longer matches its project, or None."""
    project = marker.get("project", "")
    name = marker.get("name", "")
    if not os.path.isdir(project):
        return None  # the env was moved away from its project: nothing to compare with
    lock = os.path.join(project, "envs", name + ".lock")
    if os.path.exists(lock) and _file_digest(lock) != marker.get("lock_sha256"):
        return f"envs/{name}.lock changed since it was built"
    # Interpreters older than 3.11 without tomli cannot read the declaration; the lock
    # check above still catches every change that was re-locked.
    data = _load_toml(os.path.join(project, "pyproject.toml"))
    if data is None:
        return None
    envs = data.get("tool", {}).get("neve", {}).get("envs", {})
    if name not in envs:
        return "it is no longer declared in pyproject.toml"
    if decl_fingerprint(envs[name], project) != marker.get("decl_sha256"):
        return "its declaration in pyproject.toml changed since it was built"
    return None


def stale_message(name, reason):
    return f"env '{name}' is stale ({reason}): run `neve env build {name}`"


def _pin_prefix():
    # The interpreter is reached through the .neve/envs/<name> symlink; resolve it once
    # so a rebuild that switches the symlink cannot swap libraries under a running task.
    real = os.path.realpath(sys.prefix)
    if real == sys.prefix:
        return
    old = sys.prefix
    sys.path[:] = [
        real + p[len(old):] if p == old or p.startswith(old + os.sep) else p for p in sys.path
    ]
    sys.prefix = real
    sys.exec_prefix = real


def run():
    """Entry point called from the env's ``.pth`` file at interpreter start-up."""
    try:
        with open(os.path.join(sys.prefix, MARKER)) as fh:
            marker = json.load(fh)
    except (OSError, ValueError):
        return  # still being built
    _pin_prefix()
    if os.environ.get(SKIP_VARIABLE):
        return
    reason = stale_reason(marker)
    if reason:
        sys.stderr.write(stale_message(marker.get("name", "?"), reason) + "\n")
        sys.stderr.flush()
        # SystemExit here would make CPython print a fatal "failed to import site" trace.
        os._exit(1)
