"""The stages benchmarks/scale.py times, each run in a child process of its own size.

``neve_child`` runs the flagship DAG's stages through neve on a DuckDB file, each
followed by the hand-written SQL floor for that stage, and prints one JSON line
per measurement. ``pandas_child`` runs the same pipeline in pandas +
scikit-learn, printing a line as each stage completes, so a parent that kills it
for memory still knows how far it got.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DAG_FILE = REPO / "dags" / "taxi_trip_duration.py"
CATEGORICAL = ["PICKUP_LOCATION_ID", "DROPOFF_LOCATION_ID", "HOUR_OF_DAY"]
ID, TARGET = "TRIP_ID", "TRIP_DURATION_SEC"
ORDER = ["PICKUP_DATETIME", "PICKUP_LOCATION_ID", "DROPOFF_LOCATION_ID", "TRIP_DISTANCE", TARGET]
MAX_DURATION_SEC = 4 * 3600


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def lit(value: Any) -> str:
    return "'" + str(value).replace("'", "''") + "'"


class Peak:
    """Peak resident memory of this process between ``reset`` and ``read``, in MiB.

    Uses the kernel's high-water mark (reset through clear_refs) where it can, and a
    50 ms sampler thread otherwise.
    """

    def __init__(self) -> None:
        import psutil

        self._proc = psutil.Process()
        self._kernel = self._reset_kernel()
        self._max = 0
        if not self._kernel:
            threading.Thread(target=self._sample, daemon=True).start()

    @staticmethod
    def _reset_kernel() -> bool:
        try:
            Path("/proc/self/clear_refs").write_text("5")
            return True
        except OSError:
            return False

    def _sample(self) -> None:
        while True:
            self._max = max(self._max, self._proc.memory_info().rss)
            time.sleep(0.05)

    def reset(self) -> None:
        self._max = self._proc.memory_info().rss
        if self._kernel:
            self._reset_kernel()

    def read(self) -> float:
        if self._kernel:
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        return max(self._max, self._proc.memory_info().rss) / 2**20


def emit(**record: Any) -> None:
    print(json.dumps(record), flush=True)


def timed(peak: Peak, side: str, stage: str, rows: int, fn: Callable[[], Any], **extra: Any) -> Any:
    peak.reset()
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    emit(side=side, stage=stage, rows=rows, seconds=seconds, rss_mb=peak.read(), **extra)
    return result


def dag_module() -> Any:
    """The taxi DAGs' shared tasks module (``dags/taxi_tasks.py``: cleaning rules, feature
    columns), imported as Airflow's DAG processor does, with ``dags/`` on the path (Airflow
    reads its configuration from a temp home)."""
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="neve-scale-airflow-"))
    if str(DAG_FILE.parent) not in sys.path:
        sys.path.insert(0, str(DAG_FILE.parent))
    return importlib.import_module("taxi_tasks")


# --- hand-written SQL floors ---------------------------------------------------------


def sql_clean(src: str, dest: str) -> str:
    dur = "(epoch(dropoff_datetime) - epoch(pickup_datetime))::DOUBLE"
    return f"""CREATE OR REPLACE TABLE {dest} AS
SELECT *, row_number() OVER (ORDER BY {", ".join(ORDER)}) + 1 AS {ID} FROM (
  SELECT pickup_datetime AS PICKUP_DATETIME,
         pickup_location_id::VARCHAR AS PICKUP_LOCATION_ID,
         dropoff_location_id::VARCHAR AS DROPOFF_LOCATION_ID,
         lpad(hour(pickup_datetime)::VARCHAR, 2, '0') AS HOUR_OF_DAY,
         trip_distance::DOUBLE AS TRIP_DISTANCE, {dur} AS {TARGET}
  FROM {src}
  WHERE pickup_datetime IS NOT NULL AND {dur} > 0 AND {dur} <= {MAX_DURATION_SEC}
    AND trip_distance > 0 AND pickup_location_id IS NOT NULL AND dropoff_location_id IS NOT NULL)"""


def sql_fit(con: Any, table: str) -> dict[str, Any]:
    """The model's sufficient statistics as one hand-written GROUP BY (the issue's prototype
    query), without the client's solve."""
    x, y = "TRIP_DISTANCE", TARGET
    keys = ", ".join(CATEGORICAL)
    groups = con.execute(
        f"SELECT {keys}, count(*), sum({x}), sum({x} * {x}), sum({y}), sum({x} * {y}), sum({y} * {y}), "
        f"max(abs({x})) FROM {table} GROUP BY {keys}"
    ).to_arrow_table()
    return {"groups": groups.num_rows, "maxabs": max(groups.column(groups.num_columns - 1).to_pylist())}


def sql_score(coef: dict[str, float], intercept: float, maxabs: float, table: str) -> str:
    terms = [repr(float(intercept))]
    for c in CATEGORICAL:
        whens = " ".join(f"WHEN {lit(name[len(c) + 1:])} THEN {w!r}"
                         for name, w in coef.items() if name.startswith(c + "_"))  # fmt: skip
        terms.append(f"CASE {c} {whens} ELSE 0.0 END")
    terms.append(f"{coef.get('TRIP_DISTANCE', 0.0)!r} * TRIP_DISTANCE / {maxabs!r}")
    return f"SELECT {ID}, {' + '.join(terms)} AS PREDICTION FROM {table}"


def sql_drift(table: str) -> str:
    parts = [f"SELECT {lit(c)} AS f, {c}::VARCHAR AS v, count(*) FROM {table} GROUP BY 2"
             for c in CATEGORICAL]  # fmt: skip
    parts.append(
        f"SELECT 'TRIP_DISTANCE', floor(TRIP_DISTANCE / 0.5)::VARCHAR, count(*) FROM {table} GROUP BY 2"
    )
    return " UNION ALL ".join(parts)


# --- neve ----------------------------------------------------------------------------


def neve_child(db: str, rows: int, memory: str) -> None:
    import neve
    from benchmarks.fit_taxi import NUMERIC, neve_pipeline
    from neve.datasets import taxi
    from neve.linear_model import LinearRegression

    dag = dag_module()
    peak = Peak()
    session = neve.connect(f"duckdb:///{db}")
    con = session.engine.con
    con.execute(f"SET memory_limit = '{memory}'; SET preserve_insertion_order = false")
    emit(side="info", stage="start", rows=rows, rss_mb=peak.read())

    timed(peak, "neve", "load", rows, lambda: taxi(session, rows, seed=0, table="TAXI_RAW"))
    raw = session.table("TAXI_RAW")
    timed(peak, "neve", "clean", rows,
          lambda: session.create_table("TAXI_DATA", dag.clean_trips(raw), overwrite=True))  # fmt: skip
    timed(peak, "sql", "clean", rows, lambda: con.execute(sql_clean("TAXI_RAW", "TAXI_DATA_SQL")))
    con.execute("DROP TABLE TAXI_DATA_SQL")
    data = session.table("TAXI_DATA")
    kept = int(con.execute("SELECT count(*) FROM TAXI_DATA").fetchone()[0])

    # The DAG's pipeline ending in the estimator, fitted on every row in the engine: one
    # aggregate query, no one-hot column, no extract.
    with neve.capture_queries() as fit_log:
        pipe = timed(peak, "neve", "fit", rows, lambda: neve_pipeline(LinearRegression(label_cols=TARGET)).fit(
            data.select(*CATEGORICAL, NUMERIC, TARGET)))  # fmt: skip
    stats = timed(peak, "sql", "fit", rows, lambda: sql_fit(con, "TAXI_DATA"))
    model = pipe.steps[-1][1]

    from neve import Registry

    registry = Registry(session)
    mv = timed(peak, "neve", "log_model", rows, lambda: registry.log_model(
        pipe, model_name="trip_duration_estimator", training_data=data.select(*dag.RAW_FEATURES)))  # fmt: skip
    timed(peak, "neve", "score", rows,
          lambda: session.create_table("TAXI_PRED", mv.run(data), overwrite=True))  # fmt: skip
    coef = dict(zip(model.feature_names_in_, (float(c) for c in model.coef_), strict=True))
    maxabs = pipe.named_steps["mas"].max_abs_[NUMERIC]
    timed(peak, "sql", "score", rows, lambda: con.execute(
        f"CREATE OR REPLACE TABLE TAXI_PRED_SQL AS "
        f"{sql_score(coef, model.intercept_, maxabs, 'TAXI_DATA')}"))  # fmt: skip
    check = con.execute("SELECT max(abs(a.PREDICTION - b.PREDICTION)) FROM TAXI_PRED a "
                        f"JOIN TAXI_PRED_SQL b USING ({ID})").fetchone()[0]  # fmt: skip
    timed(peak, "neve", "drift", rows, lambda: mv.drift(data))
    timed(peak, "sql", "drift", rows, lambda: con.execute(sql_drift("TAXI_DATA")).fetchall())
    emit(side="info", stage="done", rows=rows, kept=kept, groups=stats["groups"], features=len(coef),
         fit_queries=len(fit_log.scans), fit_bytes=fit_log.bytes_fetched, score_max_abs_diff=check,
         rss_mb=peak.read())  # fmt: skip
    session.close()


# --- pandas + scikit-learn ------------------------------------------------------------


def pandas_child(db: str, rows: int) -> None:
    import duckdb
    import joblib
    import numpy as np
    from sklearn.linear_model import LinearRegression

    from benchmarks.fit_taxi import sklearn_pipeline

    peak = Peak()

    def load() -> Any:
        with duckdb.connect(db, read_only=True) as con:
            return con.execute("SELECT * FROM TAXI_RAW").df()

    raw = timed(peak, "pandas", "load", rows, load)

    def clean() -> Any:
        import pandas as pd

        duration = (raw.dropoff_datetime - raw.pickup_datetime).dt.total_seconds()
        t = pd.DataFrame({
            "PICKUP_DATETIME": raw.pickup_datetime,
            "PICKUP_LOCATION_ID": raw.pickup_location_id.astype("string"),
            "DROPOFF_LOCATION_ID": raw.dropoff_location_id.astype("string"),
            "HOUR_OF_DAY": raw.pickup_datetime.dt.hour.astype("string").str.zfill(2),
            "TRIP_DISTANCE": raw.trip_distance.astype("float64"),
            TARGET: duration,
        })  # fmt: skip
        keep = (t.PICKUP_DATETIME.notna() & (t[TARGET] > 0) & (t[TARGET] <= MAX_DURATION_SEC)
                & (t.TRIP_DISTANCE > 0) & t.PICKUP_LOCATION_ID.notna() & t.DROPOFF_LOCATION_ID.notna())  # fmt: skip
        t = t[keep].sort_values(ORDER, kind="stable").reset_index(drop=True)
        t[ID] = np.arange(2, len(t) + 2)
        return t

    data = timed(peak, "pandas", "clean", rows, clean)
    raw = None
    features = [*CATEGORICAL, "TRIP_DISTANCE"]
    # One-hot (sparse) + MaxAbs + LinearRegression on every row, as neve fits.
    pipe = timed(peak, "pandas", "fit", rows,
                 lambda: sklearn_pipeline(LinearRegression()).fit(data[features], data[TARGET]))  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        timed(peak, "pandas", "log_model", rows,
              lambda: joblib.dump({"pipeline": pipe,
                                   "baseline": {c: data[c].value_counts() for c in CATEGORICAL}},
                                  Path(tmp) / "model.joblib"))  # fmt: skip
    timed(peak, "pandas", "score", rows, lambda: pipe.predict(data[features]))

    def drift() -> Any:
        out = {c: data[c].value_counts(normalize=True) for c in CATEGORICAL}
        out["TRIP_DISTANCE"] = np.histogram(data.TRIP_DISTANCE.to_numpy(), bins=50)
        return out

    timed(peak, "pandas", "drift", rows, drift)
    emit(side="info", stage="done-pandas", rows=rows, rss_mb=peak.read())


if __name__ == "__main__":
    kind, *args = sys.argv[1:]
    sys.path.insert(0, str(REPO))  # benchmarks.fit_taxi
    if kind == "neve":
        neve_child(args[0], int(args[1]), args[2])
    else:
        pandas_child(args[0], int(args[1]))
