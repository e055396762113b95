"""An alias set on the registry's page in Airflow's UI records the alias's Asset event, as a
promotion task does, so the DAGs scheduled on it (taxi_scoring) run."""

from __future__ import annotations

import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression

import neve
from tests.airflow.conftest import DUCKDB

MODEL = "trip_duration_estimator"


@pytest.fixture
def registry_url(tmp_path) -> str:
    url = f"duckdb://{tmp_path / 'ui.duckdb'}"
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [2.0, 4.0, 6.1]})
    with neve.connect(url) as session:
        reg = neve.Registry(session)
        for _ in range(2):
            reg.log_model(LinearRegression().fit(frame[["x"]], frame.y), model_name=MODEL, metrics={"mse": 0.1})
    return url


def test_an_alias_set_in_the_ui_records_the_alias_asset_event(dags_in_db, registry_url, as_op):
    from airflow.models.asset import AssetDagRunQueue, AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from fastapi.testclient import TestClient

    from neve.airflow.ui.app import _record_alias_moved, create_app

    # The registry's name comes from the UI's connection (neve_default: the session's taxi.duckdb).
    app = create_app(registry=lambda: neve.Registry(registry_url), alias_moved=_record_alias_moved)
    with TestClient(app, follow_redirects=False) as client:
        response = client.post(f"/models/{MODEL}/aliases", data={"alias": "production", "version": "v2"},
                               headers=as_op)
        assert response.status_code == 303
        # An alias no DAG is scheduled on records nothing, and fails nothing.
        assert client.post(f"/models/{MODEL}/aliases", data={"alias": "staging", "version": "v1"},
                           headers=as_op).status_code == 303
    uri = f"neve://{DUCKDB.stem}/{MODEL}/aliases/production"
    with create_session() as s:
        events = (s.query(AssetEvent).join(AssetModel, AssetModel.id == AssetEvent.asset_id)
                  .filter(AssetModel.uri == uri).all())
        ui_events = [e.extra for e in events if e.extra.get("via") == "airflow-ui"]
        assert ui_events == [{"action": "promoted", "model": MODEL, "version": "v2", "alias": "production",
                              "by": "op-user", "via": "airflow-ui"}]
        assert "taxi_scoring" in {q.target_dag_id for q in s.query(AssetDagRunQueue).all()}
        assert not s.query(AssetModel).filter(AssetModel.uri.like("%/aliases/staging")).count()
