"""DuckDB file locks, with two real processes: one holds the file, the other waits."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest

import neve
from neve.errors import EngineLockedError

HOLD = textwrap.dedent(
    """
    import sys, time
    import neve
    session = neve.connect(sys.argv[1])
    session.create_table("HELD", __import__("pandas").DataFrame({"a": [1]}), overwrite=True)
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
    session.close()
    print("released", flush=True)
    time.sleep(5)
    """
)


def _hold(url: str, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, url, str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_waits_for_the_holder_then_opens(tmp_path):
    url = f"duckdb:///{tmp_path / 'shared.duckdb'}"
    holder = _hold(url, 1.5)
    try:
        with neve.connect(url + "?lock_timeout=60") as session:
            # We only got in after the holder let go, so it has already said so.
            assert holder.stdout.readline().strip() == "released"
            assert session.table("HELD").count().execute() == 1
    finally:
        holder.kill()
        holder.wait()


def test_gives_up_naming_file_and_holder(tmp_path):
    path = tmp_path / "busy.duckdb"
    holder = _hold(f"duckdb:///{path}", 30)
    try:
        started = time.monotonic()
        with pytest.raises(EngineLockedError) as info:
            neve.connect(f"duckdb:///{path}?lock_timeout=0.5")
        assert time.monotonic() - started < 20
        message = str(info.value)
        assert str(path) in message
        assert f"PID {holder.pid}" in message
        assert "lock_timeout" in message
        assert isinstance(info.value, TimeoutError)
    finally:
        holder.kill()
        holder.wait()


def test_lock_timeout_from_environment(tmp_path, monkeypatch):
    path = tmp_path / "busy.duckdb"
    holder = _hold(f"duckdb:///{path}", 30)
    monkeypatch.setenv("NEVE_LOCK_TIMEOUT", "0.2")
    try:
        with pytest.raises(EngineLockedError):
            neve.connect(f"duckdb:///{path}")
    finally:
        holder.kill()
        holder.wait()
