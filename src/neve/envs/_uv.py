"""Running uv: found robustly, never allowed to download an interpreter."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from functools import cache

from neve.envs._errors import EnvBuildError

__all__ = ["run_uv", "uv_command", "uv_env"]


@cache
def uv_command() -> tuple[str, ...]:
    """``$NEVE_UV``, else the uv wheel neve depends on, else uv on PATH."""
    if os.environ.get("NEVE_UV"):
        return (os.environ["NEVE_UV"],)
    try:
        from uv import find_uv_bin

        return (find_uv_bin(),)
    except (ImportError, FileNotFoundError):
        pass
    if found := shutil.which("uv"):
        return (found,)
    return (sys.executable, "-m", "uv")


def uv_env() -> dict[str, str]:
    env = dict(os.environ)
    # Interpreters come from the machine only: uv cannot download here, nor in locked images.
    env["UV_PYTHON_DOWNLOADS"] = "never"
    env["UV_PYTHON_PREFERENCE"] = "only-system"
    # A VIRTUAL_ENV from the caller (e.g. `uv run`) must not redirect installs.
    env.pop("VIRTUAL_ENV", None)
    return env


def run_uv(args: Sequence[str], what: str) -> str:
    """Run ``uv *args``; on failure raise EnvBuildError carrying uv's own explanation."""
    cmd = [*uv_command(), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=uv_env(), check=False)
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip()
        raise EnvBuildError(f"{what} failed (uv {' '.join(args[:2])}):\n{detail}")
    return proc.stdout
