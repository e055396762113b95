"""Cases from SnowML's test_ordinal_encoder.py; scikit-learn is the oracle, as there."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.preprocessing import OrdinalEncoder as SklearnOrdinalEncoder

import neve
from neve.preprocessing import OrdinalEncoder
from tests.snowml_compat._data import (
    CATEGORICAL_COLS,
    DATA,
    DATA_NONE_NAN,
    OUTPUT_COLS,
    UNKNOWN_CATEGORICAL_VALUES_LIST,
    fetch,
    frame,
    table,
)


def test_fit(session: neve.Session) -> None:
    df_pandas = frame(DATA)
    encoder = OrdinalEncoder().set_input_cols(CATEGORICAL_COLS).fit(table(session, df_pandas))
    sk = SklearnOrdinalEncoder().fit(df_pandas[CATEGORICAL_COLS])
    for col, sk_cats in zip(CATEGORICAL_COLS, sk.categories_, strict=True):
        assert list(encoder.categories_[col]) == sk_cats.tolist()


def test_fit_categories_dict(session: neve.Session) -> None:
    """SnowML's ``categories={column: values}``: the given order is the code order."""
    categories = {
        "STR1": np.array(["a", "b", "c", "A", "d"]),
        "STR2": np.array(["zOyDvcyZ2s", "g1ehQlL80t", "TuDOcLxToB"]),
    }
    df_pandas = frame(DATA)
    encoder = OrdinalEncoder(categories=categories, input_cols=CATEGORICAL_COLS, output_cols=OUTPUT_COLS)
    encoder.fit(table(session, df_pandas))
    assert {c: list(v) for c, v in encoder.categories_.items()} == {c: list(v) for c, v in categories.items()}
    sk = SklearnOrdinalEncoder(categories=[categories[c] for c in CATEGORICAL_COLS]).fit(df_pandas[CATEGORICAL_COLS])
    actual = fetch(encoder.transform(table(session, df_pandas)), OUTPUT_COLS)
    np.testing.assert_allclose(actual.to_numpy(), sk.transform(df_pandas[CATEGORICAL_COLS]))


def test_transform(session: neve.Session) -> None:
    df_pandas = frame(DATA)
    encoder = OrdinalEncoder().set_input_cols(CATEGORICAL_COLS).set_output_cols(OUTPUT_COLS)
    encoder.fit(table(session, df_pandas))
    actual = fetch(encoder.transform(table(session, df_pandas)), encoder.get_output_cols())
    sk = SklearnOrdinalEncoder().fit(df_pandas[CATEGORICAL_COLS])
    np.testing.assert_allclose(actual.to_numpy(), sk.transform(df_pandas[CATEGORICAL_COLS]))


def test_transform_none_encoded_missing_value(session: neve.Session) -> None:
    df_pandas = frame(DATA_NONE_NAN)
    encoder = OrdinalEncoder(encoded_missing_value=-1, input_cols=CATEGORICAL_COLS, output_cols=OUTPUT_COLS)
    encoder.fit(table(session, df_pandas))
    actual = fetch(encoder.transform(table(session, df_pandas)), OUTPUT_COLS)
    sk = SklearnOrdinalEncoder(encoded_missing_value=-1).fit(df_pandas[CATEGORICAL_COLS])
    np.testing.assert_allclose(actual.to_numpy(), sk.transform(df_pandas[CATEGORICAL_COLS]))


def test_transform_unknown_use_encoded_value(session: neve.Session) -> None:
    df_pandas = frame(DATA)
    encoder = OrdinalEncoder(
        handle_unknown="use_encoded_value", unknown_value=-1, input_cols=CATEGORICAL_COLS, output_cols=OUTPUT_COLS
    ).fit(table(session, df_pandas))
    unknown = pd.DataFrame(
        {"ID": ["1", "2", "3"], **dict(zip(CATEGORICAL_COLS, UNKNOWN_CATEGORICAL_VALUES_LIST, strict=True))}
    )
    actual = fetch(encoder.transform(table(session, unknown, "U")), OUTPUT_COLS)
    assert actual["OUTPUT1"].tolist() == [-1.0, 1.0, 2.0]  # "z" unseen; "a", "b" as fitted


def test_unknown_error_on_pandas() -> None:
    encoder = OrdinalEncoder(input_cols=CATEGORICAL_COLS).fit(frame(DATA))
    unknown = pd.DataFrame(dict(zip(CATEGORICAL_COLS, UNKNOWN_CATEGORICAL_VALUES_LIST, strict=True)))
    with pytest.raises(ValueError, match="unknown"):
        encoder.transform(unknown)
