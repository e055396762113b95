"""The emulator fixture of tests/engine, shared so test_snowflake.py can start fakesnow."""

from tests.engine.conftest import emulator  # noqa: F401
