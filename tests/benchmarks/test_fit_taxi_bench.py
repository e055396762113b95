"""Smoke test for benchmarks/fit_taxi.py at 20k rows: the data is generated in SQL from the
real samples, both sides fit in their own child process, and the two fits agree.
No timing is asserted; benchmarks are not tests."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from benchmarks import fit_taxi  # noqa: E402


def test_generated_rows_replicate_the_samples_with_new_combinations():
    with duckdb.connect() as con:
        fit_taxi.generate(con, 50_000)
        rows, hours, zones, groups, bad = con.execute(
            "SELECT count(*), count(DISTINCT HOUR_OF_DAY), count(DISTINCT PICKUP_LOCATION_ID), "
            "count(DISTINCT (PICKUP_LOCATION_ID, DROPOFF_LOCATION_ID, HOUR_OF_DAY)), "
            f"count(*) FILTER (WHERE TRIP_DISTANCE <= 0 OR {fit_taxi.TARGET} <= 0) FROM TRIPS"
        ).fetchone()
    assert rows == 50_000 and hours == 24 and zones > 150 and bad == 0
    # More combinations than the ~20k sample rows hold: the perturbation makes new ones.
    assert groups > 20_000


def test_a_tiny_run_fits_both_sides_and_they_agree(tmp_path):
    out, raw = tmp_path / "BENCHMARKS.md", tmp_path / "fit.json"
    assert fit_taxi.main(["--rows", "20000", "--output", str(out), "--json", str(raw), "--tmp", str(tmp_path)]) == 0
    (result,) = json.loads(raw.read_text())
    neve, pandas = result["neve"], result["pandas"]
    assert neve["queries"] == 1 and 0 < neve["bytes"] < result["groups"] * 200
    distance, relative = fit_taxi.coef_distance(neve["coef"], pandas["coef"])
    assert relative < 1e-2  # scikit-learn's sparse solver stops at its tolerance; neve is exact
    text = out.read_text()
    assert "## Taxi pipeline fit" in text and "| 20,000 |" in text
    assert not list(tmp_path.glob("neve-fit-taxi-*/*.duckdb"))
