"""A neve Pipeline ending in HistGradientBoosting: categories found and coded in the engine,
streamed as int8/int16 codes, and the fitted model the same trees scikit-learn grows on the
same rows with ``astype("category")``; scored in SQL and logged as one unit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

import neve
from neve import Pipeline
from neve.errors import ColumnNotFoundError, ColumnTypeError, EmptyInputError, NeveInputError
from neve.pipeline._coded_frame import extract_coded_frame
from neve.preprocessing import MaxAbsScaler, SimpleImputer

N = 3000
ZONES = [f"zone {i:03d}" for i in range(140)]  # more than int8 holds: int16 codes
FEATURES = ["ZONE", "HOUR", "DISTANCE"]


@pytest.fixture(scope="module")
def trips() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    zone = rng.choice(ZONES, N).astype(object)
    hour = rng.integers(0, 24, N)
    distance = np.round(rng.gamma(2.0, 1.5, N), 2)
    zone_effect = dict(zip(ZONES, rng.normal(scale=300, size=len(ZONES)), strict=True))
    duration = 120 * distance + np.vectorize(zone_effect.get)(zone) + 40 * (hour % 7) + rng.normal(scale=50, size=N)
    frame = pd.DataFrame({"ZONE": zone, "HOUR": hour, "DISTANCE": distance, "DURATION": np.round(duration, 1)})
    frame.loc[rng.random(N) < 0.04, "ZONE"] = None
    frame.loc[rng.random(N) < 0.04, "DISTANCE"] = np.nan
    frame["LONG"] = np.where(frame.DURATION > frame.DURATION.median(), "long", "short")
    return frame


def _as_categories(X: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    return X.astype(dict.fromkeys(columns, "category"))


def _assert_same_trees(ours, theirs) -> None:
    """The same trees, and the same categories behind the codes (raw values, same dtype)."""
    mine, reference = (m._preprocessor.named_transformers_["encoder"] for m in (ours, theirs))
    assert [c.dtype for c in mine.categories_] == [c.dtype for c in reference.categories_]
    for a, b in zip(mine.categories_, reference.categories_, strict=True):
        assert [(type(v), v if v == v else "NaN") for v in a] == [(type(v), v if v == v else "NaN") for v in b]
    assert ours.get_params() == theirs.get_params()
    assert len(ours._predictors) == len(theirs._predictors)
    for mine, reference in zip(ours._predictors, theirs._predictors, strict=True):
        for a, b in zip(mine, reference, strict=True):
            np.testing.assert_array_equal(a.nodes, b.nodes)
            np.testing.assert_array_equal(a.raw_left_cat_bitsets, b.raw_left_cat_bitsets)


def _probe(trips: pd.DataFrame) -> pd.DataFrame:
    """Training rows plus NULL and never-seen categories in every categorical column."""
    odd = pd.DataFrame({
        "ZONE": [None, "zone 999", "", ZONES[0], ZONES[1]],
        "HOUR": [5, 7, 24, -1, 3],
        "DISTANCE": [1.0, np.nan, 2.5, 0.0, 3.0],
    })
    return pd.concat([trips[FEATURES].head(400), odd], ignore_index=True).assign(ROW_ID=lambda f: np.arange(len(f)))


def test_regressor_grows_scikit_learns_trees_and_scores_them_in_sql(session, trips):
    table = session.create_table("TRIPS_HGB", trips[[*FEATURES, "DURATION"]], overwrite=True)
    params = {"max_iter": 30, "max_leaf_nodes": 15, "categorical_features": ["ZONE", "HOUR"], "random_state": 0}
    pipe = Pipeline([("model", HistGradientBoostingRegressor(**params))])
    with neve.capture_queries() as log:
        pipe.fit(table, y="DURATION")
    assert len(log.scans) == 2  # the categories, then the coded rows
    reference = HistGradientBoostingRegressor(**params).fit(
        _as_categories(trips[FEATURES], ["ZONE", "HOUR"]), trips.DURATION
    )
    _assert_same_trees(pipe._estimator, reference)

    probe = _probe(trips)
    scored = pipe.predict(session.create_table("PROBE", probe, overwrite=True))
    frame = scored.to_pandas().sort_values("ROW_ID")
    # scikit-learn encodes plain values by the fitted categories; unseen and NULL go missing.
    expected = reference.predict(probe[FEATURES].astype({"ZONE": object, "HOUR": "int64"}))
    np.testing.assert_allclose(frame["PREDICTION"].to_numpy(), expected, rtol=1e-9, atol=1e-9)


def test_string_columns_are_categorical_from_dtype_and_the_classifier_matches(session, trips):
    columns = ["ZONE", "DISTANCE"]
    table = session.create_table("TRIPS_HGB", trips[[*columns, "LONG"]], overwrite=True)
    params = {"max_iter": 15, "max_leaf_nodes": 11, "random_state": 0}
    pipe = Pipeline([("model", HistGradientBoostingClassifier(**params))]).fit(table, y="LONG")
    reference = HistGradientBoostingClassifier(**params).fit(_as_categories(trips[columns], ["ZONE"]), trips.LONG)
    assert pipe._estimator.is_categorical_.tolist() == [True, False]
    _assert_same_trees(pipe._estimator, reference)
    probe = _probe(trips)[[*columns, "ROW_ID"]]
    proba = pipe.predict_proba(session.create_table("PROBE", probe, overwrite=True)).to_pandas().sort_values("ROW_ID")
    got = proba[[c for c in proba.columns if c not in (*columns, "ROW_ID")]].to_numpy(dtype=float)
    np.testing.assert_allclose(got, reference.predict_proba(probe[columns]), rtol=1e-12, atol=1e-12)


@pytest.mark.engines("duckdb", reason="the codes' Arrow types are DuckDB's; other engines widen TINYINT")
def test_codes_leave_the_engine_as_one_or_two_bytes(session, trips):
    table = session.create_table("TRIPS_HGB", trips[[*FEATURES, "DURATION"]], overwrite=True)
    model = HistGradientBoostingRegressor(categorical_features=["ZONE", "HOUR"])
    with neve.capture_queries() as log:
        X, y, categories = extract_coded_frame(model, table, FEATURES, "DURATION")
    assert X["ZONE"].dtype == "Int16"  # 140 zones
    assert X["HOUR"].dtype == "Int8"
    assert X["ZONE"].isna().sum() == trips.ZONE.isna().sum()
    assert categories["HOUR"] == list(range(24))
    zone = X["ZONE"].to_numpy(dtype=float, na_value=np.nan)
    decoded = [categories["ZONE"][int(c)] if c == c else None for c in zone]
    assert decoded == [z if isinstance(z, str) else None for z in trips.ZONE]
    # 2 + 1 bytes of codes, 8 of distance and 8 of label per row, plus the categories' query.
    assert log.bytes_fetched < N * (2 + 1 + 8 + 8) + 16 * 1024
    np.testing.assert_array_equal(y, trips.DURATION.to_numpy())


def test_transformers_run_in_the_engine_before_the_codes(session, trips):
    table = session.create_table("TRIPS_HGB", trips[[*FEATURES, "DURATION"]], overwrite=True)
    pipe = Pipeline([
        ("impute", SimpleImputer(input_cols=["ZONE"], strategy="constant", fill_value="unknown")),
        ("scale", MaxAbsScaler(input_cols=["DISTANCE"])),
        ("model", HistGradientBoostingRegressor(max_iter=10, random_state=0)),
    ]).fit(table, y="DURATION")
    X = trips[FEATURES].assign(
        ZONE=trips.ZONE.fillna("unknown").astype("category"),
        DISTANCE=trips.DISTANCE / trips.DISTANCE.abs().max(),
    )
    reference = HistGradientBoostingRegressor(max_iter=10, random_state=0).fit(X, trips.DURATION)
    _assert_same_trees(pipe._estimator, reference)


def test_registry_logs_the_boosted_pipeline_as_one_unit_and_scores_it_in_sql(session, trips, tmp_path, engine):
    table = session.create_table("TRIPS_HGB", trips[[*FEATURES, "DURATION"]], overwrite=True)
    pipe = Pipeline([
        ("scale", MaxAbsScaler(input_cols=["DISTANCE"])),
        ("model", HistGradientBoostingRegressor(max_iter=10, categorical_features=["ZONE", "HOUR"], random_state=0)),
    ]).fit(table, y="DURATION")
    stage = None if engine == "duckdb" else str(tmp_path / "test.stage")
    mv = neve.Registry(session, stage=stage).log_model(pipe, "trips_hgb", training_data=table)
    assert type(mv.load()) is HistGradientBoostingRegressor
    scored = mv.run(table)
    assert scored.path == "sql"
    got = scored.to_pandas().sort_values([*FEATURES, "DURATION"])["PREDICTION"].to_numpy()
    direct = pipe.predict(table).to_pandas().sort_values([*FEATURES, "DURATION"])["PREDICTION"].to_numpy()
    np.testing.assert_allclose(got, direct, rtol=1e-12, atol=1e-12)


@pytest.mark.engines("duckdb", reason="argument checks, before any engine-specific SQL")
def test_text_column_not_named_categorical_is_refused_before_any_query(session, trips):
    table = session.create_table("TRIPS_HGB", trips[[*FEATURES, "DURATION"]], overwrite=True)
    pipe = Pipeline([("model", HistGradientBoostingRegressor(categorical_features=["HOUR"]))])
    with neve.capture_queries() as log, pytest.raises(ColumnTypeError, match="'ZONE'"):
        pipe.fit(table, y="DURATION")
    assert log.scans == []
    pipe = Pipeline([("model", HistGradientBoostingRegressor(categorical_features=["ZONE", "PICKUP"]))])
    with pytest.raises(ColumnNotFoundError, match="'PICKUP'"):
        pipe.fit(table, y="DURATION")


@pytest.mark.engines("duckdb", reason="argument checks, before any engine-specific SQL")
def test_too_many_categories_names_the_column_before_the_extract(session, trips):
    table = session.create_table("TRIPS_HGB", trips[[*FEATURES, "DURATION"]], overwrite=True)
    pipe = Pipeline([("model", HistGradientBoostingRegressor(max_bins=100, categorical_features=["ZONE"]))])
    with neve.capture_queries() as log, pytest.raises(NeveInputError, match=r"'ZONE' \(140\).*max_bins=100"):
        pipe.fit(table.drop("HOUR"), y="DURATION")
    assert len(log.scans) == 1  # the categories only: no rows were extracted


@pytest.mark.engines("duckdb", reason="argument checks, before any engine-specific SQL")
def test_no_labelled_rows_is_a_clear_error(session, trips):
    labelled = trips[[*FEATURES, "DURATION"]].assign(DURATION=np.nan)
    for categorical in (["ZONE"], None):  # with a categories query, and without
        table = session.create_table("TRIPS_HGB", labelled[["DISTANCE", "DURATION"]] if categorical is None
                                     else labelled.drop(columns="HOUR"), overwrite=True)
        pipe = Pipeline([("model", HistGradientBoostingRegressor(categorical_features=categorical))])
        with pytest.raises(EmptyInputError, match="HistGradientBoostingRegressor.fit got a table with no rows"):
            pipe.fit(table, y="DURATION")
