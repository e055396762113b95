"""Crash anywhere, lose nothing: registry writers SIGKILLed at random instants, checked after each kill.

    python tools/torture.py --url duckdb:///tmp/t/reg.duckdb --kills 1000
    python tools/torture.py --url postgresql://... --kills 1000 --writers 4

``--writers`` processes each loop over random registry calls: log_model (small models, and
large ones whose sample input is megabytes), log_model under a fixed version name, set_alias,
set_tag, set_metric, delete_version and gc. Before each call a writer appends what it is about
to do to its own journal, and after the call returns it appends the acknowledgement.

The driver sleeps a random delay, SIGKILLs a random writer (wherever it is: mid-insert,
mid-upload, mid-commit, mid-gc) and starts a new incarnation of it. After every kill and
restart, while the other writers go on writing, it verifies:

- ``Registry.check`` finds no problem (manifest and every file hash of every live version,
  rows against events, aliases, folders orphaned past the grace);
- every acknowledged write is there: a logged version is live (unless its writer deleted it
  since) with the metrics and tags it was logged with, every acknowledged metric and tag
  has its value, a deleted version stays deleted, each writer's alias points where that
  writer last put it (or where it was putting it when killed, or nowhere if its target was
  deleted since);
- no name is burned: each new incarnation first logs again the fixed-name version its
  predecessor was killed logging, which must succeed (or find that it had committed).

At the end all writers stop, a ``gc(older_than=0)`` runs, and a check with no grace must
be clean. The summary (kills, acknowledged writes, time, violations) is printed as JSON and
written to ``--report``. Exit status 1 when anything was violated.

Each run is bounded: ``--kills`` kills, ``--max-seconds`` at most. Targets only the database
URL given and a stage folder under ``--workdir``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import random
import re
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from torture_writer import writer

# -- the driver --------------------------------------------------------------------------------


class Ledger:
    """What the journals say must be in the registry, read incrementally (only whole lines:
    a live writer may be halfway through one, a killed one may have left it cut)."""

    def __init__(self, journal_dir: Path) -> None:
        self.dir = journal_dir
        self.offsets: dict[Path, int] = {}
        self.logged: dict[tuple[str, str], dict[str, Any]] = {}
        self.deleting: set[tuple[str, str]] = set()  # a delete was at least attempted
        self.deleted: set[tuple[str, str]] = set()  # ... and acknowledged
        self.metrics: dict[tuple[str, str, str], float] = {}
        self.tags: dict[tuple[str, str, str], str] = {}
        self.alias_targets: dict[tuple[str, str], list[str]] = {}  # every intended target, in order
        self.alias_acked: dict[tuple[str, str], int] = {}  # index in alias_targets of the last ack
        self.acks = 0
        self.expected_errors = 0
        self.violations: list[str] = []
        self.gc_begun: dict[str, float] = {}  # journal -> when its gc under way began
        self.gc_done: list[float] = []  # when each acknowledged gc began

    def update(self) -> Ledger:
        for path in sorted(self.dir.glob("w*.jsonl")):  # per slot, incarnations in order
            offset = self.offsets.get(path, 0)
            with open(path, "rb") as f:
                f.seek(offset)
                data = f.read()
            whole = data[: data.rfind(b"\n") + 1]
            self.offsets[path] = offset + len(whole)
            for line in whole.decode().splitlines():
                try:
                    record = json.loads(line)
                except ValueError:  # not JSON: never written by a writer, but not ours to crash on
                    continue
                self._add(path.name, record)
        return self

    def _add(self, journal: str, r: dict[str, Any]) -> None:
        if "violation" in r:
            self.violations.append(f"{journal}: {r['violation']}: {r.get('error', '')}")
            return
        if "expected" in r:
            self.expected_errors += 1
            return
        if r.get("intent") == "gc":
            self.gc_begun[journal] = r.get("t", 0.0)
        elif r.get("intent") == "delete":
            self.deleting.add((r["model"], r["version"]))
        elif r.get("intent") == "alias":
            self.alias_targets.setdefault((r["model"], r["alias"]), []).append(r["version"])
        ack = r.get("ack")
        if ack is None:
            return
        self.acks += 1
        if ack == "log":
            key = (r["model"], r["version"])
            self.logged[key] = r
            self.metrics.update({(*key, k): v for k, v in r["metrics"].items()})
            self.tags.update({(*key, k): v for k, v in r["tags"].items()})
        elif ack == "metric":
            self.metrics[(r["model"], r["version"], r["key"])] = r["value"]
        elif ack == "tag":
            self.tags[(r["model"], r["version"], r["key"])] = r["value"]
        elif ack == "delete":
            self.deleted.add((r["model"], r["version"]))
        elif ack == "alias":
            self.alias_acked[(r["model"], r["alias"])] = len(self.alias_targets[(r["model"], r["alias"])]) - 1
        elif ack == "gc":
            self.gc_done.append(self.gc_begun.pop(journal, 0.0))


# What only a gc removes -- the folder of a version whose deletion was killed before it removed
# it, a reservation abandoned by a killed log_model -- the check reports once it is older than
# its grace. Writers gc at random (about one call in 25), so on a slow engine none may have run since:
# such a problem is a violation once a gc that began after it was collectable has finished.
_AGE = re.compile(r"(\d+) s ago \(gc grace")
_RESERVED = re.compile(r"was reserved at (.+?) and never committed")


def _collectable_since(problem: Any, checked_at: float, gc_grace: float) -> float | None:
    """When ``problem`` became something a writer's gc removes (epoch seconds, at the latest),
    or None when it is not one of those."""
    if problem.kind == "orphan-folder":
        found = _AGE.search(problem.message)
        return checked_at - float(found.group(1)) + gc_grace if found else None
    if problem.kind == "abandoned-reservation":
        found = _RESERVED.search(problem.message)
        try:
            reserved = datetime.fromisoformat(found.group(1)).replace(tzinfo=UTC).timestamp() if found else None
        except ValueError:
            reserved = None
        return None if reserved is None else reserved + gc_grace + 1.0
    return None


def _live(s: Any, p: Any) -> Any:
    return s.live_versions(commit_info=False).select("MODEL_NAME", "VERSION_NAME")


# Only live versions' metrics and tags are compared, so only theirs are read: the log keeps
# every deleted version's too, and reading all of them made each check slower than the last.
def _metrics(s: Any, p: Any) -> Any:
    return s.current_metrics(live_only=True).select("MODEL_NAME", "VERSION_NAME", "KEY", "VALUE_NUM")


def _tags(s: Any, p: Any) -> Any:
    return s.current_tags(live_only=True).select("MODEL_NAME", "VERSION_NAME", "KEY", "VALUE_STR")


def _aliases(s: Any, p: Any) -> Any:
    return s.current_aliases()


def verify(
    reg: Any, ledger: Ledger, *, grace: float, deep: bool, rng: random.Random, gc_grace: float | None = None
) -> list[str]:
    """Every violation found now: the check's problems and every acknowledged write missing.
    Reads the registry through the same folds as its views (NEVE_LIVE_VERSIONS, ...).
    With ``gc_grace`` (the writers'), what only a gc removes is a violation once a gc begun
    after it was collectable has finished (see :func:`_collectable_since`)."""
    ledger.update()
    logged, metrics, tags = dict(ledger.logged), dict(ledger.metrics), dict(ledger.tags)
    deleted = set(ledger.deleted)
    alias_from = {key: (ledger.alias_targets[key][i], i) for key, i in ledger.alias_acked.items()}
    gc_done = max(ledger.gc_done, default=None)  # finished before the check began
    found = list(ledger.violations)
    problems = reg.check(older_than=grace).problems
    checked_at = time.time()  # after the check's own clock reading: ages count from no earlier
    for p in problems:
        since = None if gc_grace is None else _collectable_since(p, checked_at, gc_grace)
        if since is None or (gc_done is not None and gc_done > since):
            found.append(f"check: {p}")
    with reg._connection():
        live = set(map(tuple, reg._query(_live).to_numpy().tolist()))
        metric_now = {(m, v, k): x for m, v, k, x in reg._query(_metrics).to_numpy().tolist()}
        tag_now = {(m, v, k): x for m, v, k, x in reg._query(_tags).to_numpy().tolist()}
        alias_now = {(m, a): v for m, a, v in reg._query(_aliases).to_numpy().tolist()}
    # Deletions and alias moves begun while we read are excused: read the journals again.
    ledger.update()
    deleting = ledger.deleting
    for key, record in logged.items():
        if key not in live and key not in deleting:
            found.append(f"acknowledged version {key} is not visible (logged {record})")
    for key in deleted & live:
        found.append(f"version {key} was deleted (acknowledged) but is visible")
    for key, value in metrics.items():
        if key[:2] in live and key[:2] not in deleting and metric_now.get(key) != value:
            found.append(f"metric {key}: acknowledged {value}, found {metric_now.get(key)}")
    for key, value in tags.items():
        if key[:2] in live and key[:2] not in deleting and tag_now.get(key) != value:
            found.append(f"tag {key}: acknowledged {value!r}, found {tag_now.get(key)!r}")
    for (model, alias), (acked, index) in alias_from.items():
        allowed = set(ledger.alias_targets[(model, alias)][index:])  # the ack and every move since
        current = alias_now.get((model, alias))
        if current is None:
            # Vanished is right when every allowed target was deleted, or is being deleted:
            # the alias query may run after a deletion the live-version query did not see.
            if all((model, t) in live and (model, t) not in deleting for t in allowed):
                found.append(f"alias {alias} of {model} vanished (acknowledged -> {acked})")
        elif current not in allowed:
            found.append(f"alias {alias} of {model} -> {current}, acknowledged {acked} (allowed {sorted(allowed)})")
    if deep:  # load a few models and check they predict what was logged
        sample = sorted(k for k in logged if k in live and k not in deleting)
        for model, version in rng.sample(sample, min(3, len(sample))):
            fp = logged[(model, version)]["fp"]
            try:
                loaded = reg.get_model(model).version(version).load()
            except Exception as exc:  # noqa: BLE001
                if (model, version) not in ledger.update().deleting:
                    found.append(f"{model} {version} does not load: {type(exc).__name__}: {exc}")
                continue
            if abs(loaded.coef_[0] - fp) > 1e-3 * max(1.0, abs(fp)):
                found.append(f"{model} {version}: loaded model has coefficient {loaded.coef_[0]}, logged {fp}")
    return found


@contextlib.contextmanager
def _database(args: argparse.Namespace, workdir: Path) -> Iterator[str]:
    """The registry's database: --url, a throwaway PostgreSQL server on loopback
    (--engine postgres, stopped at the end), or a DuckDB file in the workdir."""
    if args.url:
        yield args.url
    elif args.engine == "postgres":
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from tests._servers.postgres import running_server

        with running_server() as admin_url:
            yield admin_url
    else:
        yield f"duckdb:///{workdir / 'torture.duckdb'}"


def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="neve-torture-"))
    try:
        with _database(args, workdir) as url:
            return _run(args, workdir, url)
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


def _run(args: argparse.Namespace, workdir: Path, url: str) -> dict[str, Any]:
    import neve

    journal_dir = workdir / "journals"
    if journal_dir.exists():
        shutil.rmtree(journal_dir)
    journal_dir.mkdir(parents=True)
    stage = str(workdir / "stage")
    reg = neve.Registry(url, stage=stage)
    ctx = multiprocessing.get_context("forkserver")
    os.environ["NEVE_TORTURE_URL"] = url
    os.environ["NEVE_TORTURE_DRIVER"] = str(os.getpid())
    # The fork server imports the writer module afresh (not this process's copy) and warms up.
    os.environ["NEVE_TORTURE_WARM_UP"] = "1"
    # Python 3.11's fork server ignores the sys.path it is handed: the writer module must be
    # importable through PYTHONPATH (a preload that fails to import is silently skipped).
    here = str(Path(__file__).resolve().parent)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")]))
    ctx.set_forkserver_preload(["torture_writer"])
    rng = random.Random(args.seed)
    incarnations = [0] * args.writers
    procs: list[Any] = [None] * args.writers

    def start(slot: int) -> None:
        incarnations[slot] += 1
        procs[slot] = ctx.Process(
            target=writer,
            args=(url, stage, str(journal_dir), slot, incarnations[slot], rng.getrandbits(32),
                  args.gc_grace, args.pause),
            daemon=True,
        )
        procs[slot].start()

    started = time.monotonic()
    violations: list[dict[str, Any]] = []
    ledger = Ledger(journal_dir)
    checks = 0
    verify_seconds = 0.0
    kills = 0
    try:
        for slot in range(args.writers):
            start(slot)
        # Kills begin once the writers are writing: a run on a slow machine still kills writers
        # that have acknowledged something, not only processes starting up.
        while ledger.update().acks < args.writers and time.monotonic() - started < 120:
            time.sleep(0.2)
        # The time bound counts from here, and a run kills at least once: on a loaded machine
        # the warm-up alone can outlast a small --max-seconds (seen: 0 kills at load 20).
        killing_since = time.monotonic()
        while kills < args.kills and (kills == 0 or time.monotonic() - killing_since < args.max_seconds):
            time.sleep(rng.uniform(args.min_delay, args.max_delay))
            victim = rng.randrange(args.writers)
            procs[victim].kill()
            procs[victim].join()
            kills += 1
            start(victim)
            began = time.monotonic()
            found = verify(reg, ledger, grace=args.check_grace, deep=kills % 10 == 0, rng=rng,
                           gc_grace=args.gc_grace)
            checks += 1
            verify_seconds += time.monotonic() - began
            for finding in found:
                if finding not in {v["finding"] for v in violations}:
                    violations.append({"kill": kills, "finding": finding})
                    print(f"kill {kills}: VIOLATION {finding}", file=sys.stderr, flush=True)
            if kills % args.progress == 0:
                print(f"kill {kills}: {ledger.acks} acknowledged writes, {len(violations)} violation(s), "
                      f"{time.monotonic() - started:.0f} s ({verify_seconds:.0f} s verifying), load "
                      f"{os.getloadavg()[0]:.1f}", file=sys.stderr, flush=True)
    except KeyboardInterrupt:  # SIGTERM or Ctrl-C: stop killing, verify and report what was done
        print(f"stopped after {kills} kills", file=sys.stderr, flush=True)
    finally:
        for proc in procs:
            if proc is not None and proc.is_alive():
                proc.kill()
                proc.join()
    # All writers gone: gc with no grace must leave a registry a no-grace check finds clean.
    reg.gc(older_than=0)
    final = verify(reg, ledger, grace=0, deep=True, rng=rng)
    violations += [{"kill": "final", "finding": f} for f in final]
    for finding in final:
        print(f"final: VIOLATION {finding}", file=sys.stderr, flush=True)
    summary = {
        "engine": reg.dialect,
        "writers": args.writers,
        "kills": kills,
        "checks": checks,
        "acknowledged_writes": ledger.acks,
        "acknowledged_versions": len(ledger.logged),
        "live_versions_at_end": reg.check(older_than=0).versions_checked,
        "expected_errors": ledger.expected_errors,
        "seconds": round(time.monotonic() - started, 1),
        "verify_seconds": round(verify_seconds, 1),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "seed": args.seed,
        "violations": violations,
    }
    return summary


def _stop_on_sigterm() -> None:
    """SIGTERM ends a run like Ctrl-C: writers killed, a throwaway server stopped."""

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started in the background


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="registry database (default: see --engine)")
    parser.add_argument("--engine", choices=["duckdb", "postgres"], default="duckdb",
                        help="without --url: a DuckDB file in --workdir, or a throwaway PostgreSQL server")
    parser.add_argument("--workdir", help="journals, stage and DuckDB file (default: a temporary folder)")
    parser.add_argument("--kills", type=int, default=1000)
    parser.add_argument("--writers", type=int, default=3)
    parser.add_argument("--min-delay", type=float, default=0.0, help="seconds between kills, at least")
    parser.add_argument("--max-delay", type=float, default=1.5, help="seconds between kills, at most")
    parser.add_argument("--pause", type=float, default=0.05, help="seconds a writer rests between calls, at most")
    parser.add_argument("--gc-grace", type=float, default=30.0, help="writers' gc(older_than=...)")
    parser.add_argument("--check-grace", type=float, default=300.0,
                        help="check's grace while writers run: orphans younger than this may still be collected")
    parser.add_argument("--max-seconds", type=float, default=4 * 3600.0,
                        help="stop killing after this long (counted once the writers write), whatever the count")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--progress", type=int, default=50, help="print a line every this many kills")
    parser.add_argument("--report", help="append the JSON summary to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary workdir")
    args = parser.parse_args(argv)
    _stop_on_sigterm()
    summary = run(args)
    text = json.dumps(summary, indent=2, default=str)
    print(text)
    if args.report:
        with open(args.report, "a") as out:
            out.write(json.dumps(summary, default=str) + "\n")
    return 1 if summary["violations"] else 0


if __name__ == "__main__":
    sys.exit(main())
