"""Every route of the registry UI through FastAPI's TestClient, with tokens Airflow's own
auth manager signed: content, pagination, filters, permissions, actions and bad input."""

from __future__ import annotations

import re
from html import unescape

import pytest

import neve

ROUTES = ["/models", "/models/taxi", "/models/taxi/versions/v2", "/runs/taxi_dag/run_1"]
ACTIONS = [
    ("/models/taxi/aliases", {"alias": "production", "version": "v3"}),
    ("/models/taxi/aliases/production/unset", {}),
    ("/models/taxi/tags", {"key": "team", "value": "ml"}),
    ("/models/taxi/versions/v1/tags", {"key": "stage", "value": "prod"}),
    ("/models/taxi/versions/v1/comment", {"text": "promoted after review"}),
]


def text(response) -> str:
    """The page as a reader sees it: tags, styles and scripts removed."""
    html = re.sub(r"<(style|script)>.*?</\1>", "", response.text, flags=re.S)
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


def rows(response, table_id: str) -> list[str]:
    body = re.search(rf'<table[^>]*id="{table_id}".*?<tbody>(.*?)</tbody>', response.text, flags=re.S)
    assert body, f"no table {table_id!r} on the page"
    return [re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", r))).strip()
            for r in re.findall(r"<tr[^>]*>(.*?)</tr>", body.group(1), flags=re.S)]


def event_count(url: str) -> int:
    return len(neve.Registry(url).events())


# -- auth ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ROUTES)
def test_without_a_token_every_page_is_refused_and_shows_no_data(client, path):
    response = client.get(path)
    assert response.status_code == 401
    assert "taxi" not in response.text.replace(path, "") and "mse" not in response.text


@pytest.mark.parametrize(("path", "form"), ACTIONS)
def test_without_a_token_no_action_runs(client, populated, path, form):
    before = event_count(populated)
    assert client.post(path, data=form).status_code == 401
    assert event_count(populated) == before


def test_a_forged_token_is_refused(client):
    assert client.get("/models", headers={"Authorization": "Bearer not-a-jwt"}).status_code in (401, 403)
    client.cookies.set("_token", "not-a-jwt")
    assert client.get("/models").status_code in (401, 403)


def test_the_airflow_ui_cookie_is_accepted(client, tokens):
    client.cookies.set("_token", tokens["viewer"])
    response = client.get("/models")
    assert response.status_code == 200 and "taxi" in text(response)


@pytest.mark.parametrize(("path", "form"), ACTIONS)
def test_a_viewer_reads_but_cannot_act(client, populated, as_viewer, path, form):
    assert client.get("/models/taxi", headers=as_viewer).status_code == 200
    before = event_count(populated)
    assert client.post(path, data=form, headers=as_viewer).status_code == 403
    assert event_count(populated) == before


def test_a_viewer_sees_no_action_forms_and_an_op_does(client, as_viewer, as_op):
    assert 'id="actions"' not in client.get("/models/taxi", headers=as_viewer).text
    assert 'id="actions"' in client.get("/models/taxi", headers=as_op).text
    assert 'id="actions"' in client.get("/models/taxi/versions/v1", headers=as_op).text


def test_docs_and_openapi_are_not_served(client, as_op):
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert client.get(path, headers=as_op).status_code == 404


@pytest.mark.parametrize("origin", ["https://evil.example", "null", "NULL"])
def test_a_cross_site_form_post_is_refused(client, populated, as_op, origin):
    # "null": a sandboxed iframe or a data: URL page posting the form.
    before = event_count(populated)
    response = client.post(
        "/models/taxi/tags", data={"key": "k", "value": "v"},
        headers={**as_op, "Origin": origin},
    )
    assert response.status_code == 403 and event_count(populated) == before


def test_a_same_origin_form_post_is_accepted(client, populated, as_op):
    before = event_count(populated)
    response = client.post(
        "/models/taxi/tags", data={"key": "k", "value": "v"},
        headers={**as_op, "Origin": "http://testserver"}, follow_redirects=False,
    )
    assert response.status_code < 400 and event_count(populated) == before + 1


# -- Models page ---------------------------------------------------------------------------------


def test_models_page_lists_every_model_with_versions_latest_aliases_and_metrics(client, as_viewer):
    response = client.get("/models", headers=as_viewer)
    assert response.status_code == 200
    churn, taxi = rows(response, "models")
    assert churn.startswith("churn 1 v1") and "team=growth" in churn
    assert taxi.startswith("taxi 3 v3") and "production → v2" in taxi and "stage=dev" in taxi
    assert "0.7" in taxi  # mse of the latest version


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("q=TAX", ["taxi"]),
        ("tag=team", ["churn"]),
        ("tag=team=growth", ["churn"]),
        ("tag=team=other", []),
        ("tag=stage=dev", ["taxi"]),
        ("alias=production", ["taxi"]),
        ("sort=mse&order=asc", ["taxi", "churn"]),
        ("sort=mse&order=desc", ["churn", "taxi"]),
        ("sort=r2&order=desc", ["taxi", "churn"]),  # churn has no r2: last either way
        ("sort=model_name&order=desc", ["taxi", "churn"]),
    ],
)
def test_models_page_filters_and_sorts(client, as_viewer, query, names):
    response = client.get(f"/models?{query}", headers=as_viewer)
    assert response.status_code == 200
    found = [r.split()[0] for r in rows(response, "models")] if names else []
    assert found == names
    if not names:
        assert "No models match" in text(response)


def test_models_page_paginates(populated, client, as_viewer):
    from sklearn.dummy import DummyRegressor

    reg = neve.Registry(populated)
    model = DummyRegressor().fit([[0.0]], [0.0])
    for i in range(60):
        reg.log_model(model, model_name=f"bulk-{i:02d}")
    first = client.get("/models?q=bulk", headers=as_viewer)
    second = client.get("/models?q=bulk&page=2", headers=as_viewer)
    assert [r.split()[0] for r in rows(first, "models")] == [f"bulk-{i:02d}" for i in range(50)]
    assert [r.split()[0] for r in rows(second, "models")] == [f"bulk-{i:02d}" for i in range(50, 60)]
    assert "1–50 of 60" in text(first) and "page=2" in first.text


# -- model page ----------------------------------------------------------------------------------


def test_model_page_shows_versions_metrics_chart_alias_history_and_lineage(client, as_viewer):
    response = client.get("/models/taxi", headers=as_viewer)
    assert response.status_code == 200
    v3, v2, v1 = rows(response, "versions")  # newest first
    assert v2.startswith("v2") and "production" in v2 and "0.5" in v2 and "0.81" in v2 and "run 1" in v2
    assert "outside Airflow" in v1
    history = rows(response, "alias-history")
    assert [h.split()[2:5] for h in history] == [["production", "→", "v2"], ["production", "→", "v1"]]
    page = text(response)
    assert "TRIPS · 400 rows" in page and "ohe: OneHotEncoder" in page and "scale: StandardScaler" in page
    chart = re.search(r'<div class="panel" id="metric-chart">(.*?)</div>', response.text, flags=re.S).group(1)
    assert chart.count("<circle") == 3 and "v2: 0.5" in chart


def test_model_page_sorts_by_a_metric_and_charts_the_chosen_one(client, as_viewer):
    response = client.get("/models/taxi?sort=mse&order=asc&metric=r2", headers=as_viewer)
    assert [r.split()[0] for r in rows(response, "versions")] == ["v2", "v3", "v1"]
    assert "r2 across versions" in text(response) and "v3: 0.82" in response.text


def test_model_page_with_10k_versions_shows_one_page(tmp_path, client_for, as_viewer):
    """10k versions (events appended in bulk, as many log_model calls would leave them)."""
    from neve.registry import _tables

    url = f"duckdb://{tmp_path / 'big.duckdb'}"
    reg = neve.Registry(url)
    from sklearn.dummy import DummyRegressor

    mv = reg.log_model(DummyRegressor().fit([[0.0]], [0.0]), model_name="big", metrics={"mse": 1.0})
    with neve.connect(url) as session:
        versions = session.table(_tables.VERSIONS).execute()
        events = session.table(_tables.EVENTS).filter(lambda e: e.VERSION_NAME == mv.version_name).execute()
        copies, log = [], []
        for n in range(2, 10_001):
            copies.append(versions.iloc[0].to_dict() | {"VERSION_NAME": f"v{n}", "VERSION_NUMBER": n})
            for e in events.to_dict("records"):
                log.append(e | {"VERSION_NAME": f"v{n}", "EVENT_ID": f"{e['EVENT_ID']}-{n:05d}",
                                "VALUE_NUM": float(n) if e["KIND"] == "metric" else e["VALUE_NUM"]})
        import pandas as pd

        session.engine.insert(_tables.VERSIONS, pd.DataFrame(copies))
        session.engine.insert(_tables.EVENTS, pd.DataFrame(log))
    client = client_for(url)
    response = client.get("/models/big?sort=mse&order=desc&page=3", headers=as_viewer)
    assert response.status_code == 200
    shown = rows(response, "versions")
    assert len(shown) == 50 and shown[0].startswith("v9900 ")
    assert "101–150 of 10000" in text(response)
    assert len(response.text) < 400_000  # one page of rows and a thinned-out chart, not 10k rows


# -- version page --------------------------------------------------------------------------------


def test_version_page_shows_pipeline_sql_baseline_drift_and_artifacts(client, as_viewer, populated):
    response = client.get("/models/taxi/versions/v2", headers=as_viewer)
    assert response.status_code == 200
    page = text(response)
    assert "production" in page and "run 1" in page and "mse 0.5" in page
    steps = rows(response, "steps")
    assert steps[0].startswith("ohe OneHotEncoder ZONE") and "3 values" in steps[0]
    sql = unescape(re.search(r'<pre id="sql">(.*?)</pre>', response.text, flags=re.S).group(1))
    assert sql.lstrip().startswith("SELECT") and '"INPUT_TABLE"' in sql and "PREDICTION" in sql
    assert rows(response, "baseline")[0].startswith("DIST numeric")
    assert "drift in DIST" in page and "PSI" in page and 'class="bar-b"' in response.text
    manifest = neve.Registry(populated).get_model("taxi").version("v2").manifest
    artifacts = rows(response, "artifacts")
    assert len(artifacts) == len(manifest["files"])
    for name, meta in manifest["files"].items():
        assert any(r.startswith(name) and f"{meta['size']:,} B" in r and meta["sha256"] in r for r in artifacts)


def test_version_page_without_recorded_drift_says_how_to_record_it(client, as_viewer):
    assert "record=True" in text(client.get("/models/taxi/versions/v1", headers=as_viewer))


def test_version_page_by_alias_shows_the_version_it_points_to(client, as_viewer):
    page = text(client.get("/models/taxi/versions/production", headers=as_viewer))
    assert "taxi v2" in page and "(alias production)" in page


def test_version_page_compares_side_by_side(client, as_viewer):
    response = client.get("/models/taxi/versions/v2?compare=v1", headers=as_viewer)
    compared = rows(response, "compare")
    assert "mse 0.5 0.9" in compared and "alpha 2.0 1.0" in compared and "stage dev dev" in compared
    assert response.text.count('class="changed"') >= 4  # mse, r2 and alpha differ, in both columns


# -- DAG run tab ---------------------------------------------------------------------------------


def test_run_tab_shows_versions_drift_and_tables_of_that_run(app, client, populated, as_viewer, trained, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CTX_DAG_ID", "taxi_dag")
    monkeypatch.setenv("AIRFLOW_CTX_DAG_RUN_ID", "run_1")
    monkeypatch.setenv("AIRFLOW_CTX_TASK_ID", "train")
    reg = neve.Registry(populated)
    mv = reg.get_model("taxi").version("v2")
    logged = reg.log_model(mv.load(), model_name="taxi", metrics={"mse": 0.4})
    with neve.connect(populated) as session:
        mv.drift(session.table("TRIPS"), record=True)
    app.state.run_outputs[("taxi_dag", "run_1")] = [
        ("predict", {"predictions": {"kind": "neve.table/1", "name": "TAXI_PRED", "schema": "main", "rows": 400}}),
        ("transform", {"kind": "neve.table/1", "name": "TAXI_DATA", "schema": "main", "rows": 400}),
    ]
    response = client.get("/runs/taxi_dag/run_1", headers=as_viewer)
    assert response.status_code == 200
    (version,) = rows(response, "run-versions")
    assert version.startswith(f"taxi {logged.version_name} train") and "mse 0.4" in version
    assert 'id="drift-verdict">no drift' in response.text
    assert [t.split()[0] for t in rows(response, "run-tables")] == ["TAXI_PRED", "TAXI_DATA"]
    # The model page links the version to the run that logged it.
    model = client.get("/models/taxi", headers=as_viewer)
    assert model.status_code == 200
    assert '<a class="to-airflow" target="_top" href="/dags/taxi_dag/runs/run_1">' in model.text
    assert rows(model, "versions")[0].startswith(logged.version_name) and "taxi_dag / run_1 (train)" in text(model)


def test_run_tab_falls_back_to_the_drift_verdict_the_run_returned(app, client, as_viewer):
    report = {"ok": False, "drifted": ["DIST"], "row_count": 9, "features": [
        {"feature": "DIST", "type": "numeric", "psi": 1.2, "ks": 0.4, "mean_shift": 3.0,
         "null_fraction_change": 0.0, "unseen_share": None, "drifted": True, "reason": "PSI 1.2 > 0.2"}]}
    app.state.run_outputs[("taxi_dag", "run_2")] = [
        ("predict", {"drift": report, "model": {"model": "taxi", "version": "v2"}})
    ]
    response = client.get("/runs/taxi_dag/run_2", headers=as_viewer)
    assert 'id="drift-verdict">drift in DIST' in response.text
    assert "This run logged no model version" in text(response)


def test_run_tab_of_an_unknown_run_is_a_404(client, as_viewer):
    response = client.get("/runs/taxi_dag/nope", headers=as_viewer)
    assert response.status_code == 404 and "no run 'nope' of DAG 'taxi_dag'" in text(response)


# -- actions -------------------------------------------------------------------------------------


def test_moving_an_alias_is_one_event_attributed_to_the_airflow_user(client, populated, as_op):
    response = client.post("/models/taxi/aliases", data={"alias": "production", "version": "v3"}, headers=as_op)
    assert response.status_code == 303 and response.headers["location"] == "/models/taxi"
    reg = neve.Registry(populated)
    assert reg.get_model("taxi").aliases == {"production": "v3"}
    latest = reg.events("taxi", kinds=["alias"], limit=1).iloc[0]
    assert (latest.created_by, latest.run_context["via"]) == ("op-user", "airflow-ui")
    history = rows(client.get("/models/taxi", headers=as_op), "alias-history")
    assert "→ v3 op-user airflow-ui" in history[0]


def test_tag_comment_and_unset_actions_write_events(client, populated, as_op):
    reg = neve.Registry(populated)
    before = event_count(populated)
    for path, form in ACTIONS[1:]:
        assert client.post(path, data=form, headers=as_op).status_code == 303
    assert event_count(populated) == before + 4
    taxi = reg.get_model("taxi")
    assert taxi.aliases == {} and taxi.tags == {"team": "ml"}
    v1 = taxi.version("v1")
    assert v1.tags == {"stage": "prod"} and v1.comment == "promoted after review"
    assert set(reg.events("taxi", limit=4)["created_by"]) == {"op-user"}


@pytest.mark.parametrize(
    ("method", "path", "form", "status", "message"),
    [
        ("get", "/models/nope", None, 404, "no model 'nope'"),
        ("get", "/models/taxx", None, 404, "did you mean 'taxi'"),
        ("get", "/models/taxi/versions/v99", None, 404, "no version or alias 'v99'"),
        ("get", "/models/taxi/versions/v2?compare=v99", None, 404, "no version or alias 'v99'"),
        ("get", "/models/bad%20name", None, 422, "invalid model name"),
        ("get", "/models?page=0", None, 422, "page"),
        ("get", "/models?order=sideways", None, 422, "order"),
        ("post", "/models/taxi/aliases", {"alias": "bad alias!", "version": "v1"}, 422, "invalid alias"),
        ("post", "/models/taxi/aliases", {"alias": "v7", "version": "v1"}, 422, "looks like a version name"),
        ("post", "/models/taxi/aliases", {"alias": "production", "version": "v99"}, 404, "no version or alias"),
        ("post", "/models/nope/aliases", {"alias": "production", "version": "v1"}, 404, "no model 'nope'"),
        ("post", "/models/taxi/aliases/staging/unset", {}, 404, "no alias 'staging'"),
        ("post", "/models/taxi/tags", {"key": "bad key", "value": "x"}, 422, "invalid tag name"),
        ("post", "/models/taxi/tags", {"key": "k"}, 422, "value"),
        ("post", "/models/taxi/versions/production/tags", {"key": "k", "value": "v"}, 404, "is an alias"),
        ("post", "/models/taxi/versions/v99/comment", {"text": "x"}, 404, "no version or alias 'v99'"),
    ],
)
def test_bad_input_gets_a_clear_page_and_changes_nothing(client, populated, as_op, method, path, form, status,
                                                        message):
    before = event_count(populated)
    response = client.request(method, path, data=form, headers=as_op)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")
    assert message in text(response)
    assert event_count(populated) == before
