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
from pathlib import Path
from typing import Any

import ibis
import pandas as pd

import neve.envs
from neve.engine.snowflake import SnowflakeDriver

REPO = Path(__file__).resolve().parents[2]
RUNNER = Path(__file__).with_name("_fakesnow_runner.py")
START_TIMEOUT = 120.0


class Emulator:
    """One fakesnow server process; :meth:`connect` gives each caller a private database."""

    def __init__(self, log_path: Path) -> None:
        neve.envs.build(["fakesnow"], project=REPO, locked=True)
        python = neve.envs.require("fakesnow", project=REPO)
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
