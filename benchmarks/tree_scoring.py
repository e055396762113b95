"""Tree scoring benchmark: tree ensembles compiled to SQL vs extract + scikit-learn predict.

Four models on one synthetic table in a DuckDB file (4 numeric columns, a string and an
integer category column):

* HistGradientBoostingRegressor, 100 iterations x 31 leaves, numeric features;
* the same with the 2 category columns as native categorical features;
* RandomForestRegressor, 100 trees of depth 6;
* GradientBoostingRegressor, 100 trees of depth 3.

Contenders, each measured on the same table in one run:

* compiled SQL in each tree form neve renders (``Driver.tree_scoring``): ``bitmask``
  (every feature binned once per row against all the ensemble's thresholds, packed leaf
  bitmasks ANDed, QuickScorer-style) and ``case`` (each tree as its own nested-CASE
  column, summed), timed as ``CREATE TABLE AS`` of the PREDICTION column;
* extract + predict: ``to_pandas()`` of the feature columns, then ``model.predict``
  (writing back is not counted).

Models are fitted on the first ``--train-rows`` rows (not timed). The first SQL form's
predictions are checked against scikit-learn's on the whole table (max |difference|).

    uv run --group bench python benchmarks/tree_scoring.py --quick     # 100k rows
    uv run --group bench python benchmarks/tree_scoring.py             # 1M and 10M rows
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

import neve
from benchmarks import _common as C
from neve.engine.duckdb import DuckDBDriver
from neve.scoring import _bitmask, score

NUM = ["A", "B", "C", "D"]
CAT = ["CAT_S", "CAT_K"]
FORMS = ("bitmask", "case")
TITLE = "Tree scoring"


def make_table(session: neve.Session, rows: int) -> None:
    session.engine.raw_sql(f"""
        SELECT setseed(0.28);
        CREATE OR REPLACE TABLE T AS
        SELECT
            round(random() * 20, 2)                   AS A,
            round(random() * 10 - 5, 3)               AS B,
            round(random() * 100, 1)                  AS C,
            random()                                  AS D,
            'c' || floor(random() * 30)::INT          AS CAT_S,
            floor(random() * 50)::BIGINT              AS CAT_K
        FROM range({rows});
        CREATE OR REPLACE TABLE T AS
        SELECT *, 3 * A + B * B + (C > 50)::INT * 10 + sin(D * 6) * 5
                  + (CAT_S IN ('c1', 'c7', 'c13', 'c22'))::INT * 8 + (CAT_K % 7) * 2
                  + random() AS Y
        FROM T;
    """)


def fit_models(
    session: neve.Session, train_rows: int, trees: int = 100
) -> dict[str, tuple[Any, list[str]]]:
    from sklearn.ensemble import (
        GradientBoostingRegressor,
        HistGradientBoostingRegressor,
        RandomForestRegressor,
    )

    train = session.table("T").limit(train_rows).to_pandas()
    y = train["Y"]
    hgb = dict(max_iter=trees, max_leaf_nodes=31, early_stopping=False, random_state=0)
    return {
        "HistGradientBoosting, 100 x 31 leaves": (
            HistGradientBoostingRegressor(**hgb).fit(train[NUM], y), NUM),
        "HistGradientBoosting, 100 x 31 leaves, 2 categorical": (
            HistGradientBoostingRegressor(**hgb, categorical_features=CAT).fit(train[NUM + CAT], y),
            NUM + CAT),
        "RandomForest, 100 x depth 6": (
            RandomForestRegressor(n_estimators=trees, max_depth=6, random_state=0, n_jobs=-1)
            .fit(train[NUM], y), NUM),
        "GradientBoosting, 100 x depth 3": (
            GradientBoostingRegressor(n_estimators=trees, max_depth=3, random_state=0)
            .fit(train[NUM], y), NUM),
    }


def compiled_sql(
    session: neve.Session, model: Any, cols: list[str], form: str | None
) -> tuple[str, float]:
    """The SELECT of PREDICTION in ``form`` (forced: the bitmask form's size limit lifted),
    or as neve renders it by default (``None``), and the seconds neve took to build it."""
    saved = DuckDBDriver.tree_scoring, _bitmask.MAX_MASK_ENTRIES
    if form is not None:
        DuckDBDriver.tree_scoring, _bitmask.MAX_MASK_ENTRIES = form, sys.maxsize
    try:
        start = time.perf_counter()
        expr = score(session.table("T"), model, feature_cols=cols).select("PREDICTION")
        sql = neve.Session.to_sql(session, expr)
        return sql, time.perf_counter() - start
    finally:
        DuckDBDriver.tree_scoring, _bitmask.MAX_MASK_ENTRIES = saved


def ctas(session: neve.Session, sql: str) -> None:
    session.engine.raw_sql(f"CREATE OR REPLACE TABLE PRED AS {sql}")


def bench(rows: int, args: argparse.Namespace, tmp: Path) -> list[list[str]]:
    out = []
    with neve.connect(f"duckdb:///{tmp / f'trees_{rows}.duckdb'}") as session:
        make_table(session, rows)
        models = fit_models(session, min(args.train_rows, rows), args.trees)
        table = session.table("T")
        forms = FORMS if rows <= args.case_rows else FORMS[:1]
        for label, (model, cols) in models.items():
            times, build, max_diff, sqls = {}, {}, None, {}
            sk = C.measure(lambda m=model, c=cols: m.predict(table.select(c).to_pandas()), args.repeat)
            for form in forms:
                sql, build[form] = compiled_sql(session, model, cols, form)
                sqls[form] = sql
                times[form] = C.measure(lambda q=sql: ctas(session, q), args.repeat).seconds
                if max_diff is None:  # DuckDB keeps insertion order for a plain scan
                    got = session.table("PRED").to_pandas()["PREDICTION"].to_numpy()
                    max_diff = float(np.max(np.abs(got - sk.result)))
            default = compiled_sql(session, model, cols, None)[0]
            picked = next((f for f in FORMS if sqls.get(f) == default), None)
            if picked is None:  # a form skipped at this size: time neve's choice too
                picked = next(f for f in FORMS if compiled_sql(session, model, cols, f)[0] == default)
                times[picked] = C.measure(lambda q=default: ctas(session, q), args.repeat).seconds
                build[picked] = 0.0
            out.append([
                f"{rows:,}", label,
                *(f"{C.fmt_seconds(times[f])} (+{build[f]:.2f} s build)" if f in times
                  else "not run" for f in FORMS),
                C.fmt_seconds(sk.seconds),
                f"{sk.seconds / times[picked]:.2f}x ({picked})" if picked else "n/a",
                f"{max_diff:.1e}",
            ])
            print(" | ".join(out[-1]), flush=True)
    return out


SPARK_TITLE = "Tree scoring on Spark"


def bench_spark(rows: int, args: argparse.Namespace, tmp: Path) -> list[list[str]]:
    """The four models on local Spark (``local[2]``, the CASE form: Spark renders no
    bitmasks): ``CREATE TABLE AS`` of the compiled PREDICTION against ``to_pandas()`` of
    the features plus ``predict``, on the same rows as DuckDB's table."""
    out = []
    with neve.connect(f"duckdb:///{tmp / f'trees_{rows}.duckdb'}") as duck:
        make_table(duck, rows)
        models = fit_models(duck, min(args.train_rows, rows), args.trees)
        data = duck.table("T").to_pyarrow()
    spark = neve.connect(f"spark://local[2]{tmp / 'warehouse'}?spark.driver.memory=6g")
    try:
        table = spark.create_table("T", data, overwrite=True)
        del data
        for label, (model, cols) in models.items():
            expr = score(table, model, feature_cols=cols).select("PREDICTION")
            sql_time = C.measure(lambda e=expr: spark.create_table("PRED", e, overwrite=True), args.repeat)
            sk = C.measure(lambda m=model, c=cols: m.predict(table.select(c).to_pandas()), args.repeat)
            got = float(spark.table("PRED").PREDICTION.sum().execute())
            diff = abs(got - float(np.sum(sk.result))) / max(1.0, abs(float(np.sum(sk.result))))
            out.append([f"{rows:,}", label, C.fmt_seconds(sql_time.seconds), C.fmt_seconds(sk.seconds),
                        f"{sk.seconds / sql_time.seconds:.2f}x", f"{diff:.1e}"])
            print(" | ".join(out[-1]), flush=True)
    finally:
        spark.close()
    return out


def main_spark(args: argparse.Namespace, argv: list[str] | None) -> None:
    load_before, started = os.getloadavg(), time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        results = [row for rows in args.rows or [1_000_000] for row in bench_spark(rows, args, Path(tmp))]
    load_after = os.getloadavg()
    shown = [a for a in (sys.argv[1:] if argv is None else argv) if a not in ("--no-write",)]
    command = " ".join(["python benchmarks/tree_scoring.py", *shown])
    md = C.run_header(["pyspark", "ibis-framework", "scikit-learn"], command)
    md += (f"\nLoad average (1 min) {load_before[0]:.2f} at the start, {load_after[0]:.2f} at the end; "
           f"{time.perf_counter() - started:.0f} s in all.\n\n")
    md += C.markdown_table(
        ["rows", "model", "SQL (case form)", "extract + predict", "SQL vs extract + predict",
         "relative diff of the sums"],
        results,
    )
    md += SPARK_NOTES
    C.publish(SPARK_TITLE, md, dry_run=args.no_write, path=args.output)


SPARK_NOTES = """
The models and the table of "Tree scoring" on local Spark (`local[2]`, a 6 GB driver), best
of the repeats: "SQL" is `CREATE TABLE AS` of the compiled PREDICTION (each tree a nested
CASE: Spark has no list literals indexed per row, so no bitmask form), "extract + predict"
`to_pandas()` of the feature columns from Spark plus scikit-learn's `predict`. Rows come
back from Spark in no fixed order, so exactness is shown by the sums of the predictions
(every row is compared in `tests/scoring`, on Spark too).

Against the target (>= 1x): missed on Spark (0.21x to 0.49x at 1M rows). Diagnosis: Spark's
whole-stage code generation writes the 100 trees' CASEs into one Java class (15,000 lines
for HGB) that its compiler, janino, fails to compile ("Failed to compile the generated Java
code" in Spark's log); Spark then falls back to running the plan without it, after spending
the failed compile. Measured on the HGB model at 1M rows (2026-12-07, load ~1): 12.9 s as
Spark runs it by default, 5.4 s with `spark.sql.codegen.wholeStage=false` (1.35x extract +
predict), 33.4 s with no code generation at all. neve does not set that option for you: it
is session-wide, and the aggregates of the fit need whole-stage code generation. Keeping the
generated class small enough to compile (fewer trees per projection, in projections Spark's
optimizer does not collapse) is the next thing to try; it was not tried.
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100k rows only, one repeat")
    parser.add_argument("--rows", type=int, nargs="+")
    parser.add_argument("--train-rows", type=int, default=100_000)
    parser.add_argument("--case-rows", type=int, default=1_000_000,
                        help="largest table the case form runs on (it is the slow one)")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--trees", type=int, default=100,
                        help="trees per model (the labels say 100; smaller for smoke tests)")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--output", type=Path, default=C.BENCHMARKS_MD,
                        help="the BENCHMARKS.md whose section to rewrite")
    parser.add_argument("--spark", action="store_true",
                        help=f"measure on local Spark instead (its own section, {SPARK_TITLE!r}; 1M rows)")
    args = parser.parse_args(argv)
    if args.spark:
        main_spark(args, argv)
        return
    if args.quick:
        args.rows = args.rows or [100_000]
        # A smoke test kept well under a minute on a loaded machine: the slow case form
        # only at full size.
        args.train_rows, args.repeat, args.case_rows = 5_000, 1, 0
    rows_list = args.rows or [1_000_000, 10_000_000]
    load_before = os.getloadavg()
    started = time.perf_counter()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for rows in rows_list:
            results += bench(rows, args, Path(tmp))
    load_after = os.getloadavg()
    shown = [a for a in (sys.argv[1:] if argv is None else argv) if a not in ("--no-write",)]
    command = " ".join(["python benchmarks/tree_scoring.py", *shown])
    md = C.run_header(["duckdb", "ibis-framework", "scikit-learn"], command)
    md += (f"\nLoad average (1/5/15 min) {load_before[0]:.2f}/{load_before[1]:.2f}/"
           f"{load_before[2]:.2f} at the start, {load_after[0]:.2f}/{load_after[1]:.2f}/"
           f"{load_after[2]:.2f} at the end; {time.perf_counter() - started:.0f} s in all.\n\n")
    md += C.markdown_table(
        ["rows", "model", "SQL, bitmask form", "SQL, case form", "extract + predict",
         "neve's form vs extract + predict", "max abs diff"],
        results,
    )
    md += NOTES
    C.publish(TITLE, md, dry_run=args.no_write, path=args.output)


NOTES = """
Best of the repeats, wall-clock, one DuckDB file, DuckDB's default threads (2) and
scikit-learn's defaults (HistGradientBoosting predicts on all cores; RandomForest with
`n_jobs=-1`). "SQL" is `CREATE TABLE AS` of the compiled PREDICTION; "build" is neve
turning the fitted model into SQL text (done once per model, not per query).
"extract + predict" is `to_pandas()` of the feature columns plus `predict`, no write-back.
The ratio is extract + predict's time over the time of the form neve renders by default
(the driver's `tree_scoring`, "bitmask" on DuckDB, falling back to "case" when the masks
would hold more than `MAX_MASK_ENTRIES` constants); above 1, SQL is faster.
"max abs diff" is between the bitmask form's predictions and scikit-learn's on every row
(RandomForest with `n_jobs=-1` adds its trees in thread order, hence ulps).

Forms explored. "case" is each tree as its own nested-CASE column, summed in
scikit-learn's order. "bitmask" is QuickScorer's idea for a vectorised engine: every
feature binned once per row against all of the ensemble's thresholds (a branchless
binary search, `pos += step * (x > T[pos + step])`, one projection per halving; categories
by `list_position`), per (word, feature) a constant list of 64-bit leaf masks indexed by the
bin, ANDed, which leaves one bit per tree. That bit `2**k`, taken modulo 67 (a prime whose
primitive root is 2, so every `k < 64` has its own residue), indexes a constant list of the
tree's leaf values placed at those residues. Until 2026-12-07 the leaf was
`bit_count((word & span) - 1)`: DuckDB's `bit_count` loops once per set bit, up to 61 steps
a row, and was half of the time (HGB at 1M rows: 3.6 s with it, 2.9 s with `log2`, 2.4 s
with the residue). Leaf tables joined: tried on the HGB model at 1M rows (4 joins for the
masks, a join per word for the leaf values): 39 s, as every DuckDB hash join carries the
widening row along (0.5 s a join). DuckDB rewrites an `IN` list of constants into a join
per `IN`; categorical splits in the CASE form are `list_contains` on DuckDB for that reason
(31 s -> 0.65 s at 10k rows, 50 categorical trees).

Profile (DuckDB's JSON profiler, HGB 100 x 31 leaves, 1M rows, operator seconds summed over
both threads, quiet machine): bins 0.9 s, words (50 words x 4 mask lookups) 1.8 s, leaf
residues and values (100 trees) 1.7 s, the sum 0.3 s: 4.7 s of vector work on 2 threads,
where scikit-learn's predictor walks each row through 100 trees of ~5 levels in compiled
code on both cores. Against the targets (>= 1x on DuckDB at 1M and 10M rows): met by HGB
with categories (1.33x, 1.44x) and GradientBoosting (1.08x, 1.09x) at both sizes and by HGB
at 10M (1.10x); HGB at 1M was 0.97x in this run and 1.33x in a run minutes before it
(`--rows 1000000 --repeat 1`: 2.45 s against 3.27 s), as scikit-learn's predict took 2.3
to 3.3 s from run to run. Missed by RandomForest (0.39x at 1M, 0.70x at 10M). The forest's thresholds
are exact, not binned: about 1,500 bins per feature (an 11-level search) and a word per
tree (64 leaves), so 400 mask lookups a row into lists of 1,500 constants, 4.8 MB in all,
which no CPU cache holds. Local Spark renders the CASE form; it was not measured here (see
"Spark scale" for the score stage).
"""


if __name__ == "__main__":
    main()
