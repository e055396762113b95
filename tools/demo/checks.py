"""Checks ``make demo`` and ``make airflow`` run before the DAG starts.

A wrong ``NEVE_URL`` used to surface a minute into the run, as a retried
``setup_registry`` and a traceback per task. These checks say it in one line
instead: the URL must name an engine neve knows, the engine must accept a
table write, and the task env that runs ``train`` and ``predict`` must import
the engine's driver and reach it (the env is a separate interpreter with its
own packages, so the parent process passing proves nothing about it).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

__all__ = ["check_engine", "check_env_reaches_engine"]

#: Run inside the task env with the URL in $NEVE_URL (never on the command line, where
#: `ps` would show its password); prints one line on failure.
_ENV_PROBE = """
import os, sys
try:
    import neve
    neve.connect(os.environ["NEVE_URL"]).close()
except (ImportError, ModuleNotFoundError) as exc:
    print(f"missing driver: {str(exc).splitlines()[0]}")
    sys.exit(3)
except Exception as exc:
    print(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
    sys.exit(4)
"""
_PROBE_TABLE = "NEVE_DEMO_WRITE_CHECK"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def check_engine(url: str) -> str | None:
    """``None`` when ``url`` names a supported engine that accepts a table write, else the
    one line to print. Creates and drops one small table."""
    import ibis

    import neve
    from neve.engine import driver_for
    from neve.errors import NeveError

    try:
        shown = driver_for(url).url.redacted()
    except NeveError as exc:
        return f"NEVE_URL is not usable: {_first_line(exc)}"
    try:
        with neve.connect(url) as session:
            session.create_table(_PROBE_TABLE, ibis.memtable({"ok": [1]}), overwrite=True)
            session.engine.drop_table(_PROBE_TABLE)
    except Exception as exc:  # noqa: BLE001 - any failure here is the user's URL; say it in one line
        return f"cannot write to {shown}: {_first_line(exc)}. Check NEVE_URL (server running? path writable?)"
    return None


def check_env_reaches_engine(root: Path, env: str, url: str, timeout: float = 120) -> str | None:
    """``None`` when env ``env``'s interpreter imports the URL's driver and connects, else the
    one line to print, with the fix."""
    import neve.envs
    from neve.engine import driver_for

    driver = driver_for(url)
    python = neve.envs.python(env, project=root)
    result = subprocess.run(
        [str(python), "-c", _ENV_PROBE], env={**os.environ, "NEVE_URL": url},
        capture_output=True, text=True, timeout=timeout, check=False,
    )
    if result.returncode == 0:
        return None
    reason = (result.stdout.strip() or result.stderr.strip() or "no output").splitlines()[-1]
    if result.returncode == 3:
        return (f"the '{env}' task env cannot import the {driver.name} driver ({reason}): add "
                f"\"ibis-framework[{driver.name}]\" to [tool.neve.envs.{env}] in pyproject.toml "
                f"and run `neve env build {env}`")
    return f"the '{env}' task env cannot reach {driver.url.redacted()}: {reason}"
