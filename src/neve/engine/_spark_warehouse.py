"""Local Spark's tables outlive the process, as a DuckDB file's do.

Local Spark keeps its catalog in memory: the Parquet folders of managed tables stay under
the warehouse when the process ends, but the next process neither sees them nor may create
a table over one (``LOCATION_ALREADY_EXISTS``). So when neve starts a local Spark it adopts
what earlier runs left: every ``<db>.db`` folder becomes a database again and every table
folder holding Parquet a managed table of its database, at its own location, with the
schema its files carry. Managed, not external: dropping or overwriting it then deletes its
files as Spark does for tables it made, rather than leaving them to be adopted again.

A metastore would also remember them, but Hive's lower-cases table names (neve's are upper
case, and Spark runs case-sensitive here) and its embedded Derby database admits one process
at a time. What the files do not hold is not adopted: views (the registry recreates its own),
and tables that never held a row (their folder is empty; creating the table again works).
"""

from __future__ import annotations

import logging
import shutil
import uuid
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DATABASE_SUFFIX = ".db"
DEFAULT_DATABASE = "default"


def adopt_tables(session: Any, warehouse: Path) -> list[str]:
    """Register the tables earlier processes left under ``warehouse``; return their names
    (``db.table``). A folder that cannot be read is logged and left alone, never deleted."""
    adopted = []
    for database, folder in _table_folders(warehouse):
        if database != DEFAULT_DATABASE:
            session.sql(f"CREATE DATABASE IF NOT EXISTS {_quote(database)}")
        if session.catalog.tableExists(folder.name, database) or not _holds_data(folder):
            continue
        try:
            _register_managed(session, database, folder.name, folder)
        except Exception as exc:  # noqa: BLE001 - one unreadable folder must not stop Spark
            log.warning("not adopting %s as table %s.%s: %s", folder, database, folder.name, _first_line(exc))
            continue
        adopted.append(f"{database}.{folder.name}")
    return adopted


def clear_leftover(session: Any, name: str, database: str | None, *, overwrite: bool) -> None:
    """Before a table ``name`` is created: delete the folder an earlier table of that name left
    at its managed location, which no table owns now (Spark refuses to create a table over
    it). Only with ``overwrite=True``, or when the folder holds no data (a killed job's
    ``_temporary``): data that was never adopted is not neve's to delete unasked."""
    database = database or session.catalog.currentDatabase()
    if session.catalog.tableExists(name, database):
        return  # an overwrite drops it, files and all; otherwise Spark reports it exists
    location = _default_location(session, name, database)
    if location is None or not location.is_dir() or not (overwrite or not _holds_data(location)):
        return
    log.info("removing %s, left by an earlier table %s.%s", location, database, name)
    shutil.rmtree(location)


def _table_folders(warehouse: Path) -> list[tuple[str, Path]]:
    if not warehouse.is_dir():
        return []
    found = []
    for entry in sorted(warehouse.iterdir()):
        if not entry.is_dir() or entry.name.startswith((".", "_")):
            continue
        if entry.name.endswith(DATABASE_SUFFIX):
            database = entry.name.removesuffix(DATABASE_SUFFIX)
            tables = [t for t in sorted(entry.iterdir()) if t.is_dir() and not t.name.startswith((".", "_"))]
            found += [(database, t) for t in tables]
        else:
            found.append((DEFAULT_DATABASE, entry))
    return found


def _holds_data(folder: Path) -> bool:
    """A Parquet file outside Spark's hidden ``_temporary`` (a killed job's leftovers)."""
    return any(
        not any(part.startswith(("_", ".")) for part in p.relative_to(folder).parts) for p in folder.rglob("*.parquet")
    )


def _register_managed(session: Any, database: str, name: str, folder: Path) -> None:
    # Spark SQL can only register a folder as an EXTERNAL table; it infers the schema
    # (and partition columns) from the files. The catalog's own createTable then takes
    # the same definition as MANAGED, with validateLocation off since the folder is
    # meant to be there.
    jvm = session._jvm
    catalog = session._jsparkSession.sessionState().catalog()
    probe = f"__neve_adopt_{uuid.uuid4().hex}"
    session.sql(f"CREATE TABLE {_quote(database)}.{_quote(probe)} USING parquet LOCATION '{_sql_string(folder)}'")
    try:
        external = catalog.getTableMetadata(_identifier(jvm, probe, database))
    finally:
        session.sql(f"DROP TABLE IF EXISTS {_quote(database)}.{_quote(probe)}")  # external: files stay
    n_fields = next(m for m in external.getClass().getMethods() if m.getName() == "copy").getParameterCount()
    fields = [getattr(external, f"copy$default${i}")() for i in range(1, n_fields + 1)]
    fields[0] = _identifier(jvm, name, database)  # CatalogTable(identifier, tableType, ...)
    fields[1] = jvm.org.apache.spark.sql.catalyst.catalog.CatalogTableType.MANAGED()
    catalog.createTable(external.copy(*fields), False, False)


def _default_location(session: Any, name: str, database: str) -> Path | None:
    catalog = session._jsparkSession.sessionState().catalog()
    uri = catalog.defaultTablePath(_identifier(session._jvm, name, database))
    return Path(uri.getPath()) if uri.getScheme() in (None, "file") else None


def _identifier(jvm: Any, name: str, database: str) -> Any:
    return jvm.org.apache.spark.sql.catalyst.TableIdentifier(name, jvm.scala.Some(database))


def _quote(identifier: str) -> str:
    return "`" + identifier.replace("`", "``") + "`"


def _sql_string(path: Path) -> str:
    return str(path).replace("\\", "\\\\").replace("'", "\\'")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
