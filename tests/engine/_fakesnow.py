"""The fakesnow emulator as a test resource: a Snowflake server on loopback.

fakesnow's pins (sqlglot 28, duckdb 1.4) clash with neve's, so it runs in the ``fakesnow``
task env (``[tool.neve.envs.fakesnow]``), built here through the envs API on first use
(uv's cache makes that a few seconds on a fresh machine, a no-op afterwards). The tests
talk to it with the real ``snowflake-connector-python`` over HTTP, through Ibis's real
Snowflake backend, so every query neve sends is Snowflake SQL as a real account gets it.
"""

from __future__ import annotations

import json
import select
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ibis
import pandas as pd

import neve.envs
from neve.engine.snowflake import SnowflakeDriver

REPO = Path(__file__).resolve().parents[2]
RUNNER = Path(__file__).with_name("_fakesnow_runner.py")
START_TIMEOUT = 120.0


@dataclass(frozen=True)
class Adaptation:
    """Something fakesnow 0.11 cannot run that real Snowflake does, and which the test server
    (_fakesnow_runner.py) therefore answers itself: a gap of the emulator, not of neve."""

    where: str  #: which of neve's calls (or the taxi DAG's tasks) send it
    statement: str  #: what is sent
    emulator: str  #: what fakesnow does with it
    snowflake: str  #: what a real account does


#: Printed in docs/support-matrix.md by docs/gen_support_matrix.py.
EMULATOR_ADAPTATIONS = (
    Adaptation(
        "every session (Ibis's Snowflake backend)", "`ALTER SESSION SET ...`",
        "does not parse it", "sets the session parameters (TIMEZONE, result format)",
    ),
    Adaptation(
        "`session.create_table(frame)`, `load_files` (DAG: `load_*`)",
        "`CREATE TEMP STAGE ...; CREATE TEMP TABLE ...` in one request",
        "runs the first statement only", "runs both",
    ),
    Adaptation(
        "the same", "`PUT 'file://...' @stage` into a temporary stage, then `COPY INTO t FROM @stage` "
        "without a FILE_FORMAT", "reads the file as CSV", "uses the stage's FILE_FORMAT (Parquet)",
    ),
    Adaptation(
        "the same", "`COPY INTO t FROM (SELECT CAST(GET($1, 'col') AS T) ... FROM @stage)`",
        "maps only the `$1:col` spelling onto Parquet columns", "reads column `col`",
    ),
    Adaptation(
        "the same (timestamp columns)", "`CREATE TABLE ... (c TIMESTAMP(3))`",
        "stores DuckDB's TIMESTAMP_MS, which its DESCRIBE reports as a type no client knows",
        "`TIMESTAMP_NTZ(3)`",
    ),
    Adaptation(
        "`clean_trips` (DAG: `transform`, `score_data`): Ibis's `lpad`",
        "`LPAD(s, GREATEST(LENGTH(s), 2), '0')`",
        "fails: DuckDB's `lpad` takes an INTEGER length, and GREATEST gives a BIGINT",
        "pads to the length",
    ),
    Adaptation(
        "the registry's stage `@NEVE_STAGE` (DAG: `train`, `predict`)",
        "`PUT`/`LIST` below the stage root, `PUT` options, `GET`, `REMOVE`, "
        "`CREATE STAGE IF NOT EXISTS` on an existing stage",
        "root only and no options; no GET or REMOVE; fails", "all run",
    ),
    Adaptation(
        "results with timestamps", "any query returning a TIMESTAMP",
        "answers HTTP 500 for about one sub-second value in ten (a float rounding bug)",
        "returns the value",
    ),
    Adaptation(
        "registry events (JSON values bound by the connector)", "a string literal containing `$NAME`",
        "substitutes session variables inside string literals", "leaves literals alone",
    ),
)


class EmulatorUnavailable(RuntimeError):
    """The ``fakesnow`` env cannot be built on this machine (no Python 3.11, no uv cache
    and no network): the emulator tests are skipped, saying why."""


class Emulator:
    """One fakesnow server process; :meth:`connect` gives each caller a private database,
    :meth:`url` a ``snowflake://`` URL to a database every connection shares."""

    def __init__(self, log_path: Path) -> None:
        try:
            neve.envs.build(["fakesnow"], project=REPO, locked=True)
            python = neve.envs.require("fakesnow", project=REPO)
        except neve.envs.EnvError as exc:
            raise EmulatorUnavailable(f"the fakesnow env cannot be built here: {exc}") from exc
        self.log_path = log_path
        self._log = log_path.open("w")
        self.process = subprocess.Popen(
            [python, str(RUNNER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        ready, _, _ = select.select([self.process.stdout], [], [], START_TIMEOUT)
        line = self.process.stdout.readline() if ready else ""
        if not line:
            self.close()
            raise RuntimeError(f"fakesnow did not start; its log:\n{log_path.read_text()}")
        self.kwargs: dict[str, Any] = json.loads(line)

    def connect(self, schema: str = "PUBLIC") -> Any:
        """A connector connection to a fresh, isolated database ``NEVE_DB``."""
        import snowflake.connector

        kwargs = dict(self.kwargs)
        # fakesnow suggests 1 s; a loaded CI machine must not fail on it. An emulator error
        # (HTTP 500) is retried by the connector until this runs out, so keep it moderate.
        kwargs["network_timeout"] = 30
        kwargs["session_parameters"] = {
            **kwargs.get("session_parameters", {}),
            "FAKESNOW_DB_PATH": ":isolated:",
        }
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return snowflake.connector.connect(
                **kwargs, database="NEVE_DB", schema=schema
            )

    def url(self, database: str, schema: str = "PUBLIC") -> str:
        """A ``snowflake://`` URL to ``database`` on this server, as a user's would be to an
        account (the connector's ``host``/``port``/``protocol`` point it at the emulator).

        Every connection opened from it shares the database, as separate processes (Airflow
        tasks) need; fakesnow creates it on first connect.
        """
        k = self.kwargs
        return (
            f"snowflake://{k['user']}:{k['password']}@{k['account']}/{database}/{schema}"
            f"?host={k['host']}&port={k['port']}&protocol={k['protocol']}"
            # The emulator takes minutes on wide SQL on a loaded machine; a timed-out request
            # is retried by the connector, which would run the statement twice.
            "&network_timeout=900&socket_timeout=900"
        )

    def close(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


def load(session: Any, name: str, frame: pd.DataFrame) -> ibis.Table:
    """Create ``name`` from ``frame`` on a Snowflake session.

    Ibis uploads in-memory data with PUT + ``COPY INTO ... FROM (SELECT $1 ...)``, which
    fakesnow 0.11 cannot run (an emulator gap), so the rows go in through neve's own
    bound ``INSERT`` (:meth:`SnowflakeDriver.insert_rows`), which this also exercises.
    """
    schema = ibis.memtable(frame).schema()
    session.engine.create_table(name, schema=schema, overwrite=True)
    rows = [
        tuple(None if pd.isna(v) else (v.item() if hasattr(v, "item") else v) for v in row)
        for row in frame.itertuples(index=False)
    ]
    assert isinstance(session.driver, SnowflakeDriver)
    session.driver.insert_rows(session.engine, name, list(frame.columns), rows)
    return session.table(name)
