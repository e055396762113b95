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


def _run(con: Any, sql: str, params: Any) -> Any:
    """Execute one statement. On the usual autocommit connection it is its own short
    transaction; on a connection the caller keeps in a transaction it joins that one."""
    cursor = con.cursor()
    try:
        cursor.execute(sql, params)
    except BaseException:
        cursor.close()
        if not con.autocommit:
            con.rollback()
        raise
    return cursor


class PostgresDriver(Driver):
    name: ClassVar[str] = "postgres"
    schemes: ClassVar[tuple[str, ...]] = ("postgres", "postgresql")

    def connect(self) -> Any:
        url = self.url
        host, port = url.host or "localhost", url.port or 5432
        kwargs = dict(url.query)
        kwargs.setdefault("connect_timeout", "10")
        # libpq also takes the password as ?password=...; the one in user:pw@ wins.
        password = url.password if url.password is not None else kwargs.get("password")
        kwargs.pop("password", None)
        try:
            return ibis.postgres.connect(
                host=host,
                port=port,
                user=url.username,
                password=password,
                database=url.path.lstrip("/") or None,
                **kwargs,
            )
        except ModuleNotFoundError as exc:
            raise EngineError(
                "PostgreSQL support is not installed: pip install 'neve[postgres]'"
            ) from exc
        except Exception as exc:  # noqa: BLE001 - any driver failure becomes one clear EngineError
            # libpq echoes the values of connection options it rejects; say what failed without them.
            reason = (url.scrub(str(exc)).strip().splitlines() or [type(exc).__name__])[0]
            raise EngineError(
                f"cannot connect to PostgreSQL at {host}:{port} as {url.username!r} "
                f"({url.redacted()}): {reason}"
            ) from None

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
        cursor = _run(backend.con, sql[1], params)
        try:
            rows = cursor.fetchall()
            columns = [d.name for d in cursor.description]
        finally:
            cursor.close()
        return pd.DataFrame.from_records(rows, columns=columns)

    def fingerprint(self, table: ir.Table) -> ir.Scalar | None:
        # Ibis has no row hash for PostgreSQL: hash each row's text form with the
        # built-in 64-bit text hash and add them up (order-independent; SUM of bigint
        # is NUMERIC in PostgreSQL, so it cannot overflow).
        cells = [table[c].cast("string").fill_null("\\N") for c in table.columns]
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
