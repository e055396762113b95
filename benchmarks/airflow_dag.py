"""Airflow overhead: the flagship DAG end to end through ``dag.test()``, at the demo's
20k rows and at 10M synthetic rows.

    uv run --no-sync python benchmarks/airflow_dag.py                  # 20k and 10M rows
    uv run --no-sync python benchmarks/airflow_dag.py --quick          # 20k rows (the demo)

The 20k run uses the repository's sample CSVs (2019-01 and 2019-02), as ``make demo``
does. For larger sizes ``neve.datasets.taxi`` generates the rows in DuckDB, which
writes them as the two monthly CSVs the DAG's load tasks read, in a temporary
folder that ``NEVE_TAXI_DATA`` points at. Each run is a fresh child process with a
fresh Airflow home (SQLite metadata) and DuckDB file, watched by the same memory
watchdog as the scale benchmark. The DAG is measured as it is in this checkout: a
``train_sample_rows`` parameter is passed only if the DAG declares one.

Reported: the child's wall time (interpreter and Airflow start-up, metadata DB,
``dag.test()``), ``dag.test()`` alone, the sum of the task instances' own
durations, and the difference (what Airflow adds around the tasks). The start-up of
one external-python task is measured by benchmarks/envs.py (## Task environments).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import _common as C
from benchmarks.scale import run_child_cmd

REPO = Path(__file__).resolve().parents[1]
TITLE = "Airflow overhead"
DAG_ID = "taxi_trip_duration"
MONTHS = ("2019-01", "2019-02")


def child(sample_rows: int) -> None:
    """Inside the child: metadata DB, DagBag, one dag.test(); print one JSON line."""
    t0 = time.perf_counter()
    from airflow.dag_processing.dagbag import BundleDagBag
    from airflow.utils import db

    db.initdb()
    # As Airflow parses a bundle: its folder on sys.path, where the taxi DAGs import their
    # shared tasks from (taxi_tasks.py); a plain DagBag leaves it off and loads no DAG.
    folder = os.environ["AIRFLOW__CORE__DAGS_FOLDER"]
    dag = BundleDagBag(folder, bundle_path=Path(folder)).dags[DAG_ID]
    conf: dict[str, object] = {}
    if "train_sample_rows" in dag.params:
        conf["train_sample_rows"] = sample_rows
    if "auto_approve" in dag.params:
        # Nobody answers the promotion's approval here: without it, dag.test() waited for a
        # person until the child's timeout (30 minutes of every CI run's bench-quick).
        conf["auto_approve"] = True
    conf = conf or None
    t1 = time.perf_counter()
    run = dag.test(run_conf=conf)
    t2 = time.perf_counter()
    tasks = {ti.task_id: {"state": str(ti.state), "seconds": ti.duration or 0.0,
                          "external": "External" in type(dag.get_task(ti.task_id)).__name__}
             for ti in run.get_task_instances()}  # fmt: skip
    print(json.dumps({"state": str(run.state), "setup": t1 - t0, "dag_test": t2 - t1,
                      "tasks": tasks, "conf": conf}), flush=True)  # fmt: skip


# What an external-python task of the DAG does before its first query, timed inside the
# env's interpreter: the imports train and predict make, then a connection.
_STARTUP_PROBE = """
import json, sys, time
t0 = time.perf_counter()
import neve
from neve import Registry
import neve.scoring, neve.metrics, sklearn.linear_model
t1 = time.perf_counter()
neve.connect(sys.argv[1]).close()
t2 = time.perf_counter()
print(json.dumps({"imports": t1 - t0, "connect": t2 - t1}))
"""


def task_startup(url: str) -> dict[str, float]:
    """Start-up of one external-python task in the taxi env: interpreter start, imports,
    connect (a warm second run: the first pays the page cache)."""
    import subprocess

    import neve.envs

    python = neve.envs.python("taxi", project=REPO)
    out: dict[str, float] = {}
    for _ in range(2):
        t = time.perf_counter()
        done = subprocess.run([python, "-c", _STARTUP_PROBE, url], capture_output=True, text=True, check=True)
        wall = time.perf_counter() - t
        out = json.loads(done.stdout.strip().splitlines()[-1])
        out["interpreter"] = wall - out["imports"] - out["connect"]
    return out


def write_csvs(rows: int, folder: Path) -> None:
    """``rows`` synthetic trips as the monthly CSVs the DAG loads (DuckDB writes them)."""
    import duckdb

    from neve.datasets import taxi

    with duckdb.connect(str(folder / "gen.duckdb")) as con:
        taxi(con, rows, seed=0, table="T")
        for month in MONTHS:
            path = folder / f"yellow_tripdata_sample_{month}.csv"
            con.execute(f"COPY (SELECT * FROM T WHERE strftime(pickup_datetime, '%Y-%m') = '{month}') "
                        f"TO '{path}' (HEADER)")  # fmt: skip
    (folder / "gen.duckdb").unlink()


def measure(rows: int | None, args: argparse.Namespace, tmp: Path) -> dict:
    from tools.demo.runner import airflow_env

    home = tmp / f"airflow-{rows or 'demo'}"
    home.mkdir()
    # DuckDB's default memory_limit is 80% of RAM, in every task process; 4GB as in the scale
    # benchmark keeps the run under the watchdog's cap (the engine spills instead).
    env = airflow_env(home, f"duckdb:///{home / 'neve.duckdb'}?memory_limit={args.duckdb_memory}", REPO / "dags")
    env["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "WARNING"
    if rows:
        data = tmp / f"data-{rows}"
        data.mkdir()
        t = time.perf_counter()
        write_csvs(rows, data)
        print(
            f"[airflow] wrote {rows:,} rows as CSV in {time.perf_counter() - t:.0f} s", flush=True
        )
        env["NEVE_TAXI_DATA"] = str(data)
    start = time.perf_counter()
    out, why, peak_mb = run_child_cmd([sys.executable, __file__, "--child", str(args.sample_rows)],
                                      args.cap_gib * 2**30, args.timeout, env=env)  # fmt: skip
    wall = time.perf_counter() - start
    record = next((json.loads(x) for x in out.splitlines() if x.startswith("{")), {})
    startup = task_startup(f"duckdb:///{home / 'neve.duckdb'}") if not rows and record else None
    return {"rows": rows or 20_000, "wall": wall, "why": why, "peak_mb": peak_mb, "startup": startup, **record}


def render(results: list[dict], command: str) -> str:
    rows = []
    for r in results:
        if r.get("why") or "dag_test" not in r:
            rows.append([f"{r['rows']:,}", C.fmt_seconds(r["wall"]), f"stopped: {r.get('why')}",
                         "-", "-", f"{r['peak_mb'] / 1024:.1f} GiB", "-"])  # fmt: skip
            continue
        in_tasks = sum(t["seconds"] for t in r["tasks"].values())
        slowest = max(r["tasks"].items(), key=lambda kv: kv[1]["seconds"])
        rows.append([f"{r['rows']:,}", C.fmt_seconds(r["wall"]), C.fmt_seconds(r["dag_test"]),
                     C.fmt_seconds(in_tasks), f"{C.fmt_seconds(r['dag_test'] - in_tasks)} "
                     f"({(r['dag_test'] - in_tasks) / r['dag_test']:.0%})",
                     f"{r['peak_mb'] / 1024:.1f} GiB",
                     f"{slowest[0]} {C.fmt_seconds(slowest[1]['seconds'])}"
                     + ("" if r["state"].endswith("success") else f"; run {r['state']}")])  # fmt: skip
    text = C.run_header(["neve", "apache-airflow", "duckdb"], command)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    text += f"Load average at the end (1, 5, 15 min): {load}.  \n\n"
    text += C.markdown_table(["rows", "child wall (start-up + dag.test)", "dag.test()",
                              "sum of task durations", "Airflow around the tasks",
                              "peak RSS", "slowest task"], rows)  # fmt: skip
    conf = next((r.get("conf") for r in results if r.get("conf")), None)
    text += (
        "\nEvery task runs in the dag.test() process, one after another, so the difference between "
        "dag.test() and the sum of the task durations is Airflow's own work around them (parsing, "
        "scheduling, XCom, state). "
        + (
            f"Run with conf {conf}. "
            if conf
            else "The DAG trains in the engine (one aggregate query over the SQL train split), so no "
            "feature table is written and no rows are extracted at any size. "
        )
        + "The start-up of one external-python task (the taxi env's interpreter) is in "
        "[Task environments](#task-environments).\n"
    )
    for r in results:
        if "tasks" in r:
            text += per_task(r)
    return text


def per_task(r: dict) -> str:
    """Per-task time at one size, and what an external-python task pays before its first query."""
    tasks = sorted(r["tasks"].items(), key=lambda kv: -kv[1]["seconds"])
    text = f"\nPer task at {r['rows']:,} rows (sum {C.fmt_seconds(sum(t['seconds'] for _, t in tasks))}):\n\n"
    text += C.markdown_table(
        ["task", "runs in", "seconds", "state"],
        [[name, "taxi env (new interpreter)" if t.get("external") else "dag.test() process",
          C.fmt_seconds(t["seconds"]), t["state"].split(".")[-1]] for name, t in tasks],
    )  # fmt: skip
    s = r.get("startup")
    if s:
        text += (
            f"\nBefore its first query, each external-python task pays {C.fmt_seconds(s['interpreter'])} "
            f"of interpreter start, {C.fmt_seconds(s['imports'])} of imports (neve, the registry, "
            f"scoring, metrics, scikit-learn) and {C.fmt_seconds(s['connect'])} to connect "
            f"(measured in the taxi env after the run, warm). Tasks in the dag.test() process share "
            f"one interpreter and its imports; each connects once through NeveHook.\n"
        )
    return text


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        child(int(argv[1]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[20_000, 10_000_000])
    parser.add_argument("--quick", action="store_true", help="the 20k-row demo only")
    parser.add_argument("--duckdb-memory", default="4GB", help="DuckDB memory_limit for the DAG's engine")
    parser.add_argument("--sample-rows", type=int, default=100_000)
    parser.add_argument("--cap-gib", type=float, default=12.0)
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--output", type=Path, default=C.BENCHMARKS_MD)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    sizes = [20_000] if args.quick else args.rows
    results = []
    with tempfile.TemporaryDirectory(prefix="neve-airflow-bench-") as tmp:
        for n in sizes:
            print(f"[airflow] {n:,} rows", flush=True)
            results.append(measure(None if n == 20_000 else n, args, Path(tmp)))
            print(f"[airflow]   {json.dumps({k: v for k, v in results[-1].items() if k != 'tasks'})}",
                  flush=True)  # fmt: skip
    text = render(results, "python benchmarks/airflow_dag.py" + (" --quick" if args.quick else ""))
    C.publish(TITLE, text, dry_run=args.no_write, path=args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
