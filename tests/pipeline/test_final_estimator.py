"""A neve.Pipeline ending in an estimator: the fused one-query fit, the stepwise fit,
scikit-learn estimators, scoring in one SELECT, and logging to the registry as one unit."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from sklearn import linear_model as skl
from sklearn import preprocessing as skp
from sklearn.compose import make_column_transformer
from sklearn.pipeline import make_pipeline
from sklearn.tree import DecisionTreeRegressor

import neve
from neve import Pipeline
from neve.errors import NeveInputError, SerializationError
from neve.linear_model import LinearRegression, LogisticRegression, Ridge
from neve.linear_model._stats import JOIN_ABOVE
from neve.preprocessing import MaxAbsScaler, MinMaxScaler, OneHotEncoder, SimpleImputer, StandardScaler

DATA = Path(__file__).parents[2] / "data" / "nyc_taxi"
ZONES = ["PICKUP_LOCATION_ID", "DROPOFF_LOCATION_ID", "HOUR_OF_DAY"]


def _taxi() -> pd.DataFrame:
    raw = pd.read_csv(DATA / "yellow_tripdata_sample_2019-01.csv", parse_dates=["pickup_datetime", "dropoff_datetime"])
    df = pd.DataFrame({
        "PICKUP_LOCATION_ID": raw.pickup_location_id,
        "DROPOFF_LOCATION_ID": raw.dropoff_location_id,
        "HOUR_OF_DAY": raw.pickup_datetime.dt.hour,
        "TRIP_DISTANCE": raw.trip_distance,
        "DURATION": (raw.dropoff_datetime - raw.pickup_datetime).dt.total_seconds() / 60,
    })
    return df[(df.DURATION > 0) & (df.DURATION < 180)].reset_index(drop=True)


def _sklearn_taxi(model, scaler=None):
    return make_pipeline(
        make_column_transformer(
            (skp.OneHotEncoder(handle_unknown="ignore", sparse_output=False), ZONES),
            (scaler or skp.MaxAbsScaler(), ["TRIP_DISTANCE"]),
        ),
        model,
    )


def _neve_taxi(model, scaler=None):
    return Pipeline([
        ("ohe", OneHotEncoder(input_cols=ZONES, handle_unknown="ignore")),
        ("scale", scaler or MaxAbsScaler(input_cols=["TRIP_DISTANCE"])),
        ("model", model),
    ])


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (lambda: LinearRegression(label_cols="DURATION"), skl.LinearRegression()),
        (lambda: Ridge(alpha=2.0, label_cols="DURATION"), skl.Ridge(alpha=2.0, solver="cholesky")),
    ],
)
def test_taxi_pipeline_fits_in_one_query_and_matches_scikit_learn(session, ours, theirs):
    df = _taxi()
    table = session.create_table("TAXI_LIN", df, overwrite=True)
    pipe = _neve_taxi(ours())
    with neve.capture_queries() as log:
        pipe.fit(table)
    queries = log.scans
    assert len(queries) == 1, queries
    # One grouped aggregate, no table written, no one-hot column computed.
    assert "GROUP BY" in queries[0] and "CREATE TABLE" not in queries[0].upper()
    assert "HOUR_OF_DAY_0" not in queries[0]
    sk = _sklearn_taxi(theirs).fit(df[ZONES + ["TRIP_DISTANCE"]], df.DURATION)
    ohe = pipe.named_steps["ohe"]
    sk_categories = sk[0].transformers_[0][1].categories_
    assert all(list(ohe.categories_[c]) == list(cats) for c, cats in zip(ZONES, sk_categories, strict=True))
    assert pipe.named_steps["scale"].max_abs_["TRIP_DISTANCE"] == df.TRIP_DISTANCE.abs().max()
    expected = sk.predict(df[ZONES + ["TRIP_DISTANCE"]])
    predicted = pipe.predict(table).to_pandas()
    assert "OUTPUT_DURATION" in predicted.columns
    # The one-hot design is rank deficient: compare the (unique) fitted values, not coefficients.
    assert_allclose(predicted["OUTPUT_DURATION"].to_numpy(), expected, rtol=1e-9, atol=1e-9)
    assert pipe.score(table) == pytest.approx(sk.score(df[ZONES + ["TRIP_DISTANCE"]], df.DURATION), rel=1e-9)
    unseen = df.head(3).assign(PICKUP_LOCATION_ID=99999)  # unknown category: ignored, as scikit-learn
    assert_allclose(pipe.predict(unseen)["OUTPUT_DURATION"], sk.predict(unseen[ZONES + ["TRIP_DISTANCE"]]),
                    rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize(
    "scaler, sk_scaler",
    [
        (StandardScaler(input_cols=["TRIP_DISTANCE"]), skp.StandardScaler()),
        (MinMaxScaler(input_cols=["TRIP_DISTANCE"]), skp.MinMaxScaler()),
    ],
)
def test_fused_scalers_match_their_own_fit(scaler, sk_scaler):
    df = _taxi().head(3000)
    pipe = _neve_taxi(Ridge(alpha=1.0, label_cols="DURATION"), scaler).fit(df)
    sk = _sklearn_taxi(skl.Ridge(alpha=1.0, solver="cholesky"), sk_scaler).fit(df[ZONES + ["TRIP_DISTANCE"]],
                                                                             df.DURATION)
    assert_allclose(pipe.named_steps["model"].coef_, sk[-1].coef_, rtol=1e-8, atol=1e-10)
    assert_allclose(pipe.named_steps["model"].intercept_, sk[-1].intercept_, rtol=1e-9)


def test_weighted_fused_fit_matches_stepwise(session):
    df = _taxi().head(3000)[["HOUR_OF_DAY", "TRIP_DISTANCE", "DURATION"]].assign(W=lambda d: 1 + (d.HOUR_OF_DAY % 3))
    table = session.create_table("TAXI_W", df)

    def steps():
        return [("ohe", OneHotEncoder(input_cols=["HOUR_OF_DAY"], handle_unknown="ignore")),
                ("scale", StandardScaler(input_cols=["TRIP_DISTANCE"])),
                ("model", Ridge(alpha=1.0, label_cols="DURATION", sample_weight_col="W"))]

    with neve.capture_queries() as log:
        fused = Pipeline(steps()).fit(table)
    assert len(log.scans) == 1
    # An imputer first takes the stepwise path (steps fitted one by one, then one aggregate).
    stepwise = Pipeline([("imp", SimpleImputer(input_cols=["TRIP_DISTANCE"])), *steps()])
    with neve.capture_queries() as log:
        stepwise.fit(table)
    assert len(log.scans) == 4
    fused_model, stepwise_model = fused.named_steps["model"], stepwise.named_steps["model"]
    assert_allclose(stepwise_model.coef_, fused_model.coef_, rtol=1e-8, atol=1e-10)
    assert_allclose(stepwise_model.intercept_, fused_model.intercept_, rtol=1e-9)
    sk = make_pipeline(make_column_transformer(
        (skp.OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["HOUR_OF_DAY"]),
        (skp.StandardScaler(), ["TRIP_DISTANCE"])), skl.Ridge(alpha=1.0, solver="cholesky"))
    sk.fit(df[["HOUR_OF_DAY", "TRIP_DISTANCE"]], df.DURATION, ridge__sample_weight=df.W)
    assert_allclose(fused_model.coef_, sk[-1].coef_, rtol=1e-8, atol=1e-10)
    assert_allclose(fused_model.intercept_, sk[-1].intercept_, rtol=1e-9)


def test_logistic_pipeline_runs_iterations_plus_one_queries(session):
    df = _taxi().head(4000).assign(LONG=lambda d: (d.DURATION > 15).astype("int64"), ID=lambda d: d.index)
    table = session.create_table("TAXI_LONG", df)
    pipe = Pipeline([
        ("ohe", OneHotEncoder(input_cols=["HOUR_OF_DAY"], handle_unknown="ignore")),
        ("scale", MaxAbsScaler(input_cols=["TRIP_DISTANCE"])),
        ("model", LogisticRegression(C=0.5, tol=1e-8, input_cols=None, label_cols="LONG",
                                     passthrough_cols=["ID", "DURATION", "PICKUP_LOCATION_ID", "DROPOFF_LOCATION_ID"])),
    ])
    with neve.capture_queries() as log:
        pipe.fit(table)
    model = pipe.named_steps["model"]
    assert len(log.scans) == model.n_iter_[0] + 1
    features = ["HOUR_OF_DAY", "TRIP_DISTANCE"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sk = make_pipeline(
            make_column_transformer((skp.OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["HOUR_OF_DAY"]),
                                    (skp.MaxAbsScaler(), ["TRIP_DISTANCE"])),
            skl.LogisticRegression(C=0.5, solver="newton-cholesky", tol=1e-12, max_iter=200),
        ).fit(df[features], df.LONG)
    assert_allclose(model.coef_, sk[-1].coef_, rtol=1e-6, atol=1e-8)
    assert_allclose(model.intercept_, sk[-1].intercept_, rtol=1e-6, atol=1e-8)
    proba = pipe.predict_proba(table.filter(table.ID < 50)).to_pandas().sort_values("ID")
    assert_allclose(proba[["PREDICT_PROBA_0", "PREDICT_PROBA_1"]], sk.predict_proba(df.head(50)[features]), atol=1e-9)


def test_logistic_pipeline_joins_the_coefficients_of_a_wide_column_and_matches_newton_cholesky(session):
    # Past JOIN_ABOVE categories each Newton pass looks a column's coefficients up in a small
    # VALUES table joined on it, not in a CASE per category: text with a quote in it and the
    # missing category (NULL, scikit-learn's last) must reach the same optimum.
    df = _taxi().head(3000)
    zone = ("Z'" + df.PICKUP_LOCATION_ID.astype(str)).astype(object)
    zone[::17] = None
    df = pd.DataFrame({"ZONE": zone, "HOUR_OF_DAY": df.HOUR_OF_DAY, "TRIP_DISTANCE": df.TRIP_DISTANCE,
                       "LONG": (df.DURATION > 15).astype("int64"), "ID": df.index})
    assert df.ZONE.nunique() > JOIN_ABOVE
    table = session.create_table("TAXI_ZONE_LONG", df)
    pipe = Pipeline([
        ("ohe", OneHotEncoder(input_cols=["ZONE", "HOUR_OF_DAY"], handle_unknown="ignore")),
        ("scale", MaxAbsScaler(input_cols=["TRIP_DISTANCE"])),
        ("model", LogisticRegression(C=0.5, tol=1e-8, label_cols="LONG", passthrough_cols=["ID"])),
    ])
    with neve.capture_queries() as log:
        pipe.fit(table)
    model = pipe.named_steps["model"]
    later = log.scans[2:]  # the classes and the first pass (at zero) need no lookup
    assert later and all("LEFT JOIN" in q and "VALUES" in q for q in later)
    features = ["ZONE", "HOUR_OF_DAY", "TRIP_DISTANCE"]
    sk = make_pipeline(
        make_column_transformer((skp.OneHotEncoder(handle_unknown="ignore", sparse_output=False), features[:2]),
                                (skp.MaxAbsScaler(), ["TRIP_DISTANCE"])),
        skl.LogisticRegression(C=0.5, solver="newton-cholesky", tol=1e-12, max_iter=200),
    ).fit(df[features], df.LONG)
    assert_allclose(model.coef_, sk[-1].coef_, rtol=1e-6, atol=1e-8)
    assert_allclose(model.intercept_, sk[-1].intercept_, rtol=1e-6, atol=1e-8)


def test_logistic_pipeline_fits_its_standard_scaler_on_plain_row_sums():
    # The Newton step's Gram carries IRLS weights; a fused StandardScaler fitted from it got
    # a weighted mean (3.83 for 2.96 here) and every coefficient after it was off.
    df = _taxi().head(3000).assign(LONG=lambda d: (d.DURATION > 15).astype("int64"))
    pipe = Pipeline([
        ("ohe", OneHotEncoder(input_cols=["HOUR_OF_DAY"], handle_unknown="ignore")),
        ("scale", StandardScaler(input_cols=["TRIP_DISTANCE"])),
        ("model", LogisticRegression(tol=1e-10, label_cols="LONG", passthrough_cols=[
            "DURATION", "PICKUP_LOCATION_ID", "DROPOFF_LOCATION_ID"])),
    ]).fit(df)
    sk = make_pipeline(
        make_column_transformer((skp.OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["HOUR_OF_DAY"]),
                                (skp.StandardScaler(), ["TRIP_DISTANCE"])),
        skl.LogisticRegression(solver="newton-cholesky", tol=1e-12, max_iter=200),
    ).fit(df[["HOUR_OF_DAY", "TRIP_DISTANCE"]], df.LONG)
    assert pipe.named_steps["scale"].mean_["TRIP_DISTANCE"] == pytest.approx(df.TRIP_DISTANCE.mean(), rel=1e-12)
    assert_allclose(pipe.named_steps["model"].coef_, sk[-1].coef_, rtol=1e-6, atol=1e-8)


def test_null_feature_without_imputer_names_the_column():
    df = _taxi().head(500)
    df.loc[5, "TRIP_DISTANCE"] = np.nan
    with pytest.raises(NeveInputError, match="TRIP_DISTANCE"):
        _neve_taxi(LinearRegression(label_cols="DURATION")).fit(df)


def test_scikit_learn_estimator_at_the_end(session):
    df = _taxi().head(2000)
    pipe = Pipeline([("ohe", OneHotEncoder(input_cols=["HOUR_OF_DAY"], handle_unknown="ignore")),
                     ("tree", DecisionTreeRegressor(max_depth=4, random_state=0))])
    table = session.create_table("TAXI_TREE", df[["HOUR_OF_DAY", "TRIP_DISTANCE", "DURATION"]], overwrite=True)
    pipe.fit(table, y="DURATION")
    sk = make_pipeline(make_column_transformer(
        (skp.OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["HOUR_OF_DAY"]),
        ("passthrough", ["TRIP_DISTANCE"])), DecisionTreeRegressor(max_depth=4, random_state=0))
    sk.fit(df[["HOUR_OF_DAY", "TRIP_DISTANCE"]], df.DURATION)
    predicted = pipe.predict(table).to_pandas()
    assert_allclose(predicted["PREDICTION"], sk.predict(predicted[["HOUR_OF_DAY", "TRIP_DISTANCE"]]))


def test_pipeline_with_estimator_has_no_json_form():
    pipe = _neve_taxi(LinearRegression(label_cols="DURATION")).fit(_taxi().head(300))
    with pytest.raises(SerializationError, match="log_model"):
        pipe.to_dict()


def test_registry_logs_the_pipeline_as_one_unit(session, tmp_path, engine):
    df = _taxi().head(3000)
    table = session.create_table("TAXI_REG", df, overwrite=True)
    pipe = _neve_taxi(LinearRegression(label_cols="DURATION")).fit(table)
    stage = None if engine == "duckdb" else str(tmp_path / "test.stage")
    reg = neve.Registry(session, stage=stage)
    mv = reg.log_model(pipe, "taxi_linear", training_data=table)
    assert type(mv.load()) is skl.LinearRegression
    scored = mv.run(table).to_pandas().sort_values(ZONES + ["TRIP_DISTANCE", "DURATION"])
    direct = pipe.predict(table).to_pandas().sort_values(ZONES + ["TRIP_DISTANCE", "DURATION"])
    assert_allclose(scored["PREDICTION"].to_numpy(), direct["OUTPUT_DURATION"].to_numpy(), rtol=1e-12, atol=1e-12)


def test_no_intercept_fit_keeps_its_digits_on_a_standardised_large_mean_column():
    # StandardScaler of mean -1e4 and spread 0.1 makes the feature 1e5·x - 1e5·mean: mapped
    # through the unshifted Gram (values ~1e8) the fit was off by 2e-6 relative here; mapped
    # into the shifted coordinates it is within 3e-11 of the exact rational solution (scikit-learn
    # itself is 8e-11 from it: the problem is ill-conditioned without an intercept).
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"X": rng.normal(-1e4, 0.1, 90), "W": rng.exponential(1, 90).round(1)})
    df["Y"] = rng.normal(size=90) + 0.5 * df.X + 2
    pipe = Pipeline([("std", StandardScaler(input_cols=["X"])),
                     ("model", Ridge(alpha=1e-4, fit_intercept=False, label_cols="Y"))]).fit(df)
    sk = make_pipeline(make_column_transformer((skp.StandardScaler(), ["X"]), ("passthrough", ["W"])),
                       skl.Ridge(alpha=1e-4, fit_intercept=False, solver="cholesky")).fit(df[["X", "W"]], df.Y)
    assert_allclose(pipe.named_steps["model"].coef_, sk[-1].coef_, rtol=1e-9)
