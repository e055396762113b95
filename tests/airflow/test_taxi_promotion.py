"""The loop in Airflow: a person approves or rejects the promotion through Airflow's own REST
API while ``dag.test()`` waits, and the alias move's Asset event starts ``taxi_scoring``."""

from __future__ import annotations

import json
import threading
import time

import pytest

import neve
from neve import Registry
from tests.airflow._conf import run_conf
from tests.airflow.conftest import DUCKDB
from tools.demo.metadata import read_xcom

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

MODEL = "trip_duration_estimator"
HITL = "/api/v2/dags/taxi_trip_duration/dagRuns/{run}/taskInstances/approve_promotion/-1/hitlDetails"


@pytest.fixture
def warehouse(tmp_path_factory):
    """A DuckDB file of the same name as the session's (the registry name, and so the alias's
    Asset that taxi_scoring was parsed with), in a folder of its own: each test starts from
    an empty registry, whichever worker and order it runs in."""
    db = tmp_path_factory.mktemp("promotion") / DUCKDB.name
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW_CONN_NEVE_DEFAULT", json.dumps({"conn_type": "neve", "extra": {"url": f"duckdb://{db}"}}))
        yield db


@pytest.fixture
def airflow_api(dags_in_db):
    """Airflow's REST API in this process, on the test's metadata DB."""
    from airflow.api_fastapi.app import create_app
    from fastapi.testclient import TestClient

    with TestClient(create_app("core")) as client:
        yield client


def answer(client, auth_manager, choice: str, user: str, seen: dict) -> threading.Thread:
    """A person answering the pending request through the API, once dag.test() has parked it."""
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    headers = {"Authorization": f"Bearer {auth_manager.generate_jwt(SimpleAuthManagerUser(username=user, role='OP'))}"}

    def run() -> None:
        for _ in range(600):
            pending = client.get(HITL.format(run="~").rsplit("/taskInstances", 1)[0] + "/hitlDetails",
                                 headers=headers).json()
            waiting = [d for d in pending.get("hitl_details", []) if not d["response_received"]]
            if waiting:
                seen.update(waiting[0])
                run_id = waiting[0]["task_instance"]["dag_run_id"]
                response = client.patch(HITL.format(run=run_id), headers=headers,
                                        json={"chosen_options": [choice], "params_input": {}})
                seen["status"] = response.status_code
                return
            time.sleep(1)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_a_rejected_promotion_changes_nothing_and_says_so(
    taxi_dag, task_envs, warehouse, airflow_api, auth_manager, metadata_db
):
    seen: dict = {}
    responder = answer(airflow_api, auth_manager, "Reject", "bob", seen)
    run = taxi_dag.test(run_conf=run_conf())  # the run waits for bob
    responder.join(timeout=5)
    assert seen["status"] == 200
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert str(run.state).endswith("success"), states
    assert states["promote_to_production"].endswith("success")
    # The request showed the candidate's metrics (there is no production yet) and its page.
    assert seen["subject"] == f"Promote {MODEL} v1 to production?"
    assert "| **mse** |" in seen["body"] and "(none)" in seen["body"]
    assert f"/neve/models/{MODEL}/versions/v1" in seen["body"]
    outcome = read_xcom(metadata_db, run.run_id, "promote_to_production")
    assert outcome["promoted"] is False and outcome["by"] == "bob"
    assert outcome["message"] == f"bob rejected {MODEL} v1: production stays unset"
    with neve.connect(f"duckdb://{warehouse}") as session:
        model = Registry(session).get_model(MODEL)
        assert "production" not in model.aliases and model.alias_history("production").empty


def test_an_approved_promotion_moves_production_as_the_approver_and_starts_scoring(
    taxi_dag, dagbag, task_envs, warehouse, airflow_api, auth_manager, metadata_db
):
    from airflow.models.asset import AssetDagRunQueue, AssetEvent, AssetModel
    from airflow.utils.session import create_session

    seen: dict = {}
    responder = answer(airflow_api, auth_manager, "Approve", "alice", seen)
    run = taxi_dag.test(run_conf=run_conf())
    responder.join(timeout=5)
    assert seen["status"] == 200
    assert str(run.state).endswith("success"), {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    outcome = read_xcom(metadata_db, run.run_id, "promote_to_production")
    assert outcome == {"promoted": True, "by": "alice", "alias": "production", "version": "v1",
                       "message": f"production is now {MODEL} v1 (was unset): approved by alice"}
    with neve.connect(f"duckdb://{warehouse}") as session:
        model = Registry(session).get_model(MODEL)
        assert model.aliases["production"] == "v1"
        history = model.alias_history("production")
        assert history.iloc[0]["created_by"] == "alice"  # the event log names the approver
        assert history.iloc[0]["run_context"]["airflow"]["dag_run_id"] == run.run_id

    # The move's Asset event, and the scoring DAG queued on it (the scheduler starts it next).
    uri = f"neve://{DUCKDB.stem}/{MODEL}/aliases/production"
    with create_session() as s:
        events = (s.query(AssetEvent).join(AssetModel, AssetModel.id == AssetEvent.asset_id)
                  .filter(AssetModel.uri == uri, AssetEvent.source_run_id == run.run_id).all())
        assert [(e.source_task_id, e.extra["version"], e.extra["action"]) for e in events] == [
            ("promote_to_production", "v1", "promoted")]
        queued = {q.target_dag_id for q in s.query(AssetDagRunQueue).all()}
    assert "taxi_scoring" in queued

    scoring = dagbag.dags["taxi_scoring"].test()
    states = {ti.task_id: str(ti.state) for ti in scoring.get_task_instances()}
    assert all(state.endswith("success") for state in states.values()), states
    scored = read_xcom(metadata_db, scoring.run_id, "predict", dag_id="taxi_scoring")
    assert scored["model"]["version"] == "v1" and scored["drift"]["ok"] is True
    with neve.connect(f"duckdb://{warehouse}") as session:
        assert session.table("TAXI_PRED_LATEST").count().execute() == session.table("TAXI_LATEST").count().execute()
