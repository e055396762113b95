"""Sixteen real processes writing one registry on one PostgreSQL database at once.

Every worker logs 25 versions of the SAME model (so all 16 race for each next
version number), records a metric on each version it logged, appends to one
shared metric key on a second model, and moves one alias after every log. Half
the workers run with ``SERIALIZABLE`` as their default isolation, as some
warehouses are configured. The registry must number the 400 versions v1..v400
without a gap or a duplicate, lose no event, surface no uniqueness,
serialization or deadlock error, and hold one connection per process.
"""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path

import pytest

import neve
from neve.engine import driver_for
from neve.engine.postgres import PostgresDriver
from tests._servers.postgres import throwaway_database
from tests.registry._workers import small_model

pytestmark = [
    pytest.mark.slow,
    pytest.mark.engines(
        "postgres",
        reason="PostgreSQL locking and SQLSTATEs; DuckDB's multi-process test: test_concurrency.py",
    ),
]

WORKERS, VERSIONS = 16, 25
SERIALIZABLE = "?options=-c%20default_transaction_isolation%3Dserializable"


def log_and_update(url: str, stage: str, worker: int, count: int) -> list[str]:
    """One worker process: ``count`` versions, each followed by a metric and an alias move."""
    model, _ = small_model()
    reg = neve.Registry(url + (SERIALIZABLE if worker % 2 else ""), stage=stage)
    board = reg.get_model("board").version("v1")
    names = []
    for i in range(count):
        # The first log of each worker also races the others to create the model's row.
        mv = reg.log_model(model, "shared", metrics={"worker": worker, "i": i})
        mv.set_metric("after", worker * 1000 + i)
        board.set_metric("hits", worker * 1000 + i)
        mv.model.set_alias("production", mv)
        names.append(mv.version_name)
    return names


@pytest.fixture
def database_url(postgres_admin_url: str) -> str:
    with throwaway_database(postgres_admin_url, "conc") as url:
        yield url


def test_sixteen_processes_number_versions_and_keep_every_event(
    database_url: str, tmp_path: Path
) -> None:
    stage = str(tmp_path / "stage")
    reg = neve.Registry(database_url, stage=stage)  # tables exist before the race, as in production
    model, _ = small_model()
    reg.log_model(model, "board")
    sessions_before = _sessions(database_url)

    # A forkserver preloaded with neve and scikit-learn starts the workers without paying the
    # imports again, and without inheriting this process's open connections as fork would.
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["neve", "sklearn.linear_model", __name__])
    with ctx.Pool(WORKERS) as pool:
        results = pool.starmap(
            log_and_update, [(database_url, stage, w, VERSIONS) for w in range(WORKERS)]
        )

    # One connection per Registry, kept for its life: not one per operation.
    assert _sessions(database_url) - sessions_before <= WORKERS + 1

    total = WORKERS * VERSIONS
    logged = [name for names in results for name in names]
    assert len(logged) == len(set(logged)) == total
    m = neve.Registry(database_url, stage=stage).get_model("shared")
    versions = m.show_versions()
    assert sorted(versions.version_name, key=lambda v: int(v[1:])) == [
        f"v{i}" for i in range(1, total + 1)
    ]
    # Each worker got increasing numbers: a version is never handed out twice or out of order.
    for names in results:
        numbers = [int(n[1:]) for n in names]
        assert numbers == sorted(numbers)

    # Every metric landed on the version it was meant for.
    pairs = set(zip(versions.worker.astype(int), versions.i.astype(int), strict=True))
    assert pairs == {(w, i) for w in range(WORKERS) for i in range(VERSIONS)}
    assert (versions.after == versions.worker * 1000 + versions.i).all()
    by_name = versions.set_index("version_name")
    for w, names in enumerate(results):
        assert list(by_name.loc[names, "worker"].astype(int)) == [w] * VERSIONS

    # No event lost: the raw log holds exactly what the workers appended.
    with neve.connect(database_url) as s:
        events = s.execute(s.table("NEVE_EVENTS"))
    per_kind = events.groupby("KIND").size().to_dict()
    # Per version: its commit, two metrics logged with it, "after", and one "hits" on the board.
    assert per_kind == {"commit": total + 1, "metric": 4 * total, "alias": total}
    history = (
        neve.Registry(database_url, stage=stage)
        .get_model("board")
        .version("v1")
        .metric_history("hits")
    )
    assert sorted(history.value.astype(int)) == sorted(
        w * 1000 + i for w in range(WORKERS) for i in range(VERSIONS)
    )

    # The alias names one live version: the target of the newest alias event, which is
    # some worker's last move.
    alias_events = events[events.KIND == "alias"].sort_values("EVENT_ID")
    assert m.aliases == {"production": alias_events.VALUE_STR.iloc[-1]}
    assert m.aliases["production"] in {names[-1] for names in results}
    assert m.version("production").version_name == m.aliases["production"]


def _sessions(url: str) -> int:
    """Connections ever opened to the database (PostgreSQL's cumulative statistics)."""
    name = url.rsplit("/", 1)[1]
    with neve.connect(url) as s:
        cursor = s.engine.raw_sql("SELECT pg_stat_clear_snapshot()")
        cursor.close()
        cursor = s.engine.raw_sql(f"SELECT sessions FROM pg_stat_database WHERE datname = '{name}'")
        ((count,),) = cursor.fetchall()
        cursor.close()
    # The probe's own connection is counted too.
    return int(count) - 1


def test_conflicts_are_classified_by_sqlstate(database_url: str) -> None:
    """Real errors from the server: the three a retry resolves, and one it must not retry."""
    driver = driver_for(database_url)
    assert isinstance(driver, PostgresDriver)
    a, b = neve.connect(database_url), neve.connect(database_url)
    try:
        ca, cb = a.engine.con, b.engine.con
        ca.execute("CREATE TABLE k (id int PRIMARY KEY, v int)")
        ca.execute("INSERT INTO k VALUES (1, 0), (2, 0)")
        errors: dict[str, BaseException] = {}

        def attempt(label: str, con, sql: str) -> None:
            try:
                con.execute(sql)
            except Exception as exc:  # noqa: BLE001 - collected and asserted below
                errors[label] = exc

        attempt("unique", ca, "INSERT INTO k VALUES (1, 1)")

        # Write skew between two SERIALIZABLE transactions: the second to commit fails.
        for con in (ca, cb):
            con.execute("BEGIN ISOLATION LEVEL SERIALIZABLE")
            con.execute("SELECT sum(v) FROM k").fetchall()
        ca.execute("UPDATE k SET v = 1 WHERE id = 1")
        cb.execute("UPDATE k SET v = 1 WHERE id = 2")
        ca.execute("COMMIT")
        attempt("serialization", cb, "COMMIT")
        cb.rollback()

        # Two transactions locking the same rows in opposite orders: one is chosen as the victim.
        for con, first in ((ca, 1), (cb, 2)):
            con.execute("BEGIN")
            con.execute("SET LOCAL deadlock_timeout = '50ms'")
            con.execute(f"UPDATE k SET v = 2 WHERE id = {first}")
        other = threading.Thread(
            target=attempt, args=("deadlock-a", ca, "UPDATE k SET v = 3 WHERE id = 2")
        )
        other.start()
        attempt("deadlock-b", cb, "UPDATE k SET v = 3 WHERE id = 1")
        cb.rollback()  # releases the lock the other transaction waits for, if b was not the victim
        other.join(timeout=30)
        ca.rollback()

        attempt("syntax", ca, "SELEC 1")
    finally:
        a.close()
        b.close()

    deadlocks = [errors[k] for k in ("deadlock-a", "deadlock-b") if k in errors]
    assert len(deadlocks) == 1
    for exc in (errors["unique"], errors["serialization"], deadlocks[0]):
        assert driver.is_conflict(exc), exc
    # Wrapped errors keep their cause, and the registry still recognises the conflict.
    wrapped = RuntimeError("insert failed")
    wrapped.__cause__ = errors["unique"]
    assert driver.is_conflict(wrapped)
    assert not driver.is_conflict(errors["syntax"])
    assert {
        getattr(e, "sqlstate", None)
        for e in (errors["unique"], errors["serialization"], deadlocks[0])
    } == {"23505", "40001", "40P01"}


def test_registry_reads_are_not_prepared_on_the_server(database_url: str, tmp_path: Path) -> None:
    """psycopg prepares a query run five times on one connection, and PostgreSQL then plans it
    once for any model: a generic plan whose nested loops over the event log took seconds per
    read on a registry where one model holds most versions. Registry reads, through the
    registry and through a browser, are planned with their values every time."""
    from neve.registry._browse import Browser

    model, _ = small_model()
    reg = neve.Registry(database_url, stage=str(tmp_path / "stage"))
    mv = reg.log_model(model, "m", metrics={"a": 1.0})
    for _ in range(12):
        assert [v.version_name for v in reg.get_model("m").versions()] == ["v1"]
        assert mv.metrics == {"a": 1.0}
    # (Ibis's own catalog queries may be prepared: they plan the same for any value.)
    registry_reads = "SELECT statement FROM pg_prepared_statements WHERE strpos(statement, 'NEVE_') > 0"
    with reg._connection() as backend:
        assert backend.con.execute(registry_reads).fetchall() == []
    with Browser.open(database_url) as browser:
        for _ in range(12):
            assert [r["version_name"] for r in browser.versions("m")[0]] == ["v1"]
        assert browser.reader._con.execute(registry_reads).fetchall() == []
