"""Shared fixtures. Tests mirror src/neve/: tests/engine, tests/preprocessing, ...

The ``session`` fixture is the engine-agnostic suite's entry point, as Ibis's
backend fixture is: every test that takes it runs once per engine available in
the run (DuckDB always; PostgreSQL when its binaries are installed, local Spark when
Java and pyspark are, as ``.ci/run`` ensures). ``$NEVE_TEST_ENGINES=duckdb`` narrows a
local run. An engine left out because this machine lacks it is named in the header of
the run; in CI (``$CI`` set, as ``.ci/run`` sets it) its absence is an error, and so is
any skip CI did not expect (tests/_skips.py: every skip for want of a service or an
extra goes through ``require``).

A test that cannot run on some engine says so with a marker, which also feeds
the support matrix in docs/support-matrix.md::

    @pytest.mark.engines("duckdb", reason="DuckDB-specific SQL in the test")
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest

import neve
from tests._servers import postgres as pg
from tests._servers import spark_connect

# The skip policy's hooks (imported, pytest finds them here): in CI an unexpected skip fails.
from tests._skips import in_ci, pytest_make_collect_report, pytest_runtest_makereport, require  # noqa: F401

REPO = Path(__file__).resolve().parents[1]
TAXI_DIR = REPO / "data" / "nyc_taxi"

ALL_ENGINES = ("duckdb", "postgres", "spark")
#: What a run tests when $NEVE_TEST_ENGINES is unset: every engine this machine has.
DEFAULT_ENGINES = ALL_ENGINES
#: One local Spark per test process (xdist worker): its JVM takes seconds to start, so
#: every test shares it, each in a database of its own. Memory is capped so that two
#: workers fit beside the rest of the machine.
SPARK_MASTER = "local[2]"
SPARK_MEMORY = "2g"
#: What a local Spark user sets for small data: the test tables are a few hundred rows, where
#: every extra shuffle partition is a task and adaptive re-planning only adds work.
SPARK_SETTINGS = {
    "spark.driver.memory": SPARK_MEMORY,
    "spark.sql.shuffle.partitions": "1",
    "spark.sql.adaptive.enabled": "false",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    # A test run is thousands of tiny queries, each planned and code-generated afresh: the JIT's
    # optimising tier and a parallel collector cost more CPU than they win back (measured: half
    # the JVM's CPU per query, a third of its start-up) on a machine whose cores pytest shares.
    "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
}


def _missing(engine: str) -> str | None:
    """Why this machine cannot run ``engine``, or None when it can."""
    if engine == "postgres" and pg.find_bin_dir() is None:
        return "PostgreSQL is not installed (apt-get install postgresql)"
    if engine == "spark":
        if importlib.util.find_spec("pyspark") is None:
            return "pyspark is not installed (uv sync --all-extras)"
        if shutil.which("java") is None:
            return "Java is not installed (apt-get install openjdk-17-jre-headless)"
    return None


def available_engines() -> tuple[str, ...]:
    wanted = os.environ.get("NEVE_TEST_ENGINES")
    engines = tuple(e.strip() for e in wanted.split(",")) if wanted else DEFAULT_ENGINES
    for engine in engines:
        reason = _missing(engine)
        if reason is not None and in_ci():
            raise RuntimeError(f"CI must test {engine}: {reason} (see .ci/run)")
    if in_ci() and set(engines) != set(ALL_ENGINES):
        raise RuntimeError(f"CI must test every engine ({', '.join(ALL_ENGINES)}): unset NEVE_TEST_ENGINES={wanted}")
    return tuple(e for e in engines if _missing(e) is None)


def pytest_report_header(config: pytest.Config) -> list[str]:
    wanted = os.environ.get("NEVE_TEST_ENGINES")
    engines = tuple(e.strip() for e in wanted.split(",")) if wanted else DEFAULT_ENGINES
    skipped = [f"{e} ({reason})" for e in engines if (reason := _missing(e))]
    lines = [f"neve engines: {', '.join(available_engines())}"]
    if skipped:
        lines.append(f"neve engines NOT TESTED on this machine: {'; '.join(skipped)}")
    return lines


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "engines(*names, reason=''): run only on these engines (a declared gap)"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "engine" not in metafunc.fixturenames:
        return
    engines = available_engines()
    marker = metafunc.definition.get_closest_marker("engines")
    if marker is not None:
        # An engine a test is written for alone runs whenever this machine has it.
        opted_out = "NEVE_TEST_ENGINES" in os.environ
        engines = tuple(
            e for e in marker.args
            if e in engines or (len(marker.args) == 1 and not opted_out and _missing(e) is None)
        )
    metafunc.parametrize("engine", engines, indirect=True)


@pytest.fixture
def engine(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    """A throwaway PostgreSQL server on loopback for this test process."""
    why = _missing("postgres") or "NEVE_TEST_ENGINES leaves it out"
    require("postgres" in available_engines(), f"PostgreSQL is not tested in this run: {why}")
    with pg.running_server() as url:
        yield url


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory):
    """The fakesnow Snowflake emulator (tests/engine/_fakesnow.py): one server per test process,
    shared by tests/engine, tests/snowml_compat and the DAG's run on it. Skipped, saying why,
    where its env cannot be built; in CI that is an error."""
    from tests.engine._fakesnow import Emulator, EmulatorUnavailable

    try:
        emu = Emulator(tmp_path_factory.mktemp("fakesnow") / "server.log")
    except EmulatorUnavailable as exc:
        require(False, f"the Snowflake emulator cannot start: {exc}")
    yield emu
    emu.close()


@pytest.fixture(scope="session")
def spark_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The URL of this test process's local Spark (started on first use, shared by all)."""
    warehouse = tmp_path_factory.mktemp("spark") / "warehouse"
    settings = "&".join(f"{key}={quote(value, safe='')}" for key, value in SPARK_SETTINGS.items())
    return f"spark://{SPARK_MASTER}{warehouse}?{settings}"


@pytest.fixture(scope="session")
def spark_connect_url() -> str:
    """``sc://127.0.0.1:PORT``: a local Spark Connect server for this test process, one JVM and
    one catalog that every client shares (tests/_servers/spark_connect.py)."""
    reason = _missing("spark")
    require(reason is None, f"Spark Connect cannot start: {reason}")
    with spark_connect.running_server(SPARK_SETTINGS, SPARK_MASTER) as url:
        yield url


@pytest.fixture
def engine_url(engine: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A URL to a fresh, empty database on ``engine``, dropped afterwards."""
    if engine == "duckdb":
        yield f"duckdb:///{tmp_path / 'test.duckdb'}"
        return
    if engine == "spark":
        base = request.getfixturevalue("spark_url")
        database = f"t_{uuid.uuid4().hex[:12]}"
        yield f"{base}&database={database}"
        with neve.connect(base) as spark:
            spark.engine.raw_sql(f"DROP DATABASE IF EXISTS `{database}` CASCADE")
        return
    with pg.throwaway_database(request.getfixturevalue("postgres_admin_url"), "t") as url:
        yield url


@pytest.fixture
def session(engine_url: str) -> neve.Session:
    """A session on a fresh database of each engine in the run."""
    with neve.connect(engine_url) as s:
        yield s


def run_sql(session: neve.Session, sql: str) -> None:
    """Run ``sql``, written in PostgreSQL's dialect, on the session's engine (sqlglot
    translates it: ``'NaN'::FLOAT8`` and ``"quoted"`` names work everywhere)."""
    import sqlglot

    for statement in sqlglot.transpile(sql, read="postgres", write=session.engine.dialect):
        session.engine.raw_sql(statement)


@pytest.fixture
def taxi_files() -> list[Path]:
    return [TAXI_DIR / f"yellow_tripdata_sample_2019-0{m}.csv" for m in (1, 2)]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    """Say once, at the end, what a run without PostgreSQL left out: otherwise a third of the
    suite is missing from the count and nothing says so."""
    if os.environ.get("NEVE_TEST_ENGINES") or pg.find_bin_dir() is not None:
        return  # narrowed on purpose, or PostgreSQL ran
    reports = [r for key in ("passed", "failed", "skipped", "error") for r in terminalreporter.stats.get(key, [])]
    engine_tests = sum(1 for r in reports if r.when == "call" and "[duckdb" in r.nodeid)
    skipped = sum(1 for r in terminalreporter.stats.get("skipped", []) if "PostgreSQL" in str(r.longrepr))
    terminalreporter.write_sep("!", "PostgreSQL is not installed", red=True, bold=True)
    terminalreporter.write_line(
        f"{engine_tests} engine tests ran on DuckDB only and {skipped} PostgreSQL-only tests were skipped. "
        "Install PostgreSQL's server binaries (apt-get install postgresql, as .ci/run does) and rerun: "
        "the tests start their own throwaway server.",
        red=True,
    )

