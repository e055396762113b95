from __future__ import annotations

import pytest

from neve.engine import DEFAULT_URL, parse_url
from neve.engine.duckdb import DuckDBDriver
from neve.errors import InvalidURLError


def test_default_url_comes_from_environment(monkeypatch):
    monkeypatch.delenv("NEVE_URL", raising=False)
    assert parse_url().path == "/./neve.duckdb"
    monkeypatch.setenv("NEVE_URL", "duckdb://")
    assert parse_url().scheme == "duckdb" and parse_url().path == ""
    assert DEFAULT_URL == "duckdb:///./neve.duckdb"


@pytest.mark.parametrize(
    ("url", "database"),
    [
        ("duckdb://", ":memory:"),
        ("duckdb://:memory:", ":memory:"),
        ("duckdb:///./neve.duckdb", "neve.duckdb"),
        ("duckdb://rel/file.duckdb", "rel/file.duckdb"),
        ("duckdb:///abs/path/file.duckdb", "/abs/path/file.duckdb"),
        ("duckdb:////abs/path/file.duckdb", "/abs/path/file.duckdb"),
    ],
)
def test_duckdb_url_forms(url, database):
    assert DuckDBDriver(parse_url(url)).database == database


def test_password_is_never_shown():
    url = parse_url("postgres://alice:s3cr%40t@db.example:6543/warehouse?sslmode=require")
    assert url.password == "s3cr@t"
    assert url.port == 6543
    assert "s3cr" not in url.redacted()
    assert "s3cr" not in repr(url)
    assert url.redacted() == "postgres://alice:***@db.example:6543/warehouse?sslmode=require"


@pytest.mark.parametrize("bad", ["neve.duckdb", "", "postgres://u:p@host:notaport/db"])
def test_invalid_urls_are_rejected_clearly(bad):
    with pytest.raises(InvalidURLError) as info:
        parse_url(bad)
    assert "p@host" not in str(info.value)
    assert isinstance(info.value, ValueError)


def test_snowflake_url_maps_to_connector_arguments():
    from neve.engine.snowflake import SnowflakeDriver

    url = parse_url("snowflake://ALICE:pw%2F1@xy12345.eu-west-1/ANALYTICS/MODEL_REGISTRY?warehouse=WH&role=ML")
    kwargs = SnowflakeDriver(url).connect_kwargs()
    assert kwargs == {
        "account": "xy12345.eu-west-1",
        "user": "ALICE",
        "password": "pw/1",
        "database": "ANALYTICS",
        "schema": "MODEL_REGISTRY",
        "warehouse": "WH",
        "role": "ML",
    }
    assert "pw" not in url.redacted()
    with pytest.raises(InvalidURLError, match="DATABASE"):
        SnowflakeDriver(parse_url("snowflake://u:p@acct/A/B/C")).connect_kwargs()


def test_registry_grants_speak_each_engines_dialect():
    from neve.engine.postgres import PostgresDriver
    from neve.engine.snowflake import SnowflakeDriver

    pg = PostgresDriver(parse_url("postgres://u@h/db")).registry_grants("MODEL_REGISTRY", "alice")
    assert "GRANT CREATE ON SCHEMA MODEL_REGISTRY TO alice;" in pg
    sf = SnowflakeDriver(parse_url("snowflake://u@acct")).registry_grants("ANALYTICS.MODEL_REGISTRY", "ML")
    assert "GRANT CREATE TABLE, CREATE VIEW, CREATE STAGE ON SCHEMA ANALYTICS.MODEL_REGISTRY TO ROLE ML;" in sf
    assert not any("CREATE DATABASE" in g for g in sf + pg)


@pytest.mark.parametrize(
    ("message", "program", "pid"),
    [
        ('Conflicting lock is held in /usr/bin/python3.11 (PID 4242). See also', "/usr/bin/python3.11", "4242"),
        # Seen from processes started by a forkserver: no program, and PID 0.
        ("Conflicting lock is held in PID 0. However, you would be able to", None, "0"),
    ],
)
def test_lock_holder_is_recognised_in_both_of_duckdbs_wordings(message, program, pid):
    from neve.engine._dbapi import _HOLDER

    found = _HOLDER.search(f'IO Error: Could not set lock on file "x.duckdb": {message}')
    assert (found["program"], found["pid"]) == (program, pid)
