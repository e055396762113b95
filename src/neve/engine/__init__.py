"""Sessions over Ibis engines. Engine-specific code lives in this package and nowhere else."""

from __future__ import annotations

from neve.engine._airflow_conn import url_from_env
from neve.engine._driver import Driver
from neve.engine._queries import QueryLog, capture_queries, execute, local_backend
from neve.engine._session import Session
from neve.engine._url import DEFAULT_URL, EngineURL, parse_url
from neve.engine.duckdb import DuckDBDriver
from neve.engine.postgres import PostgresDriver
from neve.engine.snowflake import SnowflakeDriver
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
    "execute",
    "local_backend",
    "parse_url",
]

_DRIVERS: dict[str, type[Driver]] = {
    scheme: driver for driver in (DuckDBDriver, PostgresDriver, SnowflakeDriver) for scheme in driver.schemes
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


def connect(url: str | None = None, *, airflow_conn_id: str | None = None) -> Session:
    """Open a :class:`Session`.

    ``url`` follows Ibis's forms: ``duckdb://`` (in memory), ``duckdb:///./file.duckdb``,
    ``postgres://user:pw@host:5432/db``. Without one, ``$NEVE_URL`` is used, else
    ``duckdb:///./neve.duckdb``.

    ``airflow_conn_id`` takes the engine from an Airflow connection instead, read from
    ``AIRFLOW_CONN_<ID>`` (URI or JSON form) without importing Airflow, as in a task
    environment that Airflow launched.
    """
    if airflow_conn_id is not None:
        if url is not None:
            raise InvalidURLError("pass either a URL or airflow_conn_id to connect(), not both")
        url = url_from_env(airflow_conn_id)
    driver = driver_for(url)
    return Session(driver, driver.connect())
