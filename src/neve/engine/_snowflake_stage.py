"""A Snowflake internal stage (``@NEVE_STAGE``) as the file store behind the registry's stage.

The registry's :class:`neve.registry.Stage` owns the protocol: the manifest is written
last, everything is read back and hashed before the version's COMMIT, and loads verify
every file. This class only moves bytes, with the statements a connector cursor runs:

- ``PUT`` with ``file_stream`` uploads one object from memory (no temp file), with
  ``AUTO_COMPRESS=FALSE SOURCE_COMPRESSION=NONE`` so the stored bytes are the hashed bytes,
  and ``OVERWRITE=TRUE`` so a retried write never keeps an older object because its
  digest matched.
- ``GET`` downloads into a private temp folder. GET matches by prefix, so the exact file
  name is read from that folder; a name GET did not bring is missing.
- ``LIST`` and ``REMOVE`` take folder paths ending in ``/``: without it ``@S/model/v1``
  would also match ``v10``.

A stage URL is ``@NAME`` or ``@SCHEMA.NAME`` (``@DB.SCHEMA.NAME``); object paths are
``@NAME/<model>/<version>/<file>``. Credentials are the connection's; none are held here.
Model and version names are checked by the registry (letters, digits, ``_-.``), so paths
never need quoting beyond the single quotes around them.
"""

from __future__ import annotations

import io
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from neve.errors import NeveInputError

__all__ = ["InternalStage", "check_stage_name"]

_ER_FILE_NOT_EXISTS = 253006  # snowflake.connector.errorcode, without importing the connector here
_NAME = re.compile(r"^@([A-Za-z_][A-Za-z0-9_$]*)(\.[A-Za-z_][A-Za-z0-9_$]*){0,2}$")
_SAFE_PATH = re.compile(r"^[A-Za-z0-9_.\-/]*$")


def check_stage_name(url: str) -> str:
    """``url`` if it names an internal stage (``@NAME``, ``@SCHEMA.NAME``, ``@DB.SCHEMA.NAME``)."""
    if not _NAME.match(url):
        raise NeveInputError(
            f"internal stage {url!r} must be @NAME, @SCHEMA.NAME or @DATABASE.SCHEMA.NAME "
            f"(letters, digits, '_' and '$')"
        )
    return url


class InternalStage:
    """The fsspec methods :class:`neve.registry.Stage` uses, as PUT/GET/LIST/REMOVE statements.

    ``connection`` returns the open connector connection to run them on (the registry's
    session, looked up per call so a re-opened session is picked up).
    """

    protocol = "snowflake"

    def __init__(self, url: str, connection: Callable[[], Any]) -> None:
        self.root = check_stage_name(url)
        self._connection = connection

    def __repr__(self) -> str:
        return f"InternalStage({self.root!r})"

    # -- statements ------------------------------------------------------------------------------

    def _run(self, sql: str, **kwargs: Any) -> list[tuple[Any, ...]]:
        with self._connection().cursor() as cursor:
            cursor.execute(sql, **kwargs)
            return list(cursor.fetchall())

    def _check(self, path: str) -> str:
        if not path.startswith(self.root) or not _SAFE_PATH.match(path[len(self.root):]):
            raise NeveInputError(f"{path!r} is not a path on the internal stage {self.root}")
        return path

    def create_stage(self) -> None:
        """Create the stage unless it exists (``neve registry init`` and every Registry())."""
        self._run(f"CREATE STAGE IF NOT EXISTS {self.root[1:]}")

    # -- the fsspec subset -----------------------------------------------------------------------

    def unstrip_protocol(self, path: str) -> str:
        return path  # "@NEVE_STAGE/model/v1" is how Snowflake users write it already

    def invalidate_cache(self, path: str | None = None) -> None:
        """Nothing is cached: every call is a statement."""

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        """Stages have no folders; a path exists once a file is under it."""

    def pipe_file(self, path: str, data: bytes) -> None:
        folder, name = self._check(path).rsplit("/", 1)
        self._run(
            f"PUT 'file:///neve/{name}' '{folder}/' "
            "AUTO_COMPRESS=FALSE SOURCE_COMPRESSION=NONE OVERWRITE=TRUE",
            file_stream=io.BytesIO(data),
        )

    def cat_file(self, path: str) -> bytes:
        name = self._check(path).rsplit("/", 1)[1]
        target = Path(tempfile.mkdtemp(prefix="neve-get-"))
        try:
            try:
                self._run(f"GET '{path}' '{target.as_uri()}/'")
            except Exception as exc:
                # The connector raises ER_FILE_NOT_EXISTS when GET matched no file.
                if getattr(exc, "errno", None) == _ER_FILE_NOT_EXISTS:
                    raise FileNotFoundError(path) from None
                raise
            local = target / name
            if not local.is_file():
                raise FileNotFoundError(path)
            return local.read_bytes()
        finally:
            shutil.rmtree(target, ignore_errors=True)

    def _files(self, folder: str) -> list[tuple[str, int]]:
        """``(path, size)`` of every file under ``folder``, as ``@ROOT/...`` paths."""
        prefix = self._check(folder).rstrip("/") + "/"
        rows = self._run(f"LIST '{prefix}'")
        # LIST names start with the stage's own name in lower case, without database or schema.
        return [(f"{self.root}/{row[0].split('/', 1)[1]}", int(row[1])) for row in rows]

    def exists(self, path: str) -> bool:
        return bool(self._files(path))

    def ls(self, path: str, detail: bool = True) -> list[Any]:
        base = path.rstrip("/")
        children: dict[str, dict[str, Any]] = {}
        for name, size in self._files(base):
            child, _, rest = name[len(base) + 1:].partition("/")
            full = f"{base}/{child}"
            kind = "directory" if rest else "file"
            children.setdefault(full, {"name": full, "type": kind, "size": 0 if rest else size})
        found = sorted(children.values(), key=lambda e: e["name"])
        return found if detail else [e["name"] for e in found]

    def rm(self, path: str, recursive: bool = False) -> None:
        self._run(f"REMOVE '{self._check(path).rstrip('/')}/'")
