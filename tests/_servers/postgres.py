"""A throwaway PostgreSQL server on loopback for the tests.

It uses the Debian packages' binaries (``.ci/run`` installs them), a data
folder in a temporary directory and a free port, and is stopped at the end of
the pytest session. Tests create and drop their own databases on it.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

USER = "neve"
PASSWORD = "neve-test-pw"


def find_bin_dir() -> Path | None:
    """The folder holding initdb/pg_ctl, or None when PostgreSQL is not installed."""
    if shutil.which("pg_ctl") and shutil.which("initdb"):
        return Path(shutil.which("pg_ctl")).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)
    return Path(candidates[0]).parent if candidates else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run_as(user: str | None, args: list[str], **kwargs) -> subprocess.CompletedProcess:
    # PostgreSQL refuses to run as root; as root we run it as the packages' `postgres` user.
    if user is not None:
        args = ["runuser", "-u", user, "--", *args]
    return subprocess.run(args, check=True, capture_output=True, text=True, **kwargs)


@contextlib.contextmanager
def running_server() -> Iterator[str]:
    """Start a server; yield an admin URL ``postgres://neve:...@127.0.0.1:PORT/postgres``."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
    run_user = None
    if os.geteuid() == 0:
        run_user = "postgres"
        pwd.getpwnam(run_user)  # raises KeyError when the Debian package did not create it
    root = Path(tempfile.mkdtemp(prefix="neve-pg-"))
    data = root / "data"
    pwfile = root / "pw"
    pwfile.write_text(PASSWORD)
    if run_user:
        shutil.chown(root, run_user)
        shutil.chown(pwfile, run_user)
    port = _free_port()
    _run_as(run_user, [str(bin_dir / "initdb"), "-D", str(data), "-U", USER, "--pwfile", str(pwfile),
                       "-A", "scram-sha-256", "-E", "UTF8", "--no-sync"])
    log = root / "server.log"
    _run_as(run_user, [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60",
                       "-o", f"-h 127.0.0.1 -p {port} -k {root} -c fsync=off -c max_connections=200",
                       "start"])
    try:
        _wait_until_ready(port)
        yield f"postgres://{USER}:{PASSWORD}@127.0.0.1:{port}/postgres"
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            _run_as(run_user, [str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"])
        shutil.rmtree(root, ignore_errors=True)


def _wait_until_ready(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.1)
    raise RuntimeError(f"PostgreSQL did not start on 127.0.0.1:{port}")


@contextlib.contextmanager
def throwaway_database(admin_url: str, prefix: str) -> Iterator[str]:
    """A URL to a fresh database on the server behind ``admin_url``, dropped on exit."""
    import uuid

    import neve

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with neve.connect(admin_url) as admin:
        admin.engine.raw_sql(f'CREATE DATABASE "{name}"')
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with neve.connect(admin_url) as admin:
            admin.engine.raw_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
