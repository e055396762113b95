"""AIRFLOW_CONN_<ID> parsing without Airflow: URI and JSON forms, every supported type."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import neve
from neve.engine import parse_url
from neve.engine._airflow_conn import AirflowConnection, engine_url, parse_connection, url_from_env
from neve.errors import ConnectionNotFoundError, InvalidURLError

SECRET = "s3cr/t:@pw"


def _url(raw: str, conn_id: str = "x") -> str:
    return url_from_env(conn_id, {f"AIRFLOW_CONN_{conn_id.upper()}": raw})


def test_neve_type_uri_form_carries_the_url_in_extra():
    assert _url("neve://?url=duckdb%3A%2F%2F%2F.%2Fneve.duckdb") == "duckdb:///./neve.duckdb"


def test_neve_type_json_form():
    raw = json.dumps({"conn_type": "neve", "extra": {"url": "duckdb:///tmp/a.duckdb"}})
    assert _url(raw) == "duckdb:///tmp/a.duckdb"


def test_neve_type_extra_given_as_a_json_string_as_airflow_stores_it():
    raw = json.dumps({"conn_type": "neve", "extra": json.dumps({"url": "duckdb://"})})
    assert _url(raw) == "duckdb://"


def test_neve_type_takes_the_password_from_the_password_field():
    raw = json.dumps(
        {"conn_type": "neve", "password": SECRET, "extra": {"url": "postgres://ann@db.local:5432/ml"}}
    )
    parsed = parse_url(_url(raw))
    assert (parsed.username, parsed.password, parsed.host, parsed.path) == ("ann", SECRET, "db.local", "/ml")


def test_neve_type_without_url_names_the_fix():
    with pytest.raises(InvalidURLError, match=r'extra field, e\.g\. \{"url": "duckdb:///'):
        _url('{"conn_type": "neve"}', "mine")


def test_postgres_uri_form_round_trips_quoted_credentials():
    raw = "postgresql://ann:s3cr%2Ft%3A%40pw@db.local:6543/ml?sslmode=require&cursor=dictcursor"
    parsed = parse_url(_url(raw))
    assert parsed.scheme == "postgres"
    assert (parsed.username, parsed.password) == ("ann", SECRET)
    assert (parsed.host, parsed.port, parsed.path) == ("db.local", 6543, "/ml")
    # libpq options travel, Airflow-only extras (cursor) do not.
    assert parsed.query == {"sslmode": "require"}


def test_postgres_json_form():
    raw = json.dumps(
        {"conn_type": "postgres", "host": "h", "login": "u", "password": "p w", "schema": "db", "port": "5433"}
    )
    parsed = parse_url(_url(raw))
    assert (parsed.host, parsed.port, parsed.username, parsed.password, parsed.path) == ("h", 5433, "u", "p w", "/db")


def test_snowflake_connection_as_the_seed_defines_it():
    # The seed's airflow_settings.yaml: login/password/schema plus account, warehouse,
    # database and role in extra.
    raw = json.dumps(
        {
            "conn_type": "snowflake",
            "login": "ML_USER",
            "password": SECRET,
            "schema": "PUBLIC",
            "extra": {"account": "xy12345", "region": "eu-west-1", "warehouse": "COMPUTE_WH",
                      "database": "TAXI", "role": "SYSADMIN", "insecure_mode": False},
        }
    )
    parsed = parse_url(_url(raw))
    assert parsed.scheme == "snowflake"
    assert (parsed.username, parsed.password) == ("ML_USER", SECRET)
    assert parsed.host == "xy12345.eu-west-1"
    assert parsed.path == "/TAXI/PUBLIC"
    assert parsed.query == {"warehouse": "COMPUTE_WH", "role": "SYSADMIN"}


def test_snowflake_legacy_extra_names_and_account_url():
    raw = json.dumps(
        {"conn_type": "snowflake", "login": "u", "host": "https://ab123.snowflakecomputing.com",
         "extra": {"extra__snowflake__database": "DB", "extra__snowflake__warehouse": "WH"}}
    )
    parsed = parse_url(_url(raw))
    assert (parsed.host, parsed.path, parsed.query) == ("ab123", "/DB", {"warehouse": "WH"})


def test_snowflake_without_account_names_the_fix():
    with pytest.raises(InvalidURLError, match='set "account" in its extra'):
        _url('{"conn_type": "snowflake", "login": "u"}')


def test_duckdb_type_holds_a_path():
    conn = AirflowConnection(conn_id="d", conn_type="duckdb", host="/data/x.duckdb")
    assert engine_url(conn) == "duckdb:///data/x.duckdb"
    assert engine_url(AirflowConnection(conn_id="d", conn_type="duckdb")) == "duckdb://"


def test_unsupported_type_lists_the_supported_ones():
    with pytest.raises(InvalidURLError, match="type 'mysql'.*duckdb, neve, postgres, snowflake"):
        _url("mysql://u:p@h/db")


def test_missing_variable_says_how_to_define_it():
    with pytest.raises(ConnectionNotFoundError, match="AIRFLOW_CONN_NEVE_DEFAULT") as info:
        url_from_env("neve_default", {})
    assert isinstance(info.value, LookupError)


@pytest.mark.parametrize(
    "raw",
    [
        '{"conn_type": "postgres", "password": "' + SECRET + '",',
        '{"host": "h", "password": "' + SECRET + '"}',
        "postgres://u:hunter22@h:notaport/db",
    ],
)
def test_malformed_values_fail_without_echoing_the_secret(raw):
    with pytest.raises(InvalidURLError, match="AIRFLOW_CONN_X") as info:
        _url(raw)
    assert SECRET not in str(info.value) and "hunter22" not in str(info.value)


def test_airflow_host_with_protocol_form():
    conn = parse_connection("neve://https://example.com", "x")
    assert conn.host == "https://example.com"


def test_connect_reads_the_variable(tmp_path, monkeypatch):
    db = tmp_path / "via_conn.duckdb"
    monkeypatch.setenv("AIRFLOW_CONN_TASKENV", json.dumps({"conn_type": "neve", "extra": {"url": f"duckdb://{db}"}}))
    with neve.connect(airflow_conn_id="taskenv") as session:
        session.create_table("T", pd.DataFrame({"a": [1, 2]}))
    assert db.exists()
    with neve.connect(f"duckdb://{db}") as session:
        assert session.table("T").count().execute() == 2


def test_connect_refuses_url_and_conn_id_together():
    with pytest.raises(InvalidURLError, match="not both"):
        neve.connect("duckdb://", airflow_conn_id="x")


def test_reading_a_connection_does_not_import_airflow(tmp_path):
    code = (
        "import os, sys, neve\n"
        "os.environ['AIRFLOW_CONN_E'] = 'neve://?url=duckdb%3A%2F%2F'\n"
        "from neve.airflow import TableRef\n"
        "with neve.connect(airflow_conn_id='e') as s: TableRef.of\n"
        "print(sorted(m for m in sys.modules if m == 'airflow' or m.startswith('airflow.')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert out.stdout.strip() == "[]"


def test_engine_package_source_never_imports_airflow():
    engine = Path(neve.__file__).parent / "engine"
    for path in engine.glob("*.py"):
        text = path.read_text()
        assert "import airflow" not in text and "from airflow" not in text, path


def test_aws_connection_maps_to_s3_storage_options():
    from urllib.parse import quote

    from neve.engine._airflow_conn import storage_options

    uri = (f"aws://AKIAKEY:{quote(SECRET, safe='')}@minio.internal%3A9000/?"
           "extra__aws__region_name=eu-west-1&aws_session_token=tok-123456")
    conn = parse_connection(uri, "art")
    assert storage_options(conn) == {
        "key": "AKIAKEY", "secret": SECRET, "token": "tok-123456",
        "endpoint_url": "minio.internal:9000", "client_kwargs": {"region_name": "eu-west-1"},
    }
    assert SECRET not in repr(conn)
    by_json = parse_connection(json.dumps({"conn_type": "aws", "login": "K", "password": SECRET,
                                           "extra": {"endpoint_url": "http://127.0.0.1:9000"}}),
                               "art")
    assert storage_options(by_json) == {"key": "K", "secret": SECRET,
                                        "endpoint_url": "http://127.0.0.1:9000"}
    assert storage_options(parse_connection('{"conn_type": "aws"}', "role")) == {}  # ambient
    with pytest.raises(InvalidURLError, match="'aws' connection"):
        storage_options(parse_connection("postgres://u:p@h/db", "pg"))
