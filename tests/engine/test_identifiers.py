"""Each engine's identifier rules, as its drivers state them (the transformers and
estimators resolve every column keyword through these; see tests/preprocessing and
tests/snowml_compat for the same rules end to end)."""

from __future__ import annotations

import pytest

from neve.engine._driver import Driver
from neve.engine.duckdb import DuckDBDriver
from neve.engine.postgres import PostgresDriver
from neve.engine.snowflake import SnowflakeDriver
from neve.engine.spark import SparkDriver
from neve.errors import AmbiguousColumnError, ColumnNotFoundError

COLUMNS = ["AGE", "col1", "Mixed"]


@pytest.mark.parametrize("driver", [Driver, DuckDBDriver, PostgresDriver, SnowflakeDriver, SparkDriver])
def test_a_quoted_name_is_exact_on_every_engine(driver):
    assert driver.resolve_column('"col1"', COLUMNS) == "col1"
    assert driver.resolve_column('"age"', COLUMNS) == "age"  # not AGE: absent, so "not found" later
    assert driver.resolve_column('"say ""hi"""', ['say "hi"']) == 'say "hi"'
    assert driver.new_column_name('"out_Col"') == "out_Col"


def test_duckdb_finds_a_column_in_any_case_as_its_sql_does():
    assert DuckDBDriver.resolve_column("age", COLUMNS) == "AGE"
    assert DuckDBDriver.resolve_column("COL1", COLUMNS) == "col1"
    assert DuckDBDriver.resolve_column("mixed", COLUMNS) == "Mixed"
    assert DuckDBDriver.resolve_column("absent", COLUMNS) == "absent"
    assert DuckDBDriver.new_column_name("OUT_foo") == "OUT_foo"  # kept as written


def test_a_name_matching_two_columns_is_refused_naming_both():
    with pytest.raises(AmbiguousColumnError, match="'a'.*'A'") as caught:
        DuckDBDriver.resolve_column("a", ["a", "A", "b"])
    assert isinstance(caught.value, ColumnNotFoundError) and '"a"' in str(caught.value)
    assert DuckDBDriver.resolve_column('"A"', ["a", "A"]) == "A"  # quoting picks one


@pytest.mark.parametrize("driver", [PostgresDriver, SparkDriver, Driver])
def test_case_sensitive_engines_take_names_as_written(driver):
    assert driver.resolve_column("age", COLUMNS) == "age"
    assert driver.resolve_column("AGE", COLUMNS) == "AGE"
    assert driver.resolve_column("a", ["a", "A"]) == "a"
    assert driver.new_column_name("OUT_foo") == "OUT_foo"


def test_snowflake_folds_unquoted_names_to_upper_case():
    assert SnowflakeDriver.resolve_column("age", COLUMNS) == "AGE"
    assert SnowflakeDriver.new_column_name("OUT_foo") == "OUT_FOO"
    assert SnowflakeDriver.new_column_name("has space") == "has space"
