"""Cases from SnowML's test_simple_imputer.py; scikit-learn is the oracle, as there."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.impute import SimpleImputer as SklearnSimpleImputer

import neve
from neve.preprocessing import SimpleImputer
from tests.snowml_compat._data import (
    CATEGORICAL_COLS,
    DATA_ALL_NONE,
    DATA_NONE_NAN,
    NUMERIC_COLS,
    OUTPUT_COLS,
    SCHEMA,
    fetch,
    frame,
    table,
)


@pytest.mark.parametrize("strategy", ["mean", "median", "most_frequent", "constant"])
def test_numeric(session: neve.Session, strategy: str) -> None:
    df_pandas = frame(DATA_NONE_NAN)
    imputer = SimpleImputer(strategy=strategy, input_cols=NUMERIC_COLS, output_cols=OUTPUT_COLS)
    imputer.fit(table(session, df_pandas))
    sk = SklearnSimpleImputer(strategy=strategy).fit(df_pandas[NUMERIC_COLS])
    np.testing.assert_allclose([imputer.statistics_[c] for c in NUMERIC_COLS], sk.statistics_.astype(float), rtol=1e-9)
    actual = fetch(imputer.transform(table(session, df_pandas)), OUTPUT_COLS).to_numpy()
    np.testing.assert_allclose(actual, sk.transform(df_pandas[NUMERIC_COLS]), rtol=1e-9)


def test_categorical_most_frequent(session: neve.Session) -> None:
    df_pandas = frame(DATA_NONE_NAN)
    imputer = SimpleImputer(strategy="most_frequent", input_cols=CATEGORICAL_COLS, output_cols=OUTPUT_COLS)
    imputer.fit(table(session, df_pandas))
    actual = fetch(imputer.transform(table(session, df_pandas)), OUTPUT_COLS)
    sk = SklearnSimpleImputer(strategy="most_frequent", missing_values=pd.NA).fit(
        df_pandas[CATEGORICAL_COLS].astype(object).where(df_pandas[CATEGORICAL_COLS].notna(), pd.NA)
    )
    assert [imputer.statistics_[c] for c in CATEGORICAL_COLS] == list(sk.statistics_)
    assert actual["OUTPUT1"].tolist() == ["a", "a", "b", "A", "a", "a", "b"]


def test_all_none_columns_are_dropped_with_a_warning() -> None:
    """DATA_ALL_NONE's columns hold only None (pandas object dtype): treated as all-NaN."""
    df_pandas = frame(DATA_ALL_NONE)
    cols = SCHEMA[1:]
    with pytest.warns(UserWarning, match="STR1"):
        out = SimpleImputer(input_cols=cols).fit(df_pandas).transform(df_pandas)
    as_nan = df_pandas[cols].astype("float64")
    with pytest.warns(UserWarning):
        expected = SklearnSimpleImputer().fit_transform(as_nan)
    assert list(out.columns) == ["ID", "FLOAT2"]
    np.testing.assert_allclose(out[["FLOAT2"]].to_numpy(), expected)


def test_all_none_column_kept_with_keep_empty_features() -> None:
    df_pandas = pd.DataFrame({"A": [None, None, None], "B": [1.0, np.nan, 3.0]})
    out = SimpleImputer(keep_empty_features=True).fit_transform(df_pandas)
    expected = SklearnSimpleImputer(keep_empty_features=True).fit_transform(df_pandas.astype("float64"))
    np.testing.assert_allclose(out.to_numpy(dtype="float64"), expected)
