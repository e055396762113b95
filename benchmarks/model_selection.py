"""Model selection in the engine against scikit-learn's GridSearchCV on an extract.

    uv run --no-sync python benchmarks/model_selection.py              # 1M rows (10M with --rows)
    uv run --no-sync python benchmarks/model_selection.py --quick      # 10k rows, 3 Cs (make bench-quick)
    uv run --no-sync python benchmarks/model_selection.py --rows 300000 --no-write

The taxi pipeline of benchmarks/fit_taxi.py (one-hot on pickup zone, dropoff zone and hour,
MaxAbs on distance), same generated data, 5 folds from ``neve.model_selection.KFold`` (the
scikit-learn side gets the same folds as a ``PredefinedSplit``):

* ridge: ``GridSearchCV`` over 20 alphas, and ``RidgeCV`` over the same alphas, beside one plain
  neve fit of ``Ridge`` (the floor a search from statistics aims at) and scikit-learn's
  ``GridSearchCV(n_jobs=2)`` over its sparse pipeline, extract included;
* logistic (is the trip longer than 15 minutes?): ``LogisticRegressionCV`` over 5 Cs, beside
  scikit-learn's ``GridSearchCV(LogisticRegression(solver="newton-cholesky"), n_jobs=2)``.

Everything runs in this process, one side after the other (DuckDB embedded, file-backed).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from benchmarks import _common as C
from benchmarks.fit_taxi import CATEGORICAL, NUMERIC, TARGET, extract, generate, neve_pipeline, sklearn_pipeline

TITLE = "Model selection (cross-validation and grid search)"
ALPHAS = np.logspace(-3, 3, 20).tolist()
CS = np.logspace(-2, 2, 5).tolist()
N_SPLITS = 5
SEED = 0
LONG_TRIP_SEC = 900
LABEL = "LONG_TRIP"


#: Folds are keyed on the trip id, as the taxi DAG keys its split: hashing every column instead
#: prints the two float columns as decimal(38, 9) text per row, which alone costs about twice
#: a plain fit's query on DuckDB (see BENCHMARKS.md).
KEY = "TRIP_ID"


def _kfold() -> Any:
    from neve.model_selection import KFold

    return KFold(N_SPLITS, random_state=SEED, key=KEY)


def _neve(db: str, memory: str, make: Any) -> dict[str, Any]:
    """Time ``make(table)`` (a fit) in a fresh session; queries and bytes fetched."""
    import neve

    session = neve.connect(f"duckdb:///{db}")
    session.engine.con.execute(f"SET memory_limit = '{memory}'")
    table = session.table("TRIPS")
    start = time.perf_counter()
    with neve.capture_queries() as log:
        fitted = make(table)
    out = {"seconds": time.perf_counter() - start, "queries": len(log), "bytes": log.bytes_fetched,
           "fitted": fitted}
    session.close()
    return out


def _folds(db: str) -> np.ndarray:
    """neve's fold of every row, in the order the extract reads them (DuckDB keeps a plain
    scan's insertion order)."""
    import neve

    session = neve.connect(f"duckdb:///{db}")
    folds = session.execute(_kfold().assign(session.table("TRIPS")).select("FOLD"))["FOLD"].to_numpy()
    session.close()
    return folds


def _sklearn_search(db: str, estimator: Any, grid: dict[str, list[float]], folds: np.ndarray,
                    label: Any, scoring: str) -> dict[str, Any]:
    from sklearn.model_selection import GridSearchCV, PredefinedSplit

    start = time.perf_counter()
    frame = extract(db, "TRIPS", [*CATEGORICAL, NUMERIC, TARGET])
    extracted = time.perf_counter() - start
    search = GridSearchCV(sklearn_pipeline(estimator), grid, cv=PredefinedSplit(folds), scoring=scoring,
                          n_jobs=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        search.fit(frame[[*CATEGORICAL, NUMERIC]], label(frame[TARGET]))
    return {"seconds": time.perf_counter() - start, "extract_seconds": extracted, "search": search}


def ridge(db: str, memory: str, folds: np.ndarray, with_sklearn: bool, log=print) -> dict[str, Any]:
    from sklearn.linear_model import Ridge as SkRidge

    from neve.linear_model import Ridge, RidgeCV
    from neve.model_selection import GridSearchCV

    out: dict[str, Any] = {}
    out["plain"] = _neve(db, memory, lambda t: neve_pipeline(Ridge(alpha=1.0, label_cols=TARGET, passthrough_cols=KEY)).fit(t))
    log(f"[model_selection]   plain Ridge fit {out['plain']['seconds']:.2f} s")
    out["grid"] = _neve(db, memory, lambda t: GridSearchCV(
        neve_pipeline(Ridge(label_cols=TARGET, passthrough_cols=KEY)), {"model__alpha": ALPHAS}, cv=_kfold(), scoring="r2").fit(t))
    log(f"[model_selection]   neve GridSearchCV {out['grid']['seconds']:.2f} s")
    out["ridge_cv"] = _neve(db, memory, lambda t: neve_pipeline(
        RidgeCV(alphas=ALPHAS, cv=_kfold(), label_cols=TARGET, passthrough_cols=KEY)).fit(t))
    log(f"[model_selection]   neve RidgeCV {out['ridge_cv']['seconds']:.2f} s")
    if with_sklearn:
        out["sklearn"] = _sklearn_search(db, SkRidge(), {"model__alpha": ALPHAS}, folds, lambda y: y, "r2")
        log(f"[model_selection]   scikit-learn GridSearchCV {out['sklearn']['seconds']:.2f} s")
        ours, theirs = out["grid"]["fitted"], out["sklearn"]["search"]
        out["same_best"] = ours.best_params_["model__alpha"] == theirs.best_params_["model__alpha"]
        out["score_distance"] = float(np.max(np.abs(ours.cv_results_["mean_test_score"]
                                                    - theirs.cv_results_["mean_test_score"])))
    return out


def logistic(db: str, memory: str, folds: np.ndarray, with_sklearn: bool, cs: list[float] = CS,
             log=print) -> dict[str, Any]:
    import ibis
    from sklearn.linear_model import LogisticRegression as SkLogistic

    from neve.linear_model import LogisticRegressionCV

    def fit(table: Any) -> Any:
        labelled = table.mutate(**{LABEL: (table[TARGET] > LONG_TRIP_SEC).ifelse(ibis.literal(1), ibis.literal(0))})
        labelled = labelled.drop(TARGET)
        return neve_pipeline(LogisticRegressionCV(Cs=cs, cv=_kfold(), tol=1e-8, label_cols=LABEL,
                                                                passthrough_cols=KEY)).fit(labelled)

    out: dict[str, Any] = {"cv": _neve(db, memory, fit)}
    log(f"[model_selection]   neve LogisticRegressionCV {out['cv']['seconds']:.2f} s")
    if with_sklearn:
        out["sklearn"] = _sklearn_search(
            db, SkLogistic(solver="newton-cholesky", tol=1e-8), {"model__C": cs}, folds,
            lambda y: (y > LONG_TRIP_SEC).astype(int), "accuracy")
        log(f"[model_selection]   scikit-learn GridSearchCV {out['sklearn']['seconds']:.2f} s")
        ours, theirs = out["cv"]["fitted"].steps[-1][1], out["sklearn"]["search"]
        out["same_best"] = float(ours.C_[0]) == theirs.best_params_["model__C"]
        out["score_distance"] = float(np.max(np.abs(ours.scores_[1].mean(axis=0)
                                                    - theirs.cv_results_["mean_test_score"])))
    return out


def run(sizes: list[int], args: argparse.Namespace, log=print) -> list[dict[str, Any]]:
    import duckdb

    results = []
    with tempfile.TemporaryDirectory(prefix="neve-model-selection-", dir=args.tmp) as tmp:
        for rows in sizes:
            db = str(Path(tmp) / f"taxi_{rows}.duckdb")
            with duckdb.connect(db) as con:
                generate(con, rows)
                con.execute(f"CREATE OR REPLACE TABLE TRIPS AS SELECT row_number() OVER () AS {KEY}, * FROM TRIPS")
            load = os.getloadavg()[0]
            log(f"[model_selection] {rows:,} rows (load {load:.1f})")
            folds = _folds(db)
            with_sklearn = rows <= args.sklearn_max_rows
            row = {"rows": rows, "load": load, "ridge": ridge(db, args.duckdb_memory, folds, with_sklearn, log),
                   "logistic": (logistic(db, args.duckdb_memory, folds, with_sklearn, args.cs, log)
                                if rows <= args.logistic_max_rows else None)}
            row["load_after"] = os.getloadavg()[0]
            results.append(row)
            Path(db).unlink(missing_ok=True)
    return results


def _bytes(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 1024:.1f} KiB"


def _cell(side: dict[str, Any]) -> str:
    return f"{C.fmt_seconds(side['seconds'])} ({side['queries']} q, {_bytes(side['bytes'])})"


def render(results: list[dict[str, Any]], args: argparse.Namespace, command: str) -> str:
    ridge_rows, logistic_rows, head = [], [], []
    for r in results:
        g, p, rc = r["ridge"]["grid"], r["ridge"]["plain"], r["ridge"]["ridge_cv"]
        sk = r["ridge"].get("sklearn")
        speed = sk["seconds"] / g["seconds"] if sk else None
        ridge_rows.append([
            f"{r['rows']:,}", _cell(p), _cell(g), _cell(rc), f"{g['seconds'] / p['seconds']:.2f}x",
            f"{C.fmt_seconds(sk['seconds'])} (extract {C.fmt_seconds(sk['extract_seconds'])})" if sk else "not run",
            C.fmt_ratio(speed), (f"{'yes' if r['ridge']['same_best'] else 'NO'}, "
                                 f"{r['ridge']['score_distance']:.1e}") if sk else "n/a",
            f"{r['load']:.1f} / {r['load_after']:.1f}"])
        head.append(f"{r['rows'] / 1e6:g}M rows: ridge search {C.fmt_ratio(speed)} scikit-learn and "
                    f"{g['seconds'] / p['seconds']:.2f}x a plain fit")
        if r["logistic"] is None:
            continue
        lc, lsk = r["logistic"]["cv"], r["logistic"].get("sklearn")
        lspeed = lsk["seconds"] / lc["seconds"] if lsk else None
        head[-1] += f"; LogisticRegressionCV {C.fmt_ratio(lspeed)} scikit-learn"
        logistic_rows.append([
            f"{r['rows']:,}", _cell(lc), f"{int(lc['fitted'].steps[-1][1].n_iter_.max())}",
            f"{C.fmt_seconds(lsk['seconds'])} (extract {C.fmt_seconds(lsk['extract_seconds'])})" if lsk else "not run",
            C.fmt_ratio(lspeed), (f"{'yes' if r['logistic']['same_best'] else 'NO'}, "
                                  f"{r['logistic']['score_distance']:.1e}") if lsk else "n/a",
            f"{r['load']:.1f} / {r['load_after']:.1f}"])
    lines = [
        C.run_header(["neve", "duckdb", "ibis-framework", "scikit-learn", "pandas"], command), "",
        "**Headline**: " + ". ".join(head) + f" (load {results[0]['load']:.1f} at the start).\n",
        f"Taxi pipeline (one-hot pickup zone, dropoff zone, hour; MaxAbs distance), {N_SPLITS} folds from "
        "`neve.model_selection.KFold(key=\"TRIP_ID\")` (scikit-learn gets the same folds as a `PredefinedSplit`). Cells: time "
        "(queries, bytes fetched, from `neve.capture_queries`). scikit-learn: Arrow extract and `to_pandas()` "
        "(included), `GridSearchCV(n_jobs=2)` over `ColumnTransformer(OneHotEncoder (sparse), MaxAbsScaler)` "
        "and the model, refit included. *Load*: 1-minute load average at the start / end of the size's "
        "run (2 cores, shared with other work).\n",
        f"Ridge, {len(ALPHAS)} alphas from 1e-3 to 1e3 (R²): neve's `GridSearchCV` and `RidgeCV` from one "
        "statistics query grouped by fold, beside one plain `Ridge` fit of the same pipeline; scikit-learn "
        "`Ridge()` (its sparse solver). *best, Δscore*: same best alpha, max |Δ mean_test_score|.\n",
        C.markdown_table(["rows", "plain neve fit", "neve GridSearchCV", "neve RidgeCV", "search / plain fit",
                          "scikit-learn GridSearchCV", "speed-up", "best, Δscore", "load"], ridge_rows),
        f"\nLogistic regression (trip longer than {LONG_TRIP_SEC // 60} minutes), {len(args.cs)} Cs from 1e-2 "
        "to 1e2 (accuracy), tol 1e-8: neve's `LogisticRegressionCV` (every fold in each Newton pass's one "
        "query; each fold's Cs warm-started along the path, the refit from the folds' mean) against scikit-learn "
        "`GridSearchCV(LogisticRegression(solver=\"newton-cholesky\"))`. *iterations*: the most Newton "
        "iterations of any one model.\n",
        C.markdown_table(["rows", "neve LogisticRegressionCV", "iterations", "scikit-learn GridSearchCV", "speed-up",
                          "best, Δscore", "load"], logistic_rows),
        f"\nMethod. `benchmarks/model_selection.py` ({args.argv}); data from `benchmarks/fit_taxi.py`'s "
        f"`generate`, one DuckDB file per size (neve's `memory_limit` {args.duckdb_memory}). One run each.\n",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--quick", action="store_true", help="10k rows, 3 Cs (make bench-quick)")
    parser.add_argument("--sklearn-max-rows", type=int, default=10**12, help="skip scikit-learn above this size")
    parser.add_argument("--logistic-max-rows", type=int, default=10**12, help="skip LogisticRegressionCV above this size")
    parser.add_argument("--duckdb-memory", default="4GB")
    parser.add_argument("--tmp", help="folder for the DuckDB files (default: the system temp)")
    parser.add_argument("--output", type=Path, default=C.BENCHMARKS_MD)
    parser.add_argument("--json", type=Path, help="also write the raw timings here")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    args.argv = " ".join(argv) or "defaults"
    sizes = [10_000] if args.quick else sorted(args.rows)
    args.cs = CS[::2] if args.quick else CS
    results = run(sizes, args)
    if args.json:
        strip = lambda d: {k: (strip(v) if isinstance(v, dict) else v) for k, v in d.items()  # noqa: E731
                           if k not in ("fitted", "search")}
        args.json.write_text(json.dumps([strip(r) for r in results], indent=1))
    command = "python benchmarks/model_selection.py" + (" --quick" if args.quick else "")
    C.publish(TITLE, render(results, args, command), dry_run=args.no_write, path=args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
