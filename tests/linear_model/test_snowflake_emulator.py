"""What the taxi DAG's training does, on the Snowflake emulator against DuckDB.

A ``Pipeline`` of ``OneHotEncoder`` + ``MaxAbsScaler`` ending in
``neve.linear_model.LinearRegression``, fitted from one aggregate query on a
``neve.model_selection.train_test_split`` of every row, logged to the registry's internal
stage ``@NEVE_STAGE`` and scored with ``mv.run``: all of it as Snowflake SQL on fakesnow
(tests/engine/_fakesnow.py), through a ``snowflake://`` URL as a user's, and equal to the
same calls on DuckDB. The table goes in through Ibis's own upload (PUT to a temporary stage
and ``COPY INTO``), as ``session.create_table`` does on a real account.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest

import neve
from neve import Pipeline, Registry
from neve.linear_model import LinearRegression
from neve.model_selection import train_test_split
from neve.preprocessing import MaxAbsScaler, OneHotEncoder

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

ZONES = ["PICKUP_LOCATION_ID", "DROPOFF_LOCATION_ID", "HOUR_OF_DAY"]
LABEL = "TRIP_DURATION_SEC"


def trips(n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    pickup = rng.choice([f"{z}" for z in (4, 13, 48, 132, 161, 230)], n)
    dropoff = rng.choice([f"{z}" for z in (7, 48, 79, 138, 236)], n)
    hour = rng.integers(0, 24, n)
    distance = rng.gamma(2.0, 1.5, n).round(2) + 0.1
    duration = 120 + 170 * distance + 40 * (hour % 7) + np.where(pickup == "132", 600, 0) + rng.normal(0, 60, n)
    return pd.DataFrame({
        "TRIP_ID": np.arange(1, n + 1),
        "PICKUP_LOCATION_ID": pickup,
        "DROPOFF_LOCATION_ID": dropoff,
        "HOUR_OF_DAY": [f"{h:02d}" for h in hour],
        "TRIP_DISTANCE": distance,
        LABEL: duration.round(0),
    })


def taxi_pipeline() -> Pipeline:
    return Pipeline([
        ("ohe", OneHotEncoder(input_cols=ZONES, output_cols=ZONES, handle_unknown="ignore")),
        ("mas", MaxAbsScaler(input_cols=["TRIP_DISTANCE"], output_cols=["TRIP_DISTANCE_SCALED"])),
        ("lr", LinearRegression(label_cols=[LABEL], output_cols=["PREDICTION"])),
    ])


def train_log_and_run(session: neve.Session, stage: str | None = None) -> dict:
    """The DAG's train and predict, on ``session``."""
    table = session.create_table("TAXI_DATA", trips(), overwrite=True)
    train, test = train_test_split(table.drop("TRIP_ID"), test_size=0.33, random_state=42)
    pipe = taxi_pipeline().fit(train)
    registry = Registry(session) if stage is None else Registry(session, stage=stage)
    mv = registry.log_model(pipe, model_name="trip_duration_estimator", training_data=train)
    scored = mv.run(table)
    return {
        "split": (train.count().execute(), test.count().execute()),
        "coef": np.asarray(pipe["lr"].coef_, dtype=float).ravel(),
        "intercept": float(np.ravel(pipe["lr"].intercept_)[0]),
        "r2": pipe.score(test),
        "path": scored.path,
        "predictions": scored.select("TRIP_ID", "PREDICTION").to_pandas().sort_values("TRIP_ID"),
        "drift": mv.drift(test).features.sort_values("feature").reset_index(drop=True),
        "artifact_uri": mv.lineage()["artifact_uri"],
    }


@pytest.fixture(scope="module")
def snow(emulator) -> Iterator[neve.Session]:
    with neve.connect(emulator.url(f"LINEAR_{uuid.uuid4().hex[:8].upper()}")) as session:
        yield session


def test_taxi_training_on_the_emulator_equals_duckdb(snow: neve.Session, tmp_path) -> None:
    got = train_log_and_run(snow)
    with neve.connect("duckdb://") as duck:
        want = train_log_and_run(duck, stage=str(tmp_path / "stage"))

    assert got["split"] == want["split"] and sum(got["split"]) == 400
    np.testing.assert_allclose(got["coef"], want["coef"], rtol=1e-9, atol=1e-9)
    assert got["intercept"] == pytest.approx(want["intercept"], rel=1e-9)
    assert got["r2"] == pytest.approx(want["r2"], rel=1e-9)
    assert 0.5 < got["r2"] < 1
    # Loaded from the internal stage and scored as one SELECT on the emulator.
    assert got["artifact_uri"] == "@NEVE_STAGE/trip_duration_estimator/v1"
    assert got["path"] == want["path"] == "sql"
    np.testing.assert_allclose(
        got["predictions"]["PREDICTION"].to_numpy(), want["predictions"]["PREDICTION"].to_numpy(), rtol=1e-9
    )
    # The drift report (one query per side) is the same, feature by feature.
    pd.testing.assert_frame_equal(got["drift"], want["drift"], check_exact=False, rtol=1e-9)
