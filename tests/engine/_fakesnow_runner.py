"""The Snowflake emulator for tests/engine/test_snowflake_sql.py, run by the ``fakesnow`` env.

Starts fakesnow's HTTP server on a free loopback port, prints the connector keyword
arguments as one JSON line and serves until stdin closes (the test process exited or
closed the pipe), so a crashed test run never leaves a server behind.

Two adaptations, both on the emulator side and both about statements neve does not
generate:

- ``ALTER SESSION SET ...`` (sent by Ibis's Snowflake backend when it adopts a connection)
  does not parse in fakesnow 0.11's sqlglot, and the server parses every statement before
  it honours ``nop_regexes``. Such statements are answered as no-ops, so session
  parameters (TIMEZONE, result format) are not emulated.
  The same holds for the private database a connection gets with the session parameter
  ``FAKESNOW_DB_PATH=":isolated:"`` (how the tests keep their tables apart).

This file runs under the fakesnow env's interpreter only; it imports nothing from neve.
"""

from __future__ import annotations

import json
import re
import sys

import importlib
import logging

from fakesnow import server as serve  # the function: importing the submodule shadows it
from fakesnow.instance import FakeSnow
from sqlglot import exp, parse_one

NOOP = [r"^\s*ALTER\s+SESSION\s"]


def _parse(sql: str, **kwargs: object) -> exp.Expression:
    if any(re.match(p, sql, re.IGNORECASE) for p in NOOP):
        return exp.Command(this="ALTER", expression=sql)
    return parse_one(sql, **kwargs)


def main() -> int:
    server = importlib.import_module("fakesnow.server")
    server.logger.setLevel(logging.WARNING)
    server.parse_one = _parse
    server.FakeSnow = lambda db_path=None: FakeSnow(db_path=db_path, nop_regexes=NOOP)
    server.shared_fs = server.FakeSnow()
    with serve() as kwargs:
        print(json.dumps(kwargs), flush=True)
        sys.stdin.read()  # returns at EOF: the parent is gone or done
    return 0


if __name__ == "__main__":
    sys.exit(main())
