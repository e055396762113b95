"""Cases from SnowML's test_min_max_scaler.py; scikit-learn is the oracle, as there."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.preprocessing import MinMaxScaler as SklearnMinMaxScaler

import neve
from neve.preprocessing import MinMaxScaler
from tests.snowml_compat._data import DATA, DATA_NONE_NAN, NUMERIC_COLS, OUTPUT_COLS, fetch, frame, table


@pytest.mark.parametrize("data", [DATA, DATA_NONE_NAN], ids=["data", "none_nan"])
def test_fit(session: neve.Session, data: list) -> None:
    df_pandas = frame(data)
    scaler = MinMaxScaler().set_input_cols(NUMERIC_COLS).fit(table(session, df_pandas))
    sk = SklearnMinMaxScaler().fit(df_pandas[NUMERIC_COLS])
    for attr in ("data_min_", "data_max_", "data_range_", "scale_", "min_"):
        got = getattr(scaler, attr)
        np.testing.assert_allclose([got[c] for c in NUMERIC_COLS], getattr(sk, attr), rtol=1e-9, err_msg=attr)


@pytest.mark.parametrize("params", [{}, {"feature_range": (-1, 1)}, {"feature_range": (-1, 1), "clip": True}])
def test_transform(session: neve.Session, params: dict) -> None:
    df_pandas = frame(DATA)
    df = table(session, df_pandas)
    scaler = MinMaxScaler(**params).set_input_cols(NUMERIC_COLS).set_output_cols(OUTPUT_COLS).fit(df)
    actual = fetch(scaler.transform(df), scaler.get_output_cols()).to_numpy()
    sk = SklearnMinMaxScaler(**params).fit(df_pandas[NUMERIC_COLS])
    np.testing.assert_allclose(actual, sk.transform(df_pandas[NUMERIC_COLS]), rtol=1e-9)


def test_transform_unseen_range_clips(session: neve.Session) -> None:
    train, test = frame(DATA), frame(DATA)
    test[NUMERIC_COLS] = test[NUMERIC_COLS] * 3
    scaler = MinMaxScaler(clip=True, input_cols=NUMERIC_COLS, output_cols=OUTPUT_COLS).fit(table(session, train))
    actual = fetch(scaler.transform(table(session, test, "U")), OUTPUT_COLS).to_numpy()
    assert actual.min() == 0.0 and actual.max() == 1.0
