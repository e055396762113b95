"""The Snowflake emulator of the tests (tests/engine/_fakesnow.py), run by the ``fakesnow`` env.

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

Loading in-memory data (``session.create_table(frame)``, ``load_files``): Ibis uploads a
Parquet file with ``CREATE TEMP STAGE s FILE_FORMAT = (TYPE = PARQUET); CREATE TEMP TABLE ...``
in one request, ``PUT 'file://...' @s`` (the stage unquoted) and ``COPY INTO t FROM (SELECT
CAST(GET($1, 'col') AS T) ... FROM @s)``. fakesnow runs only the first statement of a request,
reads a stage as CSV whatever format the stage was created with, maps only the ``$1:col``
spelling onto Parquet columns, and stores ``TIMESTAMP(3)`` as a DuckDB type its DESCRIBE
cannot name; each is answered here as Snowflake does (:func:`_statements`,
``stage_formats``, :func:`_columns_by_get`, :func:`_without_timestamp_precision`). And
``LPAD(s, GREATEST(LENGTH(s), 2), '0')`` (Ibis's ``lpad``) fails in DuckDB, whose ``lpad``
takes an INTEGER length only (:func:`_pad_length_as_int`).

Every adaptation is listed, with what real Snowflake does, in ``EMULATOR_ADAPTATIONS``
(tests/engine/_fakesnow.py), which docs/support-matrix.md prints.

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
STAGE_FORMAT = re.compile(
    r"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?(?:TEMP|TEMPORARY\s+)?\s*STAGE\s+([\w.$]+)\s+FILE_FORMAT\s*=\s*(\([^)]*\))",
    re.IGNORECASE,
)
COPY_FROM_STAGE = re.compile(r"^\s*COPY\s+INTO\s.*\sFROM\s@([\w.$]+)", re.IGNORECASE | re.DOTALL)
CREATE_STAGE = re.compile(r"^\s*CREATE\s+STAGE\s+IF\s+NOT\s+EXISTS\s+([\w.$]+)\s*$", re.I)
# A PUT/GET/LIST/REMOVE operand: quoted, or a bare ``@stage/path`` / ``file://path`` (Ibis's uploads).
OPERAND = re.compile(r"'([^']*)'|((?:@|file://)[^\s;']+)", re.IGNORECASE)


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


_TIMESTAMP_PRECISION = re.compile(r"\b(TIMESTAMP(?:_NTZ)?)\s*\(\s*\d\s*\)", re.IGNORECASE)


def _without_timestamp_precision(sql: str) -> str:
    """``TIMESTAMP(3)`` as ``TIMESTAMP``, outside string literals.

    fakesnow stores a ``TIMESTAMP(p)`` column as DuckDB's ``TIMESTAMP_MS``/``_S``/``_NS``,
    which its DESCRIBE and information schema do not map back to ``TIMESTAMP_NTZ``, so a
    client would see an unknown type. (Ibis loads pyarrow timestamps as ``TIMESTAMP(3)``.)
    """
    out, last = [], 0
    for m in _LITERAL.finditer(sql):
        out += [_TIMESTAMP_PRECISION.sub(r"\1", sql[last:m.start()]), m.group()]
        last = m.end()
    return "".join([*out, _TIMESTAMP_PRECISION.sub(r"\1", sql[last:])])


def _statements(sql: str) -> list[str]:
    """``sql`` split at the semicolons that lie outside string literals."""
    statements, current, last = [], [], 0
    for m in [*_LITERAL.finditer(sql), None]:
        chunk = sql[last:m.start()] if m else sql[last:]
        *ends, rest = chunk.split(";")
        for end in ends:
            statements.append("".join([*current, end]))
            current = []
        current += [rest, m.group()] if m else [rest]
        last = m.end() if m else len(sql)
    statements.append("".join(current))
    return [s.strip() for s in statements if s.strip()]


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
        #: The FILE_FORMAT each stage was created with, by name: a COPY INTO that names none
        #: uses its stage's (Snowflake's rule; fakesnow assumes CSV).
        self.stage_formats: dict[str, str] = {}
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
        if len(statements := _statements(command)) > 1:
            # Snowflake runs every statement of a multi-statement request (Ibis sends its
            # CREATE TEMP STAGE + CREATE TEMP TABLE as one); fakesnow would run the first only.
            for statement in statements:
                result = self.execute(cursor, statement, *args, **kwargs)
            return result
        command = _without_timestamp_precision(command)
        if m := STAGE_FORMAT.match(command):
            self.stage_formats[m.group(1).upper()] = m.group(2)
        if (m := COPY_FROM_STAGE.match(command)) and not re.search(r"\bFILE_FORMAT\b", command, re.I):
            if stage_format := self.stage_formats.get(m.group(1).upper()):
                command = f"{command.rstrip()} FILE_FORMAT = {stage_format}"
        if m := CREATE_STAGE.match(command):
            try:
                self._stage(cursor, "@" + m.group(1))
                command = f"SELECT '{m.group(1)} already exists, statement succeeded.' AS status"
            except self.ProgrammingError:
                pass
            return self.original(cursor, command, *args, **kwargs)
        if not (m := STAGE_STATEMENT.match(command)):
            return self.original(cursor, command, *args, **kwargs)
        verb = m.group(1).upper()
        operands = [quoted or bare for quoted, bare in OPERAND.findall(command)]
        options = dict(re.findall(r"(\w+)\s*=\s*(\w+)", OPERAND.split(command)[-1]))
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


def _columns_by_get(strip):
    """Wrap ``copy_into._strip_json_extract`` so ``GET($1, 'col')`` reads column ``col`` too.

    Ibis loads in-memory data with ``COPY INTO t FROM (SELECT CAST(GET($1, 'col') AS T) ...
    FROM @stage)``; fakesnow 0.11 maps only the ``$1:col`` spelling of the same lookup onto
    the Parquet file's columns.
    """
    dollar1 = exp.Parameter(this=exp.Literal(this="1", is_string=False))

    def wrapped(select: exp.Select) -> exp.Select:
        for get in list(select.find_all(exp.GetExtract)):
            if get.this == dollar1 and isinstance(get.expression, exp.Literal):
                get.replace(exp.column(exp.to_identifier(get.expression.this, quoted=True)))
        return strip(select)

    return wrapped


def _pad_length_as_int(node: exp.Expression) -> exp.Expression:
    """``LPAD(s, n, p)`` with ``n`` cast to INT.

    Ibis writes the length as ``GREATEST(LENGTH(s), 2)``, a BIGINT in DuckDB, and DuckDB's
    ``lpad`` takes an INTEGER only ("No function matches ... lpad(VARCHAR, BIGINT, ...)");
    Snowflake takes any integer expression.
    """
    if isinstance(node, exp.Pad) and not isinstance(node.expression, exp.Cast):
        node.set("expression", exp.cast(node.expression, "INT"))
    return node


def _after_transforms(transform):
    """Wrap ``FakeSnowflakeCursor._transform`` so the rewrites above run on its DuckDB-bound
    result (fakesnow turns every INT into BIGINT on the way)."""

    def wrapped(self, expression, params):
        return transform(self, expression, params).transform(_pad_length_as_int)

    return wrapped


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
    copy_into = importlib.import_module("fakesnow.copy_into")
    copy_into._strip_json_extract = _columns_by_get(copy_into._strip_json_extract)
    cursor_cls = importlib.import_module("fakesnow.cursor").FakeSnowflakeCursor
    _StageStatements(cursor_cls)
    cursor_cls._transform = _after_transforms(cursor_cls._transform)
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
