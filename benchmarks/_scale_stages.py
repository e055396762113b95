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
    """The flagship DAG file as a module (Airflow reads its configuration from a temp home)."""
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="neve-scale-airflow-"))
    spec = importlib.util.spec_from_file_location("taxi_trip_duration_dag", DAG_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def threshold(rows: int, sample_rows: int) -> int:
    """Keep ids with (id * 2654435761) % 1000003 below this: a repeatable ~sample_rows subset."""
    return min(1000003, max(1, round(sample_rows / rows * 1000003)))


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
    parts = [f"SELECT {lit(c)}, {c}, count(*) FROM {table} GROUP BY {c}" for c in CATEGORICAL]
    cats: dict[str, list[str]] = {c: [] for c in CATEGORICAL}
    for col, value, _ in con.execute(" UNION ALL ".join(parts)).fetchall():
        cats[col].append(value)
    (maxabs,) = con.execute(f"SELECT max(abs(TRIP_DISTANCE)) FROM {table}").fetchone()
    return {"categories": {c: sorted(v) for c, v in cats.items()}, "maxabs": maxabs}


def sql_transform(stats: dict[str, Any], table: str) -> str:
    cols = [ID, "PICKUP_DATETIME", "TRIP_DISTANCE", TARGET]
    for c in CATEGORICAL:
        cols += [f"CASE WHEN {c} = {lit(v)} THEN 1.0 ELSE 0.0 END AS {q(f'{c}_{v}')}"
                 for v in stats["categories"][c]]  # fmt: skip
    cols.append(f"TRIP_DISTANCE / {stats['maxabs']!r} AS TRIP_DISTANCE_SCALED")
    return f"SELECT {', '.join(cols)} FROM {table}"


def sql_score(coef: dict[str, float], intercept: float, maxabs: float, table: str) -> str:
    terms = [repr(float(intercept))]
    for c in CATEGORICAL:
        whens = " ".join(f"WHEN {lit(name[len(c) + 1:])} THEN {w!r}"
                         for name, w in coef.items() if name.startswith(c + "_"))  # fmt: skip
        terms.append(f"CASE {c} {whens} ELSE 0.0 END")
    terms.append(f"{coef.get('TRIP_DISTANCE_SCALED', 0.0)!r} * TRIP_DISTANCE / {maxabs!r}")
    return f"SELECT {ID}, {' + '.join(terms)} AS PREDICTION FROM {table}"


def sql_drift(table: str) -> str:
    parts = [f"SELECT {lit(c)} AS f, {c}::VARCHAR AS v, count(*) FROM {table} GROUP BY 2"
             for c in CATEGORICAL]  # fmt: skip
    parts.append(
        f"SELECT 'TRIP_DISTANCE', floor(TRIP_DISTANCE / 0.5)::VARCHAR, count(*) FROM {table} GROUP BY 2"
    )
    return " UNION ALL ".join(parts)


# --- neve ----------------------------------------------------------------------------


def neve_child(db: str, rows: int, sample_rows: int, eval_cells: float, memory: str) -> None:
    from sklearn.linear_model import LinearRegression

    import neve
    from neve.datasets import taxi

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

    pipe = timed(peak, "neve", "fit", rows, lambda: dag.build_pipeline().fit(data))
    stats = timed(peak, "sql", "fit", rows, lambda: sql_fit(con, "TAXI_DATA"))
    features = pipe.transform(data)
    width = len(features.columns)
    if kept * width <= eval_cells:
        evaluate = lambda sql: con.execute(f"SELECT max(COLUMNS(*)) FROM ({sql})").fetchall()  # noqa: E731
        timed(peak, "neve", "transform", rows,
              lambda: evaluate(session.to_sql(pipe.transform(data))), columns=width)  # fmt: skip
        timed(peak, "sql", "transform", rows, lambda: evaluate(sql_transform(stats, "TAXI_DATA")))
    else:
        emit(side="neve", stage="transform", rows=rows, skipped=f"{kept * width / 1e9:.1f}G cells")

    columns = dag.feature_columns(list(features.columns))

    def extract() -> Any:
        # The one time data leaves the engine: a repeatable sample of the feature rows.
        picked = features.filter(
            (features[ID] * 2654435761) % 1000003 < threshold(kept, sample_rows)
        )
        return picked.select(ID, *columns, TARGET).order_by(ID).to_pandas()

    frame = timed(peak, "neve", "extract", rows, extract, sample=sample_rows)
    model = timed(peak, "neve", "train", rows,
                  lambda: LinearRegression().fit(frame[columns], frame[TARGET]),
                  sample=len(frame))  # fmt: skip
    sample_input = frame[columns].head(5)
    frame = None  # the extract is the only data the client holds; let it go

    from neve import Registry

    registry = Registry(session)
    mv = timed(peak, "neve", "log_model", rows, lambda: registry.log_model(
        model, model_name="trip_duration_estimator", feature_pipeline=pipe,
        training_data=data.select(*dag.RAW_FEATURES), sample_input=sample_input,
        params={"sample_rows": sample_rows}))  # fmt: skip
    timed(peak, "neve", "score", rows,
          lambda: session.create_table("TAXI_PRED", mv.run(data), overwrite=True))  # fmt: skip
    coef = dict(zip(columns, (float(c) for c in model.coef_), strict=True))
    timed(peak, "sql", "score", rows, lambda: con.execute(
        f"CREATE OR REPLACE TABLE TAXI_PRED_SQL AS "
        f"{sql_score(coef, model.intercept_, stats['maxabs'], 'TAXI_DATA')}"))  # fmt: skip
    check = con.execute("SELECT max(abs(a.PREDICTION - b.PREDICTION)) FROM TAXI_PRED a "
                        f"JOIN TAXI_PRED_SQL b USING ({ID})").fetchone()[0]  # fmt: skip
    timed(peak, "neve", "drift", rows, lambda: mv.drift(data))
    timed(peak, "sql", "drift", rows, lambda: con.execute(sql_drift("TAXI_DATA")).fetchall())
    emit(
        side="info",
        stage="done",
        rows=rows,
        kept=kept,
        columns=width,
        score_max_abs_diff=check,
        rss_mb=peak.read(),
    )
    session.close()


# --- pandas + scikit-learn ------------------------------------------------------------


def pandas_child(db: str, rows: int, sample_rows: int) -> None:
    import duckdb
    import joblib
    import numpy as np
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LinearRegression
    from sklearn.preprocessing import MaxAbsScaler, OneHotEncoder

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
    prep = ColumnTransformer([("ohe", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
                              ("mas", MaxAbsScaler(), ["TRIP_DISTANCE"])])  # fmt: skip
    timed(peak, "pandas", "fit", rows, lambda: prep.fit(data))
    X = timed(peak, "pandas", "transform", rows, lambda: prep.transform(data))
    idx = np.flatnonzero(
        (data[ID].to_numpy() * 2654435761) % 1000003 < threshold(len(data), sample_rows)
    )
    y = data[TARGET].to_numpy()
    model = timed(peak, "pandas", "train", rows, lambda: LinearRegression().fit(X[idx], y[idx]),
                  sample=len(idx))  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        timed(peak, "pandas", "log_model", rows,
              lambda: joblib.dump({"prep": prep, "model": model,
                                   "baseline": {c: data[c].value_counts() for c in CATEGORICAL}},
                                  Path(tmp) / "model.joblib"))  # fmt: skip
    timed(peak, "pandas", "score", rows, lambda: model.predict(prep.transform(data)))

    def drift() -> Any:
        out = {c: data[c].value_counts(normalize=True) for c in CATEGORICAL}
        out["TRIP_DISTANCE"] = np.histogram(data.TRIP_DISTANCE.to_numpy(), bins=50)
        return out

    timed(peak, "pandas", "drift", rows, drift)
    emit(side="info", stage="done-pandas", rows=rows, rss_mb=peak.read())


if __name__ == "__main__":
    kind, *args = sys.argv[1:]
    if kind == "neve":
        neve_child(args[0], int(args[1]), int(args[2]), float(args[3]), args[4])
    else:
        pandas_child(args[0], int(args[1]), int(args[2]))
