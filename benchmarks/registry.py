"""neve's registry vs MLflow (SQLite backend), side by side in one run.

    uv run --group bench python benchmarks/registry.py [--quick]

Measures: logging small versions with 10 metrics each; listing and filtering
versions at 1k and 10k; loading a version. Results go to BENCHMARKS.md under
"## Registry" (other sections are kept). MLflow logs fewer versions than neve
by default (each of its log_model calls takes far longer); its listing at 10k
is measured on runs created with log_batch, without model files (10k only with
--mlflow-list-max 10000: filling it takes ~10 minutes here).
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import re
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import Ridge

import neve
from neve.registry import _tables
from neve.registry._registry import _EVENT_COLUMNS, _VERSION_COLUMNS, _now

ROOT = Path(__file__).resolve().parents[1]
METRICS = [f"m{i}" for i in range(10)]


def timed(fn: Callable[[], Any], repeat: int = 5) -> float:
    """Median wall time of ``repeat`` calls, in ms (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def small_model() -> tuple[Ridge, pd.DataFrame]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(200, 4)), columns=list("ABCD"))
    return Ridge().fit(X, X.sum(axis=1)), X


def metrics_for(i: int) -> dict[str, float]:
    return {m: float((i * 7 + j) % 100) / 100 for j, m in enumerate(METRICS)}


# -- neve -------------------------------------------------------------------------------------


def neve_bulk_fill(reg: neve.Registry, model: str, start: int, stop: int) -> None:
    """Committed version rows and metric events inserted in batches (no model files): the
    listing cost depends only on the rows, and logging 10k real versions takes minutes."""
    now, ctx = _now(), "{}"
    with reg._connection() as b:
        for lo in range(start, stop, 500):
            hi = min(lo + 500, stop)
            versions = [(model, f"v{i}", i, "", "sklearn", "{}", "{}", now, "bench", ctx) for i in range(lo, hi)]
            reg._store.insert(b, _tables.VERSIONS, _VERSION_COLUMNS, versions)
            events = []
            for i in range(lo, hi):
                events.append((_tables.event_id(), model, f"v{i}", _tables.COMMIT, None, None, "x", now, "bench", ctx))
                events += [(_tables.event_id(), model, f"v{i}", _tables.METRIC, k, v, None, now, "bench", ctx)
                           for k, v in metrics_for(i).items()]
            reg._store.insert(b, _tables.EVENTS, _EVENT_COLUMNS, events)


def bench_neve(work: Path, n_log: int) -> dict[str, Any]:
    model, X = small_model()
    out: dict[str, Any] = {}
    with neve.connect(f"duckdb:///{work / 'neve.duckdb'}") as session:
        reg = neve.Registry(session)
        times = []
        for i in range(n_log):
            t0 = time.perf_counter()
            reg.log_model(model, "bench", sample_input=X.head(5), metrics=metrics_for(i))
            times.append((time.perf_counter() - t0) * 1000)
        out["log_p50"], out["log_p95"] = np.percentile(times, 50), np.percentile(times, 95)
        m = reg.get_model("bench")
        for size in (1_000, 10_000):
            have = len(m.show_versions())
            if have < size:
                neve_bulk_fill(reg, "bench", have + 1, size + 1)
            out[f"list_{size}"] = timed(m.show_versions)
            out[f"filter_{size}"] = timed(lambda: (lambda sv: sv[sv.m3 < 0.1])(m.show_versions()))
        mv = m.version("v1")
        out["load"] = timed(mv.load)
    return out


# -- MLflow -----------------------------------------------------------------------------------


def bench_mlflow(work: Path, n_log: int, n_list_max: int) -> dict[str, Any]:
    import mlflow
    import mlflow.sklearn
    from mlflow.tracking import MlflowClient

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    mlflow.set_tracking_uri(f"sqlite:///{work / 'mlflow.db'}")
    mlflow.set_registry_uri(f"sqlite:///{work / 'mlflow.db'}")
    exp = mlflow.set_experiment("bench")
    client = MlflowClient()
    model, X = small_model()
    import sklearn

    reqs = [f"scikit-learn=={sklearn.__version__}", f"numpy=={np.__version__}"]
    out: dict[str, Any] = {}
    times = []
    for i in range(n_log):
        t0 = time.perf_counter()
        with mlflow.start_run():
            mlflow.log_metrics(metrics_for(i))
            mlflow.sklearn.log_model(
                model, name="model", pip_requirements=reqs, registered_model_name="bench",
                input_example=X.head(5),
            )
        times.append((time.perf_counter() - t0) * 1000)
    out["log_p50"], out["log_p95"] = np.percentile(times, 50), np.percentile(times, 95)
    have = n_log
    for size in (1_000, 10_000):
        if size > n_list_max:
            break
        from mlflow.entities import Metric

        while have < size:  # runs with 10 metrics each, no model files (as neve's bulk fill)
            run = client.create_run(exp.experiment_id)
            ts = int(time.time() * 1000)
            client.log_batch(run.info.run_id, metrics=[Metric(k, v, ts, 0) for k, v in metrics_for(have).items()])
            have += 1
        out[f"list_{size}"] = timed(lambda: mlflow.search_runs([exp.experiment_id], max_results=50_000), repeat=3)
        out[f"filter_{size}"] = timed(
            lambda: mlflow.search_runs([exp.experiment_id], "metrics.m3 < 0.1", max_results=50_000), repeat=3
        )
    out["list_versions"] = timed(lambda: client.search_model_versions("name='bench'"), repeat=3)
    out["load"] = timed(lambda: mlflow.sklearn.load_model("models:/bench/1"))
    return out


# -- report -----------------------------------------------------------------------------------


def fmt(value: Any) -> str:
    return "n/a" if value is None else f"{value:,.1f} ms"


def write_report(neve_r: dict[str, Any], mlf: dict[str, Any], args: argparse.Namespace, seconds: float) -> str:
    rows = [
        ("log_model p50 (small Ridge, 10 metrics)", "log_p50"),
        ("log_model p95", "log_p95"),
        ("list versions + metrics, 1k", "list_1000"),
        ("filter by metric, 1k", "filter_1000"),
        ("list versions + metrics, 10k", "list_10000"),
        ("filter by metric, 10k", "filter_10000"),
        ("load a version", "load"),
    ]
    lines = [
        "## Registry",
        "",
        f"`benchmarks/registry.py`, {datetime.now():%Y-%m-%d}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end; took {seconds:.0f} s.",
        f"neve: DuckDB file, {args.n_neve} real `log_model` calls (with sample input); MLflow "
        f"{_version('mlflow-skinny')}: SQLite backend, explicit `pip_requirements`, "
        f"{args.n_mlflow} real `log_model` calls with registration.",
        "Listing at sizes beyond the logged versions adds rows in bulk (versions with 10 metrics; "
        "MLflow: runs via `log_batch`), since listing cost depends on rows, not files. "
        "neve lists with `Model.show_versions()` (metrics pivoted to columns); MLflow with "
        "`search_runs` (and `filter` with `metrics.m3 < 0.1`).",
        "",
        "| operation | neve | MLflow | target |",
        "|---|---:|---:|---|",
    ]
    targets = {"log_p50": "< 50 ms", "list_10000": "< 100 ms"}
    for label, key in rows:
        lines.append(f"| {label} | {fmt(neve_r.get(key))} | {fmt(mlf.get(key))} | {targets.get(key, '')} |")
    lines.append(f"| MLflow `search_model_versions` ({args.n_mlflow} versions) | | {fmt(mlf.get('list_versions'))} | |")
    return "\n".join(lines) + "\n"


def _version(dist: str) -> str:
    import importlib.metadata as md

    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return "?"


def update_benchmarks(section: str) -> None:
    path = ROOT / "BENCHMARKS.md"
    text = path.read_text() if path.exists() else "# Benchmarks\n\n"
    pattern = re.compile(r"^## Registry\n.*?(?=^## |\Z)", re.DOTALL | re.MULTILINE)
    text = pattern.sub(section + "\n", text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n-neve", type=int, default=1000)
    parser.add_argument("--n-mlflow", type=int, default=100)
    parser.add_argument("--mlflow-list-max", type=int, default=1_000)
    parser.add_argument("--quick", action="store_true", help="tiny run to check the script")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.n_neve, args.n_mlflow, args.mlflow_list_max = 50, 5, 1000
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        neve_r = bench_neve(work, args.n_neve)
        print("neve", {k: round(v, 1) for k, v in neve_r.items()})
        mlf = bench_mlflow(work, args.n_mlflow, args.mlflow_list_max)
        print("mlflow", {k: round(v, 1) for k, v in mlf.items()})
    section = write_report(neve_r, mlf, args, time.perf_counter() - t0)
    print(section)
    if not args.no_write:
        update_benchmarks(section)


if __name__ == "__main__":
    main()
