"""Sessions over Ibis engines. Engine-specific code lives in this package and nowhere else."""

from __future__ import annotations

from typing import Any

from neve.engine._airflow_conn import url_from_env
from neve.engine._driver import Driver
from neve.engine._queries import QueryLog, capture_queries, execute, local_backend
from neve.engine._session import Session
from neve.engine._url import DEFAULT_URL, EngineURL, parse_url
from neve.engine.duckdb import DuckDBDriver
from neve.engine.postgres import PostgresDriver
from neve.engine.snowflake import SnowflakeDriver
from neve.engine.spark import SparkDriver
from neve.errors import InvalidURLError

__all__ = [
    "DEFAULT_URL",
    "Driver",
    "EngineURL",
    "QueryLog",
    "Session",
    "capture_queries",
    "connect",
    "driver_for",
    "driver_for_backend",
    "identifier_rules",
    "execute",
    "local_backend",
    "parse_url",
]

_DRIVERS: dict[str, type[Driver]] = {
    scheme: driver for driver in (DuckDBDriver, PostgresDriver, SnowflakeDriver, SparkDriver)
    for scheme in driver.schemes
}


def driver_for(url: str | None = None) -> Driver:
    """The driver for ``url`` without opening a connection."""
    parsed = parse_url(url)
    driver_cls = _DRIVERS.get(parsed.scheme)
    if driver_cls is None:
        raise InvalidURLError(
            f"no engine for scheme {parsed.scheme!r} in {parsed.redacted()}; "
            f"supported: {', '.join(sorted(_DRIVERS))}"
        )
    return driver_cls(parsed)


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


def driver_for_backend(backend: Any) -> Driver:
    """The driver for an Ibis backend opened elsewhere (its URL is descriptive only)."""
    driver_cls = _DRIVERS.get(getattr(backend, "name", None))
    if driver_cls is None:
        return Driver(EngineURL(scheme=getattr(backend, "name", "generic")))
    if driver_cls is SnowflakeDriver:
        return SnowflakeDriver(SnowflakeDriver.url_of(backend.con))
    return driver_cls(EngineURL(scheme=driver_cls.schemes[0]))


def identifier_rules(table: Any) -> type[Driver]:
    """The driver class whose ``resolve_column`` / ``new_column_name`` give the identifier
    rules of the engine ``table`` lives on; in-memory tables (pandas input) keep names as given."""
    from ibis.common.exceptions import IbisError

    try:
        backend = table._find_backend(use_default=False)
    except IbisError:  # an in-memory table bound to no backend yet
        return Driver
    return _DRIVERS.get(getattr(backend, "name", None), Driver)
