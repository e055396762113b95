"""Fixtures for the registry UI: a real registry on a DuckDB file, Airflow's own auth manager
(the simple one, with a viewer and an op) and tokens it signed."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd
import pytest


@pytest.fixture(scope="session")
def tokens(auth_manager) -> dict[str, str]:
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return {
        role.lower(): auth_manager.generate_jwt(SimpleAuthManagerUser(username=f"{role.lower()}-user", role=role))
        for role in ("VIEWER", "OP")
    }


@pytest.fixture(scope="session")
def trained():

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"DIST": rng.gamma(2.0, 2.0, 400), "ZONE": rng.choice(["a", "b", "c"], 400)})
    frame["DURATION"] = 3.0 * frame.DIST + rng.normal(0, 0.5, 400)
    return frame


@pytest.fixture(scope="session")
def _populated_template(tmp_path_factory, trained) -> Path:
    folder = tmp_path_factory.mktemp("ui-registry")
    # A dag.test() earlier in this worker leaves AIRFLOW_CTX_* in the environment, which
    # would tag every version as logged by that run; populate() sets the runs it means.
    outside_airflow = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CTX_")}
    with mock.patch.dict(os.environ, outside_airflow, clear=True):
        populate(f"duckdb://{folder / 'ui.duckdb'}", trained)
    return folder


@pytest.fixture
def populated(_populated_template, tmp_path) -> str:
    """A fresh copy of the registry :func:`populate` makes (the DuckDB file and its stage)."""
    for item in _populated_template.iterdir():
        (shutil.copytree if item.is_dir() else shutil.copy)(item, tmp_path / item.name)
    return f"duckdb://{tmp_path / 'ui.duckdb'}"


def populate(registry_url: str, trained: pd.DataFrame) -> str:
    """Two models: ``taxi`` with three versions (a pipeline, a baseline, metrics, tags, an
    alias moved once and a recorded drift report) and ``churn`` with one."""
    from sklearn.linear_model import Ridge

    import neve
    from neve.preprocessing import OneHotEncoder, StandardScaler

    with neve.connect(registry_url) as session:
        session.create_table("TRIPS", trained, overwrite=True)
        session.create_table("LATER", trained.assign(DIST=trained.DIST * 4), overwrite=True)
        table = session.table("TRIPS")
        pipe = neve.Pipeline([
            ("ohe", OneHotEncoder(input_cols=["ZONE"], output_cols=["ZONE"])),
            ("scale", StandardScaler(input_cols=["DIST"], output_cols=["DIST"])),
        ]).fit(table)
        features = pipe.transform(trained)
        columns = [c for c in features.columns if c not in ("DURATION",)]
        model = Ridge().fit(features[columns], trained.DURATION)
        reg = neve.Registry(session)
        versions = []
        for i, mse in enumerate([0.9, 0.5, 0.7]):
            versions.append(reg.log_model(
                model, model_name="taxi", feature_pipeline=pipe, training_data=table.select("DIST", "ZONE"),
                sample_input=features[columns].head(5), metrics={"mse": mse, "r2": 0.8 + i / 100},
                params={"alpha": 1.0 + i}, tags={"stage": "dev"}, comment=f"run {i}",
            ))
        taxi = reg.get_model("taxi")
        taxi.set_alias("production", "v1")
        taxi.set_alias("production", "v2")
        versions[1].drift(session.table("LATER"), record=True)
        reg.log_model(model, model_name="churn", metrics={"mse": 2.0}, tags={"team": "growth"})
    return registry_url


@pytest.fixture
def app(populated):
    import neve
    from neve.airflow.ui.app import create_app

    outputs: dict[tuple[str, str], list] = {}
    app = create_app(registry=lambda: neve.Registry(populated), run_outputs=lambda d, r: outputs.get((d, r)))
    app.state.run_outputs = outputs
    return app


@pytest.fixture
def client(app, auth_manager):
    from fastapi.testclient import TestClient

    with TestClient(app, follow_redirects=False) as client:
        yield client


@pytest.fixture
def as_viewer(tokens) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['viewer']}"}


@pytest.fixture
def as_op(tokens) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['op']}"}


@pytest.fixture
def client_for(auth_manager):
    """A client of an app showing the registry at another URL."""
    from fastapi.testclient import TestClient

    import neve
    from neve.airflow.ui.app import create_app

    def make(url: str):
        return TestClient(create_app(registry=lambda: neve.Registry(url), run_outputs=lambda d, r: None),
                          follow_redirects=False)

    return make
