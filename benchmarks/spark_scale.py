"""Spark scale: the taxi pipeline on local Spark beside DuckDB, stage by stage, and what
1B rows on a cluster would take, on paper, from the work Spark measured per stage.

    uv run --no-sync python benchmarks/spark_scale.py                # 1M and 10M rows
    uv run --no-sync python benchmarks/spark_scale.py --quick        # 200k rows (make bench-quick)
    uv run --no-sync python benchmarks/spark_scale.py --rows 100000 --no-write
    uv run --no-sync python benchmarks/spark_scale.py --from-json run.json   # render a saved run

Data: ``neve.datasets.taxi`` trips generated in DuckDB, cleaned by the flagship DAG's rules
(the same SQL as benchmarks/scale.py's clean floor) and written as Parquet files; both
engines start from those files. Each engine runs in a child process of its own
(benchmarks/_spark_stages.py: load, fit, log_model, score, metrics, drift), one after the
other, with the same budget: 2 cores and 6 GB (Spark ``local[2]`` with a 6 GB driver heap;
DuckDB with ``threads=2`` and ``memory_limit=6GB``).

The projection takes, per stage, what Spark measured at the largest size: the wall time
not spent in tasks (fixed: job start-up, planning, the driver's share), the task time per
row of the stages that scan the table, the shuffle each of those tasks wrote and the task
time of the stages that read it. It scales the scan to 1B rows over the cluster's cores,
floors it by storage bandwidth, and adds the shuffle's transfer and reduce.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import _common as C
from benchmarks._scale_stages import sql_clean
from benchmarks.fit_taxi import CATEGORICAL, NUMERIC, TARGET
from benchmarks.scale import run_child_cmd

TITLE = "Spark scale"
SIZES = [1_000_000, 10_000_000]
QUICK_SIZES = [200_000]
STAGES = ["load", "fit", "log_model", "score", "metrics", "drift"]
ENGINES = ["duckdb", "spark"]
CHILD = Path(__file__).resolve().parent / "_spark_stages.py"
CORES = 2
MEMORY_GB = 6
#: Parquet files per size, of equal rows: a multiple of the cores, so both engines' tasks get equal shares.
FILES = 8
#: Spark's default input split (spark.sql.files.maxPartitionBytes).
SPLIT_BYTES = 128 * 2**20
#: How each stage runs on a cluster (what the paragraph under the projection explains).
KIND = {
    "load": "narrow: read + write Parquet",
    "fit": "partial aggregate + shuffle of groups",
    "log_model": "2 aggregates + registry inserts",
    "score": "narrow: no shuffle",
    "metrics": "partial aggregate, 1-row shuffle",
    "drift": "partial aggregates, small shuffle",
}


def engine_url(engine: str, folder: Path) -> str:
    if engine == "duckdb":
        return f"duckdb:///{folder / 'taxi.duckdb'}?threads={CORES}&memory_limit={MEMORY_GB}GB"
    return f"spark://local[{CORES}]{folder / 'warehouse'}?spark.driver.memory={MEMORY_GB}g"


def write_parquet(rows: int, folder: Path) -> dict[str, Any]:
    """``rows`` raw trips, cleaned, as FILES Parquet files of equal rows in ``folder``."""
    import duckdb

    from neve.datasets import taxi

    start = time.perf_counter()
    con = duckdb.connect()
    con.execute(f"SET threads = {CORES}; SET memory_limit = '{MEMORY_GB}GB'; SET preserve_insertion_order = false")
    taxi(con, rows, seed=0, table="TAXI_RAW")
    con.execute(sql_clean("TAXI_RAW", "TAXI_DATA"))
    con.execute("DROP TABLE TAXI_RAW")
    folder.mkdir(parents=True)
    columns = ", ".join(["TRIP_ID", *CATEGORICAL, NUMERIC, TARGET])
    for k in range(FILES):
        con.execute(f"COPY (SELECT {columns} FROM TAXI_DATA WHERE TRIP_ID % {FILES} = {k}) "
                    f"TO '{folder / f'part-{k}.parquet'}' (FORMAT parquet)")  # fmt: skip
    kept, groups = con.execute(
        f"SELECT count(*), count(DISTINCT ({', '.join(CATEGORICAL)})) FROM TAXI_DATA"
    ).fetchone()
    files = sorted(folder.glob("*.parquet"))
    return {"kept": kept, "groups": groups, "files": len(files), "bytes": sum(f.stat().st_size for f in files),
            "seconds": time.perf_counter() - start}  # fmt: skip


def run(sizes: list[int], args: argparse.Namespace, log=print) -> dict[str, Any]:
    results: dict[str, Any] = {"sizes": sizes, "data": {}, "records": [], "failed": {}}
    with tempfile.TemporaryDirectory(prefix="neve-spark-scale-", dir=args.tmp) as tmp:
        for rows in sizes:
            folder = Path(tmp) / str(rows)
            log(f"[spark_scale] {rows:,} rows: writing Parquet")
            results["data"][str(rows)] = write_parquet(rows, folder / "parquet")
            for engine in ENGINES:
                log(f"[spark_scale] {rows:,} rows: {engine}")
                load = os.getloadavg()[0]
                cmd = [sys.executable, str(CHILD), engine_url(engine, folder), str(folder / "parquet"), str(rows)]
                out, why, peak_mb = run_child_cmd(cmd, None, args.timeout)
                for line in out.splitlines():
                    if line.startswith("{"):
                        results["records"].append({**json.loads(line), "engine": engine, "rows": rows})
                results["records"].append({"engine": engine, "rows": rows, "stage": "process", "rss_mb": peak_mb,
                                           "load_start": load, "load_end": os.getloadavg()[0]})  # fmt: skip
                if why:
                    log(f"[spark_scale]   {engine} stopped: {why}")
                    results["failed"][f"{engine} {rows}"] = why
            shutil.rmtree(folder)  # the next size needs the disk
            if args.json:  # after every size: a run stopped later keeps what it measured
                args.json.write_text(json.dumps(results, indent=1))
    return results


# --- reading the records -------------------------------------------------------------------


def by_key(results: dict[str, Any]) -> dict[tuple[str, int, str], dict[str, Any]]:
    return {(r["engine"], r["rows"], r["stage"]): r for r in results["records"]}


def spark_sums(record: dict[str, Any]) -> dict[str, float]:
    stages = record.get("spark_stages") or []
    keys = ["tasks", "task_s", "input_bytes", "output_bytes", "shuffle_write", "result_bytes"]
    out = {k: sum(s[k] for s in stages) for k in keys}
    out["stages"] = len(stages)
    return out


def size(n: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:.0f} B"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    if seconds >= 7200:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 120:
        return f"{seconds / 60:.1f} min"
    return C.fmt_seconds(seconds)


# --- the projection (on paper) -----------------------------------------------------------------


def scans(record: dict[str, Any], data_bytes: int) -> list[dict[str, Any]]:
    """The Spark stages of ``record`` that read the data (not the registry's small tables):
    those reading at least 5% of the Parquet input's size."""
    return [s for s in record.get("spark_stages") or [] if s["input_bytes"] >= 0.05 * data_bytes]


def in_stages(stages: list[dict[str, Any]]) -> float:
    """Seconds during which at least one of ``stages`` ran (stages of one query can overlap)."""
    spans = sorted(s["span_ms"] for s in stages if s.get("span_ms"))
    total, end = 0, -math.inf
    for lo, hi in spans:
        total += max(0, hi - max(lo, end))
        end = max(end, hi)
    return total / 1e3


def project(record: dict[str, Any], rows: int, data_bytes: int, target_rows: float, executors: float,
            cores: int, storage_bps: float | None, network_bps: float | None,
            time_key: str = "cpu_s") -> dict[str, float]:  # fmt: skip
    """Seconds one stage would take on ``target_rows`` over ``executors`` x ``cores``, from what
    Spark measured for it at ``rows`` on CORES local cores.

    fixed: the stage's wall time while none of its Spark stages ran (start-up, planning,
    the driver's share, registry round trips); it does not shrink with executors.
    scan: the ``time_key`` (tasks' CPU time, or their wall time ``task_s``) of the Spark stages
    that read the data, scaled by rows and spread over all cores, floored by reading and
    writing their bytes at ``storage_bps`` per executor.
    shuffle: each scanning task wrote a partial aggregate of the size measured; a cluster runs
    one task per core or per 128 MiB split, whichever is more, and moves their output at
    ``network_bps`` per executor; the reducing stages' time grows with it.
    """
    scale = target_rows / rows
    slots = executors * cores
    stages = record.get("spark_stages") or []
    fixed = max(0.0, record["seconds"] - in_stages(stages))
    reading = scans(record, data_bytes)
    reduces = [s for s in stages if s["shuffle_read"] > 0 and s["input_bytes"] == 0]
    scan = sum(s[time_key] for s in reading) * scale / slots
    io_bytes = sum(s["input_bytes"] + s["output_bytes"] for s in reading) * scale
    io = io_bytes / (executors * storage_bps) if storage_bps else 0.0
    shuffle = 0.0
    for s in reading:
        tasks = max(slots, math.ceil(s["input_bytes"] * scale / SPLIT_BYTES))
        shuffle += s["shuffle_write"] / s["tasks"] * tasks
    read = sum(s["shuffle_read"] for s in reduces)
    reduce = sum(s[time_key] for s in reduces) * (shuffle / read if read else 0.0) / slots
    transfer = shuffle / (executors * network_bps) if network_bps else 0.0
    total = fixed + max(scan, io) + transfer + reduce
    return {"fixed": fixed, "scan": scan, "io": io, "shuffle_bytes": shuffle, "transfer": transfer,
            "reduce": reduce, "total": total}  # fmt: skip


# --- the report ------------------------------------------------------------------------------


def size_table(results: dict[str, Any], rows: int) -> str:
    t = by_key(results)
    data = results["data"][str(rows)]
    head = ["stage", "DuckDB", "Spark local[2]", "Spark / DuckDB", "Spark rows/s", "Spark rows/s per core",
            "queries (DuckDB / Spark)", "Spark jobs / stages / tasks", "Spark shuffle",
            "fetched to the client (DuckDB / Spark)"]  # fmt: skip
    body, totals = [], {"duckdb": 0.0, "spark": 0.0}
    start = [t.get((e, rows, "start"), {}).get("seconds") for e in ENGINES]
    body.append(["start (connect)", duration(start[0]), duration(start[1]), *[""] * 7])
    for stage in STAGES:
        d, s = (t.get((e, rows, stage)) for e in ENGINES)
        if d is None and s is None:
            continue
        for e, r in (("duckdb", d), ("spark", s)):
            totals[e] += r["seconds"] if r else math.nan
        cells = [stage, duration(d and d["seconds"]), duration(s and s["seconds"])]
        if s is None or d is None:
            body.append(cells + ["n/a"] * 7)
            continue
        w = spark_sums(s)
        per_s = data["kept"] / s["seconds"]
        cells += [C.fmt_ratio(s["seconds"] / d["seconds"]), f"{per_s:,.0f}", f"{per_s / CORES:,.0f}",
                  f"{d['queries']} / {s['queries']}", f"{s['jobs']} / {w['stages']} / {w['tasks']}",
                  size(w["shuffle_write"]), f"{size(d['bytes_fetched'])} / {size(s['bytes_fetched'])}"]  # fmt: skip
        body.append(cells)
    ratio = totals["spark"] / totals["duckdb"] if totals["duckdb"] else None
    body.append(["**total** (without start)", f"**{duration(totals['duckdb'])}**",
                 f"**{duration(totals['spark'])}**", C.fmt_ratio(ratio), *[""] * 6])  # fmt: skip
    lines = [f"**{rows:,} rows generated, {data['kept']:,} after cleaning** ({size(data['bytes'])} of Parquet in "
             f"{data['files']} file(s); {data['groups']:,} pickup x dropoff x hour groups):\n",
             C.markdown_table(head, body)]  # fmt: skip
    done = [t.get((e, rows, "done")) for e in ENGINES]
    if all(done):
        diff = max(abs(done[0][k] - done[1][k]) / max(abs(done[0][k]), 1e-300) for k in ("r2", "mse", "intercept"))
        lines.append(f"Same model on both engines: {done[0]['features']} coefficients, R² {done[0]['r2']:.6f} "
                     f"(DuckDB) and {done[1]['r2']:.6f} (Spark); R², MSE and intercept agree to a relative "
                     f"{diff:.1e}.\n")  # fmt: skip
    procs = [t.get((e, rows, "process"), {}) for e in ENGINES]
    lines.append("Peak resident memory of each child process tree (Spark's includes its JVM): "
                 + ", ".join(f"{e} {_mib(p['rss_mb']) if p else 'n/a'}"
                             for e, p in zip(ENGINES, procs, strict=True))
                 + "; load average when each started / ended: "
                 + ", ".join(f"{e} {p.get('load_start', math.nan):.1f} / {p.get('load_end', math.nan):.1f}"
                             for e, p in zip(ENGINES, procs, strict=True)) + ".\n")  # fmt: skip
    return "\n".join(lines)


def _mib(mb: float) -> str:
    return f"{mb / 1024:.1f} GiB" if mb >= 1024 else f"{mb:.0f} MiB"


def projection_table(results: dict[str, Any], rows: int, args: argparse.Namespace) -> str:
    t = by_key(results)
    storage, network = args.storage_mbps * 1e6, args.network_mbps * 1e6
    head = ["stage", "on a cluster", "fixed (measured)", "core-s per 1M rows: CPU (task wall)", "shuffle at 1B rows",
            *(f"{e} x {args.executor_cores} cores" for e in args.executors)]  # fmt: skip
    body, totals, walls = [], [0.0] * len(args.executors), [0.0] * len(args.executors)
    for stage in STAGES:
        r = t.get(("spark", rows, stage))
        if r is None:
            continue
        data_bytes, kept = results["data"][str(rows)]["bytes"], results["data"][str(rows)]["kept"]
        p, w = ([project(r, kept, data_bytes, args.target_rows, e, args.executor_cores, storage, network, key)
                 for e in args.executors] for key in ("cpu_s", "task_s"))  # fmt: skip
        cpu_s, task_s = (sum(s[k] for s in scans(r, data_bytes)) * 1e6 / kept for k in ("cpu_s", "task_s"))
        totals = [a + b["total"] for a, b in zip(totals, p, strict=True)]
        walls = [a + b["total"] for a, b in zip(walls, w, strict=True)]
        body.append([stage, KIND[stage], duration(p[0]["fixed"]), f"{cpu_s:.2f} ({task_s:.2f})",
                     f"{size(p[0]['shuffle_bytes'])} - {size(p[-1]['shuffle_bytes'])}",
                     *(duration(x["total"]) for x in p)])  # fmt: skip
    body.append(["**total**", "from the tasks' CPU time", "", "", "", *(f"**{duration(x)}**" for x in totals)])
    body.append(["total", "from the tasks' wall time on this shared machine", "", "", "",
                 *(duration(x) for x in walls)])  # fmt: skip
    return C.markdown_table(head, body)


def check_line(results: dict[str, Any], small: int, large: int) -> str:
    """How well the model, fed the smaller run, predicts the larger one on this machine."""
    t = by_key(results)
    predicted = measured = 0.0
    for stage in STAGES:
        a, b = t.get(("spark", small, stage)), t.get(("spark", large, stage))
        if a is None or b is None:
            return ""
        data = results["data"]
        predicted += project(a, data[str(small)]["kept"], data[str(small)]["bytes"], data[str(large)]["kept"], 1,
                             CORES, None, None, time_key="task_s")["total"]  # fmt: skip
        measured += b["seconds"]
    return (f"Check of the model on this machine: fed the {small:,}-row run, it predicts "
            f"{duration(predicted)} for the {large:,}-row run on `local[2]`; measured {duration(measured)}.\n")


def solve_ms(features: int) -> float:
    """Milliseconds numpy takes for one dense solve of a ``features`` x ``features`` system (the
    size of the fit's normal equations), the best of five."""
    import numpy as np

    a = np.random.default_rng(0).standard_normal((features + 50, features))
    gram, rhs = a.T @ a, a.T @ np.ones(features + 50)
    best = math.inf
    for _ in range(5):
        start = time.perf_counter()
        np.linalg.solve(gram, rhs)
        best = min(best, time.perf_counter() - start)
    return best * 1e3


def cluster_text(results: dict[str, Any], rows: int, args: argparse.Namespace) -> str:
    t = by_key(results)
    data = results["data"][str(rows)]
    fit = t[("spark", rows, "fit")]
    fit_scans = scans(fit, data["bytes"])
    per_task = data["kept"] / max(1, sum(s["tasks"] for s in fit_scans[:1]))
    splits = math.ceil(data["bytes"] * args.target_rows / data["kept"] / SPLIT_BYTES)
    ends = (args.executors[0], args.executors[-1])
    on_cluster = [args.target_rows / max(e * args.executor_cores, splits) for e in ends]
    error = ["under" if n > per_task else "over" for n in on_cluster]
    features = t[("spark", rows, "done")]["features"]
    solve = results.get("solve_ms") or solve_ms(features)
    text = f"""
Scoring on Spark. Until 2026-12-07 each fused one-hot block was written as a CASE (223
branches for the dropoff zone), and scoring was Spark's heaviest stage (11.4x DuckDB at 10M
rows). Whole-stage code generation was on (the plan's `*(1) Project`), but it turned each
such CASE into a Java method longer than the JVM compiles to machine code (8,000 bytes of
bytecode), so the projection ran in the JVM's interpreter: 8.7 s for the taxi scoring at 1M
rows, against 1.1 s for the same values looked up in constant maps
(`COALESCE(try_element_at(map('1', w1, ...), zone), 0)`, the same sum to the last digit).
Spark now gets the maps; DuckDB, PostgreSQL and Snowflake keep the CASE, which they run
fast.

What a cluster changes. Every neve stage above is one SQL statement, which Spark runs as one
or a few jobs (the counts above include Spark's own: adaptive execution re-plans after a
shuffle, a table write commits in a job of its own, the registry's reads and inserts are jobs
too). *Narrow* stages, scoring (`mv.run`, one SELECT written to a table) and the load, have no
shuffle: each executor reads, computes and writes its own splits, so they scale with executors
until storage bandwidth is the limit. *Aggregates* (the fit, metrics, drift, the baseline profile
in log_model) are a map-side partial aggregate per task and one shuffle of those partial states.
Metrics and drift shuffle bytes to kilobytes per task and scale like the narrow stages. The fit
is the exception: its one query groups by pickup zone x dropoff zone x hour (here
{data['groups']:,} groups; at most 265 x 265 x 24, about 1.7M) and every task writes its partial
sums for each group it saw, so its shuffle grows with the number of tasks rather than with rows,
and all the groups go to the driver ({size(t[("spark", rows, "fit")]["bytes_fetched"])} here), which
assembles XᵀX from them. That driver part grows with the groups and the feature count, not with
rows, and does not shrink with executors. Neither do: job start-up and planning (the *fixed*
column, which also holds that driver part and the registry's round trips), the solve of the
normal equations on the driver ({features} x {features}: {solve:.1f} ms with numpy
here), collecting the categories, and the registry's writes (a few single-row INSERTs).

The projection is **on paper**, not measured. It assumes (1) the work of the stages that scan
the data scales linearly with rows and divides evenly over cores: it uses the tasks' CPU time
(Spark's `executorCpuTime`), because on this shared machine tasks also waited for a CPU; CPU time
leaves out garbage collection and waiting for I/O, so the last row redoes the sum from the tasks'
wall time, which counts the waiting too: a real cluster's figure should fall between the two;
(2) storage delivers {args.storage_mbps:g} MB/s per executor
to read and write Parquet, the network {args.network_mbps:g} MB/s per executor for shuffles (assumed,
not measured); (3) each stage's fixed cost is what was measured here (a cluster adds network round
trips and executor scheduling, so it is a floor); (4) each scanning task's partial aggregate is as
large as measured here, where a task held {per_task:,.0f} rows; on the cluster a task holds
{on_cluster[0] / 1e6:,.2g}M rows ({args.executors[0]} executors) to {on_cluster[-1] / 1e6:,.2g}M
({args.executors[-1]}), and the fit's groups per task grow with its rows, so the fit's shuffle is
{error[0]}-estimated at {args.executors[0]} executors and {error[1]}-estimated at {args.executors[-1]}.
"""
    # One line per paragraph, as the other sections are written.
    return "\n\n".join(" ".join(paragraph.split()) for paragraph in text.strip().split("\n\n")) + "\n"


def heaviest(results: dict[str, Any], rows: int) -> str:
    """A sentence on the stage that costs Spark the most at ``rows``."""
    t = by_key(results)
    seconds = {st: t[("spark", rows, st)]["seconds"] for st in STAGES}
    stage = max(seconds, key=seconds.get)
    duck = t[("duckdb", rows, stage)]["seconds"]
    return (f"At {rows:,} rows the heaviest stage on Spark is {stage}: {seconds[stage] / sum(seconds.values()):.0%} "
            f"of its pipeline, {seconds[stage] / duck:.1f}x DuckDB's time for the same query.")


def render(results: dict[str, Any], args: argparse.Namespace) -> str:
    sizes = [n for n in results["sizes"] if str(n) in results["data"]]
    done = [n for n in sizes if all((e, n, "done") in by_key(results) for e in ENGINES)]
    lines = [
        "The taxi pipeline (one-hot on pickup zone, dropoff zone and hour, MaxAbs on distance, "
        "`neve.linear_model.LinearRegression` fitted from statistics in one query) on local Spark beside "
        f"DuckDB, from the same Parquet files, with the same budget: {CORES} cores and {MEMORY_GB} GB each "
        f"(Spark `local[{CORES}]` with `spark.driver.memory={MEMORY_GB}g`, everything else Spark's and neve's "
        f"defaults; DuckDB with `threads={CORES}`, `memory_limit={MEMORY_GB}GB`), one engine after the other, "
        "each in its own process. Stages: load (the Parquet "
        "files into a table, `session.load_files`), fit, log_model (`Registry.log_model` with the training "
        "data: the drift baseline's two scans and the registry's inserts), score (`mv.run` written to a "
        "table: one SELECT), metrics (`neve.metrics.regression_metrics`: one query) and drift (`mv.drift`: "
        "one query). Spark's jobs, tasks and shuffle bytes are read from its status store per stage; "
        "*queries* are neve's queries that return rows and *fetched to the client* what they returned "
        "(`neve.capture_queries`; the load and the scoring CTAS return nothing). The machine is shared "
        "with other jobs: the load average is given for each run, and Spark's tasks' CPU time beside their "
        "wall time below.\n",
        results["header"],
    ]
    for rows in sizes:
        lines.append(size_table(results, rows))
    if len(done) > 1:
        t = by_key(results)
        ratios = [sum(t[("spark", n, st)]["seconds"] for st in STAGES) / sum(t[("duckdb", n, st)]["seconds"]
                                                                               for st in STAGES) for n in done]
        lines.append("Spark `local[2]` over DuckDB, whole pipeline without start-up: "
                     + ", ".join(f"{r:.1f}x at {n:,} rows" for r, n in zip(ratios, done, strict=True))
                     + ". On one machine Spark pays a cost per job (scheduling, planning, a JVM between "
                     "Python and the data) that embedded DuckDB does not, and writes shuffle files where "
                     "DuckDB aggregates in memory; the gap "
                     + ("narrows as that fixed share shrinks with more rows" if ratios[-1] < ratios[0]
                        else "does not narrow with rows: the per-row work differs too")
                     + ". " + heaviest(results, done[-1]) + "\n")  # fmt: skip
    for key, why in results["failed"].items():
        lines.append(f"**Stopped**: {key} rows: {why}.\n")
    if done:
        largest = done[-1]
        lines.append(f"### 1B rows on a cluster, on paper\n\nFrom the Spark run at {largest:,} rows, per stage "
                     f"(see the assumptions below; storage {args.storage_mbps:g} MB/s and network "
                     f"{args.network_mbps:g} MB/s per executor):\n")  # fmt: skip
        lines.append(projection_table(results, largest, args))
        if len(done) > 1:
            lines.append(check_line(results, done[0], largest))
        lines.append(cluster_text(results, largest, args))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=SIZES)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_SIZES[0]:,} rows only (make bench-quick)")
    parser.add_argument("--timeout", type=float, default=1800, help="per engine and size, seconds")
    parser.add_argument("--target-rows", type=float, default=1e9)
    parser.add_argument("--executors", type=int, nargs="+", default=[10, 50, 200])
    parser.add_argument("--executor-cores", type=int, default=4)
    parser.add_argument("--storage-mbps", type=float, default=250, help="per executor, assumed")
    parser.add_argument("--network-mbps", type=float, default=1000, help="per executor, assumed")
    parser.add_argument("--tmp", help="folder for the Parquet files and tables (default: the system temp)")
    parser.add_argument("--output", type=Path, default=C.BENCHMARKS_MD)
    parser.add_argument("--json", type=Path, help="also write the raw records here")
    parser.add_argument("--from-json", type=Path, help="render a saved --json run instead of measuring")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    if args.from_json:
        results = json.loads(args.from_json.read_text())
    else:
        results = run(QUICK_SIZES if args.quick else sorted(args.rows), args)
        results["seconds"] = time.perf_counter() - started
        results["header"] = C.run_header(["neve", "pyspark", "duckdb", "ibis-framework"])
        done = [r for r in results["records"] if r["stage"] == "done"]
        results["solve_ms"] = solve_ms(done[-1]["features"]) if done else None
        given = " ".join(argv if argv is not None else sys.argv[1:])
        results["command"] = f"python benchmarks/spark_scale.py {given}".strip()
        if args.json:
            args.json.write_text(json.dumps(results, indent=1))
    text = render(results, args) + f"\nThis run (`{results['command']}`) took {duration(results['seconds'])}.\n"
    C.publish(TITLE, text, dry_run=args.no_write, path=args.output)
    # A size too large for this machine is a result; failing at the smallest is a failure.
    smallest = min(results["sizes"])
    return 1 if any(key.endswith(f" {smallest}") for key in results["failed"]) else 0


if __name__ == "__main__":
    sys.exit(main())
