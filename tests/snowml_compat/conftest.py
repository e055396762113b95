"""The emulator session of tests/engine, shared so test_snowflake.py runs the ported cases on
Snowflake SQL (the ``emulator`` fixture itself is in tests/conftest.py)."""

from tests.engine.test_snowflake_sql import snow  # noqa: F401
