"""NeveHook: sessions from neve, postgres and snowflake connections, and the errors that
name the fix."""

from __future__ import annotations

import json
import logging
import socket

import pandas as pd
import pytest

from neve.airflow import NeveHook
from neve.engine import parse_url
from neve.errors import ConnectionNotFoundError, EngineError, NeveError
from tests._skips import require_module
from tests.engine import test_secrets as url_secrets

SECRET = "pa55-w0rd!"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the socket is


def test_neve_connection_opens_a_session_on_its_url(tmp_path, monkeypatch):
    db = tmp_path / "hook.duckdb"
    monkeypatch.setenv("AIRFLOW_CONN_MINE", json.dumps({"conn_type": "neve", "extra": {"url": f"duckdb://{db}"}}))
    with NeveHook("mine").get_session() as session:
        session.create_table("T", pd.DataFrame({"a": [1]}))
        assert session.list_tables() == ["T"]
    assert db.exists()


def test_postgres_connection_maps_to_a_postgres_url(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_PG", f"postgres://ml:{SECRET}@db.internal:5433/analytics?sslmode=require")
    url = parse_url(NeveHook("pg").get_url())
    assert (url.scheme, url.host, url.port, url.path, url.username, url.password) == (
        "postgres", "db.internal", 5433, "/analytics", "ml", SECRET
    )
    assert url.query == {"sslmode": "require"}


def test_the_seeds_snowflake_default_connection_works_unchanged(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_SNOWFLAKE_DEFAULT",
        json.dumps({"conn_type": "snowflake", "login": "ML", "password": SECRET, "schema": "MODEL_REGISTRY",
                    "extra": {"account": "ab12345", "warehouse": "WH", "database": "ML_DB", "role": "ML_ROLE"}}),
    )
    url = parse_url(NeveHook("snowflake_default").get_url())
    assert (url.scheme, url.host, url.path) == ("snowflake", "ab12345", "/ML_DB/MODEL_REGISTRY")
    assert url.query == {"warehouse": "WH", "role": "ML_ROLE"}
    assert url.password == SECRET
    # ... and is what the Snowflake driver hands to the connector.
    from neve.engine import driver_for

    kwargs = driver_for(NeveHook("snowflake_default").get_url()).connect_kwargs()
    assert kwargs == {"account": "ab12345", "user": "ML", "password": SECRET,
                      "database": "ML_DB", "schema": "MODEL_REGISTRY", "warehouse": "WH",
                      "role": "ML_ROLE"}


def test_missing_connection_names_the_fix():
    with pytest.raises(ConnectionNotFoundError) as info:
        NeveHook("no_such_conn").get_session()
    message = str(info.value)
    assert "airflow connections add no_such_conn --conn-type neve" in message
    assert "AIRFLOW_CONN_NO_SUCH_CONN" in message


def test_unreachable_engine_names_the_connection_and_the_fix_without_the_password(monkeypatch):
    port = closed_port()
    monkeypatch.setenv("AIRFLOW_CONN_DOWN", f"postgres://ml:{SECRET}@127.0.0.1:{port}/db?connect_timeout=3")
    with pytest.raises(EngineError) as info:
        NeveHook("down").get_session()
    message = str(info.value)
    assert "Airflow connection 'down' (type postgres)" in message
    assert f"127.0.0.1:{port}" in message
    assert "Fix the connection's host, port and credentials, or start the server" in message
    assert SECRET not in message
    ok, text = NeveHook("down").test_connection()
    assert not ok and SECRET not in text


def test_unsupported_connection_type_names_the_supported_ones(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_MY", "mysql://u:p@h:3306/db")
    with pytest.raises(EngineError, match="change it to one of duckdb, neve, postgres, snowflake"):
        NeveHook("my").get_session()


def test_get_registry_takes_s3_credentials_from_an_aws_connection(monkeypatch, tmp_path):
    require_module("s3fs", "the s3 extra: uv sync --all-extras", allow_module_level=False)
    monkeypatch.setenv("AIRFLOW_CONN_NEVE_DEFAULT", json.dumps(
        {"conn_type": "neve", "extra": {"url": f"duckdb:///{tmp_path / 'r.duckdb'}"}}))
    monkeypatch.setenv("AIRFLOW_CONN_ARTIFACTS", json.dumps(
        {"conn_type": "aws", "login": "AKIAHOOK", "password": SECRET,
         "extra": {"region_name": "eu-west-1", "endpoint_url": "http://127.0.0.1:9"}}))
    reg = NeveHook().get_registry(stage="s3://bucket/models", aws_conn_id="artifacts")
    fs = reg.stage.fs
    assert (fs.key, fs.secret, fs.endpoint_url) == ("AKIAHOOK", SECRET, "http://127.0.0.1:9")
    assert fs.client_kwargs == {"region_name": "eu-west-1"}
    assert SECRET not in repr(reg) and SECRET not in repr(reg.stage)


@pytest.mark.parametrize("url", url_secrets.FORMS.values(), ids=url_secrets.FORMS.keys())
def test_a_neve_connection_never_shows_its_urls_secret(url, monkeypatch, caplog):
    monkeypatch.setenv("AIRFLOW_CONN_LEAKY", json.dumps({"conn_type": "neve", "extra": {"url": url}}))
    with caplog.at_level(logging.DEBUG), pytest.raises(NeveError) as info:
        NeveHook("leaky").get_session()
    said = url_secrets.everything_said(info.value)
    assert url_secrets.SECRET not in said and url_secrets.SECRET not in caplog.text
    ok, text = NeveHook("leaky").test_connection()
    assert not ok and url_secrets.SECRET not in text
