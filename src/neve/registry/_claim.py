"""Claiming a version name on an engine whose tables enforce no keys (Spark).

On DuckDB and PostgreSQL the primary key of ``NEVE_MODEL_VERSIONS`` arbitrates: of two
writers inserting one name, the second fails. Spark's Parquet tables accept both rows, so
the name is first claimed through the append-only event log, which needs no key:

1. append a ``claim`` event for the name, carrying a token of this attempt;
2. read the name's claims, then its version rows -- in that order (``Store.run`` refreshes
   the tables first: a Spark session caches their file listings);
3. the attempt wins only if its claim is the only open one and no row holds the name:
   it then inserts the version row and appends a ``release`` of its token. Otherwise it
   releases its claim and loses, and tries again after a random wait: a named version
   until it wins or a row holds the name (then it is refused), an automatic ``v<N>`` one
   number past every number claimed.

Of two attempts that overlap, the one that reads second sees the other's claim (appends
are visible once acknowledged), so at most one wins; both may lose, and an automatic name
then retries. A winner releases only after its row is in, so a later claimant that sees
the release also sees the row (it reads the claims before the rows). A claim whose writer
was killed before releasing blocks its name for :data:`CLAIM_GRACE` seconds, then counts
as gone. A writer paused past that grace could still collide: after inserting, the winner
counts the name's rows and refuses loudly if there are two, and ``neve registry check``
reports a name held by more than one row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pandas as pd

from neve.errors import DuplicateVersionError
from neve.registry import _tables
from neve.registry._tables import EVENTS, VERSIONS, event_id

if TYPE_CHECKING:
    from neve.registry._tables import Store

__all__ = ["CLAIM_GRACE", "Outcome", "claim"]

#: Seconds after which a claim never released counts as its writer's crash. A live claim is
#: released within seconds (one insert and one append after it was made).
CLAIM_GRACE = 300.0


@dataclass(frozen=True)
class Outcome:
    won: bool
    #: The highest version number any open claim or row of the model holds (for the next v<N>).
    highest: int
    #: Whether a version row already holds the name (then it is refused or skipped).
    held: bool


def claim(
    store: Store, backend: Any, append: Callable[[list[tuple[Any, ...]]], None],
    model: str, name: str, insert_row: Callable[[], None], number_of: Callable[[str], int | None],
) -> Outcome:
    """Try once to claim ``name`` of ``model``; on a win ``insert_row()`` has inserted its row."""
    token = event_id()
    append([(model, name, _tables.CLAIM, token, None, None)])
    claims = store.run(backend, _claims, {"model": model})
    rows = store.run(backend, _rows, {"model": model})
    open_claims = _open(claims)
    numbers = [number_of(v) or 0 for v in [*open_claims.VERSION_NAME, *rows.VERSION_NAME]]
    held = bool((rows.VERSION_NAME == name).any())
    rivals = open_claims[(open_claims.VERSION_NAME == name) & (open_claims.KEY != token)]
    won = not held and rivals.empty
    if won:
        try:
            insert_row()
        finally:
            append([(model, name, _tables.RELEASE, token, None, None)])
        _refuse_if_doubled(store, backend, model, name)
    else:
        append([(model, name, _tables.RELEASE, token, None, None)])
    return Outcome(won, max(numbers, default=0), held)


def _open(claims: pd.DataFrame) -> pd.DataFrame:
    released = set(claims.KEY[claims.KIND == _tables.RELEASE])
    cutoff = datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=CLAIM_GRACE)
    made = claims[claims.KIND == _tables.CLAIM]
    return made[~made.KEY.isin(released) & (pd.to_datetime(made.CREATED_AT) > cutoff)]


def _refuse_if_doubled(store: Store, backend: Any, model: str, name: str) -> None:
    rows = store.run(backend, _rows, {"model": model})
    if int((rows.VERSION_NAME == name).sum()) > 1:
        raise DuplicateVersionError(
            f"version {name!r} of model {model!r} is now held by more than one row: another writer "
            f"inserted it despite this one's claim (paused past the {CLAIM_GRACE:g} s grace, or a "
            f"clock far off). Nothing was logged by this call; run `neve registry check`"
        )


def _claims(s: Store, p: Any) -> Any:
    e = s.table(EVENTS)
    e = e.filter((e.MODEL_NAME == p["model"]) & e.KIND.isin([_tables.CLAIM, _tables.RELEASE]))
    return e.select("VERSION_NAME", "KIND", "KEY", "CREATED_AT")


def _rows(s: Store, p: Any) -> Any:
    v = s.table(VERSIONS)
    return v.filter(v.MODEL_NAME == p["model"]).select("VERSION_NAME")
