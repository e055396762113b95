"""PostgreSQL: the multi-writer server engine."""

from __future__ import annotations

from typing import Any, ClassVar

import ibis
import ibis.expr.types as ir

from neve.engine._driver import Driver
from neve.errors import EngineError

__all__ = ["PostgresDriver"]


@ibis.udf.scalar.builtin(name="hashtextextended")
def _hash_text(text: str, seed: int) -> int:
    """PostgreSQL's built-in 64-bit text hash."""


class PostgresDriver(Driver):
    name: ClassVar[str] = "postgres"
    schemes: ClassVar[tuple[str, ...]] = ("postgres", "postgresql")

    def connect(self) -> Any:
        url = self.url
        host, port = url.host or "localhost", url.port or 5432
        kwargs = dict(url.query)
        kwargs.setdefault("connect_timeout", "10")
        try:
            return ibis.postgres.connect(
                host=host,
                port=port,
                user=url.username,
                password=url.password,
                database=url.path.lstrip("/") or None,
                **kwargs,
            )
        except ModuleNotFoundError as exc:
            raise EngineError(
                "PostgreSQL support is not installed: pip install 'neve[postgres]'"
            ) from exc
        except Exception as exc:  # noqa: BLE001 - any driver failure becomes one clear EngineError
            # The driver's message can echo the DSN; say what failed without it.
            reason = str(exc).replace(url.password or "\0", "***").strip().splitlines()[0]
            raise EngineError(
                f"cannot connect to PostgreSQL at {host}:{port} as {url.username!r} "
                f"({url.redacted()}): {reason}"
            ) from None

    def fingerprint(self, table: ir.Table) -> ir.Scalar | None:
        # Ibis has no row hash for PostgreSQL: hash each row's text form with the
        # built-in 64-bit text hash and add them up (order-independent; SUM of bigint
        # is NUMERIC in PostgreSQL, so it cannot overflow).
        cells = [table[c].cast("string").fill_null("\\N") for c in table.columns]
        row = ibis.literal("\x1f").join(cells) if len(cells) > 1 else cells[0]
        return _hash_text(row, 0).cast("decimal(38, 0)").sum().cast("string")
