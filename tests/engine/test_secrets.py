"""Secrets in connection URLs never reach an exception, a repr, a log record or the CLI's output."""

from __future__ import annotations

import logging
import socket
import traceback

import pytest

import neve
from neve.cli import main
from neve.engine import driver_for, parse_url
from neve.errors import NeveError

SECRET = "Zq9-s3cr3t-Vw"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the socket is


PORT = _closed_port()

# Each form a secret can take in a URL neve is given; every one fails to connect.
FORMS = {
    "userinfo password": f"postgres://ml:{SECRET}@127.0.0.1:{PORT}/db",
    "query password": f"postgres://ml@127.0.0.1:{PORT}/db?password={SECRET}",
    "query sslpassword": f"postgres://ml@127.0.0.1:{PORT}/db?sslpassword={SECRET}&sslmode=disable",
    "upper-case key": f"postgres://ml@127.0.0.1:{PORT}/db?PassWord={SECRET}",
    "unknown secret option": f"postgres://ml@127.0.0.1:{PORT}/db?passcode={SECRET}",
    "url-encoded": f"postgres://ml:{SECRET}%21@127.0.0.1:{PORT}/db",
    "one slash": f"postgres:/ml:{SECRET}@127.0.0.1/db",
    "no scheme": f"ml:{SECRET}@127.0.0.1",
    "bad port": f"postgres://ml:{SECRET}@127.0.0.1:port/db?sslpassword={SECRET}",
    "bad ipv6 host": f"postgres://ml:{SECRET}@[::1/db",
    "duckdb token": f"duckdb:///{'/nonexistent' * 3}/x.duckdb?motherduck_token={SECRET}&threads=notanumber",
    "snowflake without account": f"snowflake://ML:{SECRET}@/DB?token={SECRET}",
}
# Snowflake URLs are parsed and shown but not connected: a connection attempt would leave the machine.
SHOWN_ONLY = {
    "snowflake private key password": f"snowflake://ML@ab12345/DB/S?private_key_file_pwd={SECRET}&role=R",
    "snowflake token": f"snowflake://ML@ab12345/DB?authenticator=oauth&token={SECRET}",
    "snowflake passcode": f"snowflake://ML:{SECRET}@ab12345/DB?passcode={SECRET}&warehouse=WH",
}


def everything_said(exc: BaseException) -> str:
    """The exception as every consumer may show it: str, repr and the full traceback,
    chained causes and contexts included."""
    return "\n".join([str(exc), repr(exc), *traceback.format_exception(exc)])


@pytest.mark.parametrize("url", FORMS.values(), ids=FORMS.keys())
def test_connect_never_shows_a_secret(url, caplog):
    with caplog.at_level(logging.DEBUG), pytest.raises(NeveError) as info:
        neve.connect(url)
    assert SECRET not in everything_said(info.value)
    assert SECRET not in caplog.text


@pytest.mark.parametrize("url", FORMS.values(), ids=FORMS.keys())
def test_cli_never_shows_a_secret(url, monkeypatch, capsys, caplog):
    monkeypatch.setenv("NEVE_URL", url)
    with caplog.at_level(logging.DEBUG):
        assert main(["models", "list"]) != 0
    out = capsys.readouterr()
    assert "error" in out.err
    assert SECRET not in out.out + out.err + caplog.text


@pytest.mark.parametrize("url", SHOWN_ONLY.values(), ids=SHOWN_ONLY.keys())
def test_parsed_urls_show_no_secret(url):
    parsed = parse_url(url)
    driver = driver_for(url)
    assert SECRET in parsed.secrets()
    for shown in (parsed.redacted(), repr(parsed), str(parsed), repr(driver.url)):
        assert SECRET not in shown
        assert "***" in shown


def test_redaction_keeps_what_is_not_secret():
    url = parse_url(f"postgres://ml@db:5432/wh?sslmode=require&application_name=etl&sslpassword={SECRET}")
    assert url.redacted() == "postgres://ml@db:5432/wh?sslmode=require&application_name=etl&sslpassword=***"


def test_a_password_the_driver_echoes_is_scrubbed(caplog):
    # libpq rejects an option's value by quoting it. A secret pasted into the wrong option
    # (here sslmode) comes back verbatim in psycopg's error: the real driver's text, which
    # neve must scrub before it builds its own error.
    url = f"postgres://ml:{SECRET}@127.0.0.1:{PORT}/db?sslmode={SECRET}"
    import psycopg

    with pytest.raises(psycopg.Error, match=SECRET):  # the premise: the driver does echo it
        psycopg.connect(host="127.0.0.1", port=PORT, user="ml", password=SECRET, sslmode=SECRET)
    with caplog.at_level(logging.DEBUG), pytest.raises(NeveError) as info:
        neve.connect(url)
    said = everything_said(info.value)
    assert "invalid sslmode value" in said  # the driver's reason is kept ...
    assert SECRET not in said and SECRET not in caplog.text  # ... without the secret
