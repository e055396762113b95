"""One-hot blocks folded into a linear model's weights (neve.scoring._fold): the same
predictions as the indicator columns, one lookup per encoded column in the SQL."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression

import neve
from neve.preprocessing import MaxAbsScaler, OneHotEncoder, StandardScaler
from neve.scoring import score

N = 600


@pytest.fixture
def session(tmp_path):
    rng = np.random.default_rng(7)
    city = rng.choice(
        ["north", "south", "east", "west", "rare"], size=N, p=[0.4, 0.3, 0.2, 0.09, 0.01]
    )
    city = np.where(rng.random(N) < 0.05, None, city).astype(object)
    frame = pd.DataFrame({
        "CITY": city,
        "HOUR": rng.integers(0, 24, N),
        "DIST": rng.gamma(2.0, 2.0, N),
    })  # fmt: skip
    frame["Y"] = (
        3 * frame.DIST + frame.HOUR % 7 + frame.CITY.map({"north": 5, "south": -2}).fillna(1)
    )
    # Scored rows include values the encoder never saw: a new city and hour 99.
    new = pd.DataFrame({"CITY": ["atlantis", None, "north"], "HOUR": [99, 3, 5],
                        "DIST": [1.0, 2.0, 3.0], "Y": [0.0, 0.0, 0.0]})  # fmt: skip
    with neve.connect(f"duckdb:///{tmp_path / 'fold.duckdb'}") as s:
        s.create_table("TRAIN", frame)
        s.create_table("SCORE", pd.concat([frame, new], ignore_index=True))
        yield s


def fitted(session, encoder: OneHotEncoder, model=None, extra=()):
    pipe = neve.Pipeline([("ohe", encoder), ("scale", StandardScaler(input_cols=["DIST"])), *extra])
    train = session.table("TRAIN")
    pipe.fit(train)
    features = pipe.transform(train).to_pandas()
    cols = [c for c in features.columns if c != "Y" and pd.api.types.is_numeric_dtype(features[c])]
    model = (model or LinearRegression()).fit(
        features[cols], features["Y"] > 8 if model else features["Y"]
    )
    return pipe, model, cols


def oracle(session, pipe, model, cols) -> np.ndarray:
    """scikit-learn predicting on the indicator columns neve's pipeline produces."""
    return model.predict(pipe.transform(session.table("SCORE")).to_pandas()[cols])


@pytest.mark.parametrize(
    "encoder",
    [
        OneHotEncoder(input_cols=["CITY", "HOUR"], handle_unknown="ignore"),
        OneHotEncoder(input_cols=["CITY", "HOUR"], handle_unknown="ignore", drop="first"),
        OneHotEncoder(
            input_cols=["CITY", "HOUR"], handle_unknown="infrequent_if_exist", min_frequency=20
        ),
        OneHotEncoder(input_cols=["CITY", "HOUR"], output_cols=["C", "H"], handle_unknown="ignore"),
    ],
    ids=["ignore", "drop-first", "infrequent", "renamed"],
)
def test_folded_scores_match_the_indicator_columns(session, encoder):
    pipe, model, cols = fitted(session, encoder)
    table = session.table("SCORE")
    out = score(table, model, pipeline=pipe)
    sql = session.to_sql(out)
    # Folded: one weight lookup per encoded column, no indicator columns at all.
    assert not [c for c in cols if c not in ("DIST", "HOUR") and f'"{c}"' in sql]
    got = out.order_by("DIST").to_pandas()
    want = pd.DataFrame({"DIST": table.to_pandas().DIST, "P": oracle(session, pipe, model, cols)})
    want = want.sort_values("DIST", kind="stable")
    np.testing.assert_allclose(got.PREDICTION.to_numpy(), want.P.to_numpy(), rtol=1e-9, atol=1e-9)
    assert list(got.columns) == [*table.columns, "PREDICTION"]  # inputs come back untransformed


def test_unknown_category_error_is_not_folded_away(session):
    pipe, model, _ = fitted(session, OneHotEncoder(input_cols=["CITY"], handle_unknown="error"))
    out = score(session.table("SCORE"), model, pipeline=pipe)
    assert '"CITY_north"' in session.to_sql(out)
    # The query still aborts on the unseen city (score() leaves the engine's error untranslated).
    with pytest.raises(Exception, match="unknown category in column 'CITY': 'atlantis'"):
        out.to_pandas()


def test_a_later_step_reading_an_indicator_keeps_the_columns(session):
    scale = ("mas", MaxAbsScaler(input_cols=["CITY_north"]))
    pipe, model, cols = fitted(
        session, OneHotEncoder(input_cols=["CITY"], handle_unknown="ignore"), extra=[scale]
    )
    out = score(session.table("SCORE"), model, pipeline=pipe)
    assert '"CITY_south"' in session.to_sql(out)
    got = out.to_pandas().PREDICTION.to_numpy()
    np.testing.assert_allclose(np.sort(got), np.sort(oracle(session, pipe, model, cols)), rtol=1e-9)


def test_classifiers_are_scored_unfolded(session):
    pipe, model, cols = fitted(
        session, OneHotEncoder(input_cols=["CITY"], handle_unknown="ignore"), LogisticRegression()
    )
    out = score(session.table("SCORE"), model, pipeline=pipe)
    assert '"CITY_north"' in session.to_sql(out)
    assert sorted(out.to_pandas().PREDICTION) == sorted(oracle(session, pipe, model, cols))
