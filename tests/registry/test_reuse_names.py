"""A version name that belongs to no live version can be logged again; its history stays."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import neve
from neve.engine import driver_for
from neve.errors import DuplicateVersionError
from neve.registry._tables import EVENTS
from tests.registry import _workers

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.engines(
    "duckdb", "postgres",
    reason="reusing a name renames the old rows, and Spark tables have no row updates (docs/spark.md)",
)


def _history(reg: neve.Registry, model: str) -> list[tuple[str, str]]:
    """(version name, kind) of every event of ``model``, archived attempts included."""
    with reg._connection() as backend:
        events = backend.execute(reg._store.table(EVENTS))
    events = events[events.MODEL_NAME == model].sort_values("EVENT_ID")
    return list(zip(events.VERSION_NAME, events.KIND, strict=True))


def test_a_deleted_name_can_be_logged_again_without_inheriting_anything(reg, fitted):
    model, X = fitted
    first = reg.log_model(model, "m", version_name="release-1", metrics={"mse": 1.0}, tags={"old": "yes"})
    first.set_comment("the first attempt")
    reg.get_model("m").set_alias("production", "release-1")
    reg.get_model("m").delete_version("release-1")

    again = reg.log_model(model, "m", version_name="release-1", metrics={"r2": 0.5})
    m = reg.get_model("m")
    assert [v.version_name for v in m.versions()] == ["release-1"]
    assert m.version("release-1") == again
    assert again.metrics == {"r2": 0.5} and again.tags == {} and again.comment is None
    assert m.aliases == {}  # production pointed at the deleted attempt, not at this one
    assert again.load().predict(X.head(3)).tolist() == model.predict(X.head(3)).tolist()
    # The event log still holds the first attempt, under an archived name.
    history = _history(reg, "m")
    archived = {name for name, _ in history if name and name.startswith("release-1~")}
    assert len(archived) == 1
    old = archived.pop()
    assert [k for n, k in history if n == old] == ["commit", "metric", "tag", "comment", "alias", "delete"]
    assert [k for n, k in history if n == "release-1"] == ["commit", "metric"]


def test_a_live_name_is_still_refused(reg, fitted):
    reg.log_model(fitted[0], "m", version_name="release-1")
    with pytest.raises(DuplicateVersionError, match="already has a version named 'release-1'"):
        reg.log_model(fitted[0], "m", version_name="release-1")


def _start_paused_writer(url: str, stage: str, tmp_path: Path) -> subprocess.Popen:
    reserved = tmp_path / "reserved"
    code = (
        "import sys; from tests.registry import _workers; "
        "_workers.pause_after_reserve(sys.argv[1], sys.argv[2], 'run-42', sys.argv[3])"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, url, stage, str(reserved)], cwd=REPO, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while not reserved.exists():
        if proc.poll() is not None:
            raise AssertionError(f"the writer exited early: {proc.stderr.read().decode()[-2000:]}")
        assert time.monotonic() < deadline, "the writer never reached the reserve step"
        time.sleep(0.05)
    return proc


def test_a_name_whose_writer_was_killed_at_the_reserve_step_can_be_retried(engine_url, tmp_path):
    stage = str(tmp_path / "stage")
    writer = _start_paused_writer(engine_url, stage, tmp_path)
    try:
        if not driver_for(engine_url).exclusive:
            # While the writer lives its reservation stands. (A DuckDB file stays locked by the
            # paused writer, so only a server engine can ask.)
            reg = neve.Registry(engine_url, stage=stage)
            with pytest.raises(DuplicateVersionError, match=f"being logged by process {writer.pid}"):
                reg.log_model(_workers.small_model()[0], "nightly", version_name="run-42")
    finally:
        os.killpg(writer.pid, signal.SIGKILL)  # as an OOM kill of the task's process group would
        writer.wait(60)
    assert writer.returncode == -signal.SIGKILL
    reg = neve.Registry(engine_url, stage=stage)
    model = reg.get_model("nightly")
    assert model.versions() == []
    retry = reg.log_model(_workers.small_model()[0], "nightly", version_name="run-42", metrics={"attempt": 2})
    assert model.versions() == [retry] and retry.metrics == {"attempt": 2.0}
    assert retry.load() is not None and retry.manifest["version_name"] == "run-42"
    archived = {n for n, _ in _history(reg, "nightly") if n and n.startswith("run-42~")}
    assert len(archived) == 1  # the killed attempt, kept and settled
    assert reg.gc(older_than=0) == []


def test_writers_reclaiming_one_name_at_once_get_exactly_one_version(engine_url, tmp_path):
    stage = str(tmp_path / "stage")
    reg = neve.Registry(engine_url, stage=stage)
    reg.log_model(_workers.small_model()[0], "nightly", version_name="run-7")
    reg.get_model("nightly").delete_version("run-7")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["neve", "sklearn.linear_model", "tests.registry._workers"])
    with ctx.Pool(3) as pool:
        outcomes = pool.starmap(_workers.log_named, [(engine_url, stage, "run-7", seed) for seed in range(3)])
    assert sorted(outcomes) == ["DuplicateVersionError"] * 2 + ["ok"]
    model = reg.get_model("nightly")
    [winner] = model.versions()
    assert winner.version_name == "run-7" and outcomes[int(winner.metrics["seed"])] == "ok"
