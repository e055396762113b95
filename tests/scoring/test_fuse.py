"""A pipeline ending in OneHotEncoder, fused into a linear model as one CASE per input
column: predictions still equal scikit-learn's on the encoded features."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import Lasso, LinearRegression, LogisticRegression

import neve
from neve.preprocessing import OneHotEncoder, StandardScaler
from neve.scoring import score

N = 300


def _frames() -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    rng = np.random.default_rng(7)
    train = pd.DataFrame({
        "X": rng.normal(size=N),
        "Z": rng.normal(size=N) * 10,
        "CITY": rng.choice(["ams", "ber", "cph", "dub", "rare"], size=N, p=[0.3, 0.3, 0.2, 0.18, 0.02]),
        "ZONE": rng.integers(1, 9, size=N),
    })
    y = 3 * train.X - train.Z + train.CITY.map({"ams": 5, "ber": -2, "cph": 0, "dub": 7, "rare": 9}) \
        + train.ZONE * 1.5 + rng.normal(size=N)
    # Scoring rows include an unseen city, a missing city and an unseen zone.
    new = train.head(40).copy()
    new.loc[0, "CITY"], new.loc[1, "CITY"], new.loc[2, "ZONE"] = "oslo", None, 99
    return train, y.to_numpy(), new


def _fit(session, encoder, model_cls, target=None):
    train, y, new = _frames()
    pipe = neve.Pipeline([("scale", StandardScaler(input_cols=["X", "Z"])), ("ohe", encoder)])
    pipe.fit(session.create_table("TRAIN", train, overwrite=True))
    features = pipe.transform(train)
    model = model_cls().fit(features, y if target is None else target(y))
    return pipe, model, new


def _score(session, pipe, model, new, **kw):
    table = session.create_table("NEW", new.assign(ROW_ID=np.arange(len(new))), overwrite=True)
    result = score(table, model, pipeline=pipe, **kw)
    # Spark quotes names with backticks; the assertions below are written with double quotes.
    sql = neve.Session.to_sql(session, result).replace("`", '"')
    return sql, result.execute().sort_values("ROW_ID", ignore_index=True)


def test_linear_regression_over_one_hot_matches_and_is_one_case_per_column(session):
    pipe, model, new = _fit(session, OneHotEncoder(input_cols=["CITY", "ZONE"], handle_unknown="ignore"),
                            LinearRegression)
    sql, out = _score(session, pipe, model, new)
    expected = model.predict(pipe.transform(new))
    np.testing.assert_allclose(out["PREDICTION"], expected, rtol=1e-9)
    # One CASE per encoded column (a constant map on Spark): no indicator column per
    # category is computed, and each category is written once.
    assert '"CITY_ams"' not in sql and '"ZONE_1"' not in sql
    assert sql.count("'ams'") == 1
    assert ("try_element_at(map(" in sql) == (session.engine.name == "pyspark")
    np.testing.assert_array_equal(out["CITY"].isna(), new["CITY"].isna())  # inputs come back raw


def test_dropped_infrequent_and_zero_weight_categories(session):
    encoder = OneHotEncoder(input_cols=["CITY", "ZONE"], handle_unknown="infrequent_if_exist",
                            min_frequency=10, drop="first")
    pipe, model, new = _fit(session, encoder, lambda: Lasso(alpha=0.3))
    assert (model.coef_ == 0).any()
    _, out = _score(session, pipe, model, new)
    np.testing.assert_allclose(out["PREDICTION"], model.predict(pipe.transform(new)), rtol=1e-9)


def test_multinomial_logistic_probabilities(session):
    pipe, model, new = _fit(session, OneHotEncoder(input_cols=["CITY", "ZONE"], handle_unknown="ignore"),
                            lambda: LogisticRegression(max_iter=2000),
                            target=lambda y: np.digitize(y, np.quantile(y, [0.33, 0.66])))
    _, out = _score(session, pipe, model, new, function_name="predict_proba")
    got = out[[f"PROBABILITY_{c}" for c in model.classes_]].to_numpy()
    np.testing.assert_allclose(got, model.predict_proba(pipe.transform(new)), rtol=1e-9)
    _, labels = _score(session, pipe, model, new)
    np.testing.assert_array_equal(labels["PREDICTION"], model.predict(pipe.transform(new)))


def test_unknown_category_still_fails_with_handle_unknown_error(session):
    pipe, model, new = _fit(session, OneHotEncoder(input_cols=["CITY"]), LinearRegression)
    known = new[new.CITY.isin(["ams", "ber", "cph", "dub", "rare"])]
    _, out = _score(session, pipe, model, known)
    np.testing.assert_allclose(out["PREDICTION"], model.predict(pipe.transform(known)), rtol=1e-9)
    with pytest.raises(Exception, match="CITY"):
        _score(session, pipe, model, new)


def test_steps_after_the_encoder_on_other_columns_still_fuse(session):
    # The taxi pipeline's shape: encode the zones, then scale a distance column.
    train, y, new = _frames()
    pipe = neve.Pipeline([
        ("ohe", OneHotEncoder(input_cols=["CITY", "ZONE"], handle_unknown="ignore")),
        ("scale", StandardScaler(input_cols=["X", "Z"], output_cols=["X_S", "Z_S"])),
    ])
    pipe.fit(session.create_table("TRAIN", train, overwrite=True))
    model = LinearRegression().fit(pipe.transform(train).drop(columns=["X", "Z"]), y)
    sql, out = _score(session, pipe, model, new)
    expected = model.predict(pipe.transform(new).drop(columns=["X", "Z"]))
    np.testing.assert_allclose(out["PREDICTION"], expected, rtol=1e-9)
    assert '"CITY_ams"' not in sql and sql.count("'ams'") == 1


def test_a_later_step_reading_the_encoded_columns_keeps_the_encoder_unfused(session):
    train, y, new = _frames()
    pipe = neve.Pipeline([
        ("ohe", OneHotEncoder(input_cols=["CITY"], handle_unknown="ignore")),
        ("scale", StandardScaler(input_cols=["X", "CITY_ams"])),
    ])
    pipe.fit(session.create_table("TRAIN", train, overwrite=True))
    features = pipe.transform(train).drop(columns=["ZONE"])
    model = LinearRegression().fit(features, y)
    sql, out = _score(session, pipe, model, new.drop(columns=["ZONE"]))
    expected = model.predict(pipe.transform(new.drop(columns=["ZONE"])))
    np.testing.assert_allclose(out["PREDICTION"], expected, rtol=1e-9)
    assert '"CITY_ams"' in sql
