"""Plain DB-API connections for a URL, without Ibis or pandas.

Reading a few registry rows from the shell (``neve models list``) should cost what
the engine's own client costs to import and connect, not the ~1 s that Ibis with its
compilers and pandas take to import. :func:`open_reader` gives a :class:`Reader` that
runs a SELECT written in SQL text (double-quoted identifiers, ``:name`` parameters)
and returns plain tuples: on its own DB-API connection for DuckDB and PostgreSQL,
and through the engine's Ibis driver for every other engine.

Importing this module imports neither Ibis nor pandas, nor any engine's client.
"""

from __future__ import annotations

import logging
import os
import random
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

from neve.engine._url import EngineURL, parse_url
from neve.errors import EngineError, EngineLockedError, InvalidURLError

__all__ = ["Reader", "duckdb_database", "lock_timeout", "open_reader", "open_waiting"]

log = logging.getLogger(__name__)

DEFAULT_LOCK_TIMEOUT = 120.0
# DuckDB names the holder as "in /path/to/python (PID 123)", or only "in PID 123".
_HOLDER = re.compile(r"Conflicting lock is held in (?:(?P<program>.+?) \()?PID (?P<pid>\d+)")
#: URL query keys neve reads itself; the rest go to the engine's client.
DUCKDB_NEVE_KEYS = frozenset({"lock_timeout"})
_PARAM = re.compile(r":([A-Za-z_][A-Za-z0-9_]*)")


# -- DuckDB: the file path and the lock wait, shared with the Ibis driver ---------------------


def duckdb_database(url: EngineURL) -> str:
    """``:memory:`` or the file path of a ``duckdb://`` URL.

    ``duckdb://``            in memory
    ``duckdb://file.duckdb`` relative (Ibis's form)
    ``duckdb:///./f.duckdb`` relative: a path starting with ``/./`` or ``/../``
    ``duckdb:///abs/f.duckdb`` absolute
    """
    raw = (url.host or "") + url.path
    if raw in ("", "/", ":memory:", "/:memory:"):
        return ":memory:"
    if raw.startswith(("/./", "/../", "/~", "//")):
        raw = raw[1:]
    return str(Path(raw).expanduser())


def local_file(url: EngineURL) -> Path | None:
    """The local file behind a URL's engine (a DuckDB file), if there is one."""
    if url.scheme != "duckdb":
        return None
    database = duckdb_database(url)
    return None if database == ":memory:" else Path(database).resolve()


def lock_timeout(url: EngineURL) -> float:
    """Seconds to wait for another process's lock on a DuckDB file (``?lock_timeout=``,
    else ``$NEVE_LOCK_TIMEOUT``, else two minutes)."""
    raw = url.query.get("lock_timeout") or os.environ.get("NEVE_LOCK_TIMEOUT")
    if raw is None:
        return DEFAULT_LOCK_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        raise InvalidURLError(f"lock_timeout must be a number of seconds, got {raw!r}") from None
    if value < 0:
        raise InvalidURLError(f"lock_timeout must be >= 0, got {value}")
    return value


def open_waiting(url: EngineURL, opener: Callable[[str, bool, dict[str, str]], Any], max_delay: float) -> Any:
    """``opener(database, read_only, config)``, retried while another process holds the
    file's lock: jittered exponential backoff up to :func:`lock_timeout`, then an error
    naming the file and the process holding it."""
    import duckdb

    config = {k: v for k, v in url.query.items() if k not in DUCKDB_NEVE_KEYS}
    read_only = str(config.pop("read_only", "false")).lower() in {"1", "true", "yes"}
    database = duckdb_database(url)
    if database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    timeout = lock_timeout(url)
    deadline = time.monotonic() + timeout
    delay = min(0.05, max_delay)
    while True:
        try:
            return opener(database, read_only, config)
        except duckdb.IOException as exc:
            holder = _HOLDER.search(str(exc))
            if holder is None:
                raise EngineError(f"cannot open DuckDB database {database}: {url.scrub(str(exc))}") from None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise EngineLockedError(
                    f"DuckDB file {database} is locked by another process: "
                    f"{holder['program'] or 'a process'} (PID {holder['pid']}); gave up after "
                    f"{timeout:g}s. Close that connection, or allow a longer wait "
                    f"with ?lock_timeout=SECONDS in the URL or $NEVE_LOCK_TIMEOUT."
                ) from exc
            log.debug("%s is locked by PID %s; retrying", database, holder["pid"])
            # Full jitter keeps parallel waiters from retrying in lockstep.
            time.sleep(min(remaining, random.uniform(0, delay)))
            delay = min(delay * 2, max_delay)
        except duckdb.Error as exc:  # e.g. a setting in the URL's query DuckDB refuses
            raise EngineError(f"cannot open DuckDB database {database}: {url.scrub(str(exc))}") from None


# -- PostgreSQL: the connection keywords, shared with the Ibis driver --------------------------


POSTGRES_MISSING = "PostgreSQL support is not installed: pip install 'neve[postgres]'"


def postgres_kwargs(url: EngineURL) -> dict[str, Any]:
    """psycopg's keywords for a ``postgres://`` URL (password included; ``schema`` is Ibis's
    own keyword, a search path, and stays in for the Ibis driver to pass on)."""
    kwargs: dict[str, Any] = dict(url.query)
    kwargs.setdefault("connect_timeout", "10")
    # libpq also takes the password as ?password=...; the one in user:pw@ wins.
    password = url.password if url.password is not None else kwargs.get("password")
    kwargs.pop("password", None)
    return {"host": url.host or "localhost", "port": url.port or 5432, "user": url.username,
            "password": password, "database": url.path.lstrip("/") or None, **kwargs}


def postgres_error(url: EngineURL, exc: BaseException) -> EngineError:
    # libpq echoes the values of connection options it rejects; say what failed without them.
    reason = (url.scrub(str(exc)).strip().splitlines() or [type(exc).__name__])[0]
    return EngineError(
        f"cannot connect to PostgreSQL at {url.host or 'localhost'}:{url.port or 5432} as "
        f"{url.username!r} ({url.redacted()}): {reason}"
    )


# -- readers ------------------------------------------------------------------------------


class Reader:
    """Runs SELECTs written with double-quoted identifiers and ``:name`` parameters;
    :meth:`query` returns ``(column names, rows as tuples)``."""

    def __init__(self, url: EngineURL) -> None:
        self.url = url

    def query(self, sql: str, params: dict[str, Any] | None = None) -> tuple[list[str], list[tuple]]:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _CursorReader(Reader):
    """A DB-API connection whose driver takes ``mark(name)`` for a named parameter."""

    def __init__(self, url: EngineURL, con: Any, mark: Callable[[str], str]) -> None:
        super().__init__(url)
        self._con, self._mark, self._sql = con, mark, {}

    def query(self, sql: str, params: dict[str, Any] | None = None) -> tuple[list[str], list[tuple]]:
        text = self._sql.get(sql)
        if text is None:
            text = self._sql[sql] = _PARAM.sub(lambda m: self._mark(m.group(1)), sql)
        return self._fetch(text, params or {})

    def _fetch(self, text: str, params: Any) -> tuple[list[str], list[tuple]]:
        cursor = self._con.cursor()
        try:
            cursor.execute(text, params)
            rows = cursor.fetchall()
            return [d[0] for d in cursor.description], [tuple(r) for r in rows]
        finally:
            cursor.close()

    def close(self) -> None:
        self._con.close()


class _DuckDBReader(_CursorReader):
    """DuckDB's Python client imports pandas (~0.8 s) the first time it binds any
    parameter, so a reader's few values -- text only, registry names already checked --
    go into the SQL as quoted literals instead, escaped as SQL escapes them."""

    def __init__(self, url: EngineURL, con: Any) -> None:
        super().__init__(url, con, str)

    def query(self, sql: str, params: dict[str, Any] | None = None) -> tuple[list[str], list[tuple]]:
        return self._fetch(_PARAM.sub(lambda m: _text_literal((params or {})[m.group(1)]), sql), [])


def _text_literal(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"a registry read binds text only, got {type(value).__name__}")
    return "'" + value.replace("'", "''") + "'"


class _IbisReader(Reader):
    """Any other engine: the SQL parsed by sqlglot and run through the engine's driver."""

    def __init__(self, url: EngineURL, text: str | None) -> None:
        from neve.engine import driver_for

        super().__init__(url)
        self._driver = driver_for(text)
        self._backend = self._driver.connect_briefly()

    def query(self, sql: str, params: dict[str, Any] | None = None) -> tuple[list[str], list[tuple]]:
        import sqlglot

        frame = self._driver.query(self._backend, sqlglot.parse_one(sql), params or {})
        rows = [tuple(None if _is_missing(v) else v for v in row) for row in frame.itertuples(index=False)]
        return list(frame.columns), rows

    def close(self) -> None:
        self._driver.close(self._backend)


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value) or type(value).__name__ == "NaTType"


def open_reader(url: str | None = None) -> Reader:
    """A :class:`Reader` on the engine at ``url`` (``None``: ``$NEVE_URL``, else the default).
    A DuckDB file that does not exist yet is created, as a connection creates it; check
    :func:`local_file` first where that must not happen."""
    parsed = parse_url(url)
    if parsed.scheme == "duckdb":
        return _duckdb_reader(parsed)
    if parsed.scheme in ("postgres", "postgresql"):
        return _postgres_reader(parsed)
    return _IbisReader(parsed, url)


def _duckdb_reader(url: EngineURL) -> Reader:
    import duckdb

    def opener(database: str, read_only: bool, config: dict[str, str]) -> Any:
        return duckdb.connect(database, read_only=read_only, config=config)

    # Polls often: the writers a reader waits for hold the file for milliseconds.
    con = open_waiting(url, opener, max_delay=0.1)
    return _DuckDBReader(url, con)


def _postgres_reader(url: EngineURL) -> Reader:
    try:
        import psycopg
    except ModuleNotFoundError as exc:
        raise EngineError(POSTGRES_MISSING) from exc
    kwargs = postgres_kwargs(url)
    schema = kwargs.pop("schema", None)
    try:
        con = psycopg.connect(dbname=kwargs.pop("database"), autocommit=True, **kwargs)
    except Exception as exc:  # noqa: BLE001 - any driver failure becomes one clear EngineError
        raise postgres_error(url, exc) from None
    if schema:
        con.execute("SELECT set_config('search_path', %s, false)", (schema,))
    # No server-side prepared statements: their generic plans are ruinous on a skewed event
    # log (see PostgresDriver.query), and a long-lived reader repeats its queries.
    con.prepare_threshold = None
    # psycopg reads every % as a placeholder mark; the SQL text neve writes has none.
    return _CursorReader(url, con, lambda name: f"%({name})s")
