"""Cases from SnowML's test_standard_scaler.py; scikit-learn is the oracle, as there."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.preprocessing import StandardScaler as SklearnStandardScaler

import neve
from neve.preprocessing import StandardScaler
from tests.snowml_compat._data import DATA, DATA_NONE_NAN, NUMERIC_COLS, OUTPUT_COLS, fetch, frame, table


@pytest.mark.parametrize("data", [DATA, DATA_NONE_NAN], ids=["data", "none_nan"])
def test_fit(session: neve.Session, data: list) -> None:
    df_pandas = frame(data)
    scaler = StandardScaler().set_input_cols(NUMERIC_COLS).fit(table(session, df_pandas))
    sk = SklearnStandardScaler().fit(df_pandas[NUMERIC_COLS])
    for attr in ("mean_", "var_", "scale_"):
        got = getattr(scaler, attr)
        np.testing.assert_allclose([got[c] for c in NUMERIC_COLS], getattr(sk, attr), rtol=1e-9, err_msg=attr)


@pytest.mark.parametrize(
    "params", [{}, {"with_mean": False}, {"with_std": False}, {"with_mean": False, "with_std": False}]
)
def test_transform(session: neve.Session, params: dict) -> None:
    df_pandas = frame(DATA)
    df = table(session, df_pandas)
    scaler = StandardScaler(**params).set_input_cols(NUMERIC_COLS).set_output_cols(OUTPUT_COLS).fit(df)
    actual = fetch(scaler.transform(df), scaler.get_output_cols()).to_numpy()
    sk = SklearnStandardScaler(**params).fit(df_pandas[NUMERIC_COLS])
    np.testing.assert_allclose(actual, sk.transform(df_pandas[NUMERIC_COLS]), rtol=1e-9)


def test_transform_pandas_in_place() -> None:
    df_pandas = frame(DATA)
    out = StandardScaler(input_cols=NUMERIC_COLS).fit(df_pandas).transform(df_pandas)
    expected = SklearnStandardScaler().fit_transform(df_pandas[NUMERIC_COLS])
    np.testing.assert_allclose(out[NUMERIC_COLS].to_numpy(), expected, rtol=1e-9)
    assert list(out.columns) == list(df_pandas.columns)
