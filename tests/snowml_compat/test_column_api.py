"""SnowML's column API (framework/base.py): setters chain and take a name or a list,
getters return lists, set_params after fit is honoured or refused, never ignored."""

from __future__ import annotations

import pytest

import neve
from neve.errors import NotFittedError
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
from tests.snowml_compat._data import CATEGORICAL_COLS, DATA, NUMERIC_COLS, OUTPUT_COLS, frame, table

NUMERIC = [
    Binarizer,
    KBinsDiscretizer,
    MaxAbsScaler,
    MinMaxScaler,
    Normalizer,
    RobustScaler,
    SimpleImputer,
    StandardScaler,
]
ALL = [*NUMERIC, OneHotEncoder, OrdinalEncoder, LabelEncoder]


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_setters_chain_and_getters_return_lists(cls: type) -> None:
    step = cls()
    assert step.get_input_cols() == [] and step.get_output_cols() == [] and step.get_passthrough_cols() == []
    assert step.set_input_cols("A") is step and step.get_input_cols() == ["A"]
    assert step.set_output_cols(("B",)) is step and step.get_output_cols() == ["B"]
    assert step.set_passthrough_cols("ID") is step and step.get_passthrough_cols() == ["ID"]
    assert step.set_drop_input_cols(True) is step and step.drop_input_cols is True
    assert step.get_params()["input_cols"] == ["A"]
    with pytest.raises(ValueError, match="input_cols must hold column names"):
        step.set_input_cols([1, 2])


@pytest.mark.parametrize("cls", NUMERIC, ids=lambda c: c.__name__)
def test_output_cols_set_after_fit_are_used(session: neve.Session, cls: type) -> None:
    df = table(session, frame(DATA))
    step = cls().set_input_cols(NUMERIC_COLS).set_output_cols(OUTPUT_COLS).fit(df)
    step.set_params(output_cols=["NEW1", "NEW2"])
    out = step.transform(df).columns
    assert all(any(c.startswith(n) for c in out) for n in ["NEW1", "NEW2"])
    assert not any(c.startswith("OUTPUT") for c in out)


def test_one_hot_output_cols_set_after_fit_are_used(session: neve.Session) -> None:
    """The issue's case: set_params(output_cols=...) after fit was silently ignored."""
    df = table(session, frame(DATA))
    enc = OneHotEncoder(input_cols=CATEGORICAL_COLS).fit(df)
    assert enc.get_output_cols()[0] == "STR1_A"
    enc.set_params(output_cols=OUTPUT_COLS)
    assert enc.get_output_cols()[0] == "OUTPUT1_A"
    assert "OUTPUT1_A" in enc.transform(df).columns and "STR1_A" not in enc.transform(df).columns
    enc.set_output_cols(None)  # back to in place
    assert "STR1_A" in enc.transform(df).columns


def test_input_cols_changed_after_fit_are_refused_until_refit(session: neve.Session) -> None:
    df = table(session, frame(DATA))
    scaler = StandardScaler(input_cols=NUMERIC_COLS).fit(df)
    scaler.set_input_cols("FLOAT1")
    with pytest.raises(NotFittedError, match=r"input_cols is now \['FLOAT1'\].*call fit again"):
        scaler.transform(df)
    scaler.fit(df)
    assert list(scaler.transform(df).columns) == list(df.columns)
    assert list(scaler.mean_) == ["FLOAT1"]


@pytest.mark.parametrize("unset", [[], None])
def test_input_cols_unset_after_fit_are_refused(session: neve.Session, unset: list | None) -> None:
    """SnowML's ``set_params(input_cols=[])`` after fit, then ``transform``: refused, as
    SnowML does, rather than transforming the fitted columns silently."""
    df = table(session, frame(DATA))
    scaler = StandardScaler(input_cols=NUMERIC_COLS).fit(df)
    scaler.set_params(input_cols=unset)
    with pytest.raises(NotFittedError, match=r"input_cols is now not set.*fitted on \['FLOAT1', 'FLOAT2'\]"):
        scaler.transform(df)
    pipe = Pipeline([("ss", StandardScaler(input_cols=NUMERIC_COLS))]).fit(df)
    pipe.set_params(ss__input_cols=unset)
    with pytest.raises(NotFittedError, match="input_cols is now not set"):
        pipe.transform(df)
    scaler.set_params(input_cols=NUMERIC_COLS)  # set back: the fitted state applies again
    assert set(scaler.transform(df).columns) == set(df.columns)


def test_output_cols_of_the_wrong_length_name_the_parameter(session: neve.Session) -> None:
    df = table(session, frame(DATA))
    scaler = MinMaxScaler(input_cols=NUMERIC_COLS).fit(df)
    scaler.set_output_cols(["ONLY_ONE"])
    with pytest.raises(ValueError, match="output_cols has 1 names for 2 input_cols"):
        scaler.transform(df)
    with pytest.raises(ValueError, match="output_cols has 1 names for 2 input_cols"):
        MinMaxScaler(input_cols=NUMERIC_COLS, output_cols="ONE").fit(df)


def test_input_cols_none_means_every_column_but_passthrough(session: neve.Session) -> None:
    df = table(session, frame(DATA).drop(columns=CATEGORICAL_COLS))
    scaler = StandardScaler().set_passthrough_cols("ID").fit(df.mutate(ID=df.ID.cast("int64")))
    assert scaler.get_input_cols() == NUMERIC_COLS
    with pytest.raises(ValueError, match="input_cols is not set"):
        StandardScaler(passthrough_cols=["ID", *NUMERIC_COLS]).fit(df)


def test_snowml_empty_lists_mean_unset() -> None:
    """SnowML's setters store [] for None; neve reads [] as unset too."""
    df = frame(DATA)[NUMERIC_COLS]
    scaler = StandardScaler(input_cols=[], output_cols=[]).fit(df)
    assert scaler.get_input_cols() == NUMERIC_COLS and scaler.get_output_cols() == NUMERIC_COLS


def test_other_engines_resolve_names_as_their_sql_does(session: neve.Session, engine: str) -> None:
    """``age`` finds ``AGE`` where the engine's SQL does (DuckDB ignores case in names);
    PostgreSQL and Spark (through Ibis's quoting) take names as written. Output names are kept
    as written on both (Snowflake's upper-casing applies on a Snowflake session only; see
    test_snowflake.py), and a quoted name is exact everywhere."""
    import pandas as pd

    from neve.errors import ColumnNotFoundError

    t = table(session, pd.DataFrame({"AGE": [1.0, 2.0], "b": [3.0, 5.0]}), "IDENT")
    if engine == "duckdb":
        scaler = StandardScaler(input_cols=["age", "B"], output_cols=["Out_age", "Out_b"]).fit(t)
        assert list(scaler.input_cols_) == ["AGE", "b"]
    else:
        with pytest.raises(ColumnNotFoundError, match="'age' not found"):
            StandardScaler(input_cols=["age"]).fit(t)
    scaler = StandardScaler(input_cols=["AGE"], output_cols=["Out_age"]).fit(t)
    assert scaler.get_output_cols() == ["Out_age"] and "Out_age" in scaler.transform(t).columns
    with pytest.raises(ColumnNotFoundError, match="'age' not found"):
        StandardScaler(input_cols=['"age"']).fit(t)  # quoted: exactly ``age``, on every engine
    scaler = StandardScaler(input_cols=['"AGE"'], output_cols=['"out_Q"']).fit(t)
    assert list(scaler.input_cols_) == ["AGE"] and "out_Q" in scaler.transform(t).columns


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_every_class_documents_what_unset_columns_mean(cls: type) -> None:
    assert "``input_cols=None``" in cls.__doc__ and "output_cols=None" in cls.__doc__
