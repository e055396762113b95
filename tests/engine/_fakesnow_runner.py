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

And one fix of an emulator bug: the server encodes a timestamp's sub-second part as
``float(subsecond) * 1e9`` cast to int32, which fails for about one timestamp in ten
(``508746999.99999994`` "was truncated") and answers HTTP 500. The product is rounded first.

This file runs under the fakesnow env's interpreter only; it imports nothing from neve.
"""

from __future__ import annotations

import importlib
import json
import logging
import re
import sys
import types

import pyarrow as pa
import pyarrow.compute as pc
from fakesnow import server as serve  # the function: importing the submodule shadows it
from fakesnow.instance import FakeSnow
from sqlglot import exp, parse_one

NOOP = [r"^\s*ALTER\s+SESSION\s"]


def _parse(sql: str, **kwargs: object) -> exp.Expression:
    if any(re.match(p, sql, re.IGNORECASE) for p in NOOP):
        return exp.Command(this="ALTER", expression=sql)
    return parse_one(sql, **kwargs)


class _RoundedCompute(types.ModuleType):
    """pyarrow.compute, except that a float product is rounded (see the module docstring)."""

    def __getattr__(self, name: str) -> object:
        return getattr(pc, name)

    @staticmethod
    def multiply(x: object, y: object) -> object:
        product = pc.multiply(x, y)
        return pc.round(product) if pa.types.is_floating(product.type) else product


def main() -> int:
    importlib.import_module("fakesnow.arrow").pc = _RoundedCompute("pyarrow.compute")
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
