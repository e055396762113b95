"""Cases from SnowML's test_one_hot_encoder.py, with ``from neve.preprocessing import
OneHotEncoder`` in place of SnowML's import. scikit-learn is the oracle, as there."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.preprocessing import OneHotEncoder as SklearnOneHotEncoder

import neve
from neve.preprocessing import OneHotEncoder
from tests.snowml_compat._data import (
    CATEGORICAL_COLS,
    DATA,
    DATA_NONE_NAN,
    ID_COL,
    OUTPUT_COLS,
    SCHEMA,
    UNKNOWN_CATEGORICAL_VALUES_LIST,
    fetch,
    frame,
    one_hot_names,
    table,
)


def test_fit(session: neve.Session) -> None:
    df_pandas = frame(DATA)
    encoder = OneHotEncoder().set_input_cols(CATEGORICAL_COLS)
    encoder.fit(table(session, df_pandas))
    sk = SklearnOneHotEncoder().fit(df_pandas[CATEGORICAL_COLS])
    for col, sk_cats in zip(CATEGORICAL_COLS, sk.categories_, strict=True):
        assert list(encoder.categories_[col]) == sk_cats.tolist()


@pytest.mark.parametrize("params", [{}, {"min_frequency": 2}, {"max_categories": 2}])
def test_fit_pandas(session: neve.Session, params: dict) -> None:
    """Fitted on the engine's table and on pandas, the state is the same and matches scikit-learn."""
    df_pandas = frame(DATA)
    on_table = OneHotEncoder(**params).set_input_cols(CATEGORICAL_COLS).fit(table(session, df_pandas))
    on_pandas = OneHotEncoder(**params).set_input_cols(CATEGORICAL_COLS).fit(df_pandas)
    sk = SklearnOneHotEncoder(**params).fit(df_pandas[CATEGORICAL_COLS])
    sk_names = list(sk.get_feature_names_out(CATEGORICAL_COLS))
    for encoder, names in ((on_table, one_hot_names(session, sk_names)), (on_pandas, sk_names)):
        assert [list(encoder.categories_[c]) for c in CATEGORICAL_COLS] == [c.tolist() for c in sk.categories_]
        assert encoder.drop_idx_ is None and sk.drop_idx_ is None
        assert encoder.get_output_cols() == names
    if params:
        got = on_table.infrequent_categories_
        for col, want in zip(CATEGORICAL_COLS, sk.infrequent_categories_, strict=True):
            assert (got[col] is None) == (want is None)
            if want is not None:
                assert sorted(got[col]) == sorted(want.tolist())


def test_fit_pandas_bad_input_cols() -> None:
    encoder = OneHotEncoder().set_input_cols([*CATEGORICAL_COLS, "nonexistent_column"])
    with pytest.raises(KeyError, match="nonexistent_column"):
        encoder.fit(frame(DATA))


def test_transform_dense(session: neve.Session) -> None:
    df_pandas = frame(DATA)
    df = table(session, df_pandas)
    encoder = OneHotEncoder(sparse=False).set_input_cols(CATEGORICAL_COLS).set_output_cols(OUTPUT_COLS)
    encoder.fit(df)
    # The dense names SnowML's suite shows, in scikit-learn's category order (on DuckDB,
    # which ignores case in names, OUTPUT1_a is OUTPUT1_a_2: see one_hot_names).
    assert encoder.get_output_cols() == one_hot_names(session, [
        "OUTPUT1_A", "OUTPUT1_a", "OUTPUT1_b", "OUTPUT1_c", "OUTPUT1_d",
        "OUTPUT2_TuDOcLxToB", "OUTPUT2_g1ehQlL80t", "OUTPUT2_zOyDvcyZ2s",
    ])  # fmt: skip
    transformed = encoder.transform(df.select(*CATEGORICAL_COLS, ID_COL))
    actual = fetch(transformed, encoder.get_output_cols()).to_numpy()

    encoder2 = OneHotEncoder(sparse=False).set_input_cols(CATEGORICAL_COLS).set_output_cols(OUTPUT_COLS)
    encoder2.fit(df_pandas)
    actual2 = fetch(encoder2.transform(df), encoder2.get_output_cols()).to_numpy()

    sk = SklearnOneHotEncoder(sparse_output=False).fit(df_pandas[CATEGORICAL_COLS])
    expected = sk.transform(df_pandas[CATEGORICAL_COLS])
    np.testing.assert_allclose(actual, expected)
    np.testing.assert_allclose(actual2, expected)


def test_transform_pandas_keeps_other_columns() -> None:
    df_pandas = frame(DATA)
    encoder = OneHotEncoder(sparse=False, input_cols=CATEGORICAL_COLS, output_cols=OUTPUT_COLS)
    out = encoder.fit(df_pandas).transform(df_pandas)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns[: len(SCHEMA)]) == SCHEMA
    expected = SklearnOneHotEncoder(sparse_output=False).fit_transform(df_pandas[CATEGORICAL_COLS])
    np.testing.assert_allclose(out[encoder.get_output_cols()].to_numpy(), expected)


def test_transform_with_none(session: neve.Session) -> None:
    df_pandas = frame(DATA_NONE_NAN)
    encoder = OneHotEncoder(input_cols=CATEGORICAL_COLS, output_cols=OUTPUT_COLS).fit(table(session, df_pandas))
    sk = SklearnOneHotEncoder(sparse_output=False).fit(df_pandas[CATEGORICAL_COLS])
    assert encoder.get_output_cols() == one_hot_names(session, [
        name.replace("STR1", "OUTPUT1").replace("STR2", "OUTPUT2")
        for name in sk.get_feature_names_out(CATEGORICAL_COLS)
    ])
    actual = fetch(encoder.transform(table(session, df_pandas)), encoder.get_output_cols())
    np.testing.assert_allclose(actual.to_numpy(), sk.transform(df_pandas[CATEGORICAL_COLS]))


@pytest.mark.parametrize("drop", ["first", "if_binary", np.array(["c", "zOyDvcyZ2s"])])
def test_drop(session: neve.Session, drop: object) -> None:
    df_pandas = frame(DATA)
    encoder = OneHotEncoder(drop=drop, input_cols=CATEGORICAL_COLS, output_cols=OUTPUT_COLS)
    encoder.fit(table(session, df_pandas))
    sk = SklearnOneHotEncoder(drop=drop, sparse_output=False).fit(df_pandas[CATEGORICAL_COLS])
    np.testing.assert_array_equal(encoder.drop_idx_, sk.drop_idx_)
    actual = fetch(encoder.transform(table(session, df_pandas)), encoder.get_output_cols())
    np.testing.assert_allclose(actual.to_numpy(), sk.transform(df_pandas[CATEGORICAL_COLS]))


def test_categories_dict_and_unknown_ignored(session: neve.Session) -> None:
    """SnowML's ``categories={column: values}``; unseen values encode as all zeros."""
    df_pandas = frame(DATA)
    categories = {
        "STR1": np.array(["A", "a", "b", "c", "d"]),
        "STR2": np.array(["TuDOcLxToB", "g1ehQlL80t", "zOyDvcyZ2s"]),
    }
    encoder = OneHotEncoder(categories=categories, handle_unknown="ignore", sparse=False)
    encoder.set_input_cols(CATEGORICAL_COLS).set_output_cols(OUTPUT_COLS).fit(table(session, df_pandas))
    unknown = pd.DataFrame(
        {"ID": ["1", "2", "3"], **dict(zip(CATEGORICAL_COLS, UNKNOWN_CATEGORICAL_VALUES_LIST, strict=True))}
    )
    actual = fetch(encoder.transform(table(session, unknown, "U")), encoder.get_output_cols())
    sk = SklearnOneHotEncoder(
        categories=[categories[c] for c in CATEGORICAL_COLS], handle_unknown="ignore", sparse_output=False
    ).fit(df_pandas[CATEGORICAL_COLS])
    np.testing.assert_allclose(actual.to_numpy(), sk.transform(unknown[CATEGORICAL_COLS]))
    assert actual.iloc[0, :5].tolist() == [0.0] * 5  # "z" in STR1 was never seen


def test_categories_dict_must_name_each_input_column() -> None:
    encoder = OneHotEncoder(categories={"STR1": ["a"]}, input_cols=CATEGORICAL_COLS)
    with pytest.raises(ValueError, match=r"categories is keyed by column.*missing \['STR2'\]"):
        encoder.fit(frame(DATA))


def test_unknown_category_error_on_pandas() -> None:
    df_pandas = frame(DATA)
    encoder = OneHotEncoder(input_cols=CATEGORICAL_COLS).fit(df_pandas)
    unknown = pd.DataFrame(dict(zip(CATEGORICAL_COLS, UNKNOWN_CATEGORICAL_VALUES_LIST, strict=True)))
    with pytest.raises(ValueError, match="unknown"):
        encoder.transform(unknown)


def test_sparse_true_is_refused_clearly() -> None:
    with pytest.raises(ValueError, match="sparse=True"):
        OneHotEncoder(sparse=True, input_cols=CATEGORICAL_COLS).fit(frame(DATA))


def test_drop_input_cols(session: neve.Session) -> None:
    df = table(session, frame(DATA))
    encoder = OneHotEncoder(input_cols=CATEGORICAL_COLS, output_cols=OUTPUT_COLS, drop_input_cols=True)
    out = encoder.fit(df).transform(df)
    assert not set(CATEGORICAL_COLS) & set(out.columns)
    assert list(out.columns) == ["ID", "FLOAT1", "FLOAT2", *encoder.get_output_cols()]
