"""Smoke test for benchmarks/hgb_fit.py on a tiny table: both sides fit in their own
processes, grow the same trees, and the section renders. No timing is asserted."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from benchmarks import hgb_fit  # noqa: E402


@pytest.mark.slow
def test_a_tiny_run_grows_the_same_trees_on_both_sides(tmp_path):
    out = tmp_path / "BENCHMARKS.md"
    hgb_fit.main(["--rows", "20000", "--tmp", str(tmp_path), "--output", str(out)])
    rows = [line for line in out.read_text().splitlines() if line.startswith("| 20,000 |")]
    assert len(rows) == 1
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    assert "(2 q," in cells[1]  # the categories, then the coded rows
    assert cells[6] == "yes", rows[0]  # the same trees
