"""Who logged a version, from where, and from what data."""

from __future__ import annotations

import getpass
import json
import os
import re
import socket
from typing import Any

import ibis
import ibis.expr.operations as ops

from neve.engine import Driver, _queries
from neve.errors import InvalidNameError

__all__ = ["check_key", "check_name", "run_context", "training_lineage", "user"]

AIRFLOW_VARS = {
    "dag_id": "AIRFLOW_CTX_DAG_ID",
    "dag_run_id": "AIRFLOW_CTX_DAG_RUN_ID",
    "task_id": "AIRFLOW_CTX_TASK_ID",
}

# Names become folder names on the stage and values in SQL: letters, digits, '_', '-', '.'.
# Quotes, semicolons, slashes and whitespace are refused outright; values are also bound.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}")
_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-/:@]{0,127}")


def check_name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value) or ".." in value:
        raise InvalidNameError(
            f"invalid {what} {value!r}: use 1-128 letters, digits, '_', '-' or '.', starting "
            f"with a letter or digit (no quotes, spaces, slashes or SQL)"
        )
    return value


def check_key(value: Any, what: str) -> str:
    if not isinstance(value, str) or not _KEY.fullmatch(value):
        raise InvalidNameError(
            f"invalid {what} {value!r}: use 1-128 letters, digits or '_ . - / : @' "
            f"(no quotes, spaces or SQL)"
        )
    return value


def user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name in some containers
        return f"uid:{os.getuid()}" if hasattr(os, "getuid") else "unknown"


def airflow_context() -> dict[str, str]:
    return {key: os.environ[var] for key, var in AIRFLOW_VARS.items() if os.environ.get(var)}


def run_context() -> str:
    context: dict[str, Any] = {"host": socket.gethostname(), "pid": os.getpid()}
    airflow = airflow_context()
    if airflow:
        context["airflow"] = airflow
    return json.dumps(context, sort_keys=True)


def training_lineage(data: Any, driver: Driver) -> dict[str, Any]:
    """Source tables and SQL, schema, row count and a content fingerprint of ``data``.

    Row count and fingerprint come from one aggregate query run in the engine.
    """
    # Here, not at the top: reading the registry must not import scikit-learn.
    from neve.preprocessing._base import as_table

    table, _ = as_table(data)
    sources = sorted(
        {
            ".".join(filter(None, [*_namespace(node), node.name]))
            for node in table.op().find(ops.DatabaseTable)
        }
    )
    in_memory = bool(table.op().find(ops.InMemoryTable))
    fingerprint = driver.fingerprint(table)
    aggregates = {"n": table.count()}
    if fingerprint is not None:
        aggregates["fp"] = fingerprint
    row = _queries.execute(table.aggregate(**aggregates)).iloc[0]
    return {
        "tables": sources,
        "in_memory_data": in_memory,
        "sql": None if in_memory and not sources else str(ibis.to_sql(table)),
        "schema": {name: str(dtype) for name, dtype in table.schema().items()},
        "row_count": int(row["n"]),
        "fingerprint": None if fingerprint is None or row["fp"] is None else str(row["fp"]),
    }


def _namespace(node: ops.DatabaseTable) -> list[str]:
    ns = getattr(node, "namespace", None)
    if ns is None:
        return []
    return [p for p in (getattr(ns, "catalog", None), getattr(ns, "database", None)) if p]
