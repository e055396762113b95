"""What log_model works out for itself: a retry's earlier version, the Airflow tags, a sample input."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import Ridge

import neve
from neve.preprocessing import StandardScaler


@pytest.fixture
def in_task(monkeypatch):
    """Airflow's run context, as its task runner exports it to a task's process."""

    def enter(run_id: str = "manual__1", task_id: str = "train", try_number: int = 1) -> None:
        for var, value in (("DAG_ID", "taxi"), ("DAG_RUN_ID", run_id), ("TASK_ID", task_id),
                           ("TRY_NUMBER", str(try_number))):
            monkeypatch.setenv(f"AIRFLOW_CTX_{var}", value)

    return enter


def versions(reg, name="m"):
    return [v.version_name for v in reg.get_model(name).versions()]


def test_a_retry_of_the_task_gets_the_version_its_earlier_try_logged(reg, fitted, in_task):
    model, _ = fitted
    in_task(try_number=1)
    first = reg.log_model(model, model_name="m", metrics={"r2": 0.5})
    in_task(try_number=2)
    again = reg.log_model(model, model_name="m", metrics={"r2": 0.9})
    assert again.version_name == first.version_name and versions(reg) == ["v1"]
    assert again.metrics == {"r2": 0.5}  # the version as it was logged, not re-written
    # Another task of the run, another run, or a first try each log their own version.
    in_task(task_id="train_other", try_number=2)
    assert reg.log_model(model, model_name="m").version_name == "v2"
    in_task(run_id="manual__2", try_number=2)
    assert reg.log_model(model, model_name="m").version_name == "v3"
    in_task(try_number=1)
    assert reg.log_model(model, model_name="m").version_name == "v4"
    # A deleted version is not handed back: the retry logs anew.
    for name in ("v1", "v4"):
        reg.get_model("m").version(name).delete()
    in_task(try_number=3)
    assert reg.log_model(model, model_name="m").version_name == "v5"


def test_outside_airflow_every_call_logs_a_version(reg, fitted, monkeypatch):
    for var in ("DAG_ID", "DAG_RUN_ID", "TASK_ID", "TRY_NUMBER"):
        monkeypatch.delenv(f"AIRFLOW_CTX_{var}", raising=False)
    model, _ = fitted
    assert [reg.log_model(model, model_name="m").version_name for _ in range(2)] == ["v1", "v2"]
    assert not any(k.startswith("airflow_") for k in reg.get_model("m").version("v1").tags)


def test_airflow_tags_come_from_the_run_context(reg, fitted, in_task):
    model, _ = fitted
    in_task(run_id="scheduled__2026-01-01T00:00:00+00:00")
    mv = reg.log_model(model, model_name="m", tags={"stage": "dev", "airflow_task_id": "named_by_hand"})
    assert mv.tags == {
        "stage": "dev",
        "airflow_dag_id": "taxi",
        "airflow_run_id": "scheduled__2026-01-01T00:00:00+00:00",
        "airflow_task_id": "named_by_hand",  # a tag given wins
    }


def test_the_default_sample_is_the_first_training_rows_as_the_model_reads_them(reg, session, train_df, fitted):
    model, _ = fitted
    table = session.create_table("TRAIN", train_df)
    mv = reg.log_model(model, model_name="m", training_data=table)
    sample = mv.sample_input()
    assert list(sample.columns) == ["DIST", "HOUR"] and len(sample) == 5  # the model's inputs only
    assert set(sample.DIST) <= set(train_df.DIST)
    assert [c["name"] for c in mv.manifest["signature"]["inputs"]] == ["DIST", "HOUR"]
    # Through the feature pipeline: the sample is what the model itself reads.
    pipe = neve.Pipeline([("sc", StandardScaler(input_cols=["DIST", "HOUR"]))]).fit(table)
    scaled = reg.log_model(model, model_name="m", feature_pipeline=pipe, training_data=table).sample_input()
    assert len(scaled) == 5 and abs(scaled.DIST).max() < 10 and not set(scaled.DIST) & set(train_df.DIST)


def test_a_model_that_does_not_name_its_inputs_gets_no_default_sample(reg, session, train_df):
    model = Ridge().fit(np.asarray(train_df[["DIST", "HOUR"]]), train_df.DURATION)
    mv = reg.log_model(model, model_name="m", training_data=session.create_table("TRAIN", train_df))
    assert mv.sample_input() is None
