"""Smoke test for benchmarks/scale.py at 20k rows: every stage runs on both sides, the
report renders, and the memory watchdog kills a pandas child that passes its cap.
No timing is asserted; benchmarks are not tests."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from benchmarks import scale  # noqa: E402
from neve.datasets import taxi  # noqa: E402

ROWS = 20_000


def test_a_tiny_run_measures_every_stage_and_writes_the_section(tmp_path):
    out, raw = tmp_path / "BENCHMARKS.md", tmp_path / "scale.json"
    assert scale.main(["--rows", str(ROWS), "--output", str(out),
                       "--json", str(raw), "--tmp", str(tmp_path)]) == 0  # fmt: skip
    results = json.loads(raw.read_text())
    done = {(r["side"], r["stage"]) for r in results["records"]}
    for stage in scale.STAGES:
        assert ("neve", stage) in done, stage
    for stage in scale.TOTALS["pandas"]:
        assert ("pandas", stage) in done, stage
    for stage in ("clean", "fit", "score", "drift"):
        assert ("sql", stage) in done, stage
    assert results["pandas_failed"] is None
    summary = next(r for r in results["records"] if r["stage"] == "done")
    # neve's SQL scoring and the hand-written floor compute the same predictions.
    assert summary["score_max_abs_diff"] < 1e-6
    assert 19_000 < summary["kept"] < ROWS
    # The model is fitted in the engine: one query, and only its statistics leave it.
    assert summary["fit_queries"] == 1 and summary["fit_bytes"] < summary["groups"] * 200
    text = out.read_text()
    assert "## Scale" in text and "| 20,000 |" in text
    assert (tmp_path / "img" / "scale-total.png").stat().st_size > 10_000
    assert "![scale-total](img/scale-total.png)" in text
    assert not list(tmp_path.glob("neve-scale-*/*.duckdb"))  # data files are cleaned up


def test_the_watchdog_kills_a_child_over_its_memory_cap(tmp_path):
    db = tmp_path / "taxi.duckdb"
    with duckdb.connect(str(db)) as con:
        taxi(con, ROWS, seed=0, table="TAXI_RAW")
    records, why = scale.run_child(["pandas", str(db), str(ROWS)], cap_bytes=80 * 2**20,
                                   timeout=120)  # fmt: skip
    assert why.startswith("out of memory at cap")
    assert records[-1]["side"] == "failed"
    assert records[-1]["rss_mb"] > 80
