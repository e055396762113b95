"""HistGradientBoosting fit through neve against pandas + scikit-learn, extraction included.

    uv run --no-sync python benchmarks/hgb_fit.py                  # 1M and 10M rows
    uv run --no-sync python benchmarks/hgb_fit.py --quick          # 200k rows (make bench-quick)
    uv run --no-sync python benchmarks/hgb_fit.py --rows 1000000 --no-write

The data is the taxi table of ``benchmarks/fit_taxi.py`` (pickup zone, dropoff zone and
hour as text, distance, duration), in a DuckDB file. The model is
``HistGradientBoostingRegressor(max_iter=100, early_stopping=False, random_state=0)``
with the three text columns as native categories; early stopping is off so that both
sides grow the same 100 trees.

* neve: ``Pipeline([("model", HistGradientBoostingRegressor(...))]).fit(table, y=...)``:
  one query for the categories, the rows streamed as int8/int16 codes and float64.
* pandas + scikit-learn: the table fetched as Arrow and converted to pandas, the three
  columns ``astype("category")``, then ``fit`` (all timed).

Each side runs in a child process of its own, so its peak RSS (sampled every 0.1 s,
DuckDB's buffers included) is its own. "same trees" compares a digest of every tree's
nodes between the two sides.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import _common as C

TITLE = "HistGradientBoosting fit"
SIZES = [1_000_000, 10_000_000]
PARAMS = {"max_iter": 100, "early_stopping": False, "random_state": 0}


def _digest(model: Any) -> str:
    nodes = b"".join(p.nodes.tobytes() + p.raw_left_cat_bitsets.tobytes()
                     for iteration in model._predictors for p in iteration)
    return hashlib.sha256(nodes).hexdigest()[:16]


def neve_fit(db: str, memory: str) -> dict[str, Any]:
    from sklearn.ensemble import HistGradientBoostingRegressor

    import neve
    from benchmarks.fit_taxi import CATEGORICAL, NUMERIC, TARGET

    session = neve.connect(f"duckdb:///{db}")
    session.engine.con.execute(f"SET memory_limit = '{memory}'")
    table = session.table("TRIPS").select(*CATEGORICAL, NUMERIC, TARGET)
    start = time.perf_counter()
    with neve.capture_queries() as log:
        pipe = neve.Pipeline([("model", HistGradientBoostingRegressor(**PARAMS))]).fit(table, y=TARGET)
    seconds = time.perf_counter() - start
    model = pipe[-1]
    return {"seconds": seconds, "queries": len(log.scans), "bytes": log.bytes_fetched,
            "digest": _digest(model), "n_iter": int(model.n_iter_)}


def sklearn_fit(db: str) -> dict[str, Any]:
    from sklearn.ensemble import HistGradientBoostingRegressor

    from benchmarks.fit_taxi import CATEGORICAL, NUMERIC, TARGET, extract

    start = time.perf_counter()
    frame = extract(db, "TRIPS", [*CATEGORICAL, NUMERIC, TARGET])
    extracted = time.perf_counter() - start
    X = frame[[*CATEGORICAL, NUMERIC]].astype(dict.fromkeys(CATEGORICAL, "category"))
    model = HistGradientBoostingRegressor(**PARAMS).fit(X, frame[TARGET])
    return {"seconds": time.perf_counter() - start, "extract_seconds": extracted,
            "digest": _digest(model), "n_iter": int(model.n_iter_)}


def child(side: str, db: str, memory: str) -> None:
    out = neve_fit(db, memory) if side == "neve" else sklearn_fit(db)
    print(json.dumps(out), flush=True)


def run_side(side: str, db: str, memory: str, timeout: float) -> dict[str, Any]:
    from benchmarks.scale import run_child_cmd

    out, why, peak_mb = run_child_cmd([sys.executable, __file__, "--child", side, db, memory], None, timeout)
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if why is not None or not lines:
        return {"failed": why or "no result", "rss_mb": peak_mb}
    return {**json.loads(lines[-1]), "rss_mb": peak_mb}


def run(sizes: list[int], args: argparse.Namespace, log=print) -> list[dict[str, Any]]:
    import os

    import duckdb

    from benchmarks.fit_taxi import generate

    results = []
    with tempfile.TemporaryDirectory(prefix="neve-hgb-fit-", dir=args.tmp) as tmp:
        for rows in sizes:
            db = str(Path(tmp) / f"taxi_{rows}.duckdb")
            t0 = time.perf_counter()
            with duckdb.connect(db) as con:
                generate(con, rows)
            log(f"[hgb_fit] {rows:,} rows generated in {time.perf_counter() - t0:.0f} s")
            row: dict[str, Any] = {"rows": rows, "load_start": os.getloadavg()[0]}
            row["neve"] = run_side("neve", db, args.duckdb_memory, args.timeout)
            log(f"[hgb_fit]   neve: {row['neve']}")
            row["sklearn"] = run_side("sklearn", db, "", args.timeout)
            log(f"[hgb_fit]   pandas + scikit-learn: {row['sklearn']}")
            row["load_end"] = os.getloadavg()[0]
            results.append(row)
            for suffix in ("", ".wal"):
                Path(db + suffix).unlink(missing_ok=True)
    return results


def _mib(x: float | None) -> str:
    return "n/a" if x is None else (f"{x / 1024:.2f} GiB" if x >= 1024 else f"{x:.0f} MiB")


def render(results: list[dict[str, Any]], command: str) -> str:
    body = []
    for r in results:
        a, b = r["neve"], r["sklearn"]
        if "seconds" not in a or "seconds" not in b:
            body.append([f"{r['rows']:,}", a.get("failed", ""), b.get("failed", ""), "", "", "", "", ""])
            continue
        body.append([
            f"{r['rows']:,}",
            f"{C.fmt_seconds(a['seconds'])} ({a['queries']} q, {_mib(a['bytes'] / 2**20)})",
            f"{C.fmt_seconds(b['seconds'])} (extract {C.fmt_seconds(b['extract_seconds'])})",
            C.fmt_ratio(b["seconds"] / a["seconds"]),
            f"{_mib(a['rss_mb'])} / {_mib(b['rss_mb'])}",
            f"{a['rss_mb'] / b['rss_mb']:.2f}",
            "yes" if a["digest"] == b["digest"] else f"NO ({a['digest']} / {b['digest']})",
            f"{r['load_start']:.1f} / {r['load_end']:.1f}",
        ])
    table = C.markdown_table(
        ["rows", "neve (queries, fetched)", "pandas + scikit-learn", "speed-up", "peak RSS neve / pandas",
         "RSS ratio", "same trees", "load"],
        body,
    )
    return (
        C.run_header(["neve", "duckdb", "scikit-learn", "pandas"], command)
        + "\n"
        + f"`HistGradientBoostingRegressor({', '.join(f'{k}={v!r}' for k, v in PARAMS.items())})` on the taxi "
        "table (pickup zone, dropoff zone and hour as native categories; distance), extraction included. "
        "*speed-up*: pandas + scikit-learn's time over neve's. *RSS*: each side's own process, peak. "
        "*load*: 1-minute load average at the start / end of the size's run (2 cores).\n\n"
        + table
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, action="append", help="table sizes (default 1M and 10M)")
    parser.add_argument("--quick", action="store_true", help="200k rows")
    parser.add_argument("--duckdb-memory", default="4GB")
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--tmp", default=None, help="where the DuckDB files go")
    parser.add_argument("--no-write", action="store_true", help="print the section instead of writing it")
    parser.add_argument("--output", type=Path, default=C.BENCHMARKS_MD, help="the BENCHMARKS.md to write")
    parser.add_argument("--child", nargs=3, metavar=("SIDE", "DB", "MEMORY"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child)
        return 0
    sizes = args.rows or ([200_000] if args.quick else SIZES)
    command = "python benchmarks/hgb_fit.py" + (" " + " ".join(argv if argv is not None else sys.argv[1:])).rstrip()
    results = run(sizes, args)
    C.publish(TITLE, render(results, command.strip()), dry_run=args.no_write, path=args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
