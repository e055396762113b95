"""Smoke test for benchmarks/preprocessing.py: its pieces still run and still measure
the same thing on every side. No timing is asserted; benchmarks are not tests."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import neve

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from benchmarks import _common  # noqa: E402
from benchmarks import preprocessing as bench  # noqa: E402

ROWS = 2_000


@pytest.fixture
def session(tmp_path: Path) -> neve.Session:
    with neve.connect(f"duckdb:///{tmp_path / 'bench.duckdb'}") as s:
        bench.generate(s.engine.con, ROWS)
        yield s


def _fit_both(session: neve.Session) -> tuple[dict, dict]:
    t = session.table("bench")
    fitted = {name: step.fit(t) for name, step in bench.neve_steps().items()}
    stats = {step: bench.sql_fit(session.engine.con, step) for step in bench.STEPS}
    return fitted, stats


def test_generated_data_has_the_promised_shape(session):
    con = session.engine.con
    n, distinct20, nulls = con.execute(
        "SELECT count(*), count(DISTINCT s20), count(*) - count(f3) FROM bench"
    ).fetchone()
    assert n == ROWS
    assert distinct20 == 20
    assert 0 < nulls < ROWS * 0.15  # about 5%
    (mean,) = con.execute("SELECT avg(f0) FROM bench").fetchone()
    assert mean == pytest.approx(1e6, abs=1.0)


def test_neve_and_hand_written_sql_fit_the_same_statistics(session):
    fitted, stats = _fit_both(session)
    agreement = bench.compare(fitted, stats)
    assert agreement["categories"] == 0.0
    assert agreement["n"] == 0.0
    for key in ("mean", "var", "min", "max"):
        assert agreement[key] < 1e-9, (key, agreement)
    # The precision trap is real at this size too: the one-pass formula is visibly off.
    assert bench.one_pass_error(session.engine.con, stats["StandardScaler"]) > 1e-6


@pytest.mark.parametrize("step", bench.STEPS)
def test_hand_written_transform_produces_neve_output(session, step):
    fitted, stats = _fit_both(session)
    con, t = session.engine.con, session.table("bench")
    ours = con.execute(bench.to_sql(fitted[step].transform(t))).df()
    hand = con.execute(bench.sql_transform(step, stats[step])).df()
    assert list(hand.columns) == list(ours.columns)
    numeric = [c for c in ours.columns if c not in bench.STRINGS]
    # atol: x * scale + min on f0 (mean 1e6) cancels ~1e6 * eps of absolute precision,
    # and the two sides round scale and min differently (so does scikit-learn).
    np.testing.assert_allclose(
        hand[numeric].to_numpy(float), ours[numeric].to_numpy(float), rtol=1e-9, atol=1e-9
    )


def test_a_small_run_renders_the_section(session, tmp_path):
    result = bench.run_size(
        session, ROWS, repeat=1, tools=("neve", "sql", "sklearn", "seed"), log=lambda _: None
    )
    assert result.agreement["categories"] == 0.0
    assert ("sklearn", "OneHotEncoder") in result.timings
    assert set(result.seed) == {"neve", "sklearn"}
    section = bench.render([result])
    assert "| neve fit <= 1.2x hand-written SQL (3 steps) | 2,000 |" in section
    assert "### 2,000 rows" in section and "### Seed pipeline" in section

    path = tmp_path / "BENCHMARKS.md"
    path.write_text("# Benchmarks\n\n## Registry\n\nkeep me\n")
    _common.write_section(bench.TITLE, "stale-section-body", path)
    _common.write_section(bench.TITLE, section, path)
    text = path.read_text()
    assert text.count("## Preprocessing") == 1 and "stale-section-body" not in text
    assert "## Registry\n\nkeep me\n" in text


def test_write_section_replaces_a_middle_section_in_place(tmp_path):
    path = tmp_path / "B.md"
    path.write_text("# Benchmarks\n\n## A\n\nold a\n\n## B\n\nold b\n")
    _common.write_section("A", "new a", path)
    assert path.read_text() == "# Benchmarks\n\n## A\n\nnew a\n\n## B\n\nold b\n"


def test_extraction_returns_the_table(session):
    frame = bench.extract(session.engine.con, bench.FLOATS)
    assert isinstance(frame, pd.DataFrame) and frame.shape == (ROWS, 10)
