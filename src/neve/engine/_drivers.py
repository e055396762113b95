"""Which driver speaks for an engine: by URL scheme, by Ibis backend, or by a table's backend."""

from __future__ import annotations

from typing import Any

from neve.engine._driver import Driver
from neve.engine._url import EngineURL, parse_url
from neve.engine.duckdb import DuckDBDriver
from neve.engine.postgres import PostgresDriver
from neve.engine.snowflake import SnowflakeDriver
from neve.engine.spark import SparkDriver
from neve.errors import InvalidURLError

__all__ = ["driver_for", "driver_for_backend", "identifier_rules"]

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
