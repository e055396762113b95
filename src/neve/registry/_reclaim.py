"""Reusing a version name that no live version holds.

A version name is claimed by its row in ``NEVE_MODEL_VERSIONS`` (the primary key
keeps it unique). A row can outlive every version that used it: the version was
deleted, its ``log_model`` failed and abandoned it, or the writer was killed
between reserving the row and committing. Such a name must be loggable again --
an Airflow task that names versions after its run id and is OOM-killed retries
with the same name.

Reclaiming archives the earlier attempt rather than erasing it: in one
transaction its row, its events and the aliases that pointed at it are renamed
to ``<name>~<id>`` (invisible, as it was), so the event log keeps its history
and nothing of it -- metrics, tags, an alias such as ``production`` -- can leak
onto the new version. The rename is guarded by the old row's identity: of two
writers reclaiming the same name, one renames and inserts, the other finds the
name taken and gets :class:`DuplicateVersionError`.

An uncommitted row is reclaimed only when its writer is known to be gone: a
process on this host that no longer exists, or a reservation older than
:data:`STALE_AFTER` seconds (the age :meth:`Registry.gc` also treats as a crash).
A writer that is still alive keeps its name.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlglot.expressions as sge

from neve.errors import DuplicateVersionError
from neve.registry import _tables
from neve.registry._tables import EVENTS, VERSIONS, event_id

if TYPE_CHECKING:
    from neve.engine import Driver
    from neve.registry._tables import Store

__all__ = ["STALE_AFTER", "Holder", "holder", "reclaim"]

#: Seconds after which an uncommitted reservation of a writer on another host counts as crashed.
STALE_AFTER = 3600.0


@dataclass(frozen=True)
class Holder:
    """What currently holds a version name."""

    created_at: Any
    run_context: str | None
    committed: bool
    deleted: bool

    @property
    def writer(self) -> dict[str, Any]:
        try:
            return json.loads(self.run_context or "{}")
        except ValueError:
            return {}

    def writer_is_gone(self) -> bool:
        host, pid = self.writer.get("host"), self.writer.get("pid")
        if host == socket.gethostname() and isinstance(pid, int) and pid != os.getpid():
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            except OSError:  # exists, owned by someone else
                return False
            return False
        created = self.created_at.to_pydatetime() if hasattr(self.created_at, "to_pydatetime") else self.created_at
        return created < datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=STALE_AFTER)

    def reclaimable(self) -> bool:
        return self.deleted or (not self.committed and self.writer_is_gone())


def holder(store: Store, backend: Any, model: str, version: str) -> Holder | None:
    """The row holding ``version`` of ``model`` and whether it was committed or deleted."""

    def row(s: Any, p: Any) -> Any:
        v = s.table(VERSIONS)
        return v.filter((v.MODEL_NAME == p["model"]) & (v.VERSION_NAME == p["version"])).select(
            "CREATED_AT", "RUN_CONTEXT"
        )

    def kinds(s: Any, p: Any) -> Any:
        e = s.table(EVENTS)
        return e.filter(
            (e.MODEL_NAME == p["model"]) & (e.VERSION_NAME == p["version"])
            & e.KIND.isin([_tables.COMMIT, _tables.DELETE])
        ).select("KIND").distinct()

    params = {"model": model, "version": version}
    rows = store.run(backend, row, params)
    found = set(store.run(backend, kinds, params)["KIND"])
    if rows.empty:
        return None
    first = rows.iloc[0]
    return Holder(first["CREATED_AT"], first["RUN_CONTEXT"], _tables.COMMIT in found, _tables.DELETE in found)


def refuse(model: str, version: str, held: Holder) -> DuplicateVersionError:
    if held.committed:
        return DuplicateVersionError(
            f"model {model!r} already has a version named {version!r}; pick another name or omit "
            f"version_name to get the next v<N>"
        )
    writer = held.writer
    return DuplicateVersionError(
        f"version {version!r} of model {model!r} is being logged by process {writer.get('pid')} on "
        f"{writer.get('host')!r} since {held.created_at}; if that process is gone, the name is free "
        f"once it is older than {STALE_AFTER:g} s (or use another name)"
    )


def reclaim(store: Store, driver: Driver, backend: Any, model: str, version: str, held: Holder) -> str | None:
    """Archive the earlier attempt holding ``version`` so the name can be inserted again; the
    name it now has (``<version>~<id>``), or None when another writer changed the row first
    (the caller then looks again). An attempt not yet deleted needs a DELETE event under the
    archived name, which the caller appends."""
    archived = f"{version}~{event_id()}"

    def col(name: str) -> sge.Column:
        return sge.column(name, quoted=True)

    def update(table: str, column: str, where: list[sge.Expression]) -> sge.Update:
        return sge.Update(
            this=store._target(table),
            expressions=[sge.EQ(this=col(column), expression=sge.convert(archived))],
            where=sge.Where(this=sge.and_(*where)),
        )

    same_model = col("MODEL_NAME").eq(sge.convert(model))
    row_is_the_one_seen = [
        same_model,
        col("VERSION_NAME").eq(sge.convert(version)),
        col("CREATED_AT").eq(sge.convert(_naive(held.created_at))),
        col("RUN_CONTEXT").eq(sge.convert(held.run_context)) if held.run_context is not None
        else col("RUN_CONTEXT").is_(sge.null()),
    ]
    named = col("VERSION_NAME").eq(sge.convert(version))
    # Alias events name their target in VALUE_STR too: an alias that pointed at the old
    # attempt must keep pointing at it, never at the new version.
    aliases = [same_model, col("KIND").eq(sge.convert(_tables.ALIAS)), col("VALUE_STR").eq(sge.convert(version))]
    try:
        with driver.transaction(backend):
            if driver.execute(backend, update(VERSIONS, "VERSION_NAME", row_is_the_one_seen)) != 1:
                raise _Lost
            driver.execute(backend, update(EVENTS, "VERSION_NAME", [same_model, named]))
            driver.execute(backend, update(EVENTS, "VALUE_STR", aliases))
    except _Lost:
        return None
    return archived


class _Lost(Exception):
    """Another writer reclaimed or re-logged the name between our look and our rename."""


def _naive(value: Any) -> datetime:
    value = value.to_pydatetime() if hasattr(value, "to_pydatetime") else value
    return value.replace(tzinfo=None) if value.tzinfo is not None else value
