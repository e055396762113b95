"""Sessions over Ibis engines. Engine-specific code lives in this package and nowhere else."""

from neve.engine._driver import Driver
from neve.engine._drivers import driver_for, driver_for_backend, identifier_rules
from neve.engine._queries import QueryLog, capture_queries, execute, local_backend
from neve.engine._session import Session, connect
from neve.engine._url import DEFAULT_URL, EngineURL, parse_url

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
    "execute",
    "identifier_rules",
    "local_backend",
    "parse_url",
]
