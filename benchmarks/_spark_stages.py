"""The stages benchmarks/spark_scale.py times, for one engine and one size, in a child process.

    python benchmarks/_spark_stages.py ENGINE_URL PARQUET_DIR ROWS

Runs the taxi pipeline as the flagship DAG does, stage by stage, on the engine the URL
names, and prints one JSON line per stage: wall seconds, the queries neve ran and the
bytes they fetched to the client (``neve.capture_queries``) and, on Spark, what the
engine did for it, read from Spark's own status store: jobs, stages, tasks, task time
and CPU time summed over the tasks (core-seconds), bytes scanned and bytes shuffled.

Stages: load (the Parquet files into a table, ``session.load_files``), fit (one-hot,
MaxAbs and ``neve.linear_model.LinearRegression`` in one aggregate query), log_model
(``Registry.log_model`` with the training data, so the drift baseline is profiled),
score (``mv.run`` materialised as a table: one SELECT), metrics
(``neve.metrics.regression_metrics``: one aggregate query) and drift (``mv.drift``).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
STAGES = ["load", "fit", "log_model", "score", "metrics", "drift"]


def emit(**record: Any) -> None:
    print(json.dumps(record), flush=True)


class SparkWork:
    """Jobs, and per Spark stage its tasks, task time, CPU time and bytes, of the Spark jobs
    ``measure(fn)`` runs.

    Each call is a Spark job group; its jobs' stages are read back from the status store
    (``AppStatusStore``, kept with the UI off). Stages Spark skipped (their shuffle output
    was reused) have no tasks and count for nothing.
    """

    def __init__(self, spark: Any) -> None:
        self._sc = spark.sparkContext
        self._store = self._sc._jsc.sc().statusStore()
        self._groups = 0

    def measure(self, fn: Callable[[], Any]) -> tuple[Any, dict[str, Any]]:
        self._groups += 1
        group = f"neve-bench-{self._groups}"
        self._sc.setJobGroup(group, group)
        try:
            result = fn()
        finally:
            self._sc.setLocalProperty("spark.jobGroup.id", None)
        tracker = self._sc.statusTracker()
        jobs = tracker.getJobIdsForGroup(group)
        stages, seen = [], set()
        for job in jobs:
            info = tracker.getJobInfo(job)
            for stage in info.stageIds if info else ():
                data = None if stage in seen else self._stage(stage)
                seen.add(stage)
                if data is None or data.numCompleteTasks() == 0:
                    continue
                stages.append({
                    "tasks": data.numCompleteTasks(),
                    "span_ms": self._span(data),
                    "task_s": data.executorRunTime() / 1e3,
                    "cpu_s": data.executorCpuTime() / 1e9,
                    "input_bytes": data.inputBytes(),
                    "output_bytes": data.outputBytes(),
                    "shuffle_read": data.shuffleReadBytes(),
                    "shuffle_write": data.shuffleWriteBytes(),
                    "result_bytes": data.resultSize(),
                })  # fmt: skip
        return result, {"jobs": len(jobs), "spark_stages": stages}

    @staticmethod
    def _span(data: Any) -> list[int] | None:
        """The stage's submission and completion, epoch milliseconds."""
        try:
            return [data.submissionTime().get().getTime(), data.completionTime().get().getTime()]
        except Exception:  # noqa: BLE001 - a stage without both times has no span to report
            return None

    def _stage(self, stage_id: int) -> Any:
        try:
            return self._store.lastStageAttempt(stage_id)
        except Exception:  # noqa: BLE001 - a stage dropped from the store is not counted
            return None


def run(url: str, parquet_dir: str, rows: int) -> None:
    import neve
    import neve.pipeline  # imports are not a stage: done before the clocks start
    import neve.preprocessing
    from benchmarks.fit_taxi import CATEGORICAL, NUMERIC, TARGET, neve_pipeline
    from neve import Registry
    from neve.linear_model import LinearRegression
    from neve.metrics import regression_metrics

    started = time.perf_counter()
    session = neve.connect(url)
    spark = getattr(session.engine, "_session", None)
    work = SparkWork(spark) if spark is not None else None
    emit(stage="start", seconds=time.perf_counter() - started)
    files = sorted(Path(parquet_dir).glob("*.parquet"))

    def timed(stage: str, fn: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        with neve.capture_queries() as log:
            result, spark_work = work.measure(fn) if work else (fn(), {})
        emit(stage=stage, rows=rows, seconds=time.perf_counter() - start, queries=len(log),
             bytes_fetched=log.bytes_fetched, **spark_work)  # fmt: skip
        return result

    timed("load", lambda: session.load_files(files, "TAXI_DATA", overwrite=True))
    data = session.table("TAXI_DATA")
    pipe = timed("fit", lambda: neve_pipeline(LinearRegression(label_cols=TARGET)).fit(
        data.select(*CATEGORICAL, NUMERIC, TARGET)))  # fmt: skip
    registry = Registry(session)
    mv = timed("log_model", lambda: registry.log_model(
        pipe, model_name="trip_duration_estimator", training_data=data.select(*CATEGORICAL, NUMERIC)))  # fmt: skip
    timed("score", lambda: session.create_table("TAXI_PRED", mv.run(data), overwrite=True))
    metrics = timed("metrics", lambda: regression_metrics(session.table("TAXI_PRED"), TARGET, "PREDICTION"))
    report = timed("drift", lambda: mv.drift(data))
    model = pipe.steps[-1][1]
    emit(stage="done", rows=rows, features=len(model.coef_), intercept=float(model.intercept_),
         drifted=len(report.drifted), **metrics)  # fmt: skip
    session.close()


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))  # benchmarks.fit_taxi
    run(sys.argv[1], sys.argv[2], int(sys.argv[3]))
