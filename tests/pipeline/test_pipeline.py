from __future__ import annotations

import json

import duckdb
import numpy as np
import pandas as pd
import pytest
import sqlglot
from numpy.testing import assert_allclose
from pandas.testing import assert_frame_equal
from sklearn import pipeline as skpipe
from sklearn import preprocessing as skp

import neve
from neve import Pipeline
from neve.errors import InvalidParameterError, NotFittedError, SerializationError
from neve.preprocessing import MaxAbsScaler, MinMaxScaler, OneHotEncoder, RobustScaler, StandardScaler


def _frame(seed=0, n=300):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x": rng.normal(3, 2, n), "y": rng.exponential(1, n), "k": rng.choice(["a", "b"], n)})


def _pipe():
    return Pipeline(
        [
            ("std", StandardScaler(input_cols=["x", "y"])),
            ("mm", MinMaxScaler(input_cols=["x"], output_cols=["x_mm"], feature_range=(-1, 1))),
            ("mas", MaxAbsScaler(input_cols=["y"], output_cols=["y_mas"])),
        ]
    )


def test_matches_chained_scikit_learn(session):
    train, test = _frame(0), _frame(1)
    session.create_table("TRAIN", train)
    session.create_table("TEST", test)
    pipe = _pipe().fit(session.table("TRAIN"))
    out = pipe.transform(session.table("TEST")).to_pandas()
    std = skp.StandardScaler().fit(train[["x", "y"]])
    z_train, z_test = std.transform(train[["x", "y"]]), std.transform(test[["x", "y"]])
    mm = skp.MinMaxScaler(feature_range=(-1, 1)).fit(z_train[:, [0]])
    mas = skp.MaxAbsScaler().fit(z_train[:, [1]])
    assert_allclose(out["x_mm"], mm.transform(z_test[:, [0]])[:, 0], rtol=1e-9)
    assert_allclose(out["y_mas"], mas.transform(z_test[:, [1]])[:, 0], rtol=1e-9)
    assert list(out.columns) == ["x", "y", "k", "x_mm", "y_mas"]
    assert list(pipe.get_feature_names_out()) == list(out.columns)


def test_one_query_per_step_and_lazy_transform(session):
    session.create_table("T", _frame())
    with neve.capture_queries() as log:
        pipe = _pipe().fit(session.table("T"))
        expr = pipe.transform(session.table("T"))
    assert len(log) == 3
    assert len(expr.execute()) == 300


def test_pandas_in_pandas_out():
    df = _frame()
    df.index = df.index + 1000
    out = _pipe().fit_transform(df)
    assert isinstance(out, pd.DataFrame)
    assert out.index.equals(df.index)


def test_to_sql_is_the_select_transform_runs(session):
    session.create_table("T", _frame())
    pipe = _pipe().fit(session.table("T"))
    sql = pipe.to_sql(session.table("T"))
    assert sql.lstrip().upper().startswith("SELECT")
    via_sql = session.engine.sql(sql).to_pandas().sort_values("x_mm", ignore_index=True)
    expected = pipe.transform(session.table("T")).to_pandas().sort_values("x_mm", ignore_index=True)
    assert_allclose(via_sql["x_mm"].astype(float), expected["x_mm"], rtol=1e-12)
    # Another dialect's text, read back by sqlglot into this engine's dialect, computes the same.
    own = session.engine.compiler.dialect
    for dialect in ("snowflake", "postgres"):
        text = pipe.to_sql(session.table("T"), dialect=dialect, pretty=False)
        assert text != pipe.to_sql(session.table("T"), dialect="duckdb", pretty=False) or dialect == own
        again = session.engine.sql(sqlglot.transpile(text, read=dialect, write=own)[0]).to_pandas()
        # No ORDER BY in either query: compare the values, not the order the engine chose.
        assert_allclose(np.sort(again["x_mm"].astype(float)), np.sort(expected["x_mm"]), rtol=1e-12)


def test_to_dict_round_trips_exactly(session):
    session.create_table("T", _frame())
    pipe = _pipe().fit(session.table("T"))
    state = pipe.to_dict()
    text = json.dumps(state, allow_nan=False)  # plain JSON, no NaN tokens, no pickle
    again = Pipeline.from_dict(json.loads(text))
    assert again.to_dict() == state
    assert_allclose(
        again.transform(session.table("T")).to_pandas()[["x_mm", "y_mas"]],
        pipe.transform(session.table("T")).to_pandas()[["x_mm", "y_mas"]],
        rtol=0,
    )
    assert Pipeline.from_json(pipe.to_json()).to_dict() == state


def test_state_with_nan_and_tuples_round_trips():
    df = pd.DataFrame({"x": [np.nan, np.nan], "y": [1.0, 2.0]})
    pipe = Pipeline([("r", RobustScaler(quantile_range=(10.0, 90.0)))]).fit(df)
    again = Pipeline.from_json(pipe.to_json())
    assert np.isnan(again["r"].center_["x"])
    assert again["r"].quantile_range == (10.0, 90.0)


def test_from_dict_refuses_unknown_classes():
    doc = _pipe().fit(_frame()).to_dict()
    doc["steps"][0]["class"] = "os.system"
    with pytest.raises(SerializationError, match="unknown class 'os.system'"):
        Pipeline.from_dict(doc)
    with pytest.raises(SerializationError, match="format"):
        Pipeline.from_dict({"steps": []})


def test_bad_steps_and_unfitted():
    with pytest.raises(InvalidParameterError, match="unique"):
        Pipeline([("a", StandardScaler()), ("a", MinMaxScaler())]).fit(_frame()[["x"]])
    with pytest.raises(InvalidParameterError, match="neve.preprocessing"):
        Pipeline([("sk", skp.StandardScaler())]).fit(_frame())
    with pytest.raises(NotFittedError):
        _pipe().transform(_frame())


def test_usable_inside_scikit_learn_pipeline():
    # neve steps speak pandas, so they compose with scikit-learn estimators.
    from sklearn.linear_model import LinearRegression

    df = _frame()
    target = df["x"] * 2 + df["y"]
    model = skpipe.make_pipeline(_pipe(), _DropText(), LinearRegression()).fit(df, target)
    # The same model fitted on neve's own transform: scikit-learn saw exactly those features.
    features = _DropText().fit_transform(_pipe().fit(df).transform(df))
    expected = LinearRegression().fit(features, target).predict(features)
    assert_allclose(model.predict(df), expected, rtol=1e-9)
    assert_allclose(model.predict(df), target, rtol=1e-9)  # the target is linear in x and y


class _DropText(skp.FunctionTransformer):
    def __init__(self):
        super().__init__(lambda d: d.drop(columns=["k"]))


@pytest.mark.engines("duckdb", reason="runs the printed SQL through DuckDB's own client")
def test_transform_sql_runs_on_duckdb_directly():
    # The compiled SELECT is plain SQL any DuckDB connection can run.
    df = _frame()
    pipe = _pipe().fit(df)
    con = duckdb.connect()
    con.register("src", df)
    import ibis

    src = ibis.table(ibis.schema({"x": "float64", "y": "float64", "k": "string"}), name="src")
    sql = pipe.to_sql(src, dialect="duckdb")
    assert_frame_equal(con.execute(sql).df(), pipe.transform(df), check_dtype=False, rtol=1e-12)


def test_unknown_category_inside_a_pipeline_is_a_neve_error():
    from neve.errors import UnknownCategoryError
    from neve.preprocessing import OneHotEncoder

    pipe = Pipeline(
        [("std", StandardScaler(input_cols=["x"])), ("ohe", OneHotEncoder(input_cols=["k"]))]
    ).fit(_frame())
    unseen = _frame().assign(k="zzz")
    with pytest.raises(UnknownCategoryError, match="'zzz' in column 'k'"):
        pipe.transform(unseen)


class _CountingOneHot(OneHotEncoder):
    """A real OneHotEncoder that counts how often its transform is built."""

    built = 0

    def transform(self, X):
        type(self).built += 1
        return super().transform(X)


class _CountingScaler(StandardScaler):
    built = 0

    def transform(self, X):
        type(self).built += 1
        return super().transform(X)


def test_fit_builds_only_the_transforms_a_later_fit_reads(session):
    session.create_table("T", _frame())
    _CountingOneHot.built = _CountingScaler.built = 0
    # The encoder reads none of the scaler's columns, and nothing reads the encoder's.
    Pipeline(
        [("std", _CountingScaler(input_cols=["x", "y"])), ("ohe", _CountingOneHot(input_cols=["k"]))]
    ).fit(session.table("T"))
    assert (_CountingScaler.built, _CountingOneHot.built) == (0, 0)
    # Here the second scaler's fit reads the first one's output, so it is built, and the
    # fitted state is the chained one.
    pipe = Pipeline(
        [
            ("std", _CountingScaler(input_cols=["x"], output_cols=["x_std"])),
            ("ohe", _CountingOneHot(input_cols=["k"])),
            ("mas", MaxAbsScaler(input_cols=["x_std"])),
        ]
    ).fit(session.table("T"))
    assert (_CountingScaler.built, _CountingOneHot.built) == (1, 0)
    x = _frame()["x"]
    z = (x - x.mean()) / x.std(ddof=0)
    assert pipe["mas"].max_abs_["x_std"] == pytest.approx(np.abs(z).max(), rel=1e-12)


def test_one_hot_columns_that_differ_only_by_case_stay_apart(session):
    """Categories "A" and "a" make columns K_A and K_a. DuckDB binds a column name without
    regard to case, so a later step reading K_a from the one-hot step's subquery would read
    K_A: the steps over such columns are written as one SELECT, and match scikit-learn."""
    train = pd.DataFrame({"k": ["A", "a", "b", "a", "A", "b"], "x": [1.0, 2.0, 3.0, np.nan, 5.0, 6.0]})
    session.create_table("CASED", train)
    table = session.table("CASED")
    pipe = Pipeline(
        [
            ("ohe", OneHotEncoder(input_cols=["k"], output_cols=["K"])),
            ("mm", MinMaxScaler(input_cols=["K_a", "K_A"], output_cols=["MM_a", "MM_A"], feature_range=(-1, 1))),
            ("std", StandardScaler(input_cols=["x"])),
        ]
    ).fit(table)
    out = pipe.transform(table).to_pandas()

    onehot = skp.OneHotEncoder(sparse_output=False).fit(train[["k"]])
    want = pd.DataFrame(onehot.transform(train[["k"]]), columns=["K_A", "K_a", "K_b"])
    mm = skp.MinMaxScaler(feature_range=(-1, 1)).fit(want[["K_a", "K_A"]])
    want[["MM_a", "MM_A"]] = mm.transform(want[["K_a", "K_A"]])
    want["x"] = skp.StandardScaler().fit_transform(train[["x"]])[:, 0]
    assert_frame_equal(out[list(want.columns)], want, check_exact=False, rtol=1e-12)
    # One SELECT over the table, not a subquery per step.
    assert pipe.to_sql(table).upper().count("SELECT") == 1
