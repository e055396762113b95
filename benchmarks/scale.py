"""Scale benchmark: the flagship taxi pipeline from 1M to 50M rows, neve against
pandas + scikit-learn and against a hand-written SQL floor per stage.

    uv run --no-sync python benchmarks/scale.py                # 1M, 5M, 10M, 25M, 50M
    uv run --no-sync python benchmarks/scale.py --quick        # 1M only, for make bench-quick
    uv run --no-sync python benchmarks/scale.py --rows 20000 --no-plots --output /tmp/B.md

Rows come from ``neve.datasets.taxi`` (generated inside DuckDB from marginals fitted
on the real sample) into a DuckDB file. Every size runs in fresh child processes
(benchmarks/_scale_stages.py), so each stage's peak resident memory is that of
one process doing one size: first neve, stage by stage, each stage followed by its
hand-written SQL floor; then the same pipeline in pandas + scikit-learn, watched by
this process, which kills it when its resident memory passes ``--pandas-cap-gib``
and records "out of memory at cap" (and stops running it at larger sizes).

The stages are the flagship DAG's: load (generate the raw table), clean (the DAG's
``clean_trips`` into TAXI_DATA), fit (one-hot on pickup zone, dropoff zone and hour,
MaxAbs on distance and ``neve.linear_model.LinearRegression``, one Pipeline fitted on
every row in the engine: one aggregate query, no one-hot column, no extract),
``Registry.log_model`` (the pipeline as one unit, the full table as training data, so
the drift baseline is profiled), scoring with ``mv.run`` into TAXI_PRED, and ``mv.drift``.
pandas + scikit-learn fits the same pipeline on every row (sparse one-hot).

DuckDB is embedded, so the client process *is* the engine: its resident memory
includes DuckDB's buffers, which ``--duckdb-memory`` bounds (larger work spills to
disk). That bound, not the data size, is what neve's curve should show.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import _common as C

TITLE = "Scale"
STAGES = ["load", "clean", "fit", "log_model", "score", "drift"]
SIZES = [1_000_000, 5_000_000, 10_000_000, 25_000_000, 50_000_000]
CHILD = Path(__file__).resolve().parent / "_scale_stages.py"
REPO = Path(__file__).resolve().parents[1]


def run_child_cmd(
    cmd: list[str], cap_bytes: float | None, timeout: float, env: dict[str, str] | None = None
) -> tuple[str, str | None, float]:
    """Run ``cmd``; return its stdout, why it was stopped or failed (or None), and its peak RSS in MiB.

    A watchdog thread samples the resident memory of the child and its descendants
    every 0.1 s and kills them past ``cap_bytes``, so a run can never take the machine down.
    """
    import psutil

    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    state: dict[str, Any] = {"peak": 0, "why": None}

    def kill(ps: Any, why: str) -> None:
        state["why"] = why
        for p in [*ps.children(recursive=True), ps]:
            try:
                p.kill()
            except psutil.Error:
                pass

    def watch() -> None:
        ps = psutil.Process(proc.pid)
        start = time.monotonic()
        while proc.poll() is None:
            try:
                rss = sum(p.memory_info().rss for p in [ps, *ps.children(recursive=True)])
            except psutil.Error:
                time.sleep(0.1)
                continue
            state["peak"] = max(state["peak"], rss)
            if cap_bytes and rss > cap_bytes:
                return kill(ps, f"out of memory at cap ({cap_bytes / 2**30:.3g} GiB)")
            if time.monotonic() - start > timeout:
                return kill(ps, f"timed out after {timeout:.0f} s")
            time.sleep(0.1)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    out, err = proc.communicate()
    watcher.join()
    why = state["why"]
    if why is None and proc.returncode != 0:
        last = (err.strip().splitlines() or ["?"])[-1]
        why = "MemoryError" if "MemoryError" in err else f"failed: {last[:160]}"
    return out, why, state["peak"] / 2**20


def run_child(
    args: list[str], cap_bytes: float | None, timeout: float
) -> tuple[list[dict], str | None]:
    """Run a stage child (benchmarks/_scale_stages.py); return its JSON records and why it
    stopped early (or None). A stopped child's records end with a ``failed`` record naming
    the stage it did not finish and its peak RSS."""
    out, why, peak_mb = run_child_cmd([sys.executable, str(CHILD), *args], cap_bytes, timeout)
    records = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    if why is not None:
        done = {r["stage"] for r in records}
        stage = next((s for s in STAGES if s not in done), "?")
        records.append({"side": "failed", "stage": stage, "why": why, "rss_mb": peak_mb})
    return records, why


def run(sizes: list[int], args: argparse.Namespace, log=print) -> dict[str, Any]:
    results: dict[str, Any] = {"sizes": sizes, "records": [], "pandas_failed": None,
                               "cap_gib": args.pandas_cap_gib, "duckdb_memory": args.duckdb_memory}  # fmt: skip
    cap = args.pandas_cap_gib * 2**30
    with tempfile.TemporaryDirectory(prefix="neve-scale-", dir=args.tmp) as tmp:
        for rows in sizes:
            db = str(Path(tmp) / f"taxi_{rows}.duckdb")
            log(f"[scale] {rows:,} rows: neve")
            recs, why = run_child(["neve", db, str(rows), args.duckdb_memory], None, args.timeout)
            results["records"] += recs
            if why:
                log(f"[scale]   neve stopped: {why}")
                raise SystemExit(f"neve failed at {rows:,} rows: {why}")
            if results["pandas_failed"] is None and not args.no_pandas:
                log(
                    f"[scale] {rows:,} rows: pandas + scikit-learn (cap {args.pandas_cap_gib:g} GiB)"
                )
                recs, why = run_child(["pandas", db, str(rows)], cap, args.timeout)
                results["records"] += recs
                if why:
                    stage = recs[-1]["stage"]
                    results["pandas_failed"] = {"rows": rows, "why": why, "stage": stage}
                    log(f"[scale]   pandas stopped at {stage}: {why}")
            for suffix in ("", ".wal"):
                Path(db + suffix).unlink(missing_ok=True)
            if args.json:  # after every size: a run stopped later keeps what it measured
                args.json.write_text(json.dumps(results, indent=1))
    return results


def measured(results: dict[str, Any]) -> dict[str, Any]:
    """``results`` with ``sizes`` cut to those neve finished (a stopped run renders what it has)."""
    done = {r["rows"] for r in results["records"] if r.get("stage") == "done"}
    return {**results, "sizes": [n for n in results["sizes"] if n in done]}


def merge(paths: list[Path]) -> dict[str, Any]:
    """Results of several runs as one: later runs replace earlier records of the same
    side, stage and size, and a replaced neve record is kept as ``neve-before`` (a rerun
    after a fix shows what the fix changed)."""
    merged: dict[str, Any] | None = None
    for path in paths:
        results = json.loads(Path(path).read_text())
        if merged is None:
            merged = results
            continue
        new = {(r["side"], r["stage"], r["rows"]) for r in results["records"] if "rows" in r}
        kept = []
        for r in merged["records"]:
            key = (r["side"], r["stage"], r.get("rows"))
            if key in new:
                if r["side"] == "neve":
                    kept.append({**r, "side": "neve-before"})
                continue
            kept.append(r)
        merged["records"] = kept + results["records"]
        merged["sizes"] = sorted(set(merged["sizes"]) | set(results["sizes"]))
        merged["pandas_failed"] = merged["pandas_failed"] or results["pandas_failed"]
    assert merged is not None
    return merged


# --- the report ----------------------------------------------------------------------


def table_of(results: dict[str, Any]) -> dict[tuple[str, str, int], dict]:
    return {(r["side"], r["stage"], r["rows"]): r for r in results["records"] if "rows" in r}


#: Both sides start from the raw table in DuckDB: neve's load (generating it) is not in
#: the totals, pandas' load (reading it into a DataFrame) is.
TOTALS = {
    "neve": ["clean", "fit", "log_model", "score", "drift"],
    "pandas": ["load", "clean", "fit", "log_model", "score", "drift"],
}


def total(t: dict, side: str, rows: int, stages: list[str] | None = None) -> float | None:
    parts = [t.get((side, s, rows), {}).get("seconds") for s in stages or TOTALS[side]]
    return None if any(p is None for p in parts) else sum(parts)


def peak(t: dict, side: str, rows: int) -> float | None:
    vals = [
        r.get("rss_mb") for (s, _, n), r in t.items() if s == side and n == rows and r.get("rss_mb")
    ]
    return max(vals) if vals else None


def mib(x: float | None) -> str:
    return "n/a" if x is None else (f"{x / 1024:.1f} GiB" if x >= 1024 else f"{x:.0f} MiB")


def plots(results: dict[str, Any], img_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = table_of(results)
    sizes = results["sizes"]
    img_dir.mkdir(parents=True, exist_ok=True)
    out = []
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for side, style in (("neve", "o-"), ("pandas", "s--")):
        xs = [n for n in sizes if total(t, side, n) is not None]
        axes[0].plot([n / 1e6 for n in xs], [total(t, side, n) for n in xs], style,
                     label=f"{'neve' if side == 'neve' else 'pandas + scikit-learn'}")  # fmt: skip
        xs = [n for n in sizes if peak(t, side, n) is not None]
        axes[1].plot(
            [n / 1e6 for n in xs], [peak(t, side, n) / 1024 for n in xs], style, label=side
        )
    if results["pandas_failed"]:
        f = results["pandas_failed"]
        axes[1].axhline(results["cap_gib"], color="red", lw=0.8, ls=":")
        axes[1].annotate(f"pandas killed at {f['rows'] / 1e6:g}M ({f['stage']})",
                         (f["rows"] / 1e6, results["cap_gib"]), color="red", fontsize=8,
                         xytext=(0, -14), textcoords="offset points", ha="center")  # fmt: skip
    axes[0].set(title="Wall time, raw table in DuckDB to predictions + drift",
                xlabel="rows (millions)", ylabel="seconds")  # fmt: skip
    axes[1].set(title="Peak client resident memory", xlabel="rows (millions)", ylabel="GiB")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    out.append(img_dir / "scale-total.png")
    fig.savefig(out[-1], dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(11, 4.2))
    for stage in STAGES:
        xs = [n for n in sizes if (("neve", stage, n) in t and "seconds" in t[("neve", stage, n)])]
        if xs:
            ax.plot([n / 1e6 for n in xs], [n / t[("neve", stage, n)]["seconds"] / 1e6 for n in xs],
                    "o-", label=stage)  # fmt: skip
    ax.set(title="neve throughput per stage (rows of input per second)", xlabel="rows (millions)",
           ylabel="million rows/s", yscale="log")  # fmt: skip
    ax.grid(alpha=0.3, which="both")
    ax.legend(ncol=3, fontsize=8)
    fig.tight_layout()
    out.append(img_dir / "scale-stages.png")
    fig.savefig(out[-1], dpi=110)
    plt.close(fig)
    return out


def cell(r: dict | None) -> str:
    if r is None:
        return "-"
    if "skipped" in r:
        return f"skipped ({r['skipped']})"
    return f"{C.fmt_seconds(r['seconds'])}, {mib(r['rss_mb'])}"


def render(results: dict[str, Any], images: list[Path], output: Path, command: str) -> str:
    t = table_of(results)
    sizes = results["sizes"]
    largest = sizes[-1]
    lines = [
        C.run_header(["neve", "duckdb", "ibis-framework", "scikit-learn", "pandas"], command),
        "",
    ]
    fail = results["pandas_failed"]
    neve_peaks = [peak(t, "neve", n) for n in sizes]
    head = []
    for n in sizes:
        a, b = total(t, "neve", n), total(t, "pandas", n)
        if a and b:
            head.append(f"{n / 1e6:g}M rows: neve {C.fmt_seconds(a)} vs pandas + scikit-learn "
                        f"{C.fmt_seconds(b)} (**{b / a:.2f}x**)")  # fmt: skip
    lines.append("**Headline.** " + "; ".join(head) + ". "
                 + (f"pandas + scikit-learn was killed at **{fail['rows']:,} rows** "
                    f"({fail['why']}, during {fail['stage']}). " if fail else
                    "pandas + scikit-learn completed every size. ")
                 + f"neve's peak client memory is {mib(neve_peaks[-1])} at {largest:,} rows "
                 f"(from {mib(min(p for p in neve_peaks if p))} at the smallest size; DuckDB embedded "
                 f"in the same process, memory_limit {results['duckdb_memory']}).\n")  # fmt: skip
    rel = lambda p: Path(p).relative_to(output.parent) if p.is_relative_to(output.parent) else p  # noqa: E731
    for img in images:
        lines.append(f"![{img.stem}]({rel(img).as_posix()})\n")

    lines.append(
        "Whole pipeline, from the raw table in DuckDB to stored predictions and a drift report "
        "(neve: clean to drift; pandas: load to drift), wall time and "
        "peak client RSS:\n"
    )
    rows_out = []
    for n in sizes:
        a, b = total(t, "neve", n), total(t, "pandas", n)
        pf = fail and fail["rows"] == n
        rows_out.append([f"{n:,}", C.fmt_seconds(a), mib(peak(t, "neve", n)),
                         f"{n / a:,.0f}" if a else "n/a",
                         ("killed: " + fail["why"]) if pf else ("not run" if b is None and fail else C.fmt_seconds(b)),
                         mib(peak(t, "pandas", n) if not pf
                             else t.get(("failed", fail["stage"], n), {}).get("rss_mb")),
                         C.fmt_ratio(b / a) if a and b else "n/a"])  # fmt: skip
    lines.append(C.markdown_table(["rows", "neve", "neve peak RSS", "neve rows/s",
                                   "pandas + sklearn", "pandas peak RSS", "pandas / neve"], rows_out))  # fmt: skip

    lines.append("\nPer stage: wall time, peak RSS (neve | pandas + scikit-learn):\n")
    hdr = (
        ["stage"] + [f"{n / 1e6:g}M neve" for n in sizes] + [f"{n / 1e6:g}M pandas" for n in sizes]
    )
    body = [[s] + [cell(t.get(("neve", s, n))) for n in sizes]
            + [cell(t.get(("pandas", s, n))) for n in sizes] for s in STAGES]  # fmt: skip
    lines.append(C.markdown_table(hdr, body))

    lines.append(f"\nWhere the time goes at {largest:,} rows: neve against the hand-written SQL floor "
                 "for the same stage (same DuckDB file, same process):\n")  # fmt: skip
    body, gaps = [], []
    denom = sum(t.get(("neve", s, largest), {}).get("seconds", 0) for s in STAGES) or 1
    for s in STAGES:
        a, f = t.get(("neve", s, largest), {}), t.get(("sql", s, largest), {})
        share = a.get("seconds", 0) / denom
        ratio = a["seconds"] / f["seconds"] if "seconds" in a and "seconds" in f else None
        if ratio:
            gaps.append((a["seconds"] - f["seconds"], s, ratio))
        body.append([s, cell(a or None), cell(f or None), C.fmt_ratio(ratio),
                     "n/a" if share is None else f"{share:.0%}"])  # fmt: skip
    lines.append(
        C.markdown_table(
            ["stage", "neve", "SQL floor", "neve / floor", "share of neve total"], body
        )
    )
    done = next(
        (r for r in results["records"] if r.get("stage") == "done" and r["rows"] == largest), {}
    )
    if gaps:
        gap, stage, ratio = max(gaps)
        before = [r for r in results["records"] if r["side"] == "neve-before" and "seconds" in r]
        for r in before:
            after = t.get(("neve", r["stage"], r["rows"]), {})
            floor = t.get(("sql", r["stage"], r["rows"]), {})
            if abs(after.get("seconds", 0) - r["seconds"]) < 0.15 * r["seconds"]:
                continue  # rerun noise, not a change
            lines.append(f"\nChanged since the first pass: **{r['stage']}** at {r['rows']:,} rows took "
                         f"{C.fmt_seconds(r['seconds'])} before and {C.fmt_seconds(after.get('seconds'))} "
                         f"after (floor {C.fmt_seconds(floor.get('seconds'))}).\n")  # fmt: skip
        lines.append(f"\nLargest gap to the floor: **{stage}**, {C.fmt_seconds(gap)} over the floor "
                     f"({ratio:.2f}x). Scored predictions agree with the hand-written SQL to "
                     f"{done.get('score_max_abs_diff', float('nan')):.1e} seconds.\n")  # fmt: skip
    return "\n".join(lines)


FINDINGS = """
Notes:

* **Training is in the engine.** The fit stage is the whole pipeline (one-hot, MaxAbs,
  LinearRegression) fitted on every row from one grouped aggregate query over the cleaned table;
  only the statistics leave DuckDB (one row per pickup x dropoff x hour combination). Before
  issue 13 neve wrote ~430 dense one-hot columns, extracted a 100k-row sample and fitted it in
  pandas; pandas + scikit-learn now also fits every row (sparse one-hot), so both models are the
  full-data least-squares fit. The fit is where neve wins by an order of magnitude (see the
  per-stage table; benchmarks/fit_taxi.py measures it alone).
* **The whole-pipeline targets (2x at 1M, 5x at 10M) are missed** because the stages around the
  fit are at their hand-written SQL floors and no faster than pandas on this 2-core machine:
  clean is a CTAS with a `row_number()` over a five-column sort of the whole table, and score
  writes every row's prediction to a table (a `CASE` over ~260 zones per encoded column); pandas
  sorts in memory and predicts with a sparse mat-vec. At 1M rows log_model's fixed costs
  (skops, the baseline and fingerprint queries) add ~5 s.
* DuckDB is embedded, so neve's client RSS includes DuckDB's buffer pool, bounded by its
  `memory_limit`; the engine spills beyond it instead of growing. pandas' memory grows with the table.
"""


METHOD = """
Method. `benchmarks/scale.py` ({args}). Data: `neve.datasets.taxi` (see its docstring), written by DuckDB
into a DuckDB file per size. Floors are what a DuckDB user would write by hand: the same cleaning as one
CTAS, the fit's sufficient statistics as one `GROUP BY` pickup, dropoff, hour (without the client's solve),
the linear model as one `CASE col WHEN value THEN weight` per categorical column, `GROUP BY` histograms for
drift. log_model has no SQL floor. pandas + scikit-learn runs the same rules: `.df()` of the raw table (its
load), the same filters and sort, `ColumnTransformer(OneHotEncoder (sparse), MaxAbsScaler)` and
LinearRegression fitted on every row, joblib dump, predict on every row, `value_counts` and a histogram for
drift. A child process above {cap:g} GiB RSS is killed and recorded as "out of memory at cap". Timings are
single runs (no repeats: at these sizes run-to-run noise is a few percent, far below the ratios).
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=SIZES)
    parser.add_argument("--quick", action="store_true", help="1M rows only (make bench-quick)")
    parser.add_argument("--pandas-cap-gib", type=float, default=12.0)
    parser.add_argument("--duckdb-memory", default="4GB")
    parser.add_argument("--timeout", type=float, default=1800, help="per child, seconds")
    parser.add_argument("--no-pandas", action="store_true")
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument("--tmp", help="folder for the DuckDB files (default: the system temp)")
    parser.add_argument("--output", type=Path, default=C.BENCHMARKS_MD)
    parser.add_argument("--json", type=Path, help="also write the raw records here")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--from-json", type=Path, nargs="+",
                        help="render saved --json results (later files replace earlier records)")
    args = parser.parse_args(argv)
    sizes = [1_000_000] if args.quick else sorted(args.rows)
    started = time.perf_counter()
    results = measured(merge(args.from_json) if args.from_json else run(sizes, args))
    given = " ".join(argv if argv is not None else sys.argv[1:]) or "defaults"
    results.setdefault("argv", given)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    img_dir = (
        REPO / "docs" / "img"
        if args.output.resolve() == C.BENCHMARKS_MD
        else args.output.parent / "img"
    )
    images = [] if args.no_plots else plots(results, img_dir)
    command = "python benchmarks/scale.py" + (" --quick" if args.quick else "")
    text = render(results, images, args.output.resolve(), command)
    text += FINDINGS + METHOD.format(args=results["argv"], cap=results["cap_gib"])
    if not args.from_json:
        text += f"\nThis run took {time.perf_counter() - started:.0f} s.\n"
    C.publish(TITLE, text, dry_run=args.no_write, path=args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
