"""Preprocessing benchmark: neve against hand-written DuckDB SQL, scikit-learn and ibis-ml.

    uv sync --all-extras --group dev --group bench
    uv run --no-sync python benchmarks/preprocessing.py            # 1M and 10M rows
    uv run --no-sync python benchmarks/preprocessing.py --quick    # 1M rows only

Data is generated inside DuckDB and written to a DuckDB file: 10 float columns
(one with mean 1e6 and sd 0.87, the case that breaks the one-pass variance
formula) and two string columns with 20 and 1000 categories, 5% NULLs each;
plus a taxi-like table for the seed's OneHotEncoder + MaxAbsScaler pipeline.

Fit is timed as the call that returns the fitted state (best of ``--repeat``
for the in-engine tools). An in-engine transform is timed twice: "evaluate"
runs the transform SELECT and reduces every output column with ``max`` (every
cell computed, nothing stored), and "CTAS" materialises it with CREATE TABLE
AS. Dense one-hot output has rows x categories cells, and this machine writes
table cells at roughly 25-50 ns each, so CTAS runs only while the output stays
under ``--ctas-cells``; above that the table says "skipped". scikit-learn is
timed on data already in pandas and, separately, with the cost of extracting
it from DuckDB. The results go into the ``## Preprocessing`` section of
BENCHMARKS.md; nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import ibis

import neve
from benchmarks import _common as C
from neve.preprocessing import MaxAbsScaler, MinMaxScaler, OneHotEncoder, StandardScaler

FLOATS = [f"f{i}" for i in range(10)]
# (mean, sd) per float column; f0 is the precision trap named in the issue.
MOMENTS = [(1e6, 0.87), (0.0, 1.0), (10.0, 2.0), (-50.0, 5.0), (1e3, 30.0),
           (0.5, 0.1), (1e4, 1e3), (3.0, 0.5), (-1e5, 7.0), (42.0, 42.0)]  # fmt: skip
STRINGS = {"s20": 20, "s1000": 1000}
SEED_CATS = ["PICKUP_LOCATION_ID", "DROPOFF_LOCATION_ID", "HOUR_OF_DAY"]
SEED_NUM = "TRIP_DISTANCE"
SEED_COLUMNS = 265 + 265 + 24 + 3  # one-hot blocks plus the other columns of the output
STEPS = ("StandardScaler", "MinMaxScaler", "OneHotEncoder")
NULL_RATE = 0.05
TITLE = "Preprocessing"


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


# --- data ------------------------------------------------------------------


def generate(con: Any, rows: int, table: str = "bench") -> None:
    """The benchmark table, built by DuckDB itself (Box-Muller normals, uniform categories)."""
    normal = "sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())"
    floats = [
        f"CASE WHEN random() < {NULL_RATE} THEN NULL ELSE {m!r} + {s!r} * {normal} END AS {c}"
        for c, (m, s) in zip(FLOATS, MOMENTS, strict=True)
    ]
    strings = [
        f"CASE WHEN random() < {NULL_RATE} THEN NULL ELSE 'c' || "
        f"lpad(CAST(floor(random() * {k}) AS INTEGER)::VARCHAR, {len(str(k - 1))}, '0') END AS {c}"
        for c, k in STRINGS.items()
    ]
    con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT {', '.join(floats + strings)} "
                f"FROM range({rows})")  # fmt: skip
    con.execute("CHECKPOINT")


def generate_seed(con: Any, rows: int, table: str = "taxi") -> None:
    """Taxi-like rows: 265 pickup and dropoff zones, 24 hours, a skewed trip distance."""
    con.execute(
        f"""CREATE OR REPLACE TABLE {table} AS SELECT
          CAST(1 + floor(random() * 265) AS INTEGER)::VARCHAR AS PICKUP_LOCATION_ID,
          CAST(1 + floor(random() * 265) AS INTEGER)::VARCHAR AS DROPOFF_LOCATION_ID,
          CAST(floor(random() * 24) AS INTEGER)::VARCHAR AS HOUR_OF_DAY,
          exp(0.8 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())) AS TRIP_DISTANCE,
          60 + 1200 * random() AS TRIP_DURATION
        FROM range({rows})"""
    )
    con.execute("CHECKPOINT")


# --- neve --------------------------------------------------------------------


def neve_steps() -> dict[str, Any]:
    return {
        "StandardScaler": StandardScaler(input_cols=FLOATS),
        "MinMaxScaler": MinMaxScaler(input_cols=FLOATS),
        "OneHotEncoder": OneHotEncoder(input_cols=list(STRINGS)),
    }


def seed_pipeline() -> neve.Pipeline:
    return neve.Pipeline([
        ("ohe", OneHotEncoder(input_cols=SEED_CATS, output_cols=SEED_CATS, handle_unknown="ignore")),
        ("mas", MaxAbsScaler(input_cols=[SEED_NUM], output_cols=[f"{SEED_NUM}_SCALED"])),
    ])  # fmt: skip


def to_sql(expr: Any) -> str:
    return str(ibis.to_sql(expr, dialect="duckdb"))


# --- hand-written SQL ----------------------------------------------------------


def sql_fit(con: Any, step: str, table: str = "bench") -> dict[str, Any]:
    """The statistics each step needs, as a DuckDB user would write them by hand."""
    if step == "StandardScaler":
        # Corrected two-pass: centre on the first-pass mean, then add back the residual.
        shift = ", ".join(f"avg({c}) AS m_{c}" for c in FLOATS)
        stats = ", ".join(
            f"count({c}), any_value(m_{c}) + avg({c} - m_{c}), "
            f"avg(({c} - m_{c}) * ({c} - m_{c})) - avg({c} - m_{c}) * avg({c} - m_{c})"
            for c in FLOATS
        )
        row = con.execute(f"WITH s AS (SELECT {shift} FROM {table}) "
                          f"SELECT {stats} FROM {table}, s").fetchone()  # fmt: skip
        n, mean, var = row[0::3], row[1::3], row[2::3]
        return {"n": dict(zip(FLOATS, n)), "mean": dict(zip(FLOATS, mean)),
                "var": dict(zip(FLOATS, var))}  # fmt: skip
    if step == "MinMaxScaler":
        row = con.execute(
            f"SELECT {', '.join(f'min({c}), max({c})' for c in FLOATS)} FROM {table}"
        ).fetchone()
        return {"min": dict(zip(FLOATS, row[0::2])), "max": dict(zip(FLOATS, row[1::2]))}
    if step == "OneHotEncoder":
        parts = [f"SELECT {lit(c)} AS col, {c} AS v, count(*) AS n FROM {table} GROUP BY {c}"
                 for c in STRINGS]  # fmt: skip
        found: dict[str, list[Any]] = {c: [] for c in STRINGS}
        for col, value, _ in con.execute(" UNION ALL ".join(parts)).fetchall():
            found[col].append(value)
        return {"categories": {c: sorted(v for v in vals if v is not None)
                               + ([None] if None in vals else []) for c, vals in found.items()}}  # fmt: skip
    raise ValueError(step)


def sql_transform(step: str, stats: dict[str, Any], table: str = "bench") -> str:
    """The transform SELECT, hand-written: same output columns as neve, same order."""
    others = [c for c in [*FLOATS, *STRINGS]]
    if step == "StandardScaler":
        exprs = {c: f"({c} - {stats['mean'][c]!r}) / {math.sqrt(stats['var'][c])!r} AS {c}"
                 for c in FLOATS}  # fmt: skip
    elif step == "MinMaxScaler":
        exprs = {}
        for c in FLOATS:
            lo, hi = stats["min"][c], stats["max"][c]
            exprs[c] = f"{c} * {1 / (hi - lo)!r} + {-lo / (hi - lo)!r} AS {c}"
    else:
        exprs = {c: ", ".join(onehot_sql(c, stats["categories"][c])) for c in STRINGS}
    return f"SELECT {', '.join(exprs.get(c, c) for c in others)} FROM {table}"


def onehot_sql(col: str, categories: list[Any], out: str | None = None) -> list[str]:
    out = out or col
    return [
        f"CASE WHEN {q(col)} IS NULL THEN 1.0 ELSE 0.0 END AS {q(out + '_nan')}"
        if v is None
        else f"CASE WHEN {q(col)} = {lit(v)} THEN 1.0 ELSE 0.0 END AS {q(f'{out}_{v}')}"
        for v in categories
    ]


def compare(fitted: dict[str, Any], stats: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Largest relative difference between neve's fitted state and the SQL statistics.

    Categories must match exactly (a mismatch is reported as infinity).
    """
    def rel(a: dict[str, float], b: dict[str, float]) -> float:
        return max(abs(a[c] - b[c]) / max(abs(b[c]), 1e-300) for c in b)

    std, mm, ohe = fitted["StandardScaler"], fitted["MinMaxScaler"], fitted["OneHotEncoder"]
    s, m, o = stats["StandardScaler"], stats["MinMaxScaler"], stats["OneHotEncoder"]
    cats = {c: [None if isinstance(v, float) and math.isnan(v) else v for v in ohe.categories_[c]]
            for c in STRINGS}  # fmt: skip
    return {
        "mean": rel(std.mean_, s["mean"]),
        "var": rel(std.var_, s["var"]),
        "n": float(std.n_samples_seen_ != s["n"]),
        "min": rel(mm.data_min_, m["min"]),
        "max": rel(mm.data_max_, m["max"]),
        "categories": 0.0 if cats == o["categories"] else math.inf,
    }


def one_pass_error(con: Any, stats: dict[str, Any], table: str = "bench") -> float:
    """Relative error of the one-pass variance formula on f0 (mean 1e6, sd 0.87)."""
    (naive,) = con.execute(f"SELECT avg(f0 * f0) - avg(f0) * avg(f0) FROM {table}").fetchone()
    return abs(naive - stats["var"]["f0"]) / stats["var"]["f0"]


# --- in-engine transforms --------------------------------------------------------


def evaluate(con: Any, sql: str) -> None:
    """Compute every output cell of ``sql`` without storing it."""
    con.execute(f"SELECT max(COLUMNS(*)) FROM ({sql})").fetchall()


def ctas(con: Any, sql: str, name: str = "bench_out") -> None:
    con.execute(f"CREATE OR REPLACE TABLE {name} AS {sql}")


def n_columns(con: Any, sql: str) -> int:
    return len(con.execute(f"DESCRIBE {sql}").fetchall())


# --- scikit-learn and ibis-ml --------------------------------------------------


def extract(con: Any, cols: list[str], table: str = "bench") -> Any:
    """DuckDB to pandas, the fastest way DuckDB offers."""
    return con.execute(f"SELECT {', '.join(map(q, cols))} FROM {table}").df()


def sklearn_step(step: str) -> tuple[Any, list[str]]:
    from sklearn import preprocessing as skp

    if step == "OneHotEncoder":
        return skp.OneHotEncoder(), list(STRINGS)  # defaults: sparse output, handle_unknown="error"
    return getattr(skp, step)(), FLOATS


def sklearn_seed() -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import MaxAbsScaler as SkMaxAbs
    from sklearn.preprocessing import OneHotEncoder as SkOneHot

    return ColumnTransformer([("ohe", SkOneHot(handle_unknown="ignore"), SEED_CATS),
                              ("mas", SkMaxAbs(), [SEED_NUM])])  # fmt: skip


def ibis_ml_status() -> str | None:
    """None when ibis-ml imports, else why not."""
    try:
        import ibis_ml  # noqa: F401
    except Exception as exc:  # ImportError, or an incompatibility with this ibis
        return f"{type(exc).__name__}: {exc}"
    return None


def ibis_ml_fit(step: str, table: Any) -> tuple[Any, str]:
    """Fit the ibis-ml counterpart of ``step``; returns (fitted, note).

    ibis-ml 0.1.4's OneHotEncode learns NULL as a NaN category and then builds
    ``string_col == NaN``, which ibis 12 rejects, so a Recipe cannot fit on
    these columns. The step's own fit query is timed instead and the NaN
    category dropped by hand before transforming (NULL rows get all zeros).
    """
    import ibis_ml as ml
    from ibis_ml.core import Metadata

    if step == "OneHotEncoder":
        ohe = ml.OneHotEncode(list(STRINGS))
        ohe.fit_table(table, Metadata())
        ohe.categories_ = {c: [v for v in cats if isinstance(v, str)]
                           for c, cats in ohe.categories_.items()}  # fmt: skip
        return ohe, "step fit only; NaN category removed by hand"
    cls = ml.ScaleStandard if step == "StandardScaler" else ml.ScaleMinMax
    return ml.Recipe(cls(FLOATS)).fit(table), ""


def ibis_ml_recipe_error(table: Any) -> str | None:
    """What a plain ``Recipe(OneHotEncode(...)).fit`` does on the benchmark columns."""
    import ibis_ml as ml

    try:
        ml.Recipe(ml.OneHotEncode(list(STRINGS))).fit(table)
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    return None


def ibis_ml_transform(fitted: Any, table: Any) -> Any:
    return fitted.to_ibis(table) if hasattr(fitted, "to_ibis") else fitted.transform_table(table)


# --- one run ----------------------------------------------------------------------


@dataclass
class Timing:
    fit: float | None = None
    evaluate: float | None = None
    ctas: float | None = None  # None: not run
    extract: float | None = None
    transform: float | None = None  # scikit-learn's in-memory transform
    peak_mb: float = 0.0
    out_cols: int | None = None
    note: str = ""


@dataclass
class SizeResult:
    rows: int
    timings: dict[tuple[str, str], Timing] = field(default_factory=dict)  # (tool, step)
    seed: dict[str, Timing] = field(default_factory=dict)  # tool -> timing
    agreement: dict[str, float] = field(default_factory=dict)
    one_pass_error: float | None = None
    ibis_ml: str | None = None  # why ibis-ml did not run, if it did not
    ibis_ml_recipe: str | None = None


@dataclass
class Budget:
    """Which in-engine transforms run: dense one-hot output grows as rows x categories."""

    eval_cells: int = 6_000_000_000
    ctas_cells: int = 700_000_000
    ctas_rows: int = 1_000_000


def _transform_times(con: Any, timing: Timing, build: Callable[[], str], rows: int,
                     budget: Budget) -> None:  # fmt: skip
    """Time building+compiling the SELECT plus evaluating it, then CTAS if small enough."""
    sql = build()
    timing.out_cols = n_columns(con, sql)
    cells = rows * timing.out_cols
    if cells > budget.eval_cells:
        return
    timing.evaluate = C.measure(lambda: evaluate(con, build())).seconds
    if cells <= budget.ctas_cells and rows <= budget.ctas_rows:
        m = C.measure(lambda: ctas(con, build()))
        timing.ctas, timing.peak_mb = m.seconds, max(timing.peak_mb, m.peak_rss_mb)
    con.execute("DROP TABLE IF EXISTS bench_out")


def run_size(session: neve.Session, rows: int, *, repeat: int = 3, budget: Budget | None = None,
             tools: tuple[str, ...] = ("neve", "sql", "sklearn", "ibis-ml", "seed"),
             log: Callable[[str], None] = print) -> SizeResult:  # fmt: skip
    con = session.engine.con
    budget = budget or Budget()
    result = SizeResult(rows)
    started = time.perf_counter()

    def say(msg: str) -> None:
        log(f"[{rows:>10,} rows | {time.perf_counter() - started:6.1f} s] {msg}")

    generate(con, rows)
    t = session.table("bench")
    say("data generated")
    fitted: dict[str, Any] = {}
    stats: dict[str, Any] = {}
    for step in STEPS:
        if "neve" in tools:
            m = C.measure(lambda: neve_steps()[step].fit(t), repeat)
            fitted[step] = m.result
            timing = result.timings[("neve", step)] = Timing(fit=m.seconds, peak_mb=m.peak_rss_mb)
            _transform_times(con, timing, lambda: to_sql(fitted[step].transform(t)), rows, budget)
            say(f"neve {step}")
        if "sql" in tools:
            m = C.measure(lambda: sql_fit(con, step), repeat)
            stats[step] = m.result
            timing = result.timings[("sql", step)] = Timing(fit=m.seconds, peak_mb=m.peak_rss_mb)
            _transform_times(con, timing, lambda: sql_transform(step, stats[step]), rows, budget)
            say(f"hand SQL {step}")
    if "neve" in tools and "sql" in tools:
        result.agreement = compare(fitted, stats)
        result.one_pass_error = one_pass_error(con, stats["StandardScaler"])
    if "ibis-ml" in tools:
        result.ibis_ml = ibis_ml_status()
        if result.ibis_ml is None:
            result.ibis_ml_recipe = ibis_ml_recipe_error(t)
            for step in STEPS:
                m = C.measure(lambda: ibis_ml_fit(step, t), repeat)
                model, note = m.result
                timing = result.timings[("ibis-ml", step)] = Timing(
                    fit=m.seconds, peak_mb=m.peak_rss_mb, note=note
                )
                _transform_times(con, timing, lambda: to_sql(ibis_ml_transform(model, t)), rows,
                                 budget)  # fmt: skip
                say(f"ibis-ml {step}")
    if "sklearn" in tools:
        for step in STEPS:
            est, cols = sklearn_step(step)
            m = C.measure(lambda: extract(con, cols))
            frame, timing = m.result, Timing(extract=m.seconds, peak_mb=m.peak_rss_mb)
            m = C.measure(lambda: est.fit(frame))
            timing.fit, timing.peak_mb = m.seconds, max(timing.peak_mb, m.peak_rss_mb)
            m = C.measure(lambda: est.transform(frame))
            timing.transform, timing.peak_mb = m.seconds, max(timing.peak_mb, m.peak_rss_mb)
            timing.out_cols = m.result.shape[1]
            result.timings[("sklearn", step)] = timing
            del frame, m
            say(f"scikit-learn {step}")
    if "seed" in tools and rows * SEED_COLUMNS <= budget.eval_cells:
        run_seed(session, rows, result, repeat=repeat, budget=budget)
        say("seed pipeline")
    return result


def run_seed(session: neve.Session, rows: int, result: SizeResult, *, repeat: int,
             budget: Budget) -> None:  # fmt: skip
    con = session.engine.con
    generate_seed(con, rows)
    taxi = session.table("taxi")
    m = C.measure(lambda: seed_pipeline().fit(taxi), repeat)
    pipe = m.result
    timing = result.seed["neve"] = Timing(fit=m.seconds, peak_mb=m.peak_rss_mb)
    _transform_times(con, timing, lambda: pipe.to_sql(taxi, pretty=False), rows, budget)
    est = sklearn_seed()
    m = C.measure(lambda: extract(con, [*SEED_CATS, SEED_NUM], "taxi"))
    frame, timing = m.result, Timing(extract=m.seconds, peak_mb=m.peak_rss_mb)
    m = C.measure(lambda: est.fit(frame))
    timing.fit, timing.peak_mb = m.seconds, max(timing.peak_mb, m.peak_rss_mb)
    m = C.measure(lambda: est.transform(frame))
    timing.transform, timing.peak_mb = m.seconds, max(timing.peak_mb, m.peak_rss_mb)
    timing.out_cols = m.result.shape[1]
    result.seed["sklearn"] = timing


# --- the BENCHMARKS.md section -------------------------------------------------------

FIT_LIMIT = 1.2  # neve fit <= 1.2x hand-written SQL
IBIS_ML_SPEEDUP = 2.0  # neve fit >= 2x faster than ibis-ml
SEED_SPEEDUP = 5.0  # seed pipeline >= 5x faster than pandas + scikit-learn incl. extraction


def _sum(values: list[float | None]) -> float | None:
    return None if any(v is None for v in values) else sum(values)  # type: ignore[arg-type]


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("**pass**" if ok else "**FAIL**")


def _fit_total(r: SizeResult, tool: str) -> float | None:
    values = [r.timings[(tool, s)].fit if (tool, s) in r.timings else None for s in STEPS]
    return _sum(values)


def _sk_total(t: Timing | None) -> float | None:
    return None if t is None else _sum([t.extract, t.fit, t.transform])


def _seed_neve(t: Timing | None) -> tuple[float | None, str]:
    """neve's seed-pipeline time: fit + CTAS, or fit + evaluate where CTAS was skipped."""
    if t is None:
        return None, ""
    if t.ctas is not None:
        return _sum([t.fit, t.ctas]), "fit + CTAS"
    return _sum([t.fit, t.evaluate]), "fit + evaluate (CTAS skipped)"


def targets(results: list[SizeResult]) -> list[tuple[str, str, str, str]]:
    rows = []
    for r in results:
        n = f"{r.rows:,}"
        neve_fit, sql_fit_s, ml_fit = (_fit_total(r, t) for t in ("neve", "sql", "ibis-ml"))
        ratio = _ratio(neve_fit, sql_fit_s)
        rows.append((f"neve fit <= {FIT_LIMIT}x hand-written SQL (3 steps)", n,
                     f"{C.fmt_ratio(ratio)} (neve {C.fmt_seconds(neve_fit)}, SQL {C.fmt_seconds(sql_fit_s)})",
                     _verdict(None if ratio is None else ratio <= FIT_LIMIT)))  # fmt: skip
        speedup = _ratio(ml_fit, neve_fit)
        rows.append((f"neve fit >= {IBIS_ML_SPEEDUP:g}x faster than ibis-ml (3 steps)", n,
                     f"{C.fmt_ratio(speedup)} (ibis-ml {C.fmt_seconds(ml_fit)}, "
                     f"neve {C.fmt_seconds(neve_fit)})" if speedup else (r.ibis_ml or "n/a"),
                     _verdict(None if speedup is None else speedup >= IBIS_ML_SPEEDUP)))  # fmt: skip
        neve_seed, how = _seed_neve(r.seed.get("neve"))
        sk_seed = _sk_total(r.seed.get("sklearn"))
        speedup = _ratio(sk_seed, neve_seed)
        rows.append((f"seed pipeline >= {SEED_SPEEDUP:g}x faster than pandas + scikit-learn "
                     "incl. extraction", n,
                     f"{C.fmt_ratio(speedup)} (pandas + sklearn {C.fmt_seconds(sk_seed)}, "
                     f"neve {C.fmt_seconds(neve_seed)} as {how})" if speedup else "not run",
                     _verdict(None if speedup is None else speedup >= SEED_SPEEDUP)))  # fmt: skip
    return rows


def _eval_ctas(t: Timing | None) -> str:
    if t is None:
        return "n/a"
    if t.evaluate is None:
        return "skipped"
    ctas_s = C.fmt_seconds(t.ctas) if t.ctas is not None else "skipped"
    return f"{C.fmt_seconds(t.evaluate)} / {ctas_s}"


def size_tables(r: SizeResult) -> str:
    get = r.timings.get
    fit_rows = []
    for step in [*STEPS, "total"]:
        def fit(tool: str) -> float | None:
            if step == "total":
                return _fit_total(r, tool)
            t = get((tool, step))
            return None if t is None else t.fit

        sk = [get(("sklearn", s)) for s in (STEPS if step == "total" else [step])]
        sk_fit = _sum([t.fit if t else None for t in sk])
        sk_ext = _sum([_sum([t.extract, t.fit]) if t else None for t in sk])
        fit_rows.append((step if step != "total" else "**total**",
                         *(C.fmt_seconds(fit(tool)) for tool in ("neve", "sql", "ibis-ml")),
                         C.fmt_seconds(sk_fit), C.fmt_seconds(sk_ext),
                         C.fmt_ratio(_ratio(fit("neve"), fit("sql"))),
                         C.fmt_ratio(_ratio(fit("ibis-ml"), fit("neve")))))  # fmt: skip
    transform_rows = []
    for step in STEPS:
        sk = get(("sklearn", step))
        neve_t = get(("neve", step))
        transform_rows.append((step, neve_t.out_cols if neve_t else "n/a",
                               *(_eval_ctas(get((tool, step))) for tool in ("neve", "sql", "ibis-ml")),
                               C.fmt_seconds(sk.transform if sk else None),
                               C.fmt_seconds(_sum([sk.extract, sk.transform]) if sk else None)))  # fmt: skip
    peak_rows = [(tool, *(f"{get((tool, s)).peak_mb:,.0f}" if get((tool, s)) else "n/a" for s in STEPS))
                 for tool in ("neve", "sql", "ibis-ml", "sklearn")]  # fmt: skip
    return "\n".join([
        f"### {r.rows:,} rows\n",
        "Fit (best of the repeats for the in-engine tools):\n",
        C.markdown_table(["step", "neve", "hand SQL", "ibis-ml", "scikit-learn",
                          "scikit-learn + extraction", "neve / SQL", "ibis-ml / neve"], fit_rows),
        "Transform, in-engine as evaluate / CTAS (see method); scikit-learn on pandas:\n",
        C.markdown_table(["step", "output columns (neve)", "neve", "hand SQL", "ibis-ml",
                          "scikit-learn", "scikit-learn + extraction"], transform_rows),
        "Peak resident memory of the benchmark process during each step (MiB):\n",
        C.markdown_table(["tool", *STEPS], peak_rows),
    ])  # fmt: skip


def seed_table(results: list[SizeResult]) -> str:
    rows = []
    for r in results:
        n, s = r.seed.get("neve"), r.seed.get("sklearn")
        if n is None or s is None:
            continue
        neve_total, _ = _seed_neve(n)
        rows.append((f"{r.rows:,}", C.fmt_seconds(n.fit), _eval_ctas(n), C.fmt_seconds(neve_total),
                     C.fmt_seconds(s.extract), C.fmt_seconds(s.fit), C.fmt_seconds(s.transform),
                     C.fmt_seconds(_sk_total(s)), C.fmt_ratio(_ratio(_sk_total(s), neve_total)),
                     f"{n.peak_mb:,.0f} / {s.peak_mb:,.0f}"))  # fmt: skip
    return C.markdown_table(["rows", "neve fit", "neve transform (evaluate / CTAS)", "neve total",
                             "pandas extraction", "sklearn fit", "sklearn transform",
                             "pandas + sklearn total", "speed-up", "peak MiB neve / pandas"], rows)  # fmt: skip


WHY = """\
Why, from profiling the SQL neve generates (`ibis.to_sql`): fit is one aggregate per step and, since
this benchmark, reads raw values first the way hand-written SQL does (NaN-to-NULL guards only in a
fallback query for columns that really hold NaN or infinity), so StandardScaler and MinMaxScaler fit
run the same shape of query as hand SQL. Their ratio still swings from run to run on this VM
(10M-row StandardScaler has measured 0.97x and 1.82x in consecutive runs; neve runs first after
data generation, and memory first-touch here is erratic), beyond that neve's OneHotEncoder counting query
(GROUP BY, then LIST aggregates cross-joined into one row), which carries a fixed cost visible at
1M rows. ibis-ml is not a fair 2x target: it does less work (a one-pass `stddev_pop` with no
centring, `SELECT DISTINCT` without counts, no NaN or unknown-category handling), so neve cannot
be 2x faster than it without dropping scikit-learn parity. The seed pipeline loses because its
output is 557 dense columns: a lazy SELECT is cheap, but computing and storing rows x 557 cells
costs far more than scikit-learn's sparse matrix. neve's one-hot transform is also slower than the
same hand-written SELECT, because every category test is `CASE WHEN COALESCE(x = 'c', FALSE) ...`:
measured on 1M rows, dropping the COALESCE (a NULL condition already takes the ELSE branch) cuts
the evaluate time 2.2-2.4x; about 1.5 s more is Python building and compiling 1032 expressions.
"""


def reading(results: list[SizeResult]) -> str:
    """The paragraph under the headline: what passed, what failed, and why, from the numbers."""
    parts = []
    verdicts = targets(results)
    failed = [f"{name} at {n} rows ({value})" for name, n, value, v in verdicts if "FAIL" in v]
    passed = [f"{name} at {n}" for name, n, _, v in verdicts if "pass" in v]
    if passed:
        parts.append("Met: " + "; ".join(passed) + ".")
    if failed:
        parts.append("Missed: " + "; ".join(failed) + ".")
    for r in results:
        if r.agreement:
            worst = max(v for k, v in r.agreement.items() if k != "categories")
            parts.append(f"At {r.rows:,} rows neve's fitted state agrees with the hand-written SQL to "
                         f"{worst:.1e} relative (categories {'identical' if not r.agreement['categories'] else 'DIFFER'}); "
                         f"the one-pass variance formula is off by {r.one_pass_error:.0%} on f0.")  # fmt: skip
            break
    status = next((r.ibis_ml for r in results if r.ibis_ml), None)
    recipe = next((r.ibis_ml_recipe for r in results if r.ibis_ml_recipe), None)
    if status:
        parts.append(f"ibis-ml did not run: {status}.")
    elif recipe:
        parts.append(f"ibis-ml 0.1.4's Recipe cannot fit OneHotEncode on NULL-bearing string columns "
                     f"with ibis 12 ({recipe}); its step fit is timed on its own and the NaN "
                     f"category dropped before transforming.")  # fmt: skip
    return " ".join(parts)


METHOD = """\
Method. Data is generated inside DuckDB and stored in a DuckDB file: 10 float64 columns
(f0 has mean 1e6 and sd 0.87), string columns `s20` and `s1000` with 20 and 1000 uniform
categories, 5% NULLs in every column. Fit is the call that returns fitted state, best of the
repeats for neve, hand SQL and ibis-ml (one run for scikit-learn). The hand-written SQL is
what a DuckDB user would write: one corrected two-pass aggregate for mean and variance, one
min/max aggregate, one GROUP BY per string column; its transform is the same SELECT neve
produces, without neve's NaN-to-NULL and unknown-category guards. In-engine transforms are
timed from building the expression to the end of the query (Python-side expression building
and SQL compilation included), twice: "evaluate" runs `SELECT max(COLUMNS(*)) FROM (transform)`
so every output cell is computed and nothing is stored; "CTAS" is `CREATE TABLE AS` the
transform. Dense one-hot output has rows x categories cells and this VM writes table cells at
roughly 25-50 ns each (first-touch memory is slow here: most of a run is wall time with the CPU
idle), so to keep a run near 10 minutes evaluate runs up to 6G output cells and CTAS up to
0.7G cells and 1M rows (`--eval-cells`, `--ctas-cells`, `--ctas-rows`); "skipped" marks the rest,
and the seed pipeline runs only where its transform is evaluated. scikit-learn uses its
defaults (OneHotEncoder's output is a sparse matrix, which is why its transform is cheap next to
any dense table); "+ extraction" adds `SELECT ... ` from DuckDB to pandas via DuckDB's `.df()`.
The seed pipeline is OneHotEncoder(handle_unknown="ignore") on PICKUP_LOCATION_ID,
DROPOFF_LOCATION_ID (265 zones each) and HOUR_OF_DAY (24), plus MaxAbsScaler on TRIP_DISTANCE,
against the same ColumnTransformer in pandas + scikit-learn.
"""


def render(results: list[SizeResult], command: str | None = None) -> str:
    packages = ["neve", "duckdb", "ibis-framework", "sqlglot", "scikit-learn", "pandas", "numpy",
                "ibis-ml"]  # fmt: skip
    return "\n".join([
        C.run_header(packages, command),
        C.markdown_table(["target", "rows", "measured", "result"], targets(results)),
        reading(results) + "\n",
        WHY,
        METHOD,
        *(size_tables(r) for r in results),
        "### Seed pipeline: OneHotEncoder + MaxAbsScaler\n",
        seed_table(results),
    ])  # fmt: skip


# --- command line --------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--quick", action="store_true", help="1M rows only")
    parser.add_argument("--repeat", type=int, default=3, help="fits timed best of N (in-engine)")
    defaults = Budget()
    parser.add_argument("--eval-cells", type=int, default=defaults.eval_cells,
                        help="run an in-engine transform only up to this many output cells")
    parser.add_argument("--ctas-cells", type=int, default=defaults.ctas_cells,
                        help="and CREATE TABLE AS only up to this many cells ...")
    parser.add_argument("--ctas-rows", type=int, default=defaults.ctas_rows,
                        help="... and this many rows")
    parser.add_argument("--db", type=Path, help="DuckDB file (default: a temporary one)")
    parser.add_argument("--output", type=Path, default=C.BENCHMARKS_MD)
    parser.add_argument("--no-write", action="store_true", help="print the section only")
    args = parser.parse_args(argv)
    rows = [1_000_000] if args.quick else args.rows
    with tempfile.TemporaryDirectory(prefix="neve-bench-") as tmp:
        path = args.db or Path(tmp) / "preprocessing.duckdb"
        results = []
        with neve.connect(f"duckdb:///{path}") as session:
            for n in rows:
                budget = Budget(args.eval_cells, args.ctas_cells, args.ctas_rows)
                results.append(run_size(session, n, repeat=args.repeat, budget=budget))
    command = "python benchmarks/preprocessing.py" + (" --quick" if args.quick else "")
    if args.rows != parser.get_default("rows") and not args.quick:
        command += " --rows " + " ".join(map(str, rows))
    section = render(results, command)
    print(section)
    if not args.no_write:
        print(f"wrote ## {TITLE} to {C.write_section(TITLE, section, args.output)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
