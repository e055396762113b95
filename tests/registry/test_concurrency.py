"""Real processes writing to one DuckDB file at once."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

import neve
from tests.registry import _workers

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pool_context() -> multiprocessing.context.BaseContext:
    # A forkserver preloaded with neve and scikit-learn starts workers without paying
    # the imports again (nor inheriting this process's DuckDB threads, as fork would).
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["neve", "sklearn.linear_model", "tests.registry._workers"])
    return ctx


@pytest.mark.engines(
    "duckdb", reason="DuckDB's file lock across processes (PostgreSQL: its own concurrency test)"
)
def test_eight_processes_log_concurrently(tmp_path: Path, pool_context) -> None:
    url = f"duckdb:///{tmp_path / 'shared.duckdb'}"
    neve.Registry(url)  # tables exist before the race, as in production
    with pool_context.Pool(8) as pool:
        results = pool.starmap(_workers.log_versions, [(url, w, 25) for w in range(8)])
    logged = [name for names in results for name in names]
    assert len(logged) == len(set(logged)) == 200
    reg = neve.Registry(url)
    versions = reg.get_model("shared").show_versions()
    assert sorted(versions.version_name) == sorted(logged)
    assert sorted(versions.version_name, key=lambda v: int(v[1:])) == [f"v{i}" for i in range(1, 201)]
    # Every metric event from every process arrived, on the version it was meant for.
    pairs = set(zip(versions.worker.astype(int), versions.i.astype(int), strict=True))
    assert pairs == {(w, i) for w in range(8) for i in range(25)}
    assert (versions.after == versions.worker * 1000 + versions.i).all()


@pytest.mark.engines(
    "duckdb", reason="DuckDB's file lock across processes (PostgreSQL: its own concurrency test)"
)
def test_alias_moved_concurrently_ends_consistent(tmp_path: Path, pool_context) -> None:
    url = f"duckdb:///{tmp_path / 'alias.duckdb'}"
    reg = neve.Registry(url)
    model, _ = _workers.small_model()
    for _ in range(4):
        reg.log_model(model, "shared")
    with pool_context.Pool(4) as pool:
        pool.starmap(_workers.move_alias, [(url, w, 10) for w in range(4)])
    # No move lost: each of the 4 x 10 set_alias calls appended its own event.
    with neve.connect(url) as s:
        events = s.execute(s.table("NEVE_EVENTS"))
    alias_events = events[events.KIND == "alias"].sort_values("EVENT_ID")
    assert len(alias_events) == 40
    m = neve.Registry(url).get_model("shared")
    aliases = m.aliases
    assert list(aliases) == ["production"]
    target = aliases["production"]
    # The alias names the target of the newest event, not of some earlier move.
    assert target == alias_events.VALUE_STR.iloc[-1]
    assert m.version("production").version_name == target
    shown = m.show_versions()
    assert [a for a in shown.aliases if a] == [["production"]]
    assert shown.version_name[shown.aliases.map(bool)].item() == target
