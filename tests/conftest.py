"""Shared fixtures. Tests mirror src/neve/: tests/engine, tests/preprocessing, ...

The ``session`` fixture is the engine-agnostic suite's entry point, as Ibis's
backend fixture is: every test that takes it runs once per engine available in
the run (DuckDB always; PostgreSQL when its binaries are installed, as
``.ci/run`` ensures). ``$NEVE_TEST_ENGINES=duckdb`` narrows a local run.

A test that cannot run on some engine says so with a marker, which also feeds
the support matrix in docs/support-matrix.md::

    @pytest.mark.engines("duckdb", reason="DuckDB-specific SQL in the test")
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import neve
from tests._servers import postgres as pg

REPO = Path(__file__).resolve().parents[1]
TAXI_DIR = REPO / "data" / "nyc_taxi"

ALL_ENGINES = ("duckdb", "postgres")


def available_engines() -> tuple[str, ...]:
    wanted = os.environ.get("NEVE_TEST_ENGINES")
    engines = tuple(e.strip() for e in wanted.split(",")) if wanted else ALL_ENGINES
    if "postgres" in engines and pg.find_bin_dir() is None:
        if os.environ.get("CI"):
            raise RuntimeError("CI must test PostgreSQL: install it (see .ci/run)")
        engines = tuple(e for e in engines if e != "postgres")
    return engines


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
        engines = tuple(e for e in engines if e in marker.args)
    metafunc.parametrize("engine", engines, indirect=True)


@pytest.fixture
def engine(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    """A throwaway PostgreSQL server on loopback for this test process."""
    with pg.running_server() as url:
        yield url


@pytest.fixture
def engine_url(engine: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A URL to a fresh, empty database on ``engine``, dropped afterwards."""
    if engine == "duckdb":
        yield f"duckdb:///{tmp_path / 'test.duckdb'}"
        return
    with pg.throwaway_database(request.getfixturevalue("postgres_admin_url"), "t") as url:
        yield url


@pytest.fixture
def session(engine_url: str) -> neve.Session:
    """A session on a fresh database of each engine in the run."""
    with neve.connect(engine_url) as s:
        yield s


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
