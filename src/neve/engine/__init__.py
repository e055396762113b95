"""Sessions over Ibis engines. Engine-specific code lives in this package and nowhere else.

Names load on first use: a module of this package that needs no Ibis (the URL parser,
the plain DB-API readers of ``_dbapi`` behind ``neve models list``) is imported without
Ibis and pandas coming along.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from neve._lazy_exports import lazy_exports

if TYPE_CHECKING:
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

_LAZY = {
    "Driver": "neve.engine._driver",
    **dict.fromkeys(("driver_for", "driver_for_backend", "identifier_rules"), "neve.engine._drivers"),
    **dict.fromkeys(("QueryLog", "capture_queries", "execute", "local_backend"), "neve.engine._queries"),
    **dict.fromkeys(("Session", "connect"), "neve.engine._session"),
    **dict.fromkeys(("DEFAULT_URL", "EngineURL", "parse_url"), "neve.engine._url"),
}

__getattr__ = lazy_exports(__name__, _LAZY)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
