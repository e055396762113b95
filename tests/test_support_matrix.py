"""docs/support-matrix.md is generated from the test-suite and must match it."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def test_committed_support_matrix_is_current() -> None:
    # A subprocess: the generator runs its own pytest collection.
    result = subprocess.run(
        [sys.executable, str(REPO / "docs" / "gen_support_matrix.py"), "--check"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
