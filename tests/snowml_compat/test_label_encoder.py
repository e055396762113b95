"""Cases from SnowML's test_label_encoder.py: ``classes_`` is an array, as scikit-learn's."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.preprocessing import LabelEncoder as SklearnLabelEncoder

import neve
from neve import Pipeline
from neve.preprocessing import LabelEncoder
from tests.snowml_compat._data import (
    DATA,
    DATA_BOOLEAN,
    DATA_NONE_NAN,
    SCHEMA,
    SCHEMA_BOOLEAN,
    fetch,
    frame,
    table,
)

INPUT_COL = SCHEMA[1]
OUTPUT_COL = "_TEST"


def test_fit(session: neve.Session) -> None:
    df_pandas = frame(DATA)
    encoder = LabelEncoder(input_cols=INPUT_COL, output_cols=OUTPUT_COL).fit(table(session, df_pandas))
    np.testing.assert_equal(encoder.classes_, SklearnLabelEncoder().fit(df_pandas[INPUT_COL]).classes_)
    assert encoder.classes_by_col_ == {INPUT_COL: ["A", "a", "b", "c", "d"]}


def test_fit_nones(session: neve.Session) -> None:
    df_pandas = frame(DATA_NONE_NAN)
    encoder = LabelEncoder(input_cols=INPUT_COL, output_cols=OUTPUT_COL).fit(table(session, df_pandas))
    assert None in encoder.classes_  # SnowML's check: the missing label is a class
    assert encoder.classes_.tolist() == ["A", "a", "b", None]


def test_positional_input_col(session: neve.Session) -> None:
    """``LabelEncoder("STR1")`` and ``LabelEncoder("STR1", "_TEST")``, as SnowML allows."""
    df_pandas = frame(DATA)
    encoder = LabelEncoder(INPUT_COL, OUTPUT_COL).fit(table(session, df_pandas))
    assert encoder.get_input_cols() == [INPUT_COL] and encoder.get_output_cols() == [OUTPUT_COL]
    in_place = LabelEncoder(INPUT_COL).fit(df_pandas)
    assert in_place.transform(df_pandas)[INPUT_COL].tolist() == [3, 1, 2, 0, 4, 2, 2]


def test_transform(session: neve.Session) -> None:
    df_pandas = frame(DATA)
    df = table(session, df_pandas)
    encoder = LabelEncoder(input_cols=INPUT_COL, output_cols=OUTPUT_COL).fit(df)
    actual = fetch(encoder.transform(df), [OUTPUT_COL]).to_numpy().flatten()
    np.testing.assert_equal(actual, SklearnLabelEncoder().fit_transform(df_pandas[INPUT_COL]))


def test_transform_none_then_unseen_raises(session: neve.Session) -> None:
    df_pandas = frame(DATA_NONE_NAN)
    df = table(session, df_pandas)
    encoder = LabelEncoder(input_cols=INPUT_COL, output_cols=OUTPUT_COL).fit(df)
    actual = fetch(encoder.transform(df), [OUTPUT_COL]).to_numpy().flatten()
    np.testing.assert_equal(actual, SklearnLabelEncoder().fit_transform(df_pandas[INPUT_COL]))
    # "c" and "d" of DATA were not seen: SnowML's test expects a ValueError (eager pandas here;
    # a lazy result raises when executed).
    with pytest.raises(ValueError):
        encoder.transform(frame(DATA))


def test_transform_boolean(session: neve.Session) -> None:
    input_col = SCHEMA_BOOLEAN[3]
    df_pandas = frame(DATA_BOOLEAN, SCHEMA_BOOLEAN).fillna({input_col: np.nan})
    df = table(session, df_pandas)
    encoder = LabelEncoder(input_cols=input_col, output_cols=OUTPUT_COL).fit(df)
    actual = fetch(encoder.transform(df), [OUTPUT_COL]).to_numpy().flatten()
    # scikit-learn sorts [False, True] and puts the missing label last.
    assert actual.tolist() == [1, 2, 0, 1, 0, 1, 1]


def test_serde_through_pipeline_json(session: neve.Session) -> None:
    """SnowML pickles the encoder; neve's no-pickle form is the pipeline's JSON."""
    df_pandas = frame(DATA)
    pipe = Pipeline([("le", LabelEncoder().set_input_cols([INPUT_COL]).set_output_cols(["_TEST"]))])
    pipe.fit(table(session, df_pandas))
    again = Pipeline.from_json(pipe.to_json())
    np.testing.assert_equal(again["le"].classes_, pipe["le"].classes_)
    out = again.transform(df_pandas)
    np.testing.assert_equal(out["_TEST"].to_numpy(), SklearnLabelEncoder().fit_transform(df_pandas[INPUT_COL]))


def test_reads_state_stored_with_the_old_classes_key() -> None:
    """Pipelines saved before classes_ became an array stored it as {column: [labels]}."""
    pipe = Pipeline([("le", LabelEncoder(input_cols=["S"]))]).fit(pd.DataFrame({"S": ["b", "a"]}))
    state = pipe.to_dict()
    state["steps"][0]["state"]["classes_"] = state["steps"][0]["state"].pop("classes_by_col_")
    again = Pipeline.from_dict(state)
    assert again["le"].classes_.tolist() == ["a", "b"]
    assert again.transform(pd.DataFrame({"S": ["a", "b"]}))["S"].tolist() == [0, 1]
