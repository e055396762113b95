"""Who logged a version, from where, and from what data."""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import socket
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

import ibis
import ibis.expr.operations as ops

from neve._table import as_table
from neve.engine import Driver
from neve.errors import InvalidNameError

__all__ = ["acting_as", "run_context", "training_lineage", "user"]

AIRFLOW_VARS = {
    "dag_id": "AIRFLOW_CTX_DAG_ID",
    "dag_run_id": "AIRFLOW_CTX_DAG_RUN_ID",
    "task_id": "AIRFLOW_CTX_TASK_ID",
}

#: Who a server (the Airflow UI) writes on behalf of: (user name, extra run context).
_ACTOR: ContextVar[tuple[str, dict[str, Any]] | None] = ContextVar("neve_registry_actor", default=None)


@contextlib.contextmanager
def acting_as(name: str, **context: Any) -> Iterator[None]:
    """Attribute the events written inside the block to ``name`` (and add ``context`` to their
    run context) instead of the process's login: a server writing for its signed-in users."""
    if not isinstance(name, str) or not name:
        raise InvalidNameError(f"acting_as needs a user name, got {name!r}")
    token = _ACTOR.set((name, context))
    try:
        yield
    finally:
        _ACTOR.reset(token)


def user() -> str:
    actor = _ACTOR.get()
    if actor is not None:
        return actor[0]
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name in some containers
        return f"uid:{os.getuid()}" if hasattr(os, "getuid") else "unknown"


def airflow_context() -> dict[str, str]:
    return {key: os.environ[var] for key, var in AIRFLOW_VARS.items() if os.environ.get(var)}


def run_context() -> str:
    context: dict[str, Any] = {"host": socket.gethostname(), "pid": os.getpid()}
    actor = _ACTOR.get()
    # A server acting for a user is not inside the task whose AIRFLOW_CTX_* it may have inherited.
    airflow = airflow_context() if actor is None else {}
    if airflow:
        context["airflow"] = airflow
    if actor is not None:
        context.update(actor[1])
    return json.dumps(context, sort_keys=True, default=str)


def training_lineage(
    data: Any, driver: Driver, *, profile_columns: list[str] | None = None, fit_summary: Any = None
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Source tables and SQL, schema, row count and a content fingerprint of ``data``, and
    the training baseline of ``profile_columns`` (None: no baseline).

    Row count, fingerprint and the baseline's moments come from one aggregate scan in the
    engine, and the baseline's value counts from one more: the cost of logging a model
    does not grow with the number of statistics kept. ``fit_summary`` (a fused fit's
    :class:`~neve.pipeline._fused.FitSummary`) already holds the value counts of the
    encoded columns; when ``data`` is (a projection of) the table it was fitted on, those
    columns are not counted again.
    """
    # Here, not at the top: reading the registry must not import scikit-learn.
    from neve.monitoring._baseline import baseline_with

    table, _ = as_table(data)
    sources = sorted(
        {
            ".".join(filter(None, [*_namespace(node), node.name]))
            for node in table.op().find(ops.DatabaseTable)
        }
    )
    in_memory = bool(table.op().find(ops.InMemoryTable))
    known = None
    if fit_summary is not None and _same_rows(table, fit_summary.table):
        known = (fit_summary.rows, fit_summary.counts)
    fingerprint = driver.fingerprint(table)
    extra = {} if fingerprint is None else {"fp": fingerprint}
    profile, values = baseline_with(table, profile_columns or [], extra, known_counts=known)
    lineage = {
        "tables": sources,
        "in_memory_data": in_memory,
        "sql": None if in_memory and not sources else str(ibis.to_sql(table)),
        "schema": {name: str(dtype) for name, dtype in table.schema().items()},
        "row_count": int(profile["row_count"]),
        "fingerprint": None if values.get("fp") is None else str(values["fp"]),
    }
    return lineage, profile if profile_columns is not None else None


def _same_rows(table: Any, fitted: Any) -> bool:
    """``table`` is ``fitted`` with some of its columns: the same SELECT bar the column list."""
    if not set(table.columns) <= set(fitted.columns):
        return False
    try:
        return str(ibis.to_sql(fitted.select(*table.columns))) == str(ibis.to_sql(table))
    except Exception:  # noqa: BLE001 - tables of different backends: not the same rows
        return False


def _namespace(node: ops.DatabaseTable) -> list[str]:
    ns = getattr(node, "namespace", None)
    if ns is None:
        return []
    return [p for p in (getattr(ns, "catalog", None), getattr(ns, "database", None)) if p]
