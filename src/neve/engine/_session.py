"""Session: one connection to one engine, and the handful of operations neve needs from it."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

import ibis
import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa

from neve.engine import _queries
from neve.engine._airflow_conn import url_from_env
from neve.engine._driver import Driver, check_files
from neve.engine._drivers import driver_for, driver_for_backend
from neve.errors import InvalidURLError, NeveInputError, TableNotFoundError

__all__ = ["Session", "connect"]


class Session:
    """A connection to an engine. Create one with :func:`neve.connect`.

    Tables come back as lazy Ibis expressions; nothing runs until a result is
    executed or saved. ``session.engine`` is the Ibis backend for everything else.
    """

    def __init__(self, driver: Driver, backend: Any) -> None:
        self.driver = driver
        self.engine = backend

    @classmethod
    def from_backend(cls, backend: Any) -> Session:
        """A session over an Ibis backend the caller opened (``ibis.snowflake.from_connection``,
        ``ibis.postgres.connect`` ...). Closing the session closes the backend."""
        if isinstance(backend, Session) or not hasattr(backend, "compile"):
            raise NeveInputError(
                f"Session.from_backend takes an ibis backend, got {type(backend).__name__}"
            )
        return cls(driver_for_backend(backend), backend)

    @classmethod
    def from_connection(cls, connection: Any) -> Session:
        """A session over a connection the caller already holds: a Snowflake connector
        connection, a Snowpark ``Session`` or an Ibis backend. neve runs its queries on it
        and never re-opens it, so SSO or key-pair authentication stay the caller's affair."""
        if hasattr(connection, "compile") and hasattr(connection, "name"):
            return cls.from_backend(connection)
        from neve.engine.snowflake import SnowflakeDriver

        driver, backend = SnowflakeDriver.adopt(connection)
        return cls(driver, backend)

    @property
    def url(self) -> str:
        """The connection URL with any password masked."""
        return self.driver.url.redacted()

    @property
    def dialect(self) -> str:
        return self.engine.name

    def __repr__(self) -> str:
        return f"Session({self.url!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the connection (and, on DuckDB, the file lock)."""
        self.driver.close(self.engine)

    def list_tables(self) -> list[str]:
        return list(self.engine.list_tables())

    def table(self, name: str) -> ir.Table:
        """The table ``name`` as a lazy Ibis expression."""
        tables = self.list_tables()
        if name not in tables:
            hint = difflib.get_close_matches(name, tables, n=3)
            raise TableNotFoundError(
                f"table {name!r} not found in {self.url}"
                + (f"; did you mean {', '.join(map(repr, hint))}?" if hint else "")
                + f" (available: {', '.join(sorted(tables)) or 'none'})"
            )
        return self.engine.table(name)

    def create_table(
        self, name: str, data: pd.DataFrame | pa.Table | ir.Table, *, overwrite: bool = False
    ) -> ir.Table:
        """Store ``data`` (pandas, pyarrow or an Ibis expression) as table ``name``."""
        if not isinstance(data, (pd.DataFrame, pa.Table, ir.Table)):
            raise NeveInputError(
                f"create_table({name!r}) takes a pandas DataFrame, a pyarrow Table or an ibis "
                f"Table, got {type(data).__name__}"
            )
        if not overwrite and name in self.list_tables():
            raise NeveInputError(f"table {name!r} already exists; pass overwrite=True to replace it")
        return self.engine.create_table(name, obj=data, overwrite=overwrite)

    def load_files(
        self, paths: Sequence[str | Path] | str | Path, table: str, *, overwrite: bool = False
    ) -> ir.Table:
        """Bulk-load CSV or Parquet files into ``table`` with the engine's native reader.

        With ``overwrite=False`` the rows are appended when the table exists.
        """
        return self.driver.load_files(self.engine, check_files(paths), table, overwrite=overwrite)

    def execute(self, expr: ir.Expr, **kwargs: Any) -> Any:
        """Run ``expr`` and return pandas (DataFrame, Series or scalar)."""
        return _queries.execute(expr, **kwargs)

    def to_sql(self, expr: ir.Expr) -> str:
        return str(ibis.to_sql(expr, dialect=self.dialect))


def connect(
    url: str | None = None, *, connection: Any = None, airflow_conn_id: str | None = None
) -> Session:
    """Open a :class:`Session`.

    ``url`` follows Ibis's forms: ``duckdb://`` (in memory), ``duckdb:///./file.duckdb``,
    ``postgres://user:pw@host:5432/db``,
    ``snowflake://user:pw@account/DB/SCHEMA?warehouse=WH&role=R``,
    ``spark://local[2]/path/to/warehouse?database=DB`` (Spark in this process, or a
    ``spark://host:7077`` master), ``sc://host:15002`` (Spark Connect). Without one,
    ``$NEVE_URL`` is used, else ``duckdb:///./neve.duckdb``.

    ``connection`` adopts one the caller already holds instead: a Snowflake connector
    connection, a Snowpark ``Session`` or an Ibis backend (see :meth:`Session.from_connection`).

    ``airflow_conn_id`` takes the engine from an Airflow connection, read from
    ``AIRFLOW_CONN_<ID>`` (URI or JSON form) without importing Airflow, as in a task
    environment that Airflow launched.
    """
    if sum(x is not None for x in (url, connection, airflow_conn_id)) > 1:
        raise InvalidURLError("pass connect() a url, a connection or an airflow_conn_id, not both")
    if connection is not None:
        return Session.from_connection(connection)
    if airflow_conn_id is not None:
        url = url_from_env(airflow_conn_id)
    driver = driver_for(url)
    return Session(driver, driver.connect())
