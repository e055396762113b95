"""Taxi pipeline fit: neve's one-query fit in the engine against pandas + scikit-learn.

    uv run --no-sync python benchmarks/fit_taxi.py                 # 1M, 10M, 50M rows
    uv run --no-sync python benchmarks/fit_taxi.py --quick         # 200k rows (make bench-quick)
    uv run --no-sync python benchmarks/fit_taxi.py --rows 300000 --no-write

The pipeline is the flagship DAG's: one-hot on pickup zone, dropoff zone and hour,
MaxAbs on distance, LinearRegression on the trip duration.

* neve: ``Pipeline([OneHotEncoder, MaxAbsScaler, neve.linear_model.LinearRegression])``
  fitted on the DuckDB table (one aggregate query, no one-hot column, no extract);
  DuckDB runs embedded in the same process with ``memory_limit`` set (1GB at 50M rows).
* pandas + scikit-learn: the table fetched as Arrow and converted to pandas (included
  in the time), ``ColumnTransformer(OneHotEncoder (sparse), MaxAbsScaler)`` and
  ``LinearRegression`` (scikit-learn's sparse least squares).

Rows are the real samples in data/nyc_taxi/ (2019-01 and 2019-02, cleaned by the
DAG's rules), replicated and perturbed inside DuckDB (:func:`generate`): distance and
duration scaled by a per-row factor, 30% of dropoff zones redrawn from the sample,
a quarter of the hours moved by one, so the zone x zone x hour combinations grow
with the table as they do in the full data. Each side runs in a child process of
its own, so its peak RSS (``VmHWM``) is its own; this process kills a child past
``--pandas-cap-gib`` (pandas is not expected to fit 50M rows on this machine).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import _common as C

TITLE = "Taxi pipeline fit"
SIZES = [1_000_000, 10_000_000, 50_000_000]
REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data" / "nyc_taxi"
MONTHS = ("2019-01", "2019-02")
CATEGORICAL = ["PICKUP_LOCATION_ID", "DROPOFF_LOCATION_ID", "HOUR_OF_DAY"]
NUMERIC = "TRIP_DISTANCE"
TARGET = "TRIP_DURATION_SEC"
MAX_DURATION_SEC = 4 * 3600
#: neve's DuckDB memory limit from this many rows on (the issue's 50M-row claim).
LOW_MEMORY_FROM = 50_000_000


# --- data ------------------------------------------------------------------------------


def generate(con: Any, rows: int, table: str = "TRIPS") -> None:
    """``rows`` trips in ``table``, replicated and perturbed from the real samples, in SQL."""
    files = [str(DATA / f"yellow_tripdata_sample_{m}.csv") for m in MONTHS]
    duration = "(epoch(dropoff_datetime) - epoch(pickup_datetime))::DOUBLE"
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE taxi_sample AS
        SELECT row_number() OVER (ORDER BY pickup_datetime, pickup_location_id, dropoff_location_id,
                                  trip_distance) - 1 AS rid,
               pickup_location_id::VARCHAR AS p, dropoff_location_id::VARCHAR AS d,
               hour(pickup_datetime) AS h, trip_distance::DOUBLE AS dist, {duration} AS dur
        FROM read_csv(?, header = true, strict_mode = false, union_by_name = true)
        WHERE pickup_datetime IS NOT NULL AND {duration} > 0 AND {duration} <= {MAX_DURATION_SEC}
          AND trip_distance > 0 AND pickup_location_id IS NOT NULL AND dropoff_location_id IS NOT NULL""",
        [files],
    )
    (n,) = con.execute("SELECT count(*) FROM taxi_sample").fetchone()
    # hash(i, k) is a deterministic uniform per row and purpose; u(k) maps it to [0, 1).
    u = lambda k: f"((hash(g.i, {k}) % 1000000)::DOUBLE / 1e6)"  # noqa: E731
    con.execute(
        f"""CREATE OR REPLACE TABLE {table} AS
        WITH g AS (SELECT range AS i, range % {n} AS copy_of, (hash(range, 2) % {n})::BIGINT AS other
                   FROM range({int(rows)}))
        SELECT s.p AS PICKUP_LOCATION_ID,
               CASE WHEN {u(1)} < 0.3 THEN o.d ELSE s.d END AS DROPOFF_LOCATION_ID,
               lpad(((s.h + CASE WHEN {u(3)} < 0.25 THEN (hash(g.i, 4) % 3)::INTEGER - 1 ELSE 0 END + 24)
                     % 24)::VARCHAR, 2, '0') AS HOUR_OF_DAY,
               round(s.dist * (0.8 + 0.4 * {u(5)}), 3) AS {NUMERIC},
               round(s.dur * (0.8 + 0.4 * {u(5)}) * (0.9 + 0.2 * {u(6)})) AS {TARGET}
        FROM g JOIN taxi_sample s ON s.rid = g.copy_of JOIN taxi_sample o ON o.rid = g.other"""
    )


# --- the two sides, each in a child process ----------------------------------------------


def peak_rss_mb() -> float:
    """This process's peak resident memory since it started (DuckDB's buffers included)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def coefficients(names: Any, coef: Any) -> dict[str, float]:
    return {str(n): float(c) for n, c in zip(names, coef, strict=True)}


def neve_pipeline(estimator: Any) -> Any:
    from neve import Pipeline
    from neve.preprocessing import MaxAbsScaler, OneHotEncoder

    return Pipeline([
        ("ohe", OneHotEncoder(input_cols=CATEGORICAL, handle_unknown="ignore")),
        ("mas", MaxAbsScaler(input_cols=[NUMERIC])),
        ("model", estimator),
    ])


def sklearn_pipeline(estimator: Any) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import MaxAbsScaler, OneHotEncoder

    prep = ColumnTransformer([("ohe", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
                              ("mas", MaxAbsScaler(), [NUMERIC])], verbose_feature_names_out=False)
    return Pipeline([("prep", prep), ("model", estimator)])


def neve_fit(db: str, memory: str, estimator: Any, table: str = "TRIPS") -> dict[str, Any]:
    """Fit the neve pipeline on ``table``; time, queries, bytes fetched and coefficients."""
    import neve
    import neve.pipeline  # imports are not the fit: done before the clock starts
    import neve.preprocessing

    session = neve.connect(f"duckdb:///{db}")
    session.engine.con.execute(f"SET memory_limit = '{memory}'")
    start = time.perf_counter()
    with neve.capture_queries() as log:
        pipe = neve_pipeline(estimator).fit(session.table(table))
    seconds = time.perf_counter() - start
    model = pipe.steps[-1][1]
    session.close()
    return {"seconds": seconds, "queries": len(log.scans), "bytes": log.bytes_fetched,
            "coef": coefficients(model.feature_names_in_, model.coef_.ravel()),
            "intercept": float(model.intercept_ if model.coef_.ndim == 1 else model.intercept_[0])}


def extract(db: str, table: str, columns: list[str]) -> Any:
    """The table as pandas, as a scikit-learn user gets it out of DuckDB (Arrow, then pandas)."""
    import duckdb

    with duckdb.connect(db, read_only=True) as con:
        return con.execute(f"SELECT {', '.join(columns)} FROM {table}").to_arrow_table().to_pandas()


def sklearn_fit(db: str, estimator: Any, label: Any = None, table: str = "TRIPS") -> dict[str, Any]:
    """Extract, then fit the scikit-learn pipeline; ``label`` maps the target column."""
    import sklearn.compose  # imports are not the fit: done before the clock starts
    import sklearn.pipeline
    import sklearn.preprocessing  # noqa: F401

    start = time.perf_counter()
    frame = extract(db, table, [*CATEGORICAL, NUMERIC, TARGET])
    extracted = time.perf_counter() - start
    y = frame[TARGET] if label is None else label(frame[TARGET])
    pipe = sklearn_pipeline(estimator).fit(frame[[*CATEGORICAL, NUMERIC]], y)
    seconds = time.perf_counter() - start
    model = pipe[-1]
    return {"seconds": seconds, "extract_seconds": extracted,
            "coef": coefficients(pipe[0].get_feature_names_out(), model.coef_.ravel()),
            "intercept": float(model.intercept_ if model.coef_.ndim == 1 else model.intercept_[0])}


def child(side: str, db: str, memory: str) -> None:
    if side == "neve":
        from neve.linear_model import LinearRegression

        out = neve_fit(db, memory, LinearRegression(label_cols=TARGET))
    else:
        from sklearn.linear_model import LinearRegression

        out = sklearn_fit(db, LinearRegression())
    out["rss_mb"] = peak_rss_mb()
    print(json.dumps(out), flush=True)


def run_side(side: str, db: str, memory: str, cap_gib: float | None, timeout: float) -> dict[str, Any]:
    """One side in a child process watched for memory; its JSON result or why it stopped."""
    from benchmarks.scale import run_child_cmd

    cmd = [sys.executable, __file__, "--child", side, db, memory]
    out, why, watched_mb = run_child_cmd(cmd, cap_gib * 2**30 if cap_gib else None, timeout)
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if why is not None or not lines:
        return {"failed": why or "no result", "rss_mb": watched_mb}
    return json.loads(lines[-1])


def coef_distance(a: dict[str, float], b: dict[str, float]) -> tuple[float, float]:
    """Max absolute difference over the shared coefficients, and that relative to max |coef|."""
    shared = [k for k in a if k in b]
    if len(shared) != len(a) or len(shared) != len(b):
        print(f"the two fits name different features: {sorted(set(a) ^ set(b))[:10]}", file=sys.stderr)
        return float("nan"), float("nan")
    diff = max(abs(a[k] - b[k]) for k in shared)
    return diff, diff / max(abs(v) for v in b.values())


# --- the run and the report -------------------------------------------------------------


def run(sizes: list[int], args: argparse.Namespace, log=print) -> list[dict[str, Any]]:
    import duckdb

    results = []
    with tempfile.TemporaryDirectory(prefix="neve-fit-taxi-", dir=args.tmp) as tmp:
        for rows in sizes:
            db = str(Path(tmp) / f"taxi_{rows}.duckdb")
            t0 = time.perf_counter()
            with duckdb.connect(db) as con:
                generate(con, rows)
                groups = con.execute(f"SELECT count(*) FROM (SELECT DISTINCT {', '.join(CATEGORICAL)} "
                                     "FROM TRIPS)").fetchone()[0]
            log(f"[fit_taxi] {rows:,} rows generated in {time.perf_counter() - t0:.0f} s ({groups:,} groups)")
            memory = args.low_memory if rows >= LOW_MEMORY_FROM else args.duckdb_memory
            row: dict[str, Any] = {"rows": rows, "groups": groups, "memory": memory}
            row["neve"] = run_side("neve", db, memory, None, args.timeout)
            log(f"[fit_taxi]   neve: {row['neve'].get('seconds', row['neve'].get('failed'))}")
            if rows > args.pandas_max_rows:
                row["pandas"] = {"skipped": f"above --pandas-max-rows {args.pandas_max_rows:,}"}
            else:
                row["pandas"] = run_side("pandas", db, "", args.pandas_cap_gib, args.timeout)
            log(f"[fit_taxi]   pandas + scikit-learn: {row['pandas']}"[:300])
            results.append(row)
            for suffix in ("", ".wal"):
                Path(db + suffix).unlink(missing_ok=True)
    return results


def mib(x: float | None) -> str:
    return "n/a" if x is None else (f"{x / 1024:.1f} GiB" if x >= 1024 else f"{x:.0f} MiB")


def render(results: list[dict[str, Any]], args: argparse.Namespace, command: str) -> str:
    body, head = [], []
    for r in results:
        a, b = r["neve"], r["pandas"]
        ratio = b["seconds"] / a["seconds"] if "seconds" in a and "seconds" in b else None
        if "seconds" in b and "seconds" in a:
            diff, rel = coef_distance(a["coef"], b["coef"])
            distance = f"{diff:.2g} s ({rel:.1e} of max coef)"
            pandas_cell = f"{C.fmt_seconds(b['seconds'])} (extract {C.fmt_seconds(b['extract_seconds'])})"
        else:
            distance = "n/a"
            why = b.get("skipped") or b.get("failed")
            pandas_cell = f"failed: {why}" if "failed" in b else f"skipped: {why}"
        neve_cell = C.fmt_seconds(a["seconds"]) if "seconds" in a else f"failed: {a['failed']}"
        body.append([f"{r['rows']:,}", f"{r['groups']:,}", neve_cell, mib(a.get("rss_mb")), r["memory"],
                     str(a.get("queries", "n/a")), _bytes(a.get("bytes")), pandas_cell,
                     mib(b.get("rss_mb")), C.fmt_ratio(ratio), distance])
        if ratio:
            head.append(f"{r['rows'] / 1e6:g}M rows **{ratio:.1f}x**")
        elif "seconds" in a:
            head.append(f"{r['rows'] / 1e6:g}M rows: neve {C.fmt_seconds(a['seconds'])} with "
                        f"memory_limit {r['memory']}, pandas + scikit-learn "
                        + ("failed" if "failed" in b else "not run"))
    lines = [
        C.run_header(["neve", "duckdb", "ibis-framework", "scikit-learn", "pandas", "pyarrow"], command), "",
        "**Headline** (pandas + scikit-learn time / neve time): " + "; ".join(head) + ".\n",
        "One-hot on pickup zone, dropoff zone and hour, MaxAbs on distance, LinearRegression on the trip "
        "duration. neve: `Pipeline([OneHotEncoder, MaxAbsScaler, neve.linear_model.LinearRegression])."
        "fit(table)` on the DuckDB table (DuckDB embedded in the same process, so its RSS includes "
        "DuckDB's buffers, bounded by `memory_limit`). pandas + scikit-learn: Arrow fetch and "
        "`to_pandas()` (timed as extract, included in the total), `ColumnTransformer(OneHotEncoder "
        "(sparse), MaxAbsScaler)` and `LinearRegression` (its sparse least-squares solver). "
        "*Groups*: distinct (pickup, dropoff, hour) combinations, the rows of neve's grouped statistics. "
        "*Queries* / *fetched*: what `neve.capture_queries` saw leave the engine during the fit. "
        "*Coefficient distance*: max |Δcoef| between the two fits (duration in seconds); neve's is the "
        "exact least-squares solution, scikit-learn's sparse solver stops at its tolerance.\n",
        C.markdown_table(["rows", "groups", "neve", "neve peak RSS", "DuckDB memory_limit", "queries",
                          "fetched", "pandas + scikit-learn", "pandas peak RSS", "ratio",
                          "coefficient distance"], body),
        f"\nMethod. `benchmarks/fit_taxi.py` ({args.argv}). Data: the cleaned 2019-01/02 samples in "
        "data/nyc_taxi/, replicated and perturbed inside DuckDB (see `generate`), one DuckDB file per size. "
        f"Each side runs once in its own child process; peak RSS is the child's `ru_maxrss`; a pandas "
        f"child past {args.pandas_cap_gib:g} GiB RSS is killed and reported as failed. Load average when "
        f"the run started: {args.load:.1f} (2 cores, shared).\n",
    ]
    return "\n".join(lines)


def _bytes(n: int | None) -> str:
    if n is None:
        return "n/a"
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 1024:.1f} KiB"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        child(*argv[1:4])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=SIZES)
    parser.add_argument("--quick", action="store_true", help="200k rows (make bench-quick)")
    parser.add_argument("--duckdb-memory", default="4GB", help="neve's DuckDB memory_limit below 50M rows")
    parser.add_argument("--low-memory", default="1GB", help=f"neve's memory_limit from {LOW_MEMORY_FROM:,} rows")
    parser.add_argument("--pandas-cap-gib", type=float, default=8.0)
    parser.add_argument("--pandas-max-rows", type=int, default=10**12, help="skip pandas above this size")
    parser.add_argument("--timeout", type=float, default=1800, help="per child, seconds")
    parser.add_argument("--tmp", help="folder for the DuckDB files (default: the system temp)")
    parser.add_argument("--output", type=Path, default=C.BENCHMARKS_MD)
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    args.argv = " ".join(argv) or "defaults"
    args.load = os.getloadavg()[0]
    sizes = [200_000] if args.quick else sorted(args.rows)
    results = run(sizes, args)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    command = "python benchmarks/fit_taxi.py" + (" --quick" if args.quick else "")
    C.publish(TITLE, render(results, args, command), dry_run=args.no_write, path=args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
