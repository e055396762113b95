"""Airflow connections turned into engine URLs, without importing Airflow.

Task environments must not carry Airflow (importing it costs seconds per task,
and a venv task that reads a connection under ``dag.test()`` hangs:
apache/airflow#65482). Airflow hands connections to child processes as
``AIRFLOW_CONN_<ID>`` environment variables, in URI or JSON form, so neve reads
that variable itself. The Airflow hook (``neve.airflow.NeveHook``) resolves the
connection through Airflow's secrets backends and then uses the same mapping
(:func:`engine_url`), so both paths agree on every connection type.

Supported connection types:

``neve``       the engine URL in the extra field ``url`` (the password may sit in
               the connection's password field instead of the URL)
``postgres``   host, port, login, password, schema = database; libpq options in extra
``snowflake``  the standard Snowflake connection: login, password, schema, and
               ``account``, ``warehouse``, ``database``, ``role`` in extra
``duckdb``     host = path of the database file (empty: in memory)
``spark``      the Apache Spark provider's connection: host = the master (``local[2]``,
               ``yarn``, ``spark://HOST`` with the port in port, or ``sc://HOST`` for Spark
               Connect); schema = the database; in extra ``warehouse`` (a local master's
               warehouse folder) and any ``spark.*`` setting
``spark_connect`` the provider's Spark Connect connection: host, port, login = user id,
               password = token, schema = the database, extra ``use_ssl``

and, for a registry stage on S3 (:func:`storage_options`, not an engine):

``aws``        login / password = access key id / secret access key; in extra
               ``aws_session_token``, ``region_name``, ``endpoint_url`` (also the pre-2.3
               ``extra__aws__*`` names, and ``host`` as the endpoint, as Airflow reads them)

Nothing here logs or echoes a password; errors name the variable, never its value.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from neve.engine._url import parse_url
from neve.errors import ConnectionNotFoundError, InvalidURLError

__all__ = [
    "AirflowConnection",
    "connection_from_env",
    "engine_url",
    "env_var_name",
    "parse_connection",
    "storage_options",
    "url_from_env",
]

# The libpq options that may travel from a postgres connection's extra to the driver;
# the rest of Airflow's postgres extras (cursor, iam, aws_conn_id, ...) mean nothing here.
_POSTGRES_OPTIONS = (
    "sslmode",
    "sslcert",
    "sslkey",
    "sslrootcert",
    "sslcrl",
    "application_name",
    "connect_timeout",
    "options",
    "target_session_attrs",
)
_SNOWFLAKE_OPTIONS = ("warehouse", "role", "authenticator", "private_key_file")
_SNOWFLAKE_DOMAIN = ".snowflakecomputing.com"


@dataclass(frozen=True)
class AirflowConnection:
    """The fields of an Airflow connection, as Airflow stores them."""

    conn_id: str
    conn_type: str
    host: str | None = None
    login: str | None = None
    password: str | None = field(default=None, repr=False)
    schema: str | None = None
    port: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def option(self, key: str) -> Any:
        """An extra field, also under its pre-2.3 ``extra__<type>__<key>`` name."""
        value = self.extra.get(key)
        if value in (None, ""):
            value = self.extra.get(f"extra__{self.conn_type}__{key}")
        return None if value == "" else value


def env_var_name(conn_id: str) -> str:
    return f"AIRFLOW_CONN_{conn_id.upper()}"


def url_from_env(conn_id: str, environ: Mapping[str, str] | None = None) -> str:
    """The engine URL for the Airflow connection ``conn_id`` read from ``AIRFLOW_CONN_<ID>``."""
    environ = os.environ if environ is None else environ
    var = env_var_name(conn_id)
    if not environ.get(var):
        raise ConnectionNotFoundError(
            f"Airflow connection {conn_id!r} is not defined: set {var}, e.g. "
            f"{var}='neve://?url=duckdb%3A%2F%2F%2F.%2Fneve.duckdb' or "
            f'{var}=\'{{"conn_type": "neve", "extra": {{"url": "duckdb:///./neve.duckdb"}}}}\', '
            f"or create the connection in Airflow"
        )
    return engine_url(connection_from_env(conn_id, environ))


def connection_from_env(
    conn_id: str, environ: Mapping[str, str] | None = None
) -> AirflowConnection:
    """The Airflow connection ``conn_id`` from ``AIRFLOW_CONN_<ID>`` (URI or JSON)."""
    environ = os.environ if environ is None else environ
    var = env_var_name(conn_id)
    raw = environ.get(var)
    if not raw:
        raise ConnectionNotFoundError(
            f"Airflow connection {conn_id!r} is not defined: set {var} or create the "
            f"connection in Airflow"
        )
    return parse_connection(raw, conn_id, source=var)


def storage_options(conn: AirflowConnection) -> dict[str, Any]:
    """s3fs ``storage_options`` from an Airflow ``aws`` connection. They hold the secret:
    hand them to ``Registry(storage_options=...)``, never to a log."""
    if conn.conn_type not in ("aws", "s3"):
        raise InvalidURLError(
            f"Airflow connection {conn.conn_id!r} has type {conn.conn_type!r}; a stage's "
            f"credentials come from an 'aws' connection"
        )
    options: dict[str, Any] = {}
    if conn.login:
        options["key"] = conn.login
    if conn.password:
        options["secret"] = conn.password
    token = conn.option("aws_session_token")
    if token:
        options["token"] = token
    endpoint = conn.option("endpoint_url") or conn.host
    if endpoint:
        options["endpoint_url"] = endpoint
    region = conn.option("region_name")
    if region:
        options["client_kwargs"] = {"region_name": region}
    return options


def parse_connection(raw: str, conn_id: str, *, source: str | None = None) -> AirflowConnection:
    """Parse Airflow's URI or JSON serialisation of a connection (as ``Connection.from_uri``
    and ``Connection.from_json`` do)."""
    source = source or env_var_name(conn_id)
    text = raw.strip()
    if text.startswith("{"):
        return _from_json(text, conn_id, source)
    return _from_uri(text, conn_id, source)


def _from_json(text: str, conn_id: str, source: str) -> AirflowConnection:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        # The position, not the text: the text may hold a password.
        raise InvalidURLError(
            f"{source} is not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}"
        ) from None
    if not isinstance(data, dict) or not data.get("conn_type"):
        raise InvalidURLError(f'{source} must be a JSON object with a "conn_type" key')
    extra = _extra(data.get("extra"), source)
    port = data.get("port")
    if port not in (None, ""):
        try:
            port = int(port)
        except (TypeError, ValueError):
            raise InvalidURLError(f"{source}: port must be an integer, got {port!r}") from None
    return AirflowConnection(
        conn_id=conn_id,
        conn_type=_normalize_type(str(data["conn_type"])),
        host=data.get("host") or None,
        login=data.get("login") or None,
        password=data.get("password") or None,
        schema=data.get("schema") or None,
        port=port or None,
        extra=extra,
    )


def _from_uri(text: str, conn_id: str, source: str) -> AirflowConnection:
    if "://" not in text or text.count("://") > 2:
        raise InvalidURLError(
            f"{source} is neither a connection URI (type://login:password@host:port/schema?extra) "
            f"nor a JSON object"
        )
    conn_type = urlsplit(text).scheme
    # Airflow allows a protocol inside the host: "type://protocol://host/..."
    with_protocol = text.count("://") == 2
    rest = text.replace(f"{conn_type}://", "" if with_protocol else "//", 1)
    try:
        parts = urlsplit(rest)
        port = parts.port
    except ValueError as exc:
        raise InvalidURLError(f"{source}: invalid connection URI ({exc})") from None
    host = unquote(parts.hostname or "") or None
    if host and with_protocol:
        host = f"{parts.scheme}://{host}"
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    if "__extra__" in query:
        extra = _extra(query["__extra__"], source)
    else:
        extra = query
    return AirflowConnection(
        conn_id=conn_id,
        conn_type=_normalize_type(conn_type),
        host=host,
        login=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        schema=unquote(parts.path[1:]) or None,
        port=port,
        extra=extra,
    )


def _extra(value: Any, source: str) -> dict[str, Any]:
    if value in (None, ""):
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise InvalidURLError(f"{source}: the connection's extra is not valid JSON") from None
    if not isinstance(value, dict):
        raise InvalidURLError(f"{source}: the connection's extra must be a JSON object")
    return value


def _normalize_type(conn_type: str) -> str:
    conn_type = conn_type.lower()
    return "postgres" if conn_type == "postgresql" else conn_type.replace("-", "_")


def engine_url(conn: AirflowConnection) -> str:
    """The neve engine URL an Airflow connection describes. It may hold a password:
    pass it to :func:`neve.connect`, never to a log."""
    builder = _BUILDERS.get(conn.conn_type)
    if builder is None:
        raise InvalidURLError(
            f"Airflow connection {conn.conn_id!r} has type {conn.conn_type!r}, which neve cannot "
            f"use; change it to one of {', '.join(sorted(_BUILDERS))}"
        )
    return builder(conn)


def _auth(login: str | None, password: str | None) -> str:
    if not login:
        return ""
    return quote(login, safe="") + (f":{quote(password, safe='')}" if password else "") + "@"


def _neve_url(conn: AirflowConnection) -> str:
    url = conn.option("url") or (conn.host if conn.host and "://" in conn.host else None)
    if not url:
        raise InvalidURLError(
            f"Airflow connection {conn.conn_id!r} (type neve) has no engine URL: put it in the "
            f'extra field, e.g. {{"url": "duckdb:///./neve.duckdb"}}'
        )
    url = str(url)
    parse_url(url)  # fail here, naming the connection, rather than deep inside connect()
    parts = urlsplit(url)
    if conn.password and parts.username and parts.password is None:
        # The secret lives in the (masked) password field, the rest in the URL.
        netloc = _auth(unquote(parts.username), conn.password) + parts.netloc.split("@", 1)[1]
        url = parts._replace(netloc=netloc).geturl()
    return url


def _postgres_url(conn: AirflowConnection) -> str:
    host = conn.host or "localhost"
    port = f":{conn.port}" if conn.port else ""
    database = quote(conn.schema or "", safe="")
    options = {k: str(conn.extra[k]) for k in _POSTGRES_OPTIONS if conn.extra.get(k) not in (None, "")}
    query = f"?{urlencode(options)}" if options else ""
    return f"postgres://{_auth(conn.login, conn.password)}{host}{port}/{database}{query}"


def _snowflake_url(conn: AirflowConnection) -> str:
    account = conn.option("account") or conn.host
    if not account:
        raise InvalidURLError(
            f"Airflow connection {conn.conn_id!r} (type snowflake) has no account: set "
            f'"account" in its extra, e.g. {{"account": "xy12345.eu-west-1", '
            f'"warehouse": "WH", "database": "DB"}}'
        )
    account = str(account).removeprefix("https://").split("/", 1)[0]
    account = account.removesuffix(_SNOWFLAKE_DOMAIN)
    region = conn.option("region")
    if region and region not in account:
        account = f"{account}.{region}"
    if conn.option("private_key_content"):
        raise InvalidURLError(
            f"Airflow connection {conn.conn_id!r}: private_key_content is not supported; store "
            f"the key in a file and set private_key_file, or use a password"
        )
    database = conn.option("database")
    path = ""
    if database:
        path = f"/{quote(str(database), safe='')}"
        if conn.schema:
            path += f"/{quote(conn.schema, safe='')}"
    options = {k: str(v) for k in _SNOWFLAKE_OPTIONS if (v := conn.option(k)) not in (None, "")}
    query = f"?{urlencode(options)}" if options else ""
    return f"snowflake://{_auth(conn.login, conn.password)}{account}{path}{query}"


def _duckdb_url(conn: AirflowConnection) -> str:
    path = conn.host or conn.schema or ""
    if not path or path == ":memory:":
        return "duckdb://"
    if path.startswith("/"):
        return f"duckdb://{path}"
    return f"duckdb:///{path}" if path.startswith(("./", "../", "~")) else f"duckdb:///./{path}"


def _spark_url(conn: AirflowConnection) -> str:
    master = (conn.host or "local[*]").strip()
    query = {k: str(v) for k, v in conn.extra.items() if k.startswith("spark.")}
    if conn.schema:
        query["database"] = conn.schema
    if master.startswith("sc://"):
        return _spark_connect_url(conn)
    if master.startswith("spark://"):
        master = master.removeprefix("spark://")
        if conn.port and ":" not in master:
            master += f":{conn.port}"
    warehouse = str(conn.option("warehouse") or "")
    if warehouse and not warehouse.startswith("/") and "://" not in warehouse:
        warehouse = "./" + warehouse.removeprefix("./")  # relative to the working directory
    path = f"/{warehouse}" if warehouse and not warehouse.startswith("/") else warehouse
    return f"spark://{master}{path}" + (f"?{urlencode(query)}" if query else "")


def _spark_connect_url(conn: AirflowConnection) -> str:
    host = (conn.host or "localhost").removeprefix("sc://").rstrip("/")
    port = f":{conn.port}" if conn.port and ":" not in host else ""
    params = []
    if conn.login:
        params.append(f"user_id={quote(conn.login, safe='')}")
    if conn.password:
        params.append(f"token={quote(conn.password, safe='')}")
    if str(conn.option("use_ssl") or "").lower() in ("1", "true", "yes"):
        params.append("use_ssl=true")
    database = f"?{urlencode({'database': conn.schema})}" if conn.schema else ""
    return f"sc://{host}{port}/" + "".join(f";{p}" for p in params) + database


_BUILDERS = {
    "neve": _neve_url,
    "postgres": _postgres_url,
    "snowflake": _snowflake_url,
    "duckdb": _duckdb_url,
    "spark": _spark_url,
    "spark_connect": _spark_connect_url,
}
