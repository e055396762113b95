"""``Registry.check``: does the registry hold what it claims to, down to every byte?

For every live version it reads the manifest, checks it against the hash its COMMIT
event recorded, and hashes every file the manifest lists. It also checks that

- every version row belongs to a model, and every event to a version row (or to the
  model, for model-level events); no version name is held by two rows or committed
  twice; nothing but a deletion was written on a version that was never committed;
- every alias points at a version that was committed (an alias whose version was
  deleted is hidden by the registry and reported only as a note);
- no stage folder outlives its version, and no reservation its writer, by more than
  the gc grace (``older_than``, the age :meth:`Registry.gc` waits for).

Other processes may be writing while it runs. A reading taken mid-write (a version
reserved but not yet committed, a folder whose deletion is under way, a name being
reclaimed) is not damage, so a problem is reported only if a second pass, run after
the first, finds it again.

``repair=True`` runs :meth:`Registry.gc` with the same grace and nothing else: it
removes orphaned folders and marks abandoned reservations deleted. Damaged files,
stray events and dangling aliases are left for a person to look at.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import ibis
import pandas as pd

from neve.errors import ArtifactError, NeveError
from neve.registry import _tables
from neve.registry._package import MANIFEST, check_file, check_manifest
from neve.registry._tables import EVENTS, MODELS, VERSIONS

if TYPE_CHECKING:
    from neve.registry._registry import Registry

__all__ = ["CheckReport", "Problem", "check"]

# Kinds that may sit on a version that was never committed: the deletion gc or an
# abandoned log_model writes, and nothing else.
_ALLOWED_UNCOMMITTED = {_tables.DELETE, _tables.CLAIM, _tables.RELEASE}


@dataclass(frozen=True)
class Problem:
    """One thing found wrong: ``kind`` is a short stable code, ``message`` says what and where."""

    kind: str
    model: str | None
    version: str | None
    message: str

    def __str__(self) -> str:
        return f"[{self.kind}] {self.message}"


@dataclass
class CheckReport:
    """What :meth:`Registry.check` found. ``ok`` when ``problems`` is empty."""

    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    versions_checked: int = 0
    files_checked: int = 0
    folders_checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        lines = [
            f"{self.versions_checked} live version(s), {self.files_checked} file(s), "
            f"{self.folders_checked} stage folder(s) checked: "
            + ("no problems" if self.ok else f"{len(self.problems)} problem(s)")
        ]
        lines += [f"  {p}" for p in self.problems]
        lines += [f"  note: {n}" for n in self.notes]
        lines += [f"  repaired: {r}" for r in self.repaired]
        return "\n".join(lines)


def check(registry: Registry, *, older_than: float = 3600.0, repair: bool = False) -> CheckReport:
    """See the module docstring; ``older_than`` is the gc grace in seconds."""
    repaired = registry.gc(older_than=older_than) if repair else []
    first = _Pass(registry, older_than).run()
    if first.ok:
        first.repaired = repaired
        return first
    second = _Pass(registry, older_than).run()
    # Matched on what and where, not on the message: an orphan's age in it has grown
    # between the passes (by seconds on a slow engine), and it is the same problem.
    seen = {(p.kind, p.model, p.version) for p in first.problems}
    second.problems = [p for p in second.problems if (p.kind, p.model, p.version) in seen]
    second.repaired = repaired
    return second


def _age_seconds(when: Any, now: datetime) -> float:
    when = when.to_pydatetime() if hasattr(when, "to_pydatetime") else when
    if when.tzinfo is not None:
        when = when.astimezone(UTC).replace(tzinfo=None)
    return (now - when).total_seconds()


def _event_summary(e: Any) -> Any:
    """One row per version (and per model, for its model-level events) of events ``e``: what
    the check needs of them, counted in the engine."""
    commit, delete = e.KIND == _tables.COMMIT, e.KIND == _tables.DELETE
    return e.group_by(["MODEL_NAME", "VERSION_NAME"]).aggregate(
        N_EVENTS=e.count(),
        N_COMMIT=e.count(where=commit),
        SHA=e.VALUE_STR.max(where=commit),  # the manifest hash the commit recorded
        N_DELETE=e.count(where=delete),
        DELETED_AT=e.CREATED_AT.max(where=delete),
        N_UNCLAIMED=e.count(where=~e.KIND.isin([_tables.CLAIM, _tables.RELEASE])),
        N_STRAY=e.count(where=~e.KIND.isin(sorted(_ALLOWED_UNCOMMITTED))),
        N_UNKNOWN=e.count(where=~e.KIND.isin(list(_tables.KINDS))),
    )


def _versions_to_check(s: Any, p: Any) -> Any:
    """Every version name (and every model with events) the check must look at, with its rows
    and what its events amount to, joined in the engine.

    Left out are the versions nothing can be wrong with, which are most of a registry's
    history: deleted, with one row, one commit, a model row and no event of unknown kind.
    Every other check needs nothing of them; an orphaned folder of one asks for its deletion
    time alone (:func:`_deletion`), and aliases come with their own commit status. Shipping
    a row per version ever logged made each check slower than the last (a PostgreSQL driver
    without its C extension loads some ten thousand cells a second)."""
    v = s.table(VERSIONS)
    rows = v.group_by(["MODEL_NAME", "VERSION_NAME"]).aggregate(
        N_ROWS=v.count(), FLAVOR=v.FLAVOR.max(), CREATED_AT=v.CREATED_AT.max()
    )
    ev = _event_summary(s.table(EVENTS)).rename(E_MODEL="MODEL_NAME", E_VERSION="VERSION_NAME")
    models = s.table(MODELS).select(M_MODEL="MODEL_NAME").distinct()
    model = ibis.coalesce(rows.MODEL_NAME, ev.E_MODEL)
    t = rows.outer_join(ev, [rows.MODEL_NAME == ev.E_MODEL, rows.VERSION_NAME == ev.E_VERSION])
    t = t.left_join(models, model == models.M_MODEL)
    t = t.select(
        MODEL_NAME=model,
        VERSION_NAME=ibis.coalesce(rows.VERSION_NAME, ev.E_VERSION),
        HAS_MODEL=models.M_MODEL.notnull(),
        N_ROWS=rows.N_ROWS.fill_null(0),
        FLAVOR=rows.FLAVOR,
        CREATED_AT=rows.CREATED_AT,
        **{c: ev[c] if c in ("SHA", "DELETED_AT") else ev[c].fill_null(0)
           for c in ev.columns if c not in ("E_MODEL", "E_VERSION")},
    )
    settled = (t.N_ROWS == 1) & t.HAS_MODEL & (t.N_COMMIT == 1) & (t.N_DELETE > 0) & (t.N_UNKNOWN == 0)
    return t.filter(ibis.ifelse(t.VERSION_NAME.isnull(), ~t.HAS_MODEL, ~settled))


def _deletion(s: Any, p: Any) -> Any:
    """One version's deletions: how many, and when the last was."""
    e = s.table(EVENTS)
    e = e.filter(e.MODEL_NAME == p["model"], e.VERSION_NAME == p["version"], e.KIND == _tables.DELETE)
    return e.aggregate(N_DELETE=e.count(), DELETED_AT=e.CREATED_AT.max())


def _event_kinds(s: Any, p: Any) -> Any:
    """The kinds of event each version has: read only to name them in a problem's message."""
    e = s.table(EVENTS)
    return e.select("MODEL_NAME", "VERSION_NAME", "KIND").distinct()


def _all_aliases(s: Any, p: Any) -> Any:
    t = s.aliases_with_targets()
    return t.select("MODEL_NAME", ALIAS_NAME="KEY", VERSION_NAME="VALUE_STR", COMMITTED=t.C_MODEL.notnull())


class _Pass:
    def __init__(self, registry: Registry, older_than: float) -> None:
        self.registry = registry
        self.stage = registry.stage
        self.older_than = older_than
        self.report = CheckReport()
        self._kinds: dict[tuple[str, str | None], set[str]] | None = None

    def kinds(self, key: tuple[str, str | None]) -> set[str]:
        """The kinds of ``key``'s events, for a message: read at the first problem that names them."""
        if self._kinds is None:
            self._kinds = {}
            for r in self.registry._query(_event_kinds).itertuples(index=False):
                version = None if pd.isna(r.VERSION_NAME) else r.VERSION_NAME
                self._kinds.setdefault((r.MODEL_NAME, version), set()).add(r.KIND)
        return self._kinds.get(key, set())

    def problem(self, kind: str, model: str | None, version: str | None, message: str) -> None:
        self.report.problems.append(Problem(kind, model, version, message))

    def run(self) -> CheckReport:
        reg = self.registry
        # Read in the order writers write, newest-first, so a concurrent writer can only make
        # a later read show more than an earlier one implies, never less: aliases are set on
        # committed versions, commits follow their rows, rows precede their folders. The
        # folders are listed first of all: every folder seen then has its row already.
        folders = set(self.stage.folders())
        with reg._connection():
            aliases = reg._query(_all_aliases)
            versions = reg._query(_versions_to_check)
        now = datetime.now(UTC).replace(tzinfo=None)
        summary: dict[tuple[str, str | None], Any] = {}  # what each version's events amount to
        row_of: dict[tuple[str, str], Any] = {}  # each version's row(s)
        orphan_models: set[str] = set()
        for r in sorted(versions.itertuples(index=False), key=lambda r: (r.MODEL_NAME, _text(r.VERSION_NAME))):
            version = None if pd.isna(r.VERSION_NAME) else r.VERSION_NAME
            key = (r.MODEL_NAME, version)
            if r.N_EVENTS:
                summary[key] = r
                if not r.HAS_MODEL:
                    orphan_models.add(r.MODEL_NAME)
            if r.N_ROWS:
                row_of[key] = r
            for n in range(int(r.N_ROWS)):
                if n:
                    self.problem("duplicate-row", *key, f"{_name(key)} is held by more than one version row")
                if not r.HAS_MODEL:
                    self.problem("orphan-row", *key,
                                 f"{_name(key)} has a version row but model {r.MODEL_NAME!r} has none")
        for model in sorted(orphan_models):
            self.problem("orphan-events", model, None, f"events name model {model!r}, which has no row")

        live: list[tuple[str, str, str]] = []
        for key, ev in sorted(summary.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
            model, version = key
            if version is None:
                continue
            if ev.N_UNKNOWN:
                unknown = self.kinds(key) - set(_tables.KINDS)
                self.problem("unknown-event", model, version,
                             f"{_name(key)} has events of unknown kind {sorted(unknown)}")
            if key not in row_of:
                if not ev.N_UNCLAIMED:
                    continue  # a claim that lost (engines without keys, see _claim)
                self.problem("orphan-events", model, version,
                             f"{_name(key)} has {', '.join(sorted(self.kinds(key)))} events but no version row")
                continue
            if not ev.N_COMMIT:
                if ev.N_STRAY:
                    stray = self.kinds(key) - _ALLOWED_UNCOMMITTED
                    self.problem("uncommitted-events", model, version,
                                 f"{_name(key)} was never committed yet has {', '.join(sorted(stray))} events")
                continue
            if ev.N_COMMIT > 1:
                self.problem("duplicate-commit", model, version,
                             f"{_name(key)} was committed {ev.N_COMMIT} times: two writers claimed one name")
            if not ev.N_DELETE:
                live.append((model, version, ev.SHA))

        for (model, version), r in sorted(row_of.items()):
            ev = summary.get((model, version))
            if ev is not None and (ev.N_COMMIT or ev.N_DELETE):
                continue
            if _age_seconds(r.CREATED_AT, now) > self.older_than:
                self.problem("abandoned-reservation", model, version,
                             f"{_name((model, version))} was reserved at {r.CREATED_AT} and never committed "
                             f"(its writer died; gc marks it deleted)")

        live_keys = {(m, v) for m, v, _ in live}
        for r in aliases.itertuples(index=False):
            key = (r.MODEL_NAME, r.VERSION_NAME)
            if not r.COMMITTED:
                self.problem("dangling-alias", r.MODEL_NAME, r.VERSION_NAME,
                             f"alias {r.ALIAS_NAME!r} of model {r.MODEL_NAME!r} points at {r.VERSION_NAME!r}, "
                             f"which was never committed")
            elif key not in live_keys:
                self.report.notes.append(
                    f"alias {r.ALIAS_NAME!r} of model {r.MODEL_NAME!r} points at deleted version "
                    f"{r.VERSION_NAME!r} and is hidden"
                )

        for model, version, manifest_sha in live:
            self._check_files(model, version, manifest_sha, row_of[(model, version)])
        self.report.versions_checked = len(live)

        self.report.folders_checked = len(folders)
        for key in sorted(folders - live_keys):
            if key in row_of or key in summary:
                self._check_orphan(key, row_of.get(key), summary.get(key), now)
            else:  # a deleted version's (left out above), or no version's at all
                deletion = reg._query(_deletion, model=key[0], version=key[1]).iloc[0]
                self._check_orphan(key, None, deletion if deletion.N_DELETE else None, now)
        return self.report

    def _check_files(self, model: str, version: str, manifest_sha: str, row: Any) -> None:
        where = self.stage.path(model, version)
        try:
            manifest = check_manifest(self.stage.read(model, version, MANIFEST), manifest_sha, where)
        except (NeveError, OSError, ValueError) as exc:
            self.problem("bad-manifest", model, version, f"{_name((model, version))}: {exc}")
            return
        if (manifest.get("model_name"), manifest.get("version_name")) != (model, version):
            self.problem("bad-manifest", model, version,
                         f"{where}/{MANIFEST} describes {manifest.get('model_name')!r} "
                         f"{manifest.get('version_name')!r}, not this version")
        if row.FLAVOR is not None and manifest.get("flavor") != row.FLAVOR:
            self.problem("bad-manifest", model, version,
                         f"{where}/{MANIFEST} says flavor {manifest.get('flavor')!r}, the version row {row.FLAVOR!r}")
        for name in sorted(manifest.get("files", {})):
            try:
                check_file(name, self.stage.read(model, version, name), manifest, where)
            except (ArtifactError, OSError) as exc:
                self.problem("bad-file", model, version, str(exc))
            self.report.files_checked += 1
        extra = set(self.stage.files(model, version)) - set(manifest.get("files", {})) - {MANIFEST}
        if extra:
            self.problem("stray-file", model, version,
                         f"{where} holds files its manifest does not list: {', '.join(sorted(extra))}")

    def _check_orphan(self, key: tuple[str, str], row: Any, ev: Any, now: datetime) -> None:
        """A folder no live version owns is damage once it is older than the grace: counted
        from the deletion for a deleted version, from the reservation for an uncommitted one,
        and from the folder's own last change when no row claims it."""
        if ev is not None and ev.N_DELETE:
            since, why = ev.DELETED_AT, "its version was deleted"
        elif row is not None and (ev is None or not ev.N_COMMIT):
            since, why = row.CREATED_AT, "its version was reserved and never committed"
        else:
            changed = self.stage.modified(*key)
            if changed is None:
                return  # vanished while we looked
            since, why = changed, "no version row claims it"
        age = _age_seconds(since, now)
        if age > self.older_than:
            self.problem("orphan-folder", *key,
                         f"stage folder {self.stage.path(*key)} is orphaned: {why} {age:.0f} s ago "
                         f"(gc grace {self.older_than:g} s)")


def _text(value: Any) -> str:
    return "" if value is None or (isinstance(value, float) and value != value) else value


def _name(key: tuple[str, str | None]) -> str:
    return f"version {key[1]!r} of model {key[0]!r}"

