"""Run every benchmark (`make bench`; `make bench-quick` passes --quick).

Each benchmark runs as a child process of this one (one process tree; a benchmark
that runs out of memory or crashes cannot take the others with it) and rewrites
only its own section of BENCHMARKS.md. The run header (date, machine, versions)
goes at the top of the file.

With ``--output PATH`` (or ``NEVE_BENCH_OUTPUT``) the finished BENCHMARKS.md and
plots go to PATH and its ``img/`` folder instead, and the checkout's BENCHMARKS.md
and docs/img are restored byte for byte: CI runs the quick suite as a smoke test
that leaves the working tree as it found it.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import _common as C

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
IMG = REPO / "docs" / "img"
#: Script, and the arguments for a quick run (each script's own --quick: smallest sizes, fewer repeats).
BENCHMARKS = {
    "preprocessing": ["--quick", "--repeat", "1"],
    "registry": ["--quick"],
    # The 100-tree forest alone takes ~2 minutes at 1M rows: full runs only.
    "scoring": ["--quick", "--forest-rows", "0"],
    # 100k rows, the bitmask form only, models fitted on 5k rows.
    "tree_scoring": ["--quick"],
    "envs": ["--quick"],
    "scale": ["--quick"],
    "fit_taxi": ["--quick"],
    "hgb_fit": ["--quick"],
    "fit_shapes": ["--quick", "--no-logistic"],
    "fit_solvers": ["--quick"],
    "model_selection": ["--quick"],
    "airflow_dag": ["--quick"],
    "fixed_costs": ["--quick"],
    "log_model": ["--quick"],
    # 200k rows on DuckDB and local Spark (about a minute, most of it Spark's JVM and per-job costs).
    "spark_scale": ["--quick"],
}
HEADER = re.compile(r"\A# Benchmarks\n.*?(?=^## )", re.S | re.M)


def write_header(path: Path, quick: bool, seconds: float, failed: list[str]) -> None:
    text = path.read_text() if path.exists() else ""
    command = "make bench-quick" if quick else "make bench"
    head = (
        "# Benchmarks\n\nSide-by-side measurements; each section is rewritten by the benchmark "
        f"named in it. Last full pass: `{command}`, {seconds / 60:.1f} min"
        + (f"; failed: {', '.join(failed)}" if failed else "")
        + ".\n\n"
        + C.run_header(["neve", "duckdb", "ibis-framework", "scikit-learn", "pandas"])
        + "\n"
    )
    text = HEADER.sub(head, text, count=1) if HEADER.search(text) else head + text
    path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", nargs="+", choices=list(BENCHMARKS), help="run just these")
    parser.add_argument("--output", type=Path, default=os.environ.get("NEVE_BENCH_OUTPUT") or None)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    redirect = args.output is not None and args.output.resolve() != C.BENCHMARKS_MD
    saved = C.BENCHMARKS_MD.read_bytes() if C.BENCHMARKS_MD.exists() else None
    saved_img = {p: p.read_bytes() for p in IMG.glob("*")} if IMG.is_dir() else {}
    started, failed = time.perf_counter(), []
    try:
        for name in args.only or BENCHMARKS:
            cmd = [
                sys.executable,
                str(HERE / f"{name}.py"),
                *(BENCHMARKS[name] if args.quick else []),
            ]
            print(f"== {name}: {' '.join(cmd[1:])}", flush=True)
            t0 = time.perf_counter()
            code = subprocess.call(cmd, cwd=REPO)
            print(f"== {name}: exit {code} after {time.perf_counter() - t0:.0f} s", flush=True)
            if code != 0:
                failed.append(name)
        write_header(C.BENCHMARKS_MD, args.quick, time.perf_counter() - started, failed)
        if redirect:
            args.output.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(C.BENCHMARKS_MD, args.output)
            if IMG.is_dir():
                shutil.copytree(IMG, args.output.parent / "img", dirs_exist_ok=True)
            print(f"wrote {args.output}")
    finally:
        if redirect:
            if saved is None:
                C.BENCHMARKS_MD.unlink(missing_ok=True)
            else:
                C.BENCHMARKS_MD.write_bytes(saved)
            for p in IMG.glob("*") if IMG.is_dir() else []:
                if p not in saved_img:
                    p.unlink()
            for p, data in saved_img.items():
                p.write_bytes(data)
    print(
        f"all benchmarks: {time.perf_counter() - started:.0f} s"
        + (f", failed: {failed}" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
