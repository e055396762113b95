"""The emulator fixtures of tests/engine (one fakesnow server, a session on it), shared so
test_snowflake.py runs the ported cases on Snowflake SQL."""

from tests.engine.conftest import emulator  # noqa: F401
from tests.engine.test_snowflake_sql import snow  # noqa: F401
