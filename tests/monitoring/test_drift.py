from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from neve.errors import ColumnNotFoundError, DriftError, EmptyInputError, InvalidParameterError
from neve.monitoring import DriftThresholds, baseline, drift
from tests.conftest import TAXI_DIR, run_sql


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


# -- An independent oracle: every drift number recomputed with numpy from the raw data ---------------
#
# Only the baseline's decile edges and top categories are taken from neve (they define the bins);
# every share, the PSI, the KS statistic, the mean shift, the null-fraction change and the unseen
# share are recomputed here from the training and scored rows themselves.

ORACLE_TOL = 1e-12


def _oracle_frames(seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Training and scored rows: a continuous column and a tied integer-valued one with NULLs in
    both, and a category column with NULLs in both and categories the training never saw (counts
    kept distinct, so the top-k cut does not depend on how an engine orders ties)."""
    rng = np.random.default_rng(seed)

    def rows(n, shift, null_x, null_k, cats, weights):
        x = rng.normal(10 + shift, 2, n)
        x[rng.choice(n, null_x, replace=False)] = np.nan
        h = rng.integers(0, 5 + int(shift), n).astype("float64")  # heavy ties: repeated edges
        h[rng.choice(n, null_x // 2, replace=False)] = np.nan
        k = rng.choice(cats, n, p=np.asarray(weights) / sum(weights)).astype(object)
        k[rng.choice(n, null_k, replace=False)] = None
        return pd.DataFrame({"X": x, "H": h, "K": k})

    train = rows(600, 0.0, 30, 45, ["a", "b", "c", "d", "e", "f"], [30, 25, 20, 12, 8, 5])
    # Categories: less "a", more "d"; "g" and "h" unseen in training; twice the NULL share.
    scored = rows(400, 1.0, 60, 80, ["a", "b", "c", "d", "e", "g", "h"], [10, 25, 20, 25, 5, 10, 5])
    # The counts in train must be all distinct for the top-k cut to be engine-independent.
    counts = train.K.value_counts()
    assert counts.is_unique, counts
    return train, scored


def _psi(expected: np.ndarray, actual: np.ndarray) -> float:
    e, a = np.maximum(expected, 1e-4), np.maximum(actual, 1e-4)
    return float(np.sum((a - e) * np.log(a / e)))


def _oracle_numeric(train: pd.Series, scored: pd.Series, edges: list[float]) -> dict[str, float]:
    t, s = train.dropna().to_numpy(), scored.dropna().to_numpy()
    inner = np.unique(np.asarray([e for e in edges[1:-1] if e is not None], dtype=float))
    cdf_t = np.array([(t <= e).mean() for e in inner])
    cdf_s = np.array([(s <= e).mean() for e in inner])
    expected, actual = np.diff([0.0, *cdf_t, 1.0]), np.diff([0.0, *cdf_s, 1.0])
    return {
        "psi": _psi(expected, actual),
        "ks": float(np.max(np.abs(cdf_s - cdf_t))) if len(inner) else 0.0,
        "mean_shift": (s.mean() - t.mean()) / t.std(ddof=1),
        "null_fraction_change": scored.isna().mean() - train.isna().mean(),
        "unseen_share": None,
    }


def _oracle_categorical(train: pd.Series, scored: pd.Series, top: list[str]) -> dict[str, float]:
    t, s = train.dropna(), scored.dropna()
    kept = set(top)
    expected = np.array([(t == v).mean() for v in top] + [(~t.isin(kept)).mean()])
    actual = np.array([(s == v).mean() for v in top] + [(~s.isin(kept)).mean()])
    return {
        "psi": _psi(expected, actual),
        "ks": None,
        "mean_shift": None,
        "null_fraction_change": scored.isna().mean() - train.isna().mean(),
        "unseen_share": float((~s.isin(kept)).mean()),
    }


@pytest.mark.parametrize(
    ("top_k", "max_distinct"),
    [
        pytest.param(1000, 100_000, id="all-categories-deciles-from-value-counts"),
        # Rare training categories fall in "(other)", and X's deciles are computed in the engine.
        pytest.param(4, 50, id="top4-deciles-in-engine"),
    ],
)
def test_drift_numbers_equal_an_independent_numpy_oracle(session, top_k, max_distinct):
    train, scored = _oracle_frames(7)
    train_t = session.create_table("TRAIN", train)
    scored_t = session.create_table("SCORED", scored)
    # A NaN besides the NULLs (pandas' NaN arrives as NULL): drift treats both as missing.
    for name, frame in (("TRAIN", train), ("SCORED", scored)):
        run_sql(session, f"""INSERT INTO "{name}" ("X", "H", "K") VALUES ('NaN'::FLOAT8, 'NaN'::FLOAT8, 'b')""")
        frame.loc[len(frame)] = [np.nan, np.nan, "b"]
    base = baseline(train_t, ["X", "H", "K"], top_k=top_k, max_distinct=max_distinct)
    top = [t["value"] for t in base["columns"]["K"]["top"]]
    assert top == list(train.K.value_counts().index[:top_k])  # the bins the oracle uses
    report = drift(scored_t, base, thresholds=DriftThresholds(ks=0.1)).features.set_index("feature")
    expected = {
        "X": _oracle_numeric(train.X, scored.X, base["columns"]["X"]["edges"]),
        "H": _oracle_numeric(train.H, scored.H, base["columns"]["H"]["edges"]),
        "K": _oracle_categorical(train.K, scored.K, top),
    }
    for feature, numbers in expected.items():
        for measure, want in numbers.items():
            got = report.loc[feature, measure]
            if want is None:
                assert got is None or pd.isna(got), (feature, measure, got)
            else:
                assert got == pytest.approx(want, rel=ORACLE_TOL, abs=ORACLE_TOL), (feature, measure)
    # The data drifts on every measure the oracle computes, so none is checked at a trivial zero.
    assert report.loc["K", "unseen_share"] > 0.1 and report.loc["K", "null_fraction_change"] > 0.05
    assert report.loc["X", "mean_shift"] > 0.3 and report.loc["X", "null_fraction_change"] > 0.03
    assert min(report.psi) > 0.01 and min(report.ks.dropna()) > 0.05
