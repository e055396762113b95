"""Airflow test set-up: one throwaway AIRFLOW_HOME and metadata DB for the whole session.

Airflow reads its configuration when it is first imported, so the environment is
set here, at collection time, before any test module imports it. The DAGs folder
is the project's own ``dags/``, as ``dag.test()`` needs the DAG file to sit in the
configured folder.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests._skips import require
from tests.airflow._conf import run_conf

# Checked without importing Airflow: importing it now would freeze its configuration
# before the environment below is set.
require(importlib.util.find_spec("airflow") is not None,
        "the airflow extra is not installed (uv sync --all-extras)", allow_module_level=True)

REPO = Path(__file__).resolve().parents[2]
#: The tables a run of the taxi DAG leaves, and the model it logs.
TAXI_TABLES = ("TAXI_RAW_2019_01", "TAXI_RAW_2019_02", "TAXI_DATA", "TAXI_PRED")
TAXI_MODEL = "trip_duration_estimator"
HOME = Path(tempfile.mkdtemp(prefix="neve-airflow-test-"))
DUCKDB = HOME / "taxi.duckdb"

os.environ.update(
    AIRFLOW_HOME=str(HOME),
    AIRFLOW__CORE__DAGS_FOLDER=str(REPO / "dags"),
    AIRFLOW__CORE__LOAD_EXAMPLES="False",
    AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{HOME / 'airflow.db'}",
    AIRFLOW__LOGGING__LOGGING_LEVEL="WARNING",
    AIRFLOW_CONN_NEVE_DEFAULT=json.dumps({"conn_type": "neve", "extra": {"url": f"duckdb://{DUCKDB}"}}),
)
os.environ.pop("NEVE_CONN_ID", None)
os.environ.pop("NEVE_TAXI_DATA", None)


@pytest.fixture(scope="session", autouse=True)
def _airflow_home():
    yield HOME
    shutil.rmtree(HOME, ignore_errors=True)


@pytest.fixture(autouse=True)
def _no_airflow_context_left_behind():
    """dag.test() runs tasks in this process, and Airflow's task runner exports each task's
    AIRFLOW_CTX_* to os.environ and leaves them there: later tests must not look like a
    task of that run (log_model tags versions and answers retries from them)."""
    yield
    for var in [v for v in os.environ if v.startswith("AIRFLOW_CTX_")]:
        del os.environ[var]


@pytest.fixture(scope="session")
def taxi_db() -> Path:
    """The DuckDB file behind ``neve_default`` in these tests."""
    return DUCKDB


@pytest.fixture(scope="session")
def metadata_db(_airflow_home):
    """Airflow's metadata DB, created once per test session."""
    from airflow.utils import db

    db.initdb()
    return _airflow_home / "airflow.db"


@pytest.fixture(scope="session")
def auth_manager(metadata_db):
    from airflow.api_fastapi.app import create_auth_manager
    from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

    manager = create_auth_manager()
    assert isinstance(manager, SimpleAuthManager), "these tests sign tokens with Airflow's simple auth manager"
    manager.init()
    return manager


@pytest.fixture(scope="session")
def dagbag(metadata_db):
    from airflow.dag_processing.dagbag import BundleDagBag

    # As Airflow's DAG processor parses them: the DAGs folder on sys.path (taxi_tasks.py).
    return BundleDagBag(str(REPO / "dags"), bundle_path=REPO / "dags")


@pytest.fixture
def dags_in_db(dagbag):
    """Every DAG of the folder stored in the metadata DB, as Airflow's DAG processor stores
    them (so Asset events queue the DAGs scheduled on them), with taxi_scoring unpaused.
    Synced again for each test: an in-process ``dag.test()`` re-syncs its own bundle and
    leaves the assets' and DAGs' rows as it found useful, not as the next test needs."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import sync_bag_to_db
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    DagBundlesManager().sync_bundles_to_db()
    sync_bag_to_db(dagbag, "dags-folder", None)
    with create_session() as session:
        session.query(DagModel).filter(DagModel.dag_id == "taxi_scoring").update({"is_paused": False})
    return dagbag


@pytest.fixture(scope="session")
def taxi_dag(dagbag):
    return dagbag.dags["taxi_trip_duration"]


@pytest.fixture(scope="session")
def taxi_module(taxi_dag):
    """``dags/taxi_tasks.py``, the taxi DAGs' shared module: cleaning rules and helpers."""
    import sys

    return sys.modules["taxi_tasks"]


@pytest.fixture(scope="session")
def task_envs() -> dict[str, str]:
    """The project's ``taxi`` and ``legacy`` envs, built for real as ``make demo`` does.

    Cached by content hash in the checkout's ``.neve/envs``: a no-op when nothing changed,
    a rebuild (about 20 s, packages from uv's cache) after an edit to neve's source.
    ``locked``: a test never rewrites the committed locks.
    """
    from neve import envs

    results = envs.build(["taxi", "legacy"], project=REPO, locked=True)
    return {r.name: envs.require(r.name, project=REPO) for r in results}


@pytest.fixture(scope="session")
def taxi_run(taxi_dag, task_envs):
    """One full ``dag.test()`` run of the taxi DAG on a fresh DuckDB file, promotion
    auto-approved (as ``make demo`` runs it)."""
    run = taxi_dag.test(run_conf=run_conf(auto_approve=True))
    return run


def taxi_outcome(url: str) -> tuple[dict[str, int], dict[str, float], str]:
    """What a taxi DAG run left at ``url``: row counts of its tables, the last logged
    version's metrics and the Airflow run that logged it."""
    import neve
    from neve import Registry

    with neve.connect(url) as session:
        counts = {name: session.table(name).count().execute() for name in TAXI_TABLES}
        versions = Registry(session).get_model(TAXI_MODEL).versions()
        return counts, versions[-1].metrics, versions[-1].tags["airflow_run_id"]


def assert_matches_the_duckdb_run(url: str, run: Any, on_duckdb: tuple) -> None:
    """The DAG ``run`` left at ``url`` what the DuckDB run left (``taxi_outcome`` of it): the
    same row counts, and metrics equal to float tolerance (the same rows in the same order on
    every engine, so the same split and fit)."""
    counts, metrics, run_id = taxi_outcome(url)
    assert run_id == run.run_id
    assert counts == on_duckdb[0]
    assert set(metrics) == set(on_duckdb[1])
    for key, value in on_duckdb[1].items():
        assert metrics[key] == pytest.approx(value, rel=1e-6), key


def pytest_configure(config):
    # skops probes module attributes while loading a model and trips Airflow's
    # deprecated-import shims (thousands of identical warnings, none about neve).
    config.addinivalue_line("filterwarnings", r"ignore:The `airflow\..*:Warning")
