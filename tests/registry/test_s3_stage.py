"""The registry on an S3 stage, against moto's S3 server on loopback (real HTTP, real s3fs)."""

from __future__ import annotations

import json
import logging
import socket
import uuid

import numpy as np
import pytest

import neve
from neve.engine import capture_queries
from neve.errors import (
    ArtifactError,
    ArtifactMissingError,
    EngineError,
    ModelNotFoundError,
    NeveInputError,
)
from neve.registry import _registry
from neve.registry._package import sha256
from tests._skips import require_module

require_module("s3fs", "the s3 extra: uv sync --all-extras")
boto3 = require_module("boto3", "the dev group's moto[server]: uv sync --group dev")
moto_server = require_module("moto.server", "the dev group's moto[server]: uv sync --group dev")

FILES = ["manifest.json", "model.skops", "model.json", "pipeline.json", "baseline.json", "sample_input.parquet"]
KEY_ID = "AKIANEVETESTKEYID"
# Unique per run, so a hit in any stored byte can only come from this test run's options.
SECRET = f"neve-secret-{uuid.uuid4().hex}"
TOKEN = f"neve-token-{uuid.uuid4().hex}"


@pytest.fixture(scope="session")
def s3_endpoint():
    """moto's S3 server on a free loopback port for the whole session."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per request
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def no_ambient_aws(monkeypatch):
    """Profiles or keys of the machine running the tests must not leak into them."""
    import os

    for var in [v for v in os.environ if v.startswith("AWS_")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)


@pytest.fixture
def s3(s3_endpoint):
    return boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=SECRET,
    )


@pytest.fixture
def bucket(s3) -> str:
    name = f"neve-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture
def options(s3_endpoint) -> dict:
    return {"key": KEY_ID, "secret": SECRET, "token": TOKEN, "endpoint_url": s3_endpoint}


@pytest.fixture
def s3reg(session, bucket, options) -> neve.Registry:
    return neve.Registry(session, stage=f"s3://{bucket}/models", storage_options=options)


@pytest.fixture
def logged(s3reg, session, train_df, fitted):
    table = session.create_table("TRAIN", train_df)
    pipe = neve.Pipeline([("sc", neve.preprocessing.StandardScaler(input_cols=["DIST"]))]).fit(
        table
    )
    model, X = fitted
    return s3reg.log_model(
        model,
        "trip",
        feature_pipeline=pipe,
        training_data=table,
        sample_input=X.head(5),
        metrics={"mse": 0.25},
    )


def objects(s3, bucket: str, prefix: str = "") -> dict[str, bytes]:
    listing = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return {o["Key"]: s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listing}


def test_round_trip(s3reg, logged, s3, bucket, fitted, train_df):
    model, X = fitted
    stored = objects(s3, bucket)
    assert sorted(stored) == sorted(f"models/trip/v1/{name}" for name in FILES)
    manifest = json.loads(stored["models/trip/v1/manifest.json"])
    for name in FILES[1:]:
        assert manifest["files"][name]["sha256"] == sha256(stored[f"models/trip/v1/{name}"])
    # Through a fresh Registry, so nothing comes from the writer's memory.
    again = neve.Registry(
        s3reg._session,
        stage=f"s3://{bucket}/models",
        storage_options=s3reg.stage.fs.storage_options,
    )
    mv = again.get_model("trip").version("v1")
    np.testing.assert_array_equal(mv.load().predict(X), model.predict(X))
    assert mv.sample_input().shape == (5, 2)
    # The pipeline and baseline read back from S3 are the ones logged, not just present.
    assert mv.pipeline()["sc"].mean_["DIST"] == pytest.approx(train_df.DIST.mean(), rel=1e-12)
    assert mv.baseline()["row_count"] == len(train_df)
    assert mv.metrics == {"mse": 0.25}
    assert mv.lineage()["artifact_uri"] == f"s3://{bucket}/models/trip/v1"


@pytest.mark.parametrize("name", FILES)
def test_tampered_object_fails_naming_it(logged, s3, bucket, name):
    key = f"models/trip/v1/{name}"
    data = bytearray(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    data[len(data) // 2] ^= 0x01  # one flipped bit, same size
    s3.put_object(Bucket=bucket, Key=key, Body=bytes(data))
    with pytest.raises(ArtifactError, match=name.replace(".", r"\.")):
        logged.load()


def test_missing_object_fails_naming_it(logged, s3, bucket):
    logged.load()  # listings are now cached in this process; the deletion must still be seen
    s3.delete_object(Bucket=bucket, Key="models/trip/v1/baseline.json")
    with pytest.raises(ArtifactMissingError, match="baseline.json"):
        logged.load()


def test_manifest_last_and_commit_only_after_verification(s3reg, fitted, s3, bucket, monkeypatch):
    model, X = fitted
    events = []
    real_pipe, real_cat = s3reg.stage.fs.pipe_file, s3reg.stage.fs.cat_file
    real_commit = _registry.Registry._commit

    def pipe_file(path, data, **kw):
        events.append(("put", path.rsplit("/", 1)[-1]))
        return real_pipe(path, data, **kw)

    def cat_file(path, **kw):
        events.append(("get", path.rsplit("/", 1)[-1]))
        return real_cat(path, **kw)

    def commit(self, model_name, version, *args):
        # At commit time every object is on S3, byte for byte.
        events.append(("commit", sorted(objects(s3, bucket))))
        return real_commit(self, model_name, version, *args)

    monkeypatch.setattr(s3reg.stage.fs, "pipe_file", pipe_file)
    monkeypatch.setattr(s3reg.stage.fs, "cat_file", cat_file)
    monkeypatch.setattr(_registry.Registry, "_commit", commit)
    s3reg.log_model(model, "m", sample_input=X.head(3))
    puts = [name for kind, name in events if kind == "put"]
    assert puts[-1] == "manifest.json" and sorted(puts) == [
        "manifest.json",
        "model.json",
        "model.skops",
        "sample_input.parquet",
    ]
    kinds = [kind for kind, _ in events]
    assert kinds == ["put"] * 4 + ["get"] * 4 + ["commit"]  # written, read back, then committed
    assert events[-1][1] == sorted(f"models/m/v1/{n}" for n in puts)


class Crash(BaseException):
    """Stands for the process dying: no except-Exception handler sees it."""


def test_crash_before_commit_leaves_no_version(s3reg, fitted, s3, bucket, monkeypatch):
    model, X = fitted

    def die(*args, **kwargs):
        raise Crash

    with monkeypatch.context() as m:
        m.setattr(_registry.Registry, "_commit", die)
        with pytest.raises(Crash):
            s3reg.log_model(model, "crashy", sample_input=X.head(3))
    assert "models/crashy/v1/manifest.json" in objects(s3, bucket)  # files written, commit not made
    crashy = s3reg.get_model("crashy")
    assert crashy.versions() == []
    with pytest.raises(ModelNotFoundError):
        crashy.version("v1")
    assert s3reg.gc() == []  # young: a log_model may still be writing it
    assert s3reg.gc(older_than=0) == [f"{bucket}/models/crashy/v1"]
    assert objects(s3, bucket, "models/crashy/") == {}
    nxt = s3reg.log_model(model, "crashy")
    assert nxt.version_name == "v2" and crashy.versions() == [nxt]


def test_failed_manifest_write_leaves_nothing(s3reg, fitted, s3, bucket, monkeypatch):
    model, _ = fitted
    real_pipe = s3reg.stage.fs.pipe_file

    def pipe_file(path, data, **kw):
        if path.endswith("manifest.json"):
            raise ConnectionResetError("store went away")
        return real_pipe(path, data, **kw)

    monkeypatch.setattr(s3reg.stage.fs, "pipe_file", pipe_file)
    with pytest.raises(EngineError, match="manifest.json"):
        s3reg.log_model(model, "m")
    assert s3reg.get_model("m").versions() == []
    assert objects(s3, bucket) == {}  # the data files written before it were removed


def test_gc_removes_orphans(s3reg, fitted, s3, bucket):
    model, X = fitted
    s3reg.log_model(model, "m")
    s3reg.log_model(model, "m")
    s3reg.log_model(model, "m")
    s3reg.get_model("m").delete_version("v2")
    assert s3reg.gc() == []  # lists the stage; that listing must not hide what comes next
    s3.put_object(Bucket=bucket, Key="models/m/v2/model.skops", Body=b"restored by hand")
    s3.put_object(Bucket=bucket, Key="models/ghost/v9/model.skops", Body=b"x")
    expected = [f"{bucket}/models/ghost/v9", f"{bucket}/models/m/v2"]
    assert s3reg.gc(dry_run=True) == expected
    assert "models/ghost/v9/model.skops" in objects(s3, bucket)
    assert s3reg.gc() == expected
    assert sorted({k.rsplit("/", 1)[0] for k in objects(s3, bucket)}) == [
        "models/m/v1",
        "models/m/v3",
    ]
    assert [v.version_name for v in s3reg.get_model("m").versions()] == ["v1", "v3"]
    np.testing.assert_array_equal(
        s3reg.get_model("m").version("v3").load().predict(X), model.predict(X)
    )


def test_cli_gc_on_s3_with_aws_environment(
    engine_url, bucket, s3, s3_endpoint, fitted, monkeypatch, capsys
):
    import s3fs

    from neve.cli import main

    url = engine_url
    stage = f"s3://{bucket}/models"
    neve.Registry(
        url,
        stage=stage,
        storage_options={"key": KEY_ID, "secret": SECRET, "endpoint_url": s3_endpoint},
    ).log_model(fitted[0], "m")
    s3.put_object(Bucket=bucket, Key="models/ghost/v1/model.skops", Body=b"x")
    s3fs.S3FileSystem.clear_instance_cache()
    for var, value in [
        ("AWS_ACCESS_KEY_ID", KEY_ID),
        ("AWS_SECRET_ACCESS_KEY", SECRET),
        ("AWS_ENDPOINT_URL", s3_endpoint),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ]:
        monkeypatch.setenv(var, value)
    assert main(["registry", "gc", "--url", url, "--stage", stage, "--older-than", "0"]) == 0
    out = capsys.readouterr().out
    assert f"removed {bucket}/models/ghost/v1" in out and SECRET not in out
    assert sorted(objects(s3, bucket, "models/ghost/")) == []
    assert "models/m/v1/manifest.json" in objects(s3, bucket)
    s3fs.S3FileSystem.clear_instance_cache()


def test_credentials_from_aws_environment(
    session, bucket, s3_endpoint, fitted, monkeypatch, caplog
):
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()  # an instance made before the variables were set
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", TOKEN)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_endpoint)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    model, X = fitted
    reg = neve.Registry(session, stage=f"s3://{bucket}/env")
    mv = reg.log_model(model, "m")
    np.testing.assert_array_equal(mv.load().predict(X), model.predict(X))
    assert "x-amz-security-token" in caplog.text.lower()  # botocore did log the signed headers
    assert SECRET not in caplog.text and TOKEN not in caplog.text
    s3fs.S3FileSystem.clear_instance_cache()


def test_credentials_never_stored_logged_or_shown(
    session, s3reg, s3, bucket, options, train_df, fitted, caplog
):
    caplog.set_level(logging.DEBUG)
    model, X = fitted
    table = session.create_table("TRAIN", train_df)
    pipe = neve.Pipeline([("sc", neve.preprocessing.StandardScaler(input_cols=["DIST"]))]).fit(
        table
    )
    with capture_queries() as queries:
        mv = s3reg.log_model(
            model,
            "trip",
            feature_pipeline=pipe,
            training_data=table,
            sample_input=X.head(5),
            metrics={"mse": 1.0},
            tags={"t": "x"},
        )
        mv.load()
        s3reg.gc(older_than=0)
    shown = [repr(s3reg), repr(s3reg.stage), repr(mv), str(mv.lineage()), "\n".join(queries)]
    # Errors on the way out: a tampered object, a missing bucket, a URL with credentials.
    s3.put_object(Bucket=bucket, Key="models/trip/v1/model.skops", Body=b"tampered")
    with pytest.raises(ArtifactError) as tampered:
        mv.load()
    nowhere = neve.Registry(session, stage="s3://no-such-bucket-neve/p", storage_options=options)
    with pytest.raises(EngineError, match="no-such-bucket-neve") as missing:
        nowhere.log_model(model, "m")
    with pytest.raises(NeveInputError) as in_url:
        neve.Registry(session, stage=f"s3://{KEY_ID}:{SECRET}@{bucket}/p")
    shown += [str(e.value) for e in (tampered, missing, in_url)]

    stored = b"".join(objects(s3, bucket).values())
    tables = [t for t in session.engine.list_tables() if t.startswith("NEVE_")]
    assert {"NEVE_MODELS", "NEVE_MODEL_VERSIONS", "NEVE_EVENTS"} <= set(tables)
    rows = "\n".join(session.engine.table(t).to_pandas().to_csv() for t in tables)
    assert b"neve.model/1" in stored and f"s3://{bucket}/models" in rows
    assert caplog.records  # debug logging was really on
    for secret in (SECRET, TOKEN):
        assert secret.encode() not in stored
        assert secret not in rows
        assert secret not in caplog.text
        for text in shown:
            assert secret not in text


def test_unreachable_endpoint_fails_naming_it(session, fitted):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    reg = neve.Registry(
        session,
        stage="s3://b/p",
        storage_options={
            "key": KEY_ID,
            "secret": SECRET,
            "endpoint_url": f"http://127.0.0.1:{port}",
            "config_kwargs": {"retries": {"max_attempts": 1}},
        },
    )
    with pytest.raises(EngineError, match=f"127.0.0.1:{port}") as err:
        reg.log_model(fitted[0], "m")
    assert SECRET not in str(err.value)
    assert reg.get_model("m").versions() == []


def test_credentials_from_an_airflow_aws_connection(
    session, bucket, s3, s3_endpoint, fitted, monkeypatch, caplog
):
    """An ``aws`` connection (login/password = key id/secret, region and endpoint in extra),
    read from AIRFLOW_CONN_<ID> as Airflow hands it to a task; its secrets stay out of
    every log, repr, error, row and stored object."""
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("AIRFLOW_CONN_ARTIFACTS_S3", json.dumps({
        "conn_type": "aws", "login": KEY_ID, "password": SECRET,
        "extra": {"region_name": "eu-west-1", "endpoint_url": s3_endpoint,
                  "aws_session_token": TOKEN},
    }))
    model, X = fitted
    reg = neve.Registry(session, stage=f"s3://{bucket}/af", aws_conn_id="artifacts_s3")
    with capture_queries() as queries:
        mv = reg.log_model(model, "m", sample_input=X.head(3))
    np.testing.assert_array_equal(mv.load().predict(X), model.predict(X))
    assert reg.stage.fs.client_kwargs == {"region_name": "eu-west-1"}
    s3.put_object(Bucket=bucket, Key="af/m/v1/model.skops", Body=b"tampered")
    with pytest.raises(ArtifactError) as tampered:
        mv.load()
    monkeypatch.setenv("AIRFLOW_CONN_BAD_S3", json.dumps({
        "conn_type": "aws", "login": KEY_ID, "password": SECRET,
        "extra": {"endpoint_url": "http://127.0.0.1:9"},  # nothing listens on port 9
    }))
    with pytest.raises(EngineError, match="127.0.0.1:9|cannot write") as unreachable:
        neve.Registry(session, stage=f"s3://{bucket}/bad", aws_conn_id="bad_s3",
                      storage_options={"config_kwargs": {"retries": {"max_attempts": 1}}}
                      ).log_model(model, "m")
    with pytest.raises(neve.errors.ConnectionNotFoundError, match="AIRFLOW_CONN_NO_SUCH"):
        neve.Registry(session, stage=f"s3://{bucket}/x", aws_conn_id="no_such")
    with pytest.raises(neve.errors.InvalidURLError, match="'aws' connection"):
        monkeypatch.setenv("AIRFLOW_CONN_PG", "postgres://u:p@h/db")
        neve.Registry(session, stage=f"s3://{bucket}/x", aws_conn_id="pg")
    shown = [repr(reg), repr(reg.stage), repr(mv), str(mv.lineage()), "\n".join(queries),
             str(tampered.value), str(unreachable.value), caplog.text]
    stored = b"".join(objects(s3, bucket).values())
    rows = "\n".join(
        session.engine.table(t).to_pandas().to_csv()
        for t in session.engine.list_tables() if t.startswith("NEVE_")
    )
    assert "x-amz-security-token" in caplog.text.lower()  # botocore logged signed headers
    for secret in (SECRET, TOKEN):
        assert secret.encode() not in stored and secret not in rows
        for text in shown:
            assert secret not in text
    s3fs.S3FileSystem.clear_instance_cache()
