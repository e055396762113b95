"""The writer processes of tools/torture.py: random registry calls, each journaled before and after.

Imported by name in the fork server the driver starts, which warms itself up once (see
:func:`_warm_up`); every writer incarnation is forked from it.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

SHARED = "shared"  # every writer logs versions of it: concurrent numbering
SMALL_ROWS, LARGE_ROWS = 30, 60_000  # a large version's sample_input.parquet is ~2 MB
KEEP = 8  # past this many live versions, a writer deletes more often than it logs
# Weights of the calls a writer makes.
OPS = {"log": 30, "log_large": 4, "log_named": 10, "alias": 14, "tag": 12, "metric": 14, "delete": 10, "gc": 4}
# Errors a writer may meet by design: a version another writer deleted meanwhile.
EXPECTED = ("ModelNotFoundError",)


class Journal:
    """One incarnation's journal: one JSON line per intent and per acknowledgement, written
    with a single write() on an O_APPEND file, so a SIGKILL loses at most the line it cut."""

    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def add(self, **record: Any) -> None:
        os.write(self.fd, (json.dumps(record, sort_keys=True) + "\n").encode())


def _model(rng: Any, rows: int, fingerprint: float) -> tuple[Any, Any]:
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import Ridge

    X = pd.DataFrame({c: rng.normal(size=rows) for c in "ABCD"})
    y = fingerprint * X.A + X.B
    return Ridge(alpha=1e-6).fit(X, y), X if rows > SMALL_ROWS else X.head(5).astype(np.float64)


def writer(
    url: str, stage: str, journal_dir: str, slot: int, incarnation: int, seed: int, gc_grace: float, pause: float
) -> None:
    import numpy as np

    import neve
    from neve.errors import DuplicateVersionError

    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    journal = Journal(Path(journal_dir) / f"w{slot}-{incarnation:05d}.jsonl")
    me = f"w{slot}"
    tag = f"{me}i{incarnation}"
    reg = neve.Registry(url, stage=stage)
    # (model, version) this slot logged and has not begun to delete, its earlier incarnations'
    # included, so deletions keep the registry (and the time each check takes) bounded.
    mine = _slot_versions(Path(journal_dir), slot)
    counter = 0

    def log(model_name: str, version: str | None, rows: int) -> None:
        nonlocal counter
        counter += 1
        fp = round(rng.uniform(1, 100), 6)
        metrics = {f"fp_{tag}_{counter}": fp, "rows": float(rows)}
        tags = {f"t_{tag}_{counter}": str(counter)}
        model, sample = _model(nrng, rows, fp)
        journal.add(intent="log", model=model_name, version=version, metrics=metrics, tags=tags)
        mv = reg.log_model(model, model_name, version_name=version, sample_input=sample,
                           metrics=metrics, tags=tags)
        journal.add(ack="log", model=model_name, version=mv.version_name, metrics=metrics, tags=tags, fp=fp)
        mine.append((model_name, mv.version_name))

    # No burned name: the fixed-name version the previous incarnation was killed logging.
    pending = _pending_named_log(Path(journal_dir), slot, incarnation)
    if pending is not None:
        try:
            log(pending, pending_version := f"{pending}-n", SMALL_ROWS)
        except DuplicateVersionError as exc:
            if "already has a version" not in str(exc):
                journal.add(violation="burned-name", model=pending, version=pending_version, error=str(exc))
            else:  # it had committed before the kill: it must be live and whole
                journal.add(ack="committed-before-kill", model=pending, version=pending_version)

    driver = int(os.environ.get("NEVE_TORTURE_DRIVER", "0"))
    while True:
        if driver and not _alive(driver):
            os._exit(0)  # the driver is gone (killed itself): nobody will ever stop us
        time.sleep(rng.uniform(0, pause))  # a little air for the rest of the machine
        op = rng.choices(list(OPS), weights=list(OPS.values()))[0]
        if len(mine) > KEEP and rng.random() < 0.5:
            op = "delete"
        try:
            if op == "log":
                log(SHARED, None, SMALL_ROWS)
            elif op == "log_large":
                log(SHARED, None, LARGE_ROWS)
            elif op == "log_named":
                counter += 1
                name = f"{tag}x{counter}"
                # Its own model, so a rerun's "<model>-n" can never meet another's name.
                log(name, f"{name}-n", SMALL_ROWS)
            elif op in ("alias", "tag", "metric", "delete") and mine:
                model_name, version = rng.choice(mine)
                if op == "alias":
                    # Any live version of the shared model, so aliases race deletions.
                    target = version
                    if model_name == SHARED:
                        live = [v.version_name for v in reg.get_model(SHARED).versions()]
                        target = rng.choice(live) if live else version
                    journal.add(intent="alias", model=model_name, alias=f"a_{me}", version=target)
                    reg.get_model(model_name).set_alias(f"a_{me}", target)
                    journal.add(ack="alias", model=model_name, alias=f"a_{me}", version=target)
                elif op == "tag":
                    counter += 1
                    key, value = f"t_{tag}_{counter}", str(rng.random())
                    journal.add(intent="tag", model=model_name, version=version, key=key, value=value)
                    reg.get_model(model_name).version(version).set_tag(key, value)
                    journal.add(ack="tag", model=model_name, version=version, key=key, value=value)
                elif op == "metric":
                    counter += 1
                    key, value = f"m_{tag}_{counter}", rng.uniform(-1e6, 1e6)
                    journal.add(intent="metric", model=model_name, version=version, key=key, value=value)
                    reg.get_model(model_name).version(version).set_metric(key, value)
                    journal.add(ack="metric", model=model_name, version=version, key=key, value=value)
                else:
                    mine.remove((model_name, version))
                    journal.add(intent="delete", model=model_name, version=version)
                    reg.get_model(model_name).delete_version(version)
                    journal.add(ack="delete", model=model_name, version=version)
            elif op == "gc":
                journal.add(intent="gc", t=time.time())  # the driver needs to know when it began
                reg.gc(older_than=gc_grace)
                journal.add(ack="gc")
        except Exception as exc:  # noqa: BLE001 - every unexpected failure is a finding
            kind = "expected" if type(exc).__name__ in EXPECTED else "violation"
            journal.add(**{kind: f"writer-error in {op}", "error": f"{type(exc).__name__}: {exc}",
                           "trace": traceback.format_exc()[-2000:]})


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _slot_versions(journal_dir: Path, slot: int) -> list[tuple[str, str]]:
    """Versions the slot's earlier incarnations logged (acknowledged) and did not start deleting."""
    logged: dict[tuple[str, str], None] = {}
    for path in sorted(journal_dir.glob(f"w{slot}-*.jsonl")):
        for record in read_journal(path):
            if record.get("ack") == "log":
                logged[(record["model"], record["version"])] = None
            elif record.get("intent") == "delete":
                logged.pop((record["model"], record["version"]), None)
    return list(logged)


def _pending_named_log(journal_dir: Path, slot: int, incarnation: int) -> str | None:
    """The model of a fixed-name log the previous incarnation began and never acknowledged."""
    previous = journal_dir / f"w{slot}-{incarnation - 1:05d}.jsonl"
    if not previous.exists():
        return None
    last_intent = None
    for record in read_journal(previous):
        if record.get("intent") == "log" and record.get("version"):
            last_intent = record
        elif record.get("ack") == "log" and last_intent and record["version"] == last_intent["version"]:
            last_intent = None
    return last_intent["model"] if last_intent else None


def read_journal(path: Path) -> list[dict[str, Any]]:
    """Whole JSON lines of a journal; a line a SIGKILL cut short is skipped."""
    records = []
    for line in path.read_text().splitlines():
        with contextlib.suppress(ValueError):
            records.append(json.loads(line))
    return records


def _warm_up() -> None:
    """Run once in the fork server, which every writer is forked from: imports, package
    metadata scans and compiled registry queries are then ready in each new incarnation,
    which starts writing in milliseconds instead of seconds (so random kills land in writes,
    not in start-up). On a throwaway DuckDB file; nothing stays open across the fork."""
    import neve

    with tempfile.TemporaryDirectory() as folder:
        reg = neve.Registry(f"duckdb:///{folder}/warm.duckdb")
        import numpy as np

        model, sample = _model(np.random.default_rng(0), SMALL_ROWS, 1.0)
        mv = reg.log_model(model, "warm", sample_input=sample, metrics={"m": 1.0}, tags={"t": "1"})
        mv.set_metric("m2", 2.0)
        mv.set_tag("t2", "2")
        reg.get_model("warm").set_alias("a", mv.version_name)
        reg.log_model(model, "warm", version_name="warm-n")
        mv.load()
        reg.get_model("warm").delete_version("warm-n")
        reg.gc(older_than=0)
        reg.check(older_than=0)
        del reg, mv
    url = os.environ.get("NEVE_TORTURE_URL", "")
    if url and not url.startswith("duckdb"):
        with neve.connect(url):
            pass  # the engine's driver and client library imported


if os.environ.pop("NEVE_TORTURE_WARM_UP", None):  # the fork server importing this module (see torture.run)
    _warm_up()
