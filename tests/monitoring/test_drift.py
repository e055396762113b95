from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from neve.errors import ColumnNotFoundError, DriftError, EmptyInputError, InvalidParameterError
from neve.monitoring import DriftThresholds, baseline, drift
from tests.conftest import TAXI_DIR


def _sample(seed: int, n: int = 4000, shift: float = 0.0, cats=("a", "b", "c")) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "x": rng.normal(10 + shift, 2, n),
            "k": rng.choice(list(cats), n),
        }
    )


def test_identical_distribution_is_not_flagged():
    base = baseline(_sample(0), ["x", "k"])
    report = drift(_sample(1), base)
    assert report.ok, report.summary()
    assert report.drifted == []
    assert set(report.features["feature"]) == {"x", "k"}
    assert (report.features["psi"] < 0.02).all()


def test_known_mean_shift_is_flagged_with_values():
    base = baseline(_sample(0), ["x", "k"])
    report = drift(_sample(1, shift=2.0), base)  # one training sd
    assert report.drifted == ["x"]
    row = report.features.set_index("feature").loc["x"]
    assert row["mean_shift"] == pytest.approx(1.0, abs=0.1)
    assert row["ks"] > 0.3
    with pytest.raises(DriftError, match=r"x \(PSI .*mean shift \+1\.0"):
        report.raise_if_drifted()


def test_unseen_categories_and_nulls_are_measured():
    base = baseline(_sample(0), ["x", "k"])
    current = _sample(1, cats=("a", "b", "z"))
    current.loc[: len(current) // 4, "x"] = np.nan
    report = drift(current, base).features.set_index("feature")
    assert report.loc["k", "unseen_share"] == pytest.approx(1 / 3, abs=0.05)
    assert report.loc["k", "drifted"]
    assert report.loc["x", "null_fraction_change"] == pytest.approx(0.25, abs=0.01)
    assert "null fraction" in report.loc["x", "reason"]


def test_thresholds_are_configurable():
    base = baseline(_sample(0), ["x"])
    shifted = _sample(1, shift=0.6)  # 0.3 sd
    assert drift(shifted, base).ok
    strict = DriftThresholds(mean_shift=0.2, psi=None)
    assert drift(shifted, base, thresholds=strict).drifted == ["x"]
    with pytest.raises(InvalidParameterError):
        DriftThresholds(psi=-1)


def test_report_serialises_and_plots(tmp_path):
    base = baseline(_sample(0), ["x", "k"])
    report = drift(_sample(1, shift=3.0), base)
    doc = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert doc["drifted"] == ["x"] and doc["ok"] is False
    png = report.plot(tmp_path / "drift.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_input_is_named():
    base = baseline(_sample(0), ["x", "k"])
    with pytest.raises(ColumnNotFoundError, match="'k'"):
        drift(_sample(1).drop(columns=["k"]), base)
    with pytest.raises(EmptyInputError):
        drift(_sample(1).iloc[:0], base)
    with pytest.raises(InvalidParameterError, match="baseline"):
        drift(_sample(1), {"columns": {}})


def _clean(raw):
    duration = raw.dropoff_datetime.epoch_seconds() - raw.pickup_datetime.epoch_seconds()
    t = raw.select(
        PICKUP_LOCATION_ID=raw.pickup_location_id.cast("string"),
        DROPOFF_LOCATION_ID=raw.dropoff_location_id.cast("string"),
        HOUR_OF_DAY=raw.pickup_datetime.hour().cast("string").lpad(2, "0"),
        TRIP_DISTANCE=raw.trip_distance.cast("float64"),
        TRIP_DURATION_SEC=duration.cast("float64"),
    )
    return t.filter(t.TRIP_DURATION_SEC > 0, t.TRIP_DURATION_SEC <= 4 * 3600, t.TRIP_DISTANCE > 0)


def test_taxi_march_2019_passes_and_april_2020_lockdown_is_flagged(session):
    months = ["2019-01", "2019-02"]
    train = _clean(session.load_files([TAXI_DIR / f"yellow_tripdata_sample_{m}.csv" for m in months], "TRAIN"))
    features = ["PICKUP_LOCATION_ID", "DROPOFF_LOCATION_ID", "HOUR_OF_DAY", "TRIP_DISTANCE"]
    base = baseline(train, features)
    march = drift(_clean(session.load_files([TAXI_DIR / "yellow_tripdata_sample_2019-03.csv"], "MAR")), base)
    april = drift(_clean(session.load_files([TAXI_DIR / "yellow_tripdata_sample_2020-04.csv"], "APR")), base)
    assert march.ok, march.summary()
    assert not april.ok
    assert "PICKUP_LOCATION_ID" in april.drifted
    # Far from the threshold on both sides, so the defaults are not tuned to a knife edge.
    assert march.features["psi"].max() < 0.1
    assert april.features.set_index("feature").loc["PICKUP_LOCATION_ID", "psi"] > 0.4
