"""NeveHook: a neve Session from an Airflow connection."""

from __future__ import annotations

from typing import Any

from airflow.sdk.bases.hook import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException

import neve
from neve.engine import Session
from neve.engine._airflow_conn import AirflowConnection, engine_url, env_var_name
from neve.errors import ConnectionNotFoundError, EngineError, EngineLockedError, InvalidURLError

__all__ = ["NeveHook"]


class NeveHook(BaseHook):
    """Opens a :class:`neve.Session` on the engine an Airflow connection describes.

    Accepts neve's own ``neve`` connection type (the engine URL in the extra field
    ``url``), and the standard ``postgres`` and ``snowflake`` types, so an existing
    ``snowflake_default`` works unchanged, and the Apache Spark provider's ``spark``
    (host ``local[2]``, ``spark://master`` or ``sc://host``) and ``spark_connect`` types.
    Credentials go from Airflow's secrets straight into the engine driver: nothing is
    written to a file, and logs show the URL with its password masked.

    >>> with NeveHook("neve_default").get_session() as session:
    ...     session.table("TAXI_DATA")
    """

    conn_name_attr = "neve_conn_id"
    default_conn_name = "neve_default"
    conn_type = "neve"
    hook_name = "neve"

    def __init__(self, neve_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.neve_conn_id = neve_conn_id

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden_fields": ["host", "schema", "port", "login"],
            "relabeling": {"password": "Password (optional, fills the URL's)"},
            "placeholders": {
                "extra": '{"url": "duckdb:///./neve.duckdb"}',
                "password": "used when the URL has a user but no password",
            },
        }

    def connection(self) -> AirflowConnection:
        """The connection's fields, resolved through Airflow (DB, env vars, secrets backends)."""
        try:
            conn = self.get_connection(self.neve_conn_id)
        except AirflowNotFoundException:
            var = env_var_name(self.neve_conn_id)
            raise ConnectionNotFoundError(
                f"Airflow connection {self.neve_conn_id!r} is not defined: create it with "
                f"`airflow connections add {self.neve_conn_id} --conn-type neve "
                f"--conn-extra '{{\"url\": \"duckdb:///./neve.duckdb\"}}'` or set {var}"
            ) from None
        return AirflowConnection(
            conn_id=self.neve_conn_id,
            conn_type=(conn.conn_type or "").lower(),
            host=conn.host or None,
            login=conn.login or None,
            password=conn.password or None,
            schema=conn.schema or None,
            port=conn.port or None,
            extra=conn.extra_dejson,
        )

    def get_url(self) -> str:
        """The engine URL, password included: hand it to ``neve.connect``, never to a log."""
        return engine_url(self.connection())

    def get_conn(self) -> Session:
        return self.get_session()

    def get_session(self) -> Session:
        """A new Session; close it (or use it as a context manager) when done."""
        conn = self.connection()
        url = engine_url(conn)
        try:
            session = neve.connect(url)
        except (EngineLockedError, InvalidURLError, ConnectionNotFoundError):
            raise
        except EngineError as exc:
            raise EngineError(
                f"Airflow connection {self.neve_conn_id!r} (type {conn.conn_type}) points at an "
                f"engine neve cannot reach: {exc}. Fix the connection's host, port and "
                f"credentials, or start the server"
            ) from exc
        self.log.info("neve session on %s (connection %s)", session.url, self.neve_conn_id)
        return session

    def get_registry(
        self, schema: str | None = None, stage: str | None = None, aws_conn_id: str | None = None
    ) -> Any:
        """A :class:`neve.Registry` on this connection's engine. ``aws_conn_id`` names an
        Airflow ``aws`` connection holding the S3 stage's credentials (key id and secret
        as login and password; ``region_name``, ``endpoint_url`` in extra)."""
        from neve.engine._airflow_conn import storage_options
        from neve.registry import Registry

        options = None
        if aws_conn_id is not None:
            conn = self.get_connection(aws_conn_id)
            options = storage_options(AirflowConnection(
                conn_id=aws_conn_id, conn_type=(conn.conn_type or "").lower(),
                host=conn.host or None, login=conn.login or None,
                password=conn.password or None, extra=conn.extra_dejson,
            ))
        return Registry(self.get_session(), schema=schema, stage=stage, storage_options=options)

    def test_connection(self) -> tuple[bool, str]:
        """Used by the UI's Test button."""
        try:
            with self.get_session() as session:
                session.list_tables()
        except Exception as exc:  # noqa: BLE001 - the UI shows any failure as the test result
            return False, str(exc)
        return True, "Connection successfully tested"
