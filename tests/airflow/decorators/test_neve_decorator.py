"""@task.neve: session injection, refs on the way in, refs and model events on the way out."""

from __future__ import annotations

import pandas as pd
import pendulum
import pytest
from airflow.sdk import DAG, task
from airflow.sdk.execution_time.context import OutletEventAccessors

import neve
from neve.airflow import MODEL_ALIAS, ModelVersionRef, TableRef, model_version_ref, record_model_event
from neve.airflow.decorators.neve import _SESSION, _for_xcom, _inject_session
from neve.errors import NeveInputError


@pytest.fixture
def memory_session():
    with neve.connect("duckdb://") as session:
        token = _SESSION.set(session)
        yield session
        _SESSION.reset(token)


def test_session_is_injected_wherever_it_is_declared(memory_session):
    def first(session, ref, n=1):
        return session, ref, n

    def last(ref, *, n=1, session):
        return session, ref, n

    for fn in (first, last):
        wrapped = _inject_session(fn)
        assert "session" not in str(wrapped.__signature__)
        got_session, ref, n = wrapped({"kind": "neve.table/1", "name": "T"}, n=2)
        assert got_session is memory_session
        assert isinstance(ref, TableRef) and ref.name == "T" and n == 2


def test_functions_without_session_are_called_as_they_are(memory_session):
    assert _inject_session(lambda a, b=2: a + b)(1) == 3


def test_dag_authors_call_the_task_without_session():
    with DAG("neve_decorator_shape", schedule=None, start_date=pendulum.datetime(2024, 1, 1)) as dag:

        @task.neve(conn_id="warehouse")
        def make(session) -> TableRef:
            return TableRef("T")

        @task.neve
        def use(session, ref: TableRef) -> int:
            return 1

        use(make())

    op = dag.get_task("use")
    assert op.conn_id == "neve_default" and dag.get_task("make").conn_id == "warehouse"
    assert MODEL_ALIAS in op.outlets
    assert op.upstream_task_ids == {"make"}


def test_a_missing_argument_fails_when_the_dag_is_parsed():
    with DAG("neve_decorator_missing", schedule=None, start_date=pendulum.datetime(2024, 1, 1)):

        @task.neve
        def use(session, ref):
            return 1

        with pytest.raises(TypeError, match="ref"):
            use()


@pytest.mark.parametrize("kind", ["pandas", "ibis"])
def test_returning_data_fails_and_says_to_return_a_ref(kind, memory_session):
    data = pd.DataFrame({"a": [1]})
    if kind == "ibis":
        data = memory_session.create_table("T", data)
    with pytest.raises(NeveInputError, match=r"data does not go through XCom.*TableRef\.of"):
        _for_xcom(data, memory_session, {})


class FakeVersion:
    """Stands in for a registry ModelVersion: the decorator only reads these attributes."""

    model_name, version_name = "trip_duration_estimator", "v4"
    metrics = {"r2": 0.71}
    tags = {"stage": "dev"}
    aliases = ["production"]


def test_a_returned_model_version_becomes_a_ref_and_an_asset_event(tmp_path):
    with neve.connect(f"duckdb://{tmp_path / 'models.duckdb'}") as session:
        task_ = type("T", (), {"outlets": [MODEL_ALIAS], "task_id": "train"})()
        context = {"task": task_, "outlet_events": OutletEventAccessors()}
        ref = _for_xcom(FakeVersion(), session, context)
    assert isinstance(ref, ModelVersionRef)
    assert (ref.registry, ref.model, ref.version) == ("models", "trip_duration_estimator", "v4")
    (event,) = context["outlet_events"][MODEL_ALIAS].asset_alias_events
    assert event.dest_asset_key.uri == "neve://models/trip_duration_estimator"
    assert event.extra["version"] == "v4" and event.extra["metrics"] == {"r2": 0.71}
    assert event.extra["action"] == "logged" and event.extra["aliases"] == ["production"]


def test_promotion_events_need_the_alias_among_the_outlets():
    ref = model_version_ref(FakeVersion(), registry="neve")
    plain = type("T", (), {"outlets": [], "task_id": "promote"})()
    with pytest.raises(NeveInputError, match=r"outlets=\[neve\.airflow\.MODEL_ALIAS\]"):
        record_model_event(ref, "promoted", context={"task": plain, "outlet_events": OutletEventAccessors()})
    ok = type("T", (), {"outlets": [MODEL_ALIAS], "task_id": "promote"})()
    context = {"task": ok, "outlet_events": OutletEventAccessors()}
    asset = record_model_event(ref, "promoted", context=context)
    assert asset.uri == "neve://neve/trip_duration_estimator"
    assert context["outlet_events"][MODEL_ALIAS].asset_alias_events[0].extra["action"] == "promoted"


def test_an_error_a_retry_cannot_fix_fails_the_task_without_retrying(tmp_path, monkeypatch):
    from airflow.sdk.exceptions import AirflowFailException

    from neve.errors import DataFileError

    monkeypatch.setenv("AIRFLOW_CONN_NOT_RETRIED", f"neve://?url=duckdb://{tmp_path / 'x.duckdb'}")

    @task.neve(conn_id="not_retried", retries=3)
    def load(session):
        raise DataFileError("taxi data file not found: /nowhere/2019-13.csv")

    with DAG("not_retried", start_date=pendulum.datetime(2024, 1, 1), schedule=None):
        op = load().operator
    with pytest.raises(AirflowFailException, match=r"DataFileError: taxi data file not found: /nowhere"):
        op.execute({})
