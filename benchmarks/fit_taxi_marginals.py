"""Fit the marginals neve.datasets.taxi reproduces, from the real 2019-01/02 samples.

    uv run --no-sync python benchmarks/fit_taxi_marginals.py

Writes src/neve/datasets/taxi_marginals.json (committed, so neither the generator
nor its tests read data/ at run time):

* ``pickup`` / ``dropoff``: trips per location id;
* ``hour``: trips per pickup hour of day;
* ``distance`` / ``duration``: ``QUANTILES + 1`` empirical quantiles of trip
  distance (miles) and dropoff - pickup (seconds), raw, dirty rows included, so
  the cleaning rules of the flagship DAG have something to remove;
* ``coupling``: the width ``w`` of the reflected uniform walk that ties the
  duration draw to the distance draw (see neve.datasets._taxi), chosen so the
  generated Spearman correlation matches the sample's;
* ``days``: the first and last pickup day of the sample.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import duckdb
import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data" / "nyc_taxi"
OUT = REPO / "src" / "neve" / "datasets" / "taxi_marginals.json"
MONTHS = ("2019-01", "2019-02")
QUANTILES = 1000


def reflected(u: np.ndarray, v: np.ndarray, w: float) -> np.ndarray:
    """The generator's coupled uniform: u + w (v - 1/2), reflected into [0, 1]."""
    x = u + w * (v - 0.5)
    return np.where(x < 0, -x, np.where(x > 1, 2 - x, x))


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def fit_coupling(target: float) -> float:
    """The w whose coupled uniforms have Spearman correlation ``target`` (bisection)."""
    rng = np.random.default_rng(0)
    u, v = rng.random(200_000), rng.random(200_000)
    lo, hi = 0.0, 1.0  # rho falls from 1 (w = 0) as w grows
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if spearman(u, reflected(u, v, mid)) > target else (lo, mid)
    return round((lo + hi) / 2, 4)


def main() -> int:
    files = [str(DATA / f"yellow_tripdata_sample_{m}.csv") for m in MONTHS]
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE raw AS SELECT * FROM read_csv(?, header = true, strict_mode = false, "
        "union_by_name = true)",
        [files],
    )
    counts = lambda col: {  # noqa: E731
        str(k): int(n)
        for k, n in con.execute(
            f"SELECT {col}, count(*) FROM raw WHERE {col} IS NOT NULL GROUP BY 1 ORDER BY 1"
        ).fetchall()
    }
    dist, dur = (
        con.execute(
            "SELECT trip_distance::DOUBLE, epoch(dropoff_datetime) - epoch(pickup_datetime) "
            "FROM raw WHERE trip_distance IS NOT NULL AND pickup_datetime IS NOT NULL "
            "AND dropoff_datetime IS NOT NULL"
        )
        .fetchnumpy()
        .values()
    )
    dist, dur = np.asarray(dist, float), np.asarray(dur, float)
    probs = np.linspace(0, 1, QUANTILES + 1)
    first, last = con.execute(
        "SELECT min(pickup_datetime)::DATE, max(pickup_datetime)::DATE FROM raw "
        "WHERE pickup_datetime >= '2019-01-01' AND pickup_datetime < '2019-03-01'"
    ).fetchone()
    rho = spearman(dist, dur)
    marginals = {
        "source": "data/nyc_taxi yellow_tripdata_sample_2019-01/02 (benchmarks/fit_taxi_marginals.py)",
        "rows": int(con.execute("SELECT count(*) FROM raw").fetchone()[0]),
        "pickup": counts("pickup_location_id"),
        "dropoff": counts("dropoff_location_id"),
        "hour": counts("hour(pickup_datetime)"),
        "distance": [round(float(x), 4) for x in np.quantile(dist, probs)],
        "duration": [round(float(x), 2) for x in np.quantile(dur, probs)],
        "spearman_distance_duration": round(rho, 4),
        "coupling": fit_coupling(rho),
        "days": [str(first), str(last)],
    }
    OUT.write_text(json.dumps(marginals, indent=None, separators=(",", ":")) + "\n")
    print(
        f"wrote {OUT} ({OUT.stat().st_size} bytes); spearman {rho:.3f}, w {marginals['coupling']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
