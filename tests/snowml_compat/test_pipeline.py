"""Cases from SnowML's pipeline tests: a transformer pipeline, nested parameters, fit then transform."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline as SklearnPipeline
from sklearn.preprocessing import MinMaxScaler as SklearnMinMaxScaler
from sklearn.preprocessing import OneHotEncoder as SklearnOneHotEncoder

import neve
from neve.pipeline import Pipeline
from neve.preprocessing import MinMaxScaler, OneHotEncoder, StandardScaler
from tests.snowml_compat._data import (
    CATEGORICAL_COLS,
    DATA,
    NUMERIC_COLS,
    OUTPUT_COLS,
    binds_names_without_case,
    fetch,
    frame,
    one_hot_names,
    table,
)


def make_pipeline() -> Pipeline:
    return Pipeline(
        steps=[
            ("ohe", OneHotEncoder(sparse=False).set_input_cols(CATEGORICAL_COLS).set_output_cols(OUTPUT_COLS)),
            ("mms", MinMaxScaler().set_input_cols(NUMERIC_COLS).set_output_cols(["MMS1", "MMS2"])),
        ]
    )


def test_fit_and_transform_match_scikit_learn(session: neve.Session) -> None:
    df_pandas = frame(DATA)
    df = table(session, df_pandas)
    pipe = make_pipeline().fit(df)
    out = fetch(pipe.transform(df))
    sk = ColumnTransformer(
        [
            ("ohe", SklearnOneHotEncoder(sparse_output=False), CATEGORICAL_COLS),
            ("mms", SklearnMinMaxScaler(), NUMERIC_COLS),
        ]
    ).fit(df_pandas)
    cols = pipe["ohe"].get_output_cols() + pipe["mms"].get_output_cols()
    # OUTPUT1_A and OUTPUT1_a differ only by case: on DuckDB, which ignores case in names,
    # the fit names the second OUTPUT1_a_2 (see one_hot_names).
    assert {"OUTPUT1_A", *one_hot_names(session, ["OUTPUT1_A", "OUTPUT1_a"])} <= set(cols)
    np.testing.assert_allclose(out[cols].to_numpy(), sk.transform(df_pandas), rtol=1e-9)


def test_nested_set_params_and_get_params(session: neve.Session) -> None:
    pipe = make_pipeline()
    params = pipe.get_params(deep=True)
    assert params["ohe"] is pipe["ohe"] and params["mms__feature_range"] == (0, 1)
    assert params["ohe__input_cols"] == CATEGORICAL_COLS
    assert pipe.set_params(mms__feature_range=(-1, 1), ohe__handle_unknown="ignore") is pipe
    assert pipe["mms"].feature_range == (-1, 1) and pipe["ohe"].handle_unknown == "ignore"
    df_pandas = frame(DATA)
    out = fetch(pipe.fit(table(session, df_pandas)).transform(table(session, df_pandas)))
    assert (out["MMS1"].min(), out["MMS1"].max()) == pytest.approx((-1.0, 1.0))


def test_set_params_replaces_a_step() -> None:
    pipe = make_pipeline().set_params(mms=StandardScaler(input_cols=NUMERIC_COLS))
    assert isinstance(pipe["mms"], StandardScaler)
    with pytest.raises(ValueError, match="nope"):
        pipe.set_params(nope__x=1)


def test_output_cols_changed_after_fit_through_the_pipeline(session: neve.Session) -> None:
    df = table(session, frame(DATA))
    pipe = make_pipeline().fit(df)
    pipe.set_params(mms__output_cols=["SCALED1", "SCALED2"])
    assert {"SCALED1", "SCALED2"} <= set(pipe.transform(df).columns)
    assert "MMS1" not in pipe.transform(df).columns


def test_sklearn_pipeline_of_neve_steps_is_not_needed_but_to_sklearn_is() -> None:
    """SnowML users hand fitted pipelines to scikit-learn code with to_sklearn()."""
    df_pandas = frame(DATA)
    pipe = make_pipeline().fit(df_pandas)
    sk = pipe.to_sklearn()
    assert isinstance(sk, SklearnPipeline)
    expected = pipe.transform(df_pandas)
    got = sk.transform(df_pandas)
    with neve.connect("duckdb://") as duck:  # where neve runs pandas input: the case hazard is real there
        assert binds_names_without_case(duck)
    np.testing.assert_allclose(got[list(expected.columns[5:])].to_numpy(), expected.iloc[:, 5:].to_numpy())
