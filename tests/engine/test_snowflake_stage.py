"""The registry's Snowflake internal stage (``@NEVE_STAGE``) over a real connector cursor.

The statements go through ``snowflake-connector-python`` to the fakesnow server. fakesnow
0.11 runs ``CREATE STAGE`` and ``SHOW STAGES`` itself; it has no GET or REMOVE and no PUT
or LIST below a stage's root, so the test server answers those the way Snowflake's server
does for a stage on local disk (tests/engine/_fakesnow_runner.py) and the connector's own
file-transfer code moves the bytes. What that proves and what it cannot is in
docs/snowflake.md.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression

import neve
from neve.errors import ArtifactError, ArtifactMissingError, EngineError, NeveInputError
from neve.registry import _registry
from tests.engine._fakesnow import Emulator

pytestmark = pytest.mark.timeout(300)

FILES = ["manifest.json", "model.json", "model.skops", "sample_input.parquet"]


@pytest.fixture
def schema() -> str:
    # fakesnow keeps a stage's files per database.schema.name, outside the private database
    # each connection gets, so each test takes its own schema.
    return f"MODEL_REGISTRY_{uuid.uuid4().hex[:8].upper()}"


@pytest.fixture
def stage(schema: str) -> str:
    return f"@{schema}.NEVE_STAGE"


@pytest.fixture
def conn(emulator: Emulator, schema: str) -> Iterator[Any]:
    conn = emulator.connect(schema=schema)
    yield conn
    conn.close()


@pytest.fixture
def reg(conn: Any, schema: str) -> neve.Registry:
    return neve.Registry(neve.connect(connection=conn), schema=schema)


@pytest.fixture
def fitted() -> tuple[LinearRegression, pd.DataFrame]:
    rng = np.random.default_rng(3)
    X = pd.DataFrame({"DIST": rng.uniform(0, 10, 40), "HOUR": rng.integers(0, 24, 40)})
    return LinearRegression().fit(X, 3 * X.DIST + rng.normal(0, 0.1, 40)), X


def stage_files(reg: neve.Registry, folder: str = "") -> dict[str, int]:
    """Every file on the stage under ``folder``, by path, from a LIST statement."""
    return dict(reg.stage.fs._files(f"{reg.stage.url}/{folder}".rstrip("/")))


def test_registry_on_snowflake_logs_to_the_internal_stage(reg, conn, schema, stage, fitted) -> None:
    model, X = fitted
    assert reg.stage.url == stage
    # Created by the registry, as fakesnow itself records it.
    with conn.cursor() as cursor:
        stages = cursor.execute("SHOW STAGES LIKE 'NEVE_STAGE'").fetchall()
    assert [(row[1], row[3], row[10]) for row in stages] == [
        ("NEVE_STAGE", schema, "INTERNAL")
    ]
    mv = reg.log_model(model, "trip", sample_input=X.head(5), metrics={"mse": 0.01})
    assert mv.lineage()["artifact_uri"] == f"{stage}/trip/v1"
    assert sorted(stage_files(reg)) == [f"{stage}/trip/v1/{n}" for n in FILES]
    # A second registry on the same schema (another worker) finds the stage and the model.
    again = neve.Registry(neve.connect(connection=conn), schema=schema)
    loaded = again.get_model("trip").version("v1").load()
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    pd.testing.assert_frame_equal(again.get_model("trip").version("v1").sample_input(), X.head(5))


@pytest.mark.parametrize("name", FILES)
def test_tampered_file_fails_naming_it(reg, stage, fitted, name) -> None:
    model, X = fitted
    mv = reg.log_model(model, "trip", sample_input=X.head(5))
    path = f"{stage}/trip/{mv.version_name}/{name}"
    data = bytearray(reg.stage.fs.cat_file(path))
    data[len(data) // 2] ^= 0x01  # one flipped bit, same size, written with a plain PUT
    reg.stage.fs.pipe_file(path, bytes(data))
    with pytest.raises(ArtifactError, match=name.replace(".", r"\.")):
        mv.load()


def test_missing_file_fails_naming_it(reg, conn, stage, fitted) -> None:
    model, X = fitted
    mv = reg.log_model(model, "trip", sample_input=X.head(5))
    mv.load()
    with conn.cursor() as cursor:
        cursor.execute(f"REMOVE '{stage}/trip/{mv.version_name}/model.skops'")
    with pytest.raises(ArtifactMissingError, match="model.skops"):
        mv.load()


def test_manifest_last_and_commit_only_after_verification(reg, stage, fitted, monkeypatch) -> None:
    model, X = fitted
    events: list[tuple[str, Any]] = []
    fs = reg.stage.fs
    real_pipe, real_cat, real_commit = fs.pipe_file, fs.cat_file, _registry.Registry._commit

    def pipe_file(path: str, data: bytes) -> None:
        events.append(("put", path.rsplit("/", 1)[-1]))
        real_pipe(path, data)

    def cat_file(path: str) -> bytes:
        events.append(("get", path.rsplit("/", 1)[-1]))
        return real_cat(path)

    def commit(self, model_name, version, *args):
        events.append(("commit", sorted(stage_files(reg, f"{model_name}/{version}"))))
        return real_commit(self, model_name, version, *args)

    monkeypatch.setattr(fs, "pipe_file", pipe_file)
    monkeypatch.setattr(fs, "cat_file", cat_file)
    monkeypatch.setattr(_registry.Registry, "_commit", commit)
    reg.log_model(model, "m", sample_input=X.head(3))
    puts = [name for kind, name in events if kind == "put"]
    assert puts[-1] == "manifest.json" and sorted(puts) == FILES
    assert [kind for kind, _ in events] == ["put"] * len(FILES) + ["get"] * len(FILES) + ["commit"]
    assert events[-1][1] == [f"{stage}/m/v1/{n}" for n in FILES]


def test_failed_write_leaves_no_version_and_gc_sweeps(reg, stage, fitted, monkeypatch) -> None:
    model, X = fitted
    real_pipe = reg.stage.fs.pipe_file

    def pipe_file(path: str, data: bytes) -> None:
        if path.endswith("manifest.json"):
            raise ConnectionResetError("warehouse went away")
        real_pipe(path, data)

    with monkeypatch.context() as m:
        m.setattr(reg.stage.fs, "pipe_file", pipe_file)
        with pytest.raises(EngineError, match=rf"{stage}.*manifest\.json"):
            reg.log_model(model, "m", sample_input=X.head(3))
    assert reg.get_model("m").versions() == []
    assert stage_files(reg, "m") == {}  # the files written before it were removed
    # v1 and v10 share a prefix: removing one must leave the other.
    for name in ("v1", "v10"):
        reg.log_model(model, "p", version_name=name)
    reg.get_model("p").delete_version("v1")
    reg.stage.fs.pipe_file(f"{stage}/ghost/v9/model.skops", b"x")
    assert reg.gc() == [f"{stage}/ghost/v9"]
    assert {p.rsplit("/", 1)[0] for p in stage_files(reg, "p")} == {f"{stage}/p/v10"}
    np.testing.assert_array_equal(
        reg.get_model("p").version("v10").load().predict(X), model.predict(X)
    )


def test_registry_init_cli_creates_tables_and_stage(emulator: Emulator, capsys) -> None:
    from neve.cli import main

    kw = emulator.kwargs
    schema = f"REG_{uuid.uuid4().hex[:8].upper()}"
    url = (
        f"snowflake://{kw['user']}:{kw['password']}@{kw['account']}/NEVE_DB/PUBLIC"
        f"?host={kw['host']}&port={kw['port']}&protocol={kw['protocol']}"
    )
    assert main(["registry", "init", "--url", url, "--schema", schema]) == 0
    assert main(["registry", "init", "--url", url, "--schema", schema]) == 0  # idempotent
    out = capsys.readouterr().out
    assert f"stage @{schema}.NEVE_STAGE" in out and f":{kw['password']}@" not in out
    with neve.connect(url) as session, session.engine.con.cursor() as cursor:
        found = cursor.execute(f"SHOW STAGES LIKE 'NEVE_STAGE' IN SCHEMA {schema}").fetchall()
        assert [(row[1], row[3]) for row in found] == [("NEVE_STAGE", schema)]
        assert {"NEVE_MODELS", "NEVE_EVENTS"} <= set(session.engine.list_tables(database=schema))


def test_stage_names_and_other_engines() -> None:
    from neve.engine import driver_for
    from neve.engine._snowflake_stage import InternalStage

    # Registry() asks its driver; any engine but Snowflake refuses an internal stage.
    with pytest.raises(NeveInputError, match="only Snowflake"):
        driver_for("postgres://u@127.0.0.1/db").stage_filesystem("@NEVE_STAGE", lambda: None)

    for bad in ["@", "@A.B.C.D", "@NEVE STAGE", "@X;DROP"]:
        with pytest.raises(NeveInputError, match="internal stage"):
            InternalStage(bad, lambda: None)
    stage = InternalStage("@NEVE_STAGE", lambda: None)
    with pytest.raises(NeveInputError, match="not a path on the internal stage"):
        stage.pipe_file("@NEVE_STAGE/m/v1/x' OVERWRITE=FALSE", b"")
