"""``to_sklearn()``: the fitted scikit-learn equivalent, numerically identical on pandas input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import preprocessing as skp
from sklearn.impute import SimpleImputer as SklearnSimpleImputer

from neve.pipeline import Pipeline
from neve.preprocessing import (
    Binarizer,
    KBinsDiscretizer,
    LabelEncoder,
    MaxAbsScaler,
    MinMaxScaler,
    Normalizer,
    OneHotEncoder,
    OrdinalEncoder,
    RobustScaler,
    SimpleImputer,
    StandardScaler,
)
from tests.snowml_compat._data import CATEGORICAL_COLS, DATA, DATA_NONE_NAN, NUMERIC_COLS, frame

NUMERIC_STEPS = {
    "standard": lambda: StandardScaler(),
    "standard_no_mean": lambda: StandardScaler(with_mean=False),
    "minmax": lambda: MinMaxScaler(feature_range=(-1, 2), clip=True),
    "maxabs": lambda: MaxAbsScaler(),
    "robust": lambda: RobustScaler(quantile_range=(10.0, 80.0)),
    "normalizer": lambda: Normalizer(norm="l1"),
    "binarizer": lambda: Binarizer(threshold=2.0),
    "kbins_ordinal": lambda: KBinsDiscretizer(n_bins=3, encode="ordinal", strategy="uniform"),
    "kbins_onehot": lambda: KBinsDiscretizer(n_bins=3, encode="onehot", quantile_method="linear"),
    "impute_mean": lambda: SimpleImputer(strategy="mean", add_indicator=True),
    "impute_median": lambda: SimpleImputer(strategy="median"),
}
CATEGORICAL_STEPS = {
    "onehot": lambda: OneHotEncoder(handle_unknown="ignore"),
    "onehot_drop": lambda: OneHotEncoder(drop="first"),
    "onehot_infrequent": lambda: OneHotEncoder(min_frequency=2, handle_unknown="infrequent_if_exist"),
    "onehot_max_categories": lambda: OneHotEncoder(max_categories=2, drop="if_binary"),
    "ordinal": lambda: OrdinalEncoder(),
    "ordinal_infrequent": lambda: OrdinalEncoder(max_categories=2, encoded_missing_value=-1),
    "impute_frequent": lambda: SimpleImputer(strategy="most_frequent"),
}


def _numbers(frame: pd.DataFrame) -> np.ndarray:
    return frame.to_numpy(dtype=np.float64) if isinstance(frame, pd.DataFrame) else np.asarray(frame, np.float64)


@pytest.mark.parametrize("case", list(NUMERIC_STEPS))
def test_numeric_step(case: str) -> None:
    train = frame(DATA_NONE_NAN) if case.startswith("impute") else frame(DATA)
    step = NUMERIC_STEPS[case]().set_input_cols(NUMERIC_COLS).fit(train)
    sk = step.to_sklearn()
    assert type(sk).__name__ == type(step).__name__
    got = sk.transform(train[NUMERIC_COLS])
    want = step.transform(train)[list(step.get_feature_names_out())]
    np.testing.assert_array_equal(_numbers(got), _numbers(want))
    assert list(sk.get_feature_names_out()) == list(step.get_feature_names_out())


@pytest.mark.parametrize("case", list(CATEGORICAL_STEPS))
def test_categorical_step(case: str) -> None:
    train = frame(DATA_NONE_NAN)
    step = CATEGORICAL_STEPS[case]().set_input_cols(CATEGORICAL_COLS).fit(train)
    sk = step.to_sklearn()
    got = sk.transform(train[CATEGORICAL_COLS])
    want = step.transform(train)[list(step.get_feature_names_out())]
    if case == "impute_frequent":
        assert np.asarray(got).tolist() == want.to_numpy().tolist()
        return
    np.testing.assert_array_equal(_numbers(got), _numbers(want))
    assert list(sk.get_feature_names_out()) == list(step.get_feature_names_out())


def test_state_matches_scikit_learn_fitted_on_the_same_rows() -> None:
    train = frame(DATA_NONE_NAN)
    sk = OneHotEncoder(min_frequency=2).set_input_cols(CATEGORICAL_COLS).fit(train).to_sklearn()
    oracle = skp.OneHotEncoder(min_frequency=2, sparse_output=False).fit(train[CATEGORICAL_COLS])
    for got, want in zip(sk.infrequent_categories_, oracle.infrequent_categories_, strict=True):
        assert [str(v) for v in got] == [str(v) for v in want]
    imputer = SimpleImputer(strategy="mean").set_input_cols(NUMERIC_COLS).fit(train).to_sklearn()
    np.testing.assert_array_equal(imputer.statistics_, SklearnSimpleImputer().fit(train[NUMERIC_COLS]).statistics_)


def test_label_encoder() -> None:
    train = frame(DATA)
    step = LabelEncoder("STR1").fit(train)
    sk = step.to_sklearn()
    assert sk.transform(train["STR1"]).tolist() == step.transform(train)["STR1"].tolist()


def test_pipeline() -> None:
    """The taxi-like pipeline: renamed outputs feed the next step by name."""
    train = frame(DATA_NONE_NAN)
    # One-hot first: its "O1_A" and "O1_a", which differ only by case, pass through two more
    # steps (DuckDB, where pandas input runs, binds names without regard to case).
    pipe = Pipeline(
        [
            ("ohe", OneHotEncoder(input_cols=CATEGORICAL_COLS, output_cols=["O1", "O2"], handle_unknown="ignore")),
            ("impute", SimpleImputer(input_cols=NUMERIC_COLS, output_cols=["F1", "F2"])),
            ("scale", MaxAbsScaler(input_cols=["F1", "F2"], output_cols=["F1_SCALED", "F2_SCALED"])),
        ]
    ).fit(train)
    sk = pipe.to_sklearn()
    got, want = sk.transform(train), pipe.transform(train)
    assert sorted(got.columns) == sorted(want.columns)
    numeric = [c for c in want.columns if c not in ("ID", *CATEGORICAL_COLS)]
    np.testing.assert_array_equal(_numbers(got[numeric]), _numbers(want[numeric]))
    unseen = frame(DATA)
    np.testing.assert_array_equal(_numbers(sk.transform(unseen)[numeric]), _numbers(pipe.transform(unseen)[numeric]))


def test_pipeline_refuses_a_label_encoder_step() -> None:
    pipe = Pipeline([("le", LabelEncoder("STR1"))]).fit(frame(DATA))
    with pytest.raises(ValueError, match="LabelEncoder encodes a target"):
        pipe.to_sklearn()
