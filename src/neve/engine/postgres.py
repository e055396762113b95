"""PostgreSQL: the multi-writer server engine.

The registry's writes are single statements on an autocommit connection, so
every transaction is one statement long and holds its row locks for
milliseconds. What concurrency can still raise -- a uniqueness violation when
two writers claim the same version number, a serialization failure under a
``SERIALIZABLE`` default isolation, a deadlock -- is classified here by
SQLSTATE (:meth:`PostgresDriver.is_conflict`) so the registry retries it
instead of surfacing it.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import ibis
import ibis.expr.types as ir
import pandas as pd
import sqlglot.expressions as sge

from neve.engine._dbapi import POSTGRES_MISSING, postgres_error, postgres_kwargs
from neve.engine._driver import Driver
from neve.errors import EngineError

__all__ = ["PostgresDriver"]

#: unique_violation, serialization_failure, deadlock_detected: each means "another
#: writer got there first"; the statement was rolled back and is safe to retry.
CONFLICT_SQLSTATES = frozenset({"23505", "40001", "40P01"})
_SQL_TEXT: dict[int, tuple[sge.Expression, str]] = {}


@ibis.udf.scalar.builtin(name="hashtextextended")
def _hash_text(text: str, seed: int) -> int:
    """PostgreSQL's built-in 64-bit text hash."""


def _sqlstate(exc: BaseException | None) -> str | None:
    # Ibis re-raises psycopg's error, but callers may wrap it; follow the chain.
    seen = 0
    while exc is not None and seen < 10:
        state = getattr(exc, "sqlstate", None)
        if state:
            return state
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None


def _run(con: Any, sql: str, params: Any, *, prepare: bool | None = None) -> Any:
    """Execute one statement. On the usual autocommit connection it is its own short
    transaction; on a connection the caller keeps in a transaction it joins that one.
    ``prepare=False`` keeps psycopg from preparing it on the server (see :meth:`PostgresDriver.query`)."""
    cursor = con.cursor()
    try:
        cursor.execute(sql, params, prepare=prepare)
    except BaseException:
        cursor.close()
        if not con.autocommit:
            con.rollback()
        raise
    return cursor


class PostgresDriver(Driver):
    name: ClassVar[str] = "postgres"
    schemes: ClassVar[tuple[str, ...]] = ("postgres", "postgresql")
    cte_materialization: ClassVar[bool] = True  # PostgreSQL 12 and later

    def connect(self) -> Any:
        try:
            return ibis.postgres.connect(**postgres_kwargs(self.url))
        except ModuleNotFoundError as exc:
            raise EngineError(POSTGRES_MISSING) from exc
        except Exception as exc:  # noqa: BLE001 - any driver failure becomes one clear EngineError
            raise postgres_error(self.url, exc) from None

    def is_conflict(self, exc: BaseException) -> bool:
        return _sqlstate(exc) in CONFLICT_SQLSTATES

    # One multi-row VALUES with bound parameters: one round trip and one short transaction,
    # where Ibis's generic insert creates, fills and drops a temporary table (catalog writes
    # that concurrent writers would contend on).
    def param_mark(self, backend: Any) -> str:
        return "%s"

    def execute_bound(self, backend: Any, sql: str, params: Sequence[Any]) -> None:
        _run(backend.con, sql, params).close()

    @contextlib.contextmanager
    def transaction(self, backend: Any) -> Iterator[None]:
        # psycopg's transaction block works on the autocommit connection the registry uses.
        with backend.con.transaction():
            yield

    def execute(self, backend: Any, statement: sge.Expression) -> int:
        cursor = _run(backend.con, statement.sql("postgres"), None)
        try:
            return cursor.rowcount
        finally:
            cursor.close()

    def query(self, backend: Any, tree: sge.Expression, params: dict[str, Any]) -> pd.DataFrame:
        sql = _SQL_TEXT.get(id(tree))
        if sql is None or sql[0] is not tree:  # callers keep trees alive, so ids are stable
            sql = _SQL_TEXT[id(tree)] = (tree, _with_named_params(tree))
        # Never as a server-side prepared statement. psycopg prepares a query run five times
        # on one connection, and PostgreSQL then plans it once for any parameter values: a
        # generic plan that assumes a model holds an average share of the event log. The
        # registry's skew (one model with most of the versions) turns that plan's joins into
        # nested loops over the whole log -- 8 ms became 1.3-1.9 s at 12,000 events, growing
        # quadratically, on the per-model reads every set_alias, set_tag and delete makes.
        # Planned with the values each time, the same reads stay hash joins (a ms to plan).
        cursor = _run(backend.con, sql[1], params, prepare=False)
        try:
            rows = cursor.fetchall()
            columns = [d.name for d in cursor.description]
        finally:
            cursor.close()
        return pd.DataFrame.from_records(rows, columns=columns)


    def fingerprint(self, table: ir.Table, columns: Sequence[str] | None = None) -> ir.Scalar | None:
        # Ibis has no row hash for PostgreSQL: hash each row's text form with the
        # built-in 64-bit text hash and add them up (order-independent; SUM of bigint
        # is NUMERIC in PostgreSQL, so it cannot overflow).
        cells = [table[c].cast("string").fill_null("\\N") for c in (table.columns if columns is None else columns)]
        row = ibis.literal("\x1f").join(cells) if len(cells) > 1 else cells[0]
        return _hash_text(row, 0).cast("decimal(38, 0)").sum().cast("string")


def _with_named_params(tree: sge.Expression) -> str:
    """The SQL text of ``tree`` with each ``Placeholder(name)`` as psycopg's ``%(name)s``.

    Any other ``%`` (a LIKE pattern, a modulo) must be doubled for psycopg, so the
    placeholders go in as unique markers first and are swapped in after escaping.
    """
    token = secrets.token_hex(8)
    marked = tree.transform(
        lambda node: (
            sge.Var(this=f"neve_param_{token}_{node.this}_")
            if isinstance(node, sge.Placeholder)
            else node
        )
    )
    text = marked.sql("postgres").replace("%", "%%")
    names = {node.this for node in tree.find_all(sge.Placeholder)}
    for name in sorted(names, key=len, reverse=True):  # "model_x" before its prefix "model"
        text = text.replace(f"neve_param_{token}_{name}_", f"%({name})s")
    return text
