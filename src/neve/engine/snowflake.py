"""Snowflake: the reference warehouse, through Ibis's Snowflake backend.

``snowflake://user:password@account/DATABASE/SCHEMA?warehouse=WH&role=ROLE``; any other
query parameter goes to the connector (``authenticator``, ``private_key_file`` ...).
Without an account to test against, the SQL neve generates for Snowflake is verified on
the fakesnow emulator (see tests/engine/test_snowflake_sql.py).
"""

from __future__ import annotations

from typing import Any, ClassVar

from neve.engine._driver import Driver
from neve.errors import EngineError, InvalidURLError

__all__ = ["SnowflakeDriver"]


class SnowflakeDriver(Driver):
    name: ClassVar[str] = "snowflake"
    schemes: ClassVar[tuple[str, ...]] = ("snowflake",)

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
        if url.password is not None:
            kwargs["password"] = url.password
        if parts:
            kwargs["database"] = "/".join(parts)
        return kwargs

    def connect(self) -> Any:
        kwargs = self.connect_kwargs()
        try:
            import ibis

            return ibis.snowflake.connect(**kwargs)
        except ModuleNotFoundError as exc:
            raise EngineError(
                "Snowflake support is not installed: pip install 'neve[snowflake]'"
            ) from exc
        except Exception as exc:  # noqa: BLE001 - any connector failure becomes one clear error
            reason = str(exc).replace(self.url.password or "\0", "***").strip().splitlines()[0]
            raise EngineError(
                f"cannot connect to Snowflake account {self.url.host!r} as "
                f"{self.url.username!r}: {reason}"
            ) from None
