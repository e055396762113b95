"""The narrow interface between a Session and one kind of engine.

A driver opens the Ibis backend for a URL and implements the few operations
whose best form differs per engine (bulk file loading, raising an error from
inside a query). Everything else goes through Ibis unchanged, so engine quirks
live here, in one small module per engine, and nowhere else.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import ibis.expr.types as ir
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from neve.engine._url import EngineURL
from neve.errors import DataFileError

__all__ = ["Driver", "check_files"]


def check_files(paths: Sequence[str | Path]) -> list[Path]:
    """Resolve ``paths``, failing on the first one that does not exist."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    resolved = [Path(p).expanduser() for p in paths]
    if not resolved:
        raise DataFileError("load_files needs at least one file")
    for path in resolved:
        if not path.is_file():
            raise DataFileError(f"data file not found: {path}")
        if path.suffix.lower() not in {".csv", ".parquet", ".pq", ".gz", ".zst"}:
            raise DataFileError(f"{path}: only CSV and Parquet files can be loaded")
    return resolved


def is_parquet(path: Path) -> bool:
    return path.suffix.lower() in {".parquet", ".pq"}


class Driver:
    """Defaults that work on any Ibis backend; subclasses override what their engine does better."""

    name: ClassVar[str] = "generic"
    schemes: ClassVar[tuple[str, ...]] = ()

    def __init__(self, url: EngineURL) -> None:
        self.url = url

    def connect(self) -> Any:
        raise NotImplementedError

    @property
    def location(self) -> Path | None:
        """A local file backing the engine, if there is one (used for default stage paths)."""
        return None

    def load_files(
        self, backend: Any, paths: list[Path], table: str, *, overwrite: bool
    ) -> ir.Table:
        """Portable fallback: parse each file with pyarrow and insert it."""
        for i, path in enumerate(paths):
            try:
                data = pq.read_table(path) if is_parquet(path) else pacsv.read_csv(path)
            except Exception as exc:
                raise DataFileError(f"cannot parse {path}: {exc}") from exc
            if i == 0 and (overwrite or table not in backend.list_tables()):
                backend.create_table(table, data, overwrite=True)
            else:
                backend.insert(table, data)
        return backend.table(table)

    def raise_error_sql(self, message: ir.StringValue) -> ir.Value:
        """An expression that aborts the query with ``message`` when evaluated.

        Casting a non-numeric string to an integer fails on every SQL engine
        and the engine's error quotes the string, so the user sees our message.
        """
        return message.cast("int64")

    def close(self, backend: Any) -> None:
        disconnect = getattr(backend, "disconnect", None)
        if disconnect is not None:
            disconnect()
