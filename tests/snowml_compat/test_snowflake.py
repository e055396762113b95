"""The ported SnowML cases on the Snowflake emulator (fakesnow, see tests/engine/_fakesnow.py),
plus Snowflake's identifier rules, which only a Snowflake session applies."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest

import neve
from neve.preprocessing import MinMaxScaler, OneHotEncoder, StandardScaler
from tests.snowml_compat import (
    test_column_api,
    test_label_encoder,
    test_min_max_scaler,
    test_one_hot_encoder,
    test_ordinal_encoder,
    test_pipeline,
    test_simple_imputer,
    test_standard_scaler,
)
from tests.snowml_compat._data import table

pytestmark = pytest.mark.timeout(300)


CASES: dict[str, Callable[[neve.Session], Any]] = {
    "ohe_fit": test_one_hot_encoder.test_fit,
    "ohe_transform_dense": test_one_hot_encoder.test_transform_dense,
    "ohe_transform_with_none": test_one_hot_encoder.test_transform_with_none,
    "ohe_drop_first": lambda s: test_one_hot_encoder.test_drop(s, "first"),
    "ohe_categories_dict": test_one_hot_encoder.test_categories_dict_and_unknown_ignored,
    "ohe_drop_input_cols": test_one_hot_encoder.test_drop_input_cols,
    "ordinal_transform": test_ordinal_encoder.test_transform,
    "ordinal_categories_dict": test_ordinal_encoder.test_fit_categories_dict,
    "ordinal_missing": test_ordinal_encoder.test_transform_none_encoded_missing_value,
    "label_fit": test_label_encoder.test_fit,
    "label_fit_nones": test_label_encoder.test_fit_nones,
    "label_transform": test_label_encoder.test_transform,
    "minmax_fit": lambda s: test_min_max_scaler.test_fit(s, test_min_max_scaler.DATA_NONE_NAN),
    "minmax_transform": lambda s: test_min_max_scaler.test_transform(s, {"feature_range": (-1, 1)}),
    "standard_transform": lambda s: test_standard_scaler.test_transform(s, {}),
    "imputer_mean": lambda s: test_simple_imputer.test_numeric(s, "mean"),
    "imputer_most_frequent": test_simple_imputer.test_categorical_most_frequent,
    "pipeline": test_pipeline.test_fit_and_transform_match_scikit_learn,
    "pipeline_set_params": test_pipeline.test_nested_set_params_and_get_params,
    "output_cols_after_fit": test_column_api.test_one_hot_output_cols_set_after_fit_are_used,
    "input_cols_after_fit": test_column_api.test_input_cols_changed_after_fit_are_refused_until_refit,
    "input_cols_unset_after_fit": lambda s: test_column_api.test_input_cols_unset_after_fit_are_refused(s, []),
}


@pytest.mark.parametrize("case", list(CASES))
def test_ported_case_on_snowflake(snow: neve.Session, case: str) -> None:
    CASES[case](snow)


def test_identifier_rules(snow: neve.Session) -> None:
    """As SnowML: ``age`` finds ``AGE``; ``'"col1"'`` is the case-kept ``col1``; an unquoted
    output name is upper-cased, a quoted one kept."""
    t = table(snow, pd.DataFrame({"AGE": [20.0, 40.0, 60.0], "col1": [1.0, 2.0, 3.0]}), "IDENT")
    scaler = MinMaxScaler(input_cols=["age", '"col1"'], output_cols=["OUT_age", '"out_col1"']).fit(t)
    assert scaler.get_input_cols() == ["age", '"col1"']  # as set, as SnowML's getter returns them
    assert list(scaler.input_cols_) == ["AGE", "col1"]
    assert scaler.get_output_cols() == ["OUT_AGE", "out_col1"]
    out = scaler.transform(t).to_pandas().sort_values("AGE")
    assert out["OUT_AGE"].tolist() == [0.0, 0.5, 1.0] and out["out_col1"].tolist() == [0.0, 0.5, 1.0]
    assert list(scaler.data_min_) == ["AGE", "col1"]


def test_identifier_rules_for_a_linear_model(snow: neve.Session) -> None:
    """The estimators read names as the transformers do: ``y`` finds ``Y``, and an unquoted
    ``output_cols="pred"`` is the column ``PRED``, a quoted one kept."""
    from neve.linear_model import LinearRegression

    t = table(snow, pd.DataFrame({"X": [1.0, 2.0, 3.0], "Y": [2.0, 4.0, 6.0]}), "IDENT5")
    model = LinearRegression(input_cols=["x"], label_cols="y", output_cols="pred").fit(t)
    assert model.label_cols_ == ["Y"]
    out = model.predict(t).to_pandas().sort_values("X")
    assert out["PRED"].tolist() == pytest.approx([2.0, 4.0, 6.0])
    quoted = LinearRegression(input_cols=["x"], label_cols="y", output_cols='"pred"').fit(t)
    assert "pred" in quoted.predict(t).columns


def test_identifier_rules_for_one_hot_names(snow: neve.Session) -> None:
    """The category part of a one-hot name keeps its case, as SnowML's ``"OUTPUT1_a"``."""
    t = table(snow, pd.DataFrame({"ID": ["1", "2"], "STR1": ["a", "B"]}), "IDENT2")
    enc = OneHotEncoder(input_cols="str1", output_cols="out").fit(t)
    assert enc.get_output_cols() == ["OUT_B", "OUT_a"]
    assert set(enc.get_output_cols()) <= set(enc.transform(t).columns)


def test_one_hot_names_that_differ_only_by_case_are_kept(snow: neve.Session) -> None:
    """Snowflake tells quoted names apart by case, so ``a`` and ``A`` keep scikit-learn's
    ``OUT_A`` and ``OUT_a``, with no renaming warning (DuckDB renames: see test_encoders)."""
    import warnings

    t = table(snow, pd.DataFrame({"ID": ["1", "2", "3"], "STR1": ["a", "A", "b"]}), "IDENT4")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a renaming warning would fail here
        enc = OneHotEncoder(input_cols="str1", output_cols="out").fit(t)
    assert list(enc.get_feature_names_out()) == ["OUT_A", "OUT_a", "OUT_b"]
    out = enc.transform(t).to_pandas().sort_values("ID")
    assert out[["OUT_A", "OUT_a", "OUT_b"]].to_numpy().tolist() == [[0, 1, 0], [1, 0, 0], [0, 0, 1]]


def test_stale_input_cols_compare_as_written(snow: neve.Session) -> None:
    t = table(snow, pd.DataFrame({"AGE": [1.0, 2.0]}), "IDENT3")
    scaler = StandardScaler().set_input_cols("age").fit(t)
    scaler.set_params(input_cols=["age"])  # the same request: still fitted
    assert "AGE" in scaler.transform(t).columns
