from __future__ import annotations

import shutil

import pandas as pd
import pyarrow as pa
import pytest

import neve
from neve.errors import (
    DataFileError,
    EngineError,
    InvalidURLError,
    NeveInputError,
    TableNotFoundError,
)
from tests._skips import require_module


def test_connect_opens_a_real_duckdb_file(tmp_path):
    path = tmp_path / "sub" / "x.duckdb"
    with neve.connect(f"duckdb:///{path}") as session:
        session.create_table("T", pd.DataFrame({"a": [1, 2, 3]}))
    assert path.exists()
    with neve.connect(f"duckdb:///{path}") as session:
        assert session.table("T").count().execute() == 3
        assert session.engine.name == "duckdb"


def test_default_session_uses_neve_url(tmp_path, monkeypatch):
    monkeypatch.setenv("NEVE_URL", f"duckdb:///{tmp_path / 'env.duckdb'}")
    with neve.connect() as session:
        session.create_table("T", pa.table({"a": [1.0]}))
    assert (tmp_path / "env.duckdb").exists()


def test_create_table_from_each_kind_of_data(session):
    session.create_table("P", pd.DataFrame({"a": [1, 2]}))
    session.create_table("A", pa.table({"a": [3, 4]}))
    session.create_table("E", session.table("P").mutate(b=lambda t: t.a * 10))
    assert session.table("E").b.sum().execute() == 30
    with pytest.raises(NeveInputError, match="already exists"):
        session.create_table("P", pd.DataFrame({"a": [1]}))
    session.create_table("P", pd.DataFrame({"a": [7]}), overwrite=True)
    assert session.table("P").a.sum().execute() == 7
    with pytest.raises(NeveInputError, match="list"):
        session.create_table("X", [1, 2, 3])


def test_missing_table_suggests_close_names(session):
    session.create_table("TAXI_DATA", pd.DataFrame({"a": [1]}))
    with pytest.raises(TableNotFoundError, match="did you mean 'TAXI_DATA'"):
        session.table("TAXI_DAT")


def test_load_files_copes_with_mixed_line_endings(session, taxi_files):
    # These files end the header with LF and rows with CRLF, which defeats DuckDB's sniffer.
    raw = session.load_files(taxi_files, "TAXI_RAW", overwrite=True)
    assert raw.count().execute() == 20_000
    assert raw.schema()["trip_distance"].is_floating()
    assert raw.schema()["pickup_datetime"].is_timestamp()


def test_load_files_appends_then_overwrites(session, taxi_files):
    session.load_files(taxi_files[0], "RAW")
    session.load_files(taxi_files[1], "RAW")
    assert session.table("RAW").count().execute() == 20_000
    session.load_files(taxi_files[0], "RAW", overwrite=True)
    assert session.table("RAW").count().execute() == 10_000


def test_load_files_parquet(session, tmp_path):
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"x": [1.5, 2.5]}), tmp_path / "a.parquet")
    assert session.load_files([tmp_path / "a.parquet"], "PQ").x.sum().execute() == 4.0


def test_load_files_missing_file_is_named(session, tmp_path):
    with pytest.raises(DataFileError, match="nope.csv"):
        session.load_files([tmp_path / "nope.csv"], "T")


def test_load_files_unparseable_file_is_named(session, tmp_path, taxi_files):
    good = tmp_path / "good.csv"
    shutil.copy(taxi_files[0], good)
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"vendor_id,trip_distance\n1,2.0\n\xff\xfe,3.0\n")  # not UTF-8
    with pytest.raises(DataFileError, match="bad.csv"):
        session.load_files([good, bad], "T")


def test_unknown_scheme_lists_supported():
    with pytest.raises(InvalidURLError, match="duckdb"):
        neve.connect("mysql://u:p@localhost/db")


def test_unreachable_postgres_names_host_and_port_and_hides_password():
    with pytest.raises(EngineError) as info:
        neve.connect("postgres://neve:hunter2@127.0.0.1:1/nowhere?connect_timeout=2")
    message = str(info.value)
    assert "127.0.0.1:1" in message
    assert "hunter2" not in message


def test_unreachable_snowflake_names_host_and_port_and_hides_password():
    require_module("snowflake.connector", "the dev group: uv sync --group dev", allow_module_level=False)
    with pytest.raises(EngineError) as info:  # a loopback port nobody listens on
        neve.connect("snowflake://neve:hunter2@acct/DB/SCH?host=127.0.0.1&port=1&protocol=http"
                     "&login_timeout=2")
    message = str(info.value)
    assert "127.0.0.1:1" in message and "'acct'" in message
    assert "hunter2" not in message


@pytest.mark.engines("postgres", reason="a wrong password needs a real server to refuse it")
def test_wrong_postgres_password_names_host_and_port_and_hides_it(engine, postgres_admin_url):
    from neve.engine import parse_url

    url = parse_url(postgres_admin_url)
    bad = f"postgres://{url.username}:wr0ng-pass@{url.host}:{url.port}{url.path}"
    with pytest.raises(EngineError) as info:
        neve.connect(bad)
    message = str(info.value)
    assert f"{url.host}:{url.port}" in message and "password authentication failed" in message
    assert "wr0ng-pass" not in message
