"""Smoke test for benchmarks/tree_scoring.py on a tiny table: every model runs in both
forms, the section renders, and the compiled predictions equal scikit-learn's on every
row. No timing is asserted; benchmarks are not tests."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from benchmarks import tree_scoring  # noqa: E402


@pytest.mark.slow
def test_a_tiny_run_scores_every_model_exactly(tmp_path):
    out = tmp_path / "BENCHMARKS.md"
    tree_scoring.main(["--rows", "3000", "--train-rows", "3000", "--repeat", "1",
                       "--case-rows", "3000", "--trees", "10", "--output", str(out)])  # fmt: skip
    rows = [line for line in out.read_text().splitlines() if line.startswith("| 3,000 |")]
    assert len(rows) == 4
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert "not run" not in cells[2:4], row  # both forms measured
        assert re.fullmatch(r"\d+\.\d+x \((bitmask|case)\)", cells[5]), row
        assert float(cells[6]) < 1e-9, row  # max |SQL - predict| over every row
