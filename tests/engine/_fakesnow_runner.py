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

And a second emulator bug: fakesnow substitutes session variables (``$NAME``) inside string
literals too, so a bound JSON value such as ``{"$dtype": "float64"}`` (the connector binds
client-side, into the SQL text) fails with "Session variable '$DTYPE' does not exist".
Snowflake never looks inside literals; :func:`_outside_literals` restores that.

Stage files: fakesnow 0.11 runs ``CREATE STAGE`` (but fails ``IF NOT EXISTS`` on an existing
stage), ``LIST @S`` at the stage root only, and ``PUT 'file://...' @S`` to the root only,
without options; it has no ``GET`` or ``REMOVE``. The registry's internal stage needs
paths under the stage, ``PUT`` options, ``GET``, ``LIST`` of a path and ``REMOVE``, so
:class:`_StageStatements` answers those statements here, in the way Snowflake's server
does for a stage it keeps on local disk: PUT and GET reply with the file-transfer
instructions (``locationType: LOCAL_FS``) and the real connector's file-transfer code moves
the bytes; LIST and REMOVE reply with Snowflake's result columns. This emulates the
server's part of the protocol only, and its statement parsing is a few regexes, not
Snowflake's: what it verifies is neve's side (docs/snowflake.md says so).

This file runs under the fakesnow env's interpreter only; it imports nothing from neve.
"""

from __future__ import annotations

import faulthandler
import hashlib
import importlib
import json
import logging
import os
import re
import signal
import sys
import types
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from fakesnow import server as serve  # the function: importing the submodule shadows it
from fakesnow.instance import FakeSnow
from sqlglot import exp, parse_one

NOOP = [r"^\s*ALTER\s+SESSION\s"]
STAGE_STATEMENT = re.compile(r"^\s*(PUT|GET|LIST|REMOVE)\s", re.IGNORECASE)
CREATE_STAGE = re.compile(r"^\s*CREATE\s+STAGE\s+IF\s+NOT\s+EXISTS\s+([\w.$]+)\s*$", re.I)
QUOTED = re.compile(r"'([^']*)'")


def _parse(sql: str, **kwargs: object) -> exp.Expression:
    if any(re.match(p, sql, re.IGNORECASE) for p in NOOP) or STAGE_STATEMENT.match(sql):
        return exp.Command(this="ALTER", expression=sql)
    return parse_one(sql, **kwargs)


_LITERAL = re.compile(r"'(?:[^'\\]|''|\\.)*'")


def _outside_literals(inline):
    """Wrap ``Variables.inline_variables`` so it sees only the SQL between string literals."""

    def wrapped(self, sql: str) -> str:
        out, last = [], 0
        for m in _LITERAL.finditer(sql):
            out += [inline(self, sql[last:m.start()]), m.group()]
            last = m.end()
        return "".join([*out, inline(self, sql[last:])])

    return wrapped


def _rows_sql(columns: list[str], rows: list[tuple]) -> str:
    def lit(v: object) -> str:
        return str(v) if isinstance(v, int) else "'" + str(v).replace("'", "''") + "'"

    if not rows:
        return "SELECT " + ", ".join(f"NULL AS {c}" for c in columns) + " WHERE 1 = 0"
    return " UNION ALL ".join(
        "SELECT " + ", ".join(f"{lit(v)} AS {c}" for v, c in zip(row, columns, strict=True))
        for row in rows
    )


class _StageStatements:
    """PUT / GET / LIST / REMOVE on paths under internal stages (see the module docstring)."""

    def __init__(self, cursor_cls: type) -> None:
        self.original = cursor_cls.execute
        stage_mod = importlib.import_module("fakesnow.transforms.stage")
        self.parts_from_var = stage_mod.parts_from_var
        self.internal_dir = stage_mod.internal_dir
        errors = importlib.import_module("snowflake.connector.errors")
        self.ProgrammingError = errors.ProgrammingError
        handler = self

        def execute(cursor, command, *args, **kwargs):
            return handler.execute(cursor, command, *args, **kwargs)

        cursor_cls.execute = execute

    def _stage(self, cursor, ref: str) -> tuple[str, Path, str]:
        """(stage name, its folder, the path under it) for ``@NAME/path``; the stage must exist."""
        var, _, rel = ref.lstrip("@").partition("/")
        conn = cursor._conn
        db, schema, name = self.parts_from_var(var, conn.database, conn.schema)
        found = cursor._duck_conn.execute(
            "SELECT count(*) FROM _fs_global._fs_information_schema._fs_stages "
            "WHERE database_name = ? AND schema_name = ? AND name = ?", [db, schema, name]
        ).fetchone()[0]
        if not found:
            raise self.ProgrammingError(
                msg=f"SQL compilation error:\nStage '{db}.{schema}.{name}' does not exist or not "
                "authorized.", errno=2003, sqlstate="02000",
            )
        return name, Path(self.internal_dir(f"{db}.{schema}.{name}")), rel

    @staticmethod
    def _matching(root: Path, prefix: str) -> list[str]:
        if not root.is_dir():
            return []
        files = (p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
        return sorted(f for f in files if f.startswith(prefix))

    def execute(self, cursor, command, *args, **kwargs):
        if m := CREATE_STAGE.match(command):
            try:
                self._stage(cursor, "@" + m.group(1))
                command = f"SELECT '{m.group(1)} already exists, statement succeeded.' AS status"
            except self.ProgrammingError:
                pass
            return self.original(cursor, command, *args, **kwargs)
        if not (m := STAGE_STATEMENT.match(command)):
            return self.original(cursor, command, *args, **kwargs)
        verb, operands = m.group(1).upper(), QUOTED.findall(command)
        options = dict(re.findall(r"(\w+)\s*=\s*(\w+)", command.split("'")[-1]))
        transfer = None
        if verb == "PUT":
            source, target = operands
            _, root, rel = self._stage(cursor, target)
            location = root / rel
            location.mkdir(parents=True, exist_ok=True)
            transfer = {
                "stageInfo": {"locationType": "LOCAL_FS", "location": str(location) + "/",
                              "creds": {}},
                "src_locations": [source.removeprefix("file://")],
                "parallel": 1,
                "autoCompress": options.get("AUTO_COMPRESS", "TRUE").upper() == "TRUE",
                "sourceCompression": options.get("SOURCE_COMPRESSION", "auto_detect").lower(),
                "overwrite": options.get("OVERWRITE", "FALSE").upper() == "TRUE",
                "command": "UPLOAD",
            }
            sql = "SELECT 'ok' AS status"
        elif verb == "GET":
            source, target = operands
            _, root, rel = self._stage(cursor, source)
            transfer = {
                "stageInfo": {"locationType": "LOCAL_FS", "location": str(root) + "/", "creds": {}},
                "src_locations": self._matching(root, rel),
                "parallel": 1,
                "localLocation": target.removeprefix("file://"),
                "command": "DOWNLOAD",
            }
            sql = "SELECT 'ok' AS status"
        elif verb == "LIST":
            name, root, rel = self._stage(cursor, operands[0])
            rows = [
                (f"{name.lower()}/{f}", (root / f).stat().st_size,
                 hashlib.md5((root / f).read_bytes()).hexdigest(), "Thu, 1 Jan 2026 00:00:00 GMT")
                for f in self._matching(root, rel)
            ]
            sql = _rows_sql(["name", "size", "md5", "last_modified"], rows)
        else:  # REMOVE
            name, root, rel = self._stage(cursor, operands[0])
            rows = []
            for f in self._matching(root, rel):
                (root / f).unlink()
                rows.append((f"{name.lower()}/{f}", "removed"))
            sql = _rows_sql(["name", "result"], rows)
        result = self.original(cursor, sql, **{k: v for k, v in kwargs.items() if k == "server"})
        if transfer is not None:
            cursor._last_transformed.args["put_stage_data"] = transfer
        return result


class _RoundedCompute(types.ModuleType):
    """pyarrow.compute, except that a float product is rounded (see the module docstring)."""

    def __getattr__(self, name: str) -> object:
        return getattr(pc, name)

    @staticmethod
    def multiply(x: object, y: object) -> object:
        product = pc.multiply(x, y)
        return pc.round(product) if pa.types.is_floating(product.type) else product


def main() -> int:
    # `kill -USR1 <pid>` prints every thread's stack to the server log: how to see a hang.
    faulthandler.register(signal.SIGUSR1)
    importlib.import_module("fakesnow.arrow").pc = _RoundedCompute("pyarrow.compute")
    server = importlib.import_module("fakesnow.server")
    server.logger.setLevel(logging.WARNING)
    server.parse_one = _parse
    _StageStatements(importlib.import_module("fakesnow.cursor").FakeSnowflakeCursor)
    variables = importlib.import_module("fakesnow.variables").Variables
    variables.inline_variables = _outside_literals(variables.inline_variables)
    server.FakeSnow = lambda db_path=None: FakeSnow(db_path=db_path, nop_regexes=NOOP)
    server.shared_fs = server.FakeSnow()
    with serve() as kwargs:
        print(json.dumps(kwargs), flush=True)
        # The parent reads one line from the stdout pipe and no more; uvicorn's access log
        # also writes to stdout and would block the server once the pipe's buffer is full.
        os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
        logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
        sys.stdin.read()  # returns at EOF: the parent is gone or done
    return 0


if __name__ == "__main__":
    sys.exit(main())
