"""log_model reuses a fused fit's category counts for the training baseline: the same
baseline as a fresh profile, with fewer scans of the training table."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
import pytest

import neve
from neve.linear_model import LinearRegression
from neve.model_selection import train_test_split
from neve.monitoring import baseline
from neve.preprocessing import MaxAbsScaler, OneHotEncoder
from neve.registry._log_defaults import SAMPLE_ROWS

ZONES = ["ZONE", "HOURS"]


@pytest.fixture
def trips(session: neve.Session, train_df: pd.DataFrame):
    df = train_df.assign(HOURS=train_df.HOUR.map(lambda h: f"{h:02d}"), ID=np.arange(len(train_df)))
    df.loc[::17, "ZONE"] = None  # a NULL category
    return session.create_table("TRIPS", df, overwrite=True)


def _pipeline() -> neve.Pipeline:
    return neve.Pipeline([
        ("ohe", OneHotEncoder(input_cols=ZONES, handle_unknown="ignore")),
        ("mas", MaxAbsScaler(input_cols=["DIST"])),
        ("lr", LinearRegression(label_cols=["DURATION"])),
    ])


def _fingerprint_of(reg: neve.Registry, data) -> str:
    from neve.engine import _queries

    return str(_queries.execute(data.aggregate(fp=reg._driver.fingerprint(data))).iloc[0]["fp"])


def _group_bys(log: Iterable[str]) -> int:
    """GROUP BYs over the training data: one per column whose values are counted."""
    return sum(q.upper().count("GROUP BY") for q in log if "NEVE_" not in q)


def test_the_baseline_from_the_fit_equals_a_fresh_profile_and_skips_the_category_counts(reg, trips):
    train, _ = train_test_split(trips, test_size=0.3, random_state=1, key="ID")
    pipe = _pipeline().fit(train.select(*ZONES, "DIST", "DURATION"))
    data = train.select(*ZONES, "DIST")
    with neve.capture_queries() as log:
        mv = reg.log_model(pipe, "fit_stats", training_data=data)
    assert _group_bys(log) == 1  # the distance's values, for its deciles; not the zones' or hours'
    reads = [q for q in log if "NEVE_" not in q]
    # The row count, fingerprint and the distance's distinct-count guard, the distance's values,
    # and the default sample_input (its first rows): the fingerprint rides on the scan the
    # baseline runs anyway (the fit leaves it out: hashing every row is work it does not use).
    assert len(reads) == 3 and sum(f"LIMIT {SAMPLE_ROWS}" in q for q in reads) == 1
    expected = baseline(data)
    _same_profile(mv.baseline(), expected)
    # The fingerprint equals one computed from the rows themselves.
    assert mv.lineage()["training_data"]["fingerprint"] == _fingerprint_of(reg, data)
    assert mv.lineage()["training_data"]["row_count"] == expected["row_count"]


def _same_profile(got: dict, want: dict) -> bool:
    assert got["row_count"] == want["row_count"]
    for col, entry in want["columns"].items():
        other = got["columns"][col]
        for key, value in entry.items():
            if key == "top":  # fractions are count / rows on both sides: exactly equal
                assert other[key] == value, col
            else:
                assert other[key] == pytest.approx(value), (col, key)
    return True


def test_rows_the_fit_dropped_for_a_null_label_are_counted_again(reg, trips, session):
    df = trips.to_pandas()
    df.loc[::5, "DURATION"] = None
    table = session.create_table("TRIPS_NULL_LABEL", df, overwrite=True)
    pipe = _pipeline().fit(table.select(*ZONES, "DIST", "DURATION"))
    data = table.select(*ZONES, "DIST")
    with neve.capture_queries() as log:
        mv = reg.log_model(pipe, "fit_stats_null", training_data=data)
    assert _group_bys(log) == 3  # the fit saw fewer rows: zones and hours counted from the table
    _same_profile(mv.baseline(), baseline(data))
    assert mv.lineage()["training_data"]["fingerprint"] == _fingerprint_of(reg, data)  # hashed from these rows


def test_other_training_data_is_profiled_from_itself(reg, trips):
    pipe = _pipeline().fit(trips.select(*ZONES, "DIST", "DURATION"))
    other = trips.filter(trips.DIST > 2).select(*ZONES, "DIST")
    mv = reg.log_model(pipe, "fit_stats_other", training_data=other)
    _same_profile(mv.baseline(), baseline(other))
    # A later stepwise fit leaves no stale summary behind.
    pipe.set_params(ohe__min_frequency=2).fit(trips.select(*ZONES, "DIST", "DURATION"))
    assert not hasattr(pipe["lr"], "fit_summary_")
