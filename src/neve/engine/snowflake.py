"""Snowflake: the reference warehouse, through Ibis's Snowflake backend.

``snowflake://user:password@account/DATABASE/SCHEMA?warehouse=WH&role=ROLE``; any other
query parameter goes to the connector (``authenticator``, ``private_key_file`` ...).
An existing connector connection or Snowpark session is adopted with
:meth:`SnowflakeDriver.adopt` (``neve.connect(connection=conn)``).
Without an account to test against, the SQL neve generates for Snowflake is verified on
the fakesnow emulator (see tests/engine/test_snowflake_sql.py and docs/snowflake.md).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, ClassVar

from neve.engine._driver import Driver
from neve.engine._snowflake_stage import InternalStage
from neve.engine._url import EngineURL
from neve.errors import EngineError, InvalidURLError, NeveInputError

__all__ = ["STAGE_NAME", "SnowflakeDriver"]

STAGE_NAME = "NEVE_STAGE"
_UNQUOTED = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_DOMAIN = ".snowflakecomputing.com"
#: Connector options that take a number of seconds (or a port): a URL carries them as text.
_INTEGER_OPTIONS = frozenset({"port", "login_timeout", "network_timeout", "socket_timeout"})


class SnowflakeDriver(Driver):
    name: ClassVar[str] = "snowflake"
    schemes: ClassVar[tuple[str, ...]] = ("snowflake",)

    @classmethod
    def new_column_name(cls, name: str) -> str:
        """Snowflake's identifier rules, as SnowML applies them: ``'"col1"'`` is a quoted,
        case-kept name; an unquoted one is upper-cased (``OUT_foo`` -> ``OUT_FOO``); a name
        that could not be written unquoted (a space, say) is kept as given."""
        if len(name) > 1 and name[0] == name[-1] == '"':
            return name[1:-1].replace('""', '"')
        return name.upper() if _UNQUOTED.fullmatch(name) else name

    @classmethod
    def resolve_column(cls, name: str, columns: Sequence[str]) -> str:
        """``age`` finds ``AGE`` (and ``'"age"'`` finds ``age``). A column whose stored name is
        exactly ``name`` wins, so names taken from ``table.columns`` always resolve."""
        return name if name in columns else cls.new_column_name(name)

    def connect_kwargs(self) -> dict[str, Any]:
        """The keyword arguments for ``ibis.snowflake.connect`` (password included)."""
        url = self.url
        if not url.host:
            raise InvalidURLError(
                f"Snowflake URL needs an account: snowflake://user:pw@ACCOUNT/DB/SCHEMA "
                f"(got {url.redacted()})"
            )
        parts = [p for p in url.path.split("/") if p]
        if len(parts) > 2:
            raise InvalidURLError(f"Snowflake URL path must be /DATABASE[/SCHEMA], got {url.path!r}")
        kwargs: dict[str, Any] = {"account": url.host, "user": url.username, **url.query}
        for key in _INTEGER_OPTIONS & kwargs.keys():
            if str(kwargs[key]).isdigit():
                kwargs[key] = int(kwargs[key])
        if url.password is not None:
            kwargs["password"] = url.password
        # Separate keywords, as ibis's own URL parsing makes them: the connector takes
        # ``database`` literally, so "DB/SCHEMA" would name a database that does not exist.
        if parts:
            kwargs["database"] = parts[0]
        if len(parts) == 2:
            kwargs["schema"] = parts[1]
        return kwargs

    def connect(self) -> Any:
        kwargs = self.connect_kwargs()
        # Ibis's object UDFs (map helpers neve never uses) need CREATE DATABASE, which a
        # role granted only a registry schema lacks; skip them unless the URL asks.
        kwargs["create_object_udfs"] = _flag(kwargs.pop("create_object_udfs", "false"))
        # The connector retries a failed login for 120 s by default; a wrong account or a
        # blocked network should fail sooner (the URL's login_timeout wins).
        kwargs.setdefault("login_timeout", 20)
        try:
            import ibis

            return ibis.snowflake.connect(**kwargs)
        except ModuleNotFoundError as exc:
            raise EngineError(
                "Snowflake support is not installed: pip install 'neve[snowflake]'"
            ) from exc
        except Exception as exc:  # noqa: BLE001 - any connector failure becomes one clear error
            reason = (self.url.scrub(str(exc)).strip().splitlines() or [type(exc).__name__])[0]
            host = kwargs.get("host") or f"{self.url.host}{_DOMAIN}"
            port = kwargs.get("port") or 443
            raise EngineError(
                f"cannot connect to Snowflake account {self.url.host!r} at {host}:{port} as "
                f"{self.url.username!r} ({self.url.redacted()}): {reason}"
            ) from None

    @classmethod
    def adopt(cls, connection: Any) -> tuple[SnowflakeDriver, Any]:
        """A driver and an Ibis backend over an open connector connection or Snowpark session.

        The connection stays the caller's: neve runs its queries on it and never re-opens
        it, so authentication (SSO, key pair, OAuth) is whatever made it. The driver's URL
        is descriptive only (account, user, database, schema; never a secret).
        """
        try:
            import ibis
            import snowflake.connector
        except ModuleNotFoundError as exc:
            raise EngineError(
                "Snowflake support is not installed: pip install 'neve[snowflake]'"
            ) from exc
        conn = connection
        if not isinstance(conn, snowflake.connector.SnowflakeConnection):
            conn = getattr(getattr(connection, "_conn", None), "_conn", None)  # Snowpark session
            if not isinstance(conn, snowflake.connector.SnowflakeConnection):
                raise NeveInputError(
                    "expected a snowflake.connector connection or a Snowpark Session, got "
                    f"{type(connection).__name__}"
                )
        backend = ibis.snowflake.from_connection(conn, create_object_udfs=False)
        return cls(cls.url_of(conn)), backend

    @staticmethod
    def url_of(conn: Any) -> EngineURL:
        path = "/".join(p for p in (conn.database, conn.schema) if p)
        query = {k: v for k in ("warehouse", "role") if (v := getattr(conn, k, None))}
        return EngineURL(
            scheme="snowflake",
            username=getattr(conn, "user", None),
            host=getattr(conn, "account", None),
            path=f"/{path}" if path else "",
            query=query,
        )

    # The values bound by the connector: Ibis's insert of in-memory data uploads a Parquet
    # file to a temporary stage and runs COPY INTO, three round trips and a stage per event.
    def param_mark(self, backend: Any) -> str:
        style = getattr(backend.con, "_paramstyle", None) or "pyformat"
        return "?" if style in ("qmark", "numeric") else "%s"

    def execute_bound(self, backend: Any, sql: str, params: Sequence[Any]) -> None:
        with backend.con.cursor() as cursor:
            cursor.execute(sql, params)

    def default_stage(self, schema: str | None) -> str | None:
        """The internal stage ``NEVE_STAGE`` beside the registry tables: every worker with the
        registry's grants reads the model files, with no bucket or cloud credentials."""
        return f"@{schema}.{STAGE_NAME}" if schema else f"@{STAGE_NAME}"

    def stage_filesystem(self, url: str, connection: Any) -> Any:
        if not url.startswith("@"):
            return None
        return InternalStage(url, connection)

    def registry_grants(self, schema: str, user: str) -> list[str]:
        # Snowflake grants privileges to roles; table, view and stage creation separately.
        role = user if user != "<user>" else "<role>"
        database = schema.split(".")[0] if "." in schema else "<database>"
        return [
            f"GRANT USAGE ON DATABASE {database} TO ROLE {role};",
            f"GRANT USAGE ON SCHEMA {schema} TO ROLE {role};",
            f"GRANT CREATE TABLE, CREATE VIEW, CREATE STAGE ON SCHEMA {schema} TO ROLE {role};",
        ]


def _flag(value: Any) -> bool:
    return str(value).strip().lower() in {"1", "true", "yes", "on"}
