"""tools/torture.py in small: writers SIGKILLed at random instants, checked after every kill.

`make torture` runs the 1,000 kills per engine (docs/reliability.md); this runs ~20 on each
engine in the suite, bounded in time so a slow machine makes it shorter, not longer."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parents[2] / "tools" / "torture.py"


@pytest.mark.slow
@pytest.mark.engines(
    "duckdb", "postgres",
    reason="the registry's two transactional stores; Spark's concurrent writers are tested over Spark Connect",
)
def test_random_kills_lose_no_acknowledged_write(engine_url, tmp_path):
    run = subprocess.run(
        [sys.executable, str(TOOL), "--url", engine_url, "--workdir", str(tmp_path / "torture"),
         "--kills", "20", "--max-seconds", "25", "--max-delay", "0.6", "--writers", "3", "--progress", "5"],
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    summary = json.loads(run.stdout)
    assert summary["violations"] == []
    assert summary["kills"] >= 1 and summary["checks"] == summary["kills"]
    # The writers wrote before the first kill, and the last check (no grace, all writers gone)
    # saw what they logged.
    assert summary["acknowledged_writes"] >= 3 and summary["acknowledged_versions"] >= 1
