"""The registry UI in a real browser: Debian's Chromium, driven by Playwright, against a real
``airflow api-server`` on the metadata DB and registry a real run of the taxi DAG filled.

One api-server for the session; screenshots go to the test's folder (and, with
``NEVE_UI_SCREENSHOTS=dir``, to that folder too, which is how docs/img/ui-*.png were made).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests._skips import require
from tests.airflow._conf import run_conf
from tools.demo.runner import _free_port, stop

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

CHROMIUM = shutil.which("chromium")
MODEL = "trip_duration_estimator"
PASSWORD = "neve-ui-test"


@pytest.fixture(scope="session")
def api_server(taxi_run, _airflow_home, tmp_path_factory):
    """``airflow api-server`` on loopback over this session's metadata DB (with the taxi run
    in it) and ``neve_default``; users admin (op rights included) and viewer."""
    folder = tmp_path_factory.mktemp("api-server")
    passwords = folder / "passwords.json"
    passwords.write_text(json.dumps({"admin": PASSWORD, "viewer": PASSWORD}))
    port = _free_port()
    env = {
        # Not the AIRFLOW_CTX_* the in-process DAG run left behind: a real api-server has none.
        **{k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CTX_")},
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,viewer:viewer",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__API__WORKERS": "1",
    }
    log_path = folder / "api-server.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "airflow", "api-server", "--port", str(port)], env=env, cwd=folder,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=2) as r:
                    if json.load(r)["metadatabase"]["status"] == "healthy":
                        break
            except (OSError, ValueError, KeyError):
                time.sleep(1)
        else:
            pytest.fail("airflow api-server did not start:\n" + log_path.read_text()[-4000:])
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)


@pytest.fixture(scope="session")
def browser():
    require(CHROMIUM is not None, "Debian's chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import expect, sync_playwright

    # Generous waits: a busy CI machine, not the UI, decides how long a page takes here.
    expect.set_options(timeout=90_000)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def shots(tmp_path):
    extra = os.environ.get("NEVE_UI_SCREENSHOTS")

    def save(page, name: str, **options) -> Path:
        path = tmp_path / f"{name}.png"
        page.screenshot(path=str(path), **options)
        if extra:
            Path(extra).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, Path(extra) / path.name)
        return path

    return save


def sign_in(browser, base: str, user: str):
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    page.set_default_timeout(90_000)
    page.goto(base + "/")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/auth/login" not in url, timeout=60_000)
    return page


def test_models_model_version_run_tab_and_moving_an_alias(api_server, browser, taxi_run, shots):
    from playwright.sync_api import expect

    page = sign_in(browser, api_server, "admin")
    # Models from the navigation: Browse > Models.
    page.get_by_role("button", name="Browse").click()
    page.get_by_role("menuitem", name="Models").click()
    page.wait_for_url("**/plugin/neve-models")
    frame = page.frame_locator("iframe")
    expect(frame.locator("#models")).to_contain_text(MODEL, timeout=60_000)
    expect(frame.locator("#models")).to_contain_text("stage=dev")
    shots(page, "ui-models")

    frame.get_by_role("link", name=MODEL, exact=True).click()
    expect(frame.locator("h1")).to_have_text(MODEL)
    versions = frame.locator("#versions")
    expect(versions).to_contain_text("v1")
    expect(versions).to_contain_text(taxi_run.run_id)  # logged by this Airflow run, linked to it
    expect(frame.locator("#metric-chart svg")).to_be_visible()

    # Move the production alias, as an op: the page shows it, and who moved it.
    frame.locator("#actions input[name=alias]").fill("production")
    frame.locator("#actions input[name=version]").fill("v1")
    frame.locator("#actions button", has_text="Set").first.click()
    expect(frame.locator("#alias-history tbody tr").first).to_contain_text("admin airflow-ui")
    expect(frame.locator("#versions")).to_contain_text("production")
    shots(page, "ui-model", full_page=True)

    frame.locator("#versions").get_by_role("link", name="v1", exact=True).click()
    expect(frame.locator("h1")).to_contain_text("v1")
    expect(frame.locator("#sql")).to_contain_text("PREDICTION")
    expect(frame.locator("#steps")).to_contain_text("OneHotEncoder")
    expect(frame.locator("#artifacts")).to_contain_text("model.skops")
    expect(frame.locator("body")).to_contain_text("no drift")  # the run's predict task recorded its check
    frame.locator("body").evaluate("() => window.scrollTo(0, 0)")
    shots(page, "ui-version")

    # The Model tab of the DAG run that logged the version.
    frame.locator("#summary").get_by_role("link", name=taxi_run.run_id, exact=False).click()
    page.wait_for_url("**/dags/taxi_trip_duration/runs/**")
    page.get_by_text("Model", exact=True).first.click()
    page.wait_for_url("**/plugin/neve-run-model")
    tab = page.frame_locator("iframe")
    expect(tab.locator("#run-versions")).to_contain_text(MODEL, timeout=60_000)
    expect(tab.locator("#drift-verdict")).to_have_text("no drift")
    expect(tab.locator("#run-tables")).to_contain_text("TAXI_PRED")
    shots(page, "ui-run-tab")
    page.close()


def test_a_viewer_sees_the_models_but_no_actions(api_server, browser):
    from playwright.sync_api import expect

    page = sign_in(browser, api_server, "viewer")
    page.goto(api_server + "/plugin/neve-models")
    frame = page.frame_locator("iframe")
    frame.get_by_role("link", name=MODEL, exact=True).click()
    expect(frame.locator("#versions")).to_be_visible()
    expect(frame.locator("#actions")).to_have_count(0)
    page.close()


def test_without_signing_in_the_plugin_shows_no_data(api_server):
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{api_server}/neve/models/{MODEL}", timeout=30)
    assert refused.value.code == 401
    assert MODEL not in refused.value.read().decode()


def test_a_promotion_waits_under_required_actions_and_a_person_approves_it(
    api_server, browser, taxi_dag, task_envs, shots, tmp_path, monkeypatch
):
    """A run without auto_approve, on a warehouse with no production version yet: its request
    shows in the real UI's Required Actions, and approving it there lets the run finish with
    production moved, attributed to the person. dag.test() must run in the main thread (it
    sets signal handlers), so the person is a thread with a Chromium of its own."""
    import threading

    import neve
    from tests.airflow.conftest import DUCKDB

    db = tmp_path / DUCKDB.name  # the session's registry name, in a folder of its own
    monkeypatch.setenv("AIRFLOW_CONN_NEVE_DEFAULT", json.dumps({"conn_type": "neve", "extra": {"url": f"duckdb://{db}"}}))
    outcome: dict = {}

    def person() -> None:
        try:
            _approve_in_the_ui(api_server, shots)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            outcome["error"] = exc
            _answer_through_the_api(api_server, "Reject")  # so dag.test() ends, and the test fails

    approver = threading.Thread(target=person, daemon=True)
    approver.start()
    run = taxi_dag.test(run_conf=run_conf())
    approver.join(timeout=120)
    if "error" in outcome:
        raise outcome["error"]
    assert str(run.state).endswith("success"), {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    with neve.connect(f"duckdb://{db}") as session:
        model = neve.Registry(session).get_model(MODEL)
        assert model.aliases["production"] == "v1"
        assert model.alias_history("production").iloc[0]["created_by"] == "admin"


def _approve_in_the_ui(base: str, shots) -> None:
    from playwright.sync_api import expect, sync_playwright

    token = _token(base, "admin")
    run_id = _wait_for_request(base, token)["task_instance"]["dag_run_id"]
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = sign_in(chromium, base, "admin")
        page.goto(f"{base}/required_actions?response_received=false")
        expect(page.get_by_text("approve_promotion").first).to_be_visible(timeout=90_000)
        shots(page, "ui-required-actions")
        page.goto(f"{base}/dags/taxi_trip_duration/runs/{urllib.parse.quote(run_id, safe='')}"
                  f"/tasks/approve_promotion/required_actions")
        expect(page.get_by_text(f"Promote {MODEL} v1 to production?").first).to_be_visible(timeout=90_000)
        expect(page.get_by_text("mse").first).to_be_visible()
        expect(page.get_by_role("link", name=f"Open {MODEL} v1 in neve's registry")).to_be_visible()
        shots(page, "ui-approval", full_page=True)
        page.get_by_role("button", name="Approve").click()
        expect(page.get_by_text("Approve").first).to_be_visible()
        time.sleep(3)
        shots(page, "ui-approved", full_page=True)
        chromium.close()


def _token(base: str, user: str) -> str:
    request = urllib.request.Request(f"{base}/auth/token", method="POST",
                                     data=json.dumps({"username": user, "password": PASSWORD}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)["access_token"]


def _answer_through_the_api(base: str, choice: str) -> None:
    token = _token(base, "admin")
    run_id = _wait_for_request(base, token)["task_instance"]["dag_run_id"]
    url = (f"{base}/api/v2/dags/taxi_trip_duration/dagRuns/{urllib.parse.quote(run_id, safe='')}"
           f"/taskInstances/approve_promotion/-1/hitlDetails")
    request = urllib.request.Request(url, method="PATCH", data=json.dumps(
        {"chosen_options": [choice], "params_input": {}}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    urllib.request.urlopen(request, timeout=30).close()


def _wait_for_request(base: str, token: str) -> dict:
    url = f"{base}/api/v2/dags/taxi_trip_duration/dagRuns/~/hitlDetails"
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            waiting = [d for d in json.load(response)["hitl_details"] if not d["response_received"]]
        if waiting:
            return waiting[0]
        time.sleep(2)
    raise AssertionError("the run never asked for an approval")
