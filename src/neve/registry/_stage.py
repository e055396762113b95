"""The artifact stage: ``<stage>/<model_name>/<version_name>/`` on any fsspec filesystem.

A local folder by default (next to the DuckDB file); ``s3://`` (with the ``s3``
extra) or ``gs://`` URLs work when the matching fsspec backend is installed.

Object stores have no rename, so nothing here relies on one: a version's files
go to that version's own folder, which no reader looks at until the registry
appends the version's COMMIT event. Data files are written first and the
manifest last, each as one whole-object PUT (an S3 object is visible complete or
not at all), then everything is read back and hashed before ``write`` returns.

Credentials come from ``storage_options`` or the backend's usual sources (for S3:
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``,
``AWS_ENDPOINT_URL[_S3]``, ``AWS_DEFAULT_REGION``, profiles, instance roles).
They live only inside the fsspec filesystem: never in the URL, ``repr``, the
manifest, the version row or an error message. botocore's DEBUG log prints
signed request headers, session token included, so a filter scrubs the known
secrets from the storage libraries' log records.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import fsspec

from neve.engine import Driver
from neve.errors import ArtifactMissingError, EngineError, NeveError, NeveInputError, StageWriteError
from neve.registry._package import MANIFEST, check_file, sha256

__all__ = ["Stage", "default_stage_url"]

_LOCAL_PROTOCOLS = ("file", "local")
# Option names whose values are scrubbed from any message; matched as substrings.
_SECRET_OPTION_WORDS = ("secret", "token", "password", "key", "credential")
_SECRET_ENV = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")
_MIN_SECRET_LEN = 6  # shorter values would garble messages without hiding anything real


def default_stage_url(driver: Driver) -> str:
    """``<db>.stage`` beside a DuckDB file; ``./.neve/stage`` for in-memory or server engines."""
    location = driver.location
    if location is not None:
        return str(location.with_name(location.stem + ".stage"))
    if driver.name == "duckdb":  # in memory: the models live as long as the database does
        return tempfile.mkdtemp(prefix="neve-stage-")
    return str(Path(".neve/stage").resolve())


def _check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme and "@" in parts.netloc:
        shown = f"{parts.scheme}://***@{parts.netloc.rsplit('@', 1)[1]}{parts.path}"
        raise NeveInputError(
            f"stage URL {shown} carries credentials; pass them as Registry(storage_options=...) "
            f"or set the AWS_* environment variables instead"
        )


def _scrub(text: str, secrets: set[str]) -> str:
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= _MIN_SECRET_LEN:
            text = text.replace(secret, "***")
    return text


def _env_secrets() -> set[str]:
    return {os.environ.get(v, "") for v in _SECRET_ENV}


class _LogRedactor(logging.Filter):
    """Scrubs secrets from records; runs only for records a level lets through."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record is the logger's problem, not ours
            return True
        clean = _scrub(text, self.secrets | _env_secrets())
        if clean != text:
            record.msg, record.args = clean, None
        return True


_REDACTOR = _LogRedactor()
_LOGGER_ROOTS = (
    "botocore",
    "aiobotocore",
    "s3fs",
    "fsspec",
    "urllib3",
    "aiohttp",
    "gcsfs",
    "adlfs",
)


def _guard_logs(secrets: set[str]) -> None:
    # Logger filters do not apply to records propagated from child loggers, so every
    # existing logger of the storage libraries (created at their import) gets one.
    _REDACTOR.secrets |= secrets
    for name in list(logging.Logger.manager.loggerDict):
        if name.split(".")[0] in _LOGGER_ROOTS:
            logger = logging.getLogger(name)
            if _REDACTOR not in logger.filters:
                logger.addFilter(_REDACTOR)


def _secret_values(options: Mapping[str, Any]) -> set[str]:
    found: set[str] = set()
    for name, value in options.items():
        if isinstance(value, Mapping):
            found |= _secret_values(value)
        elif isinstance(value, str) and any(w in str(name).lower() for w in _SECRET_OPTION_WORDS):
            found.add(value)
    return found


class Stage:
    """Verified version folders on a file store.

    The store is the fsspec filesystem for ``url``, or ``fs``: an object with the same
    methods an engine provides for its own storage (a Snowflake internal stage, see
    ``neve.engine._snowflake_stage``), whose root is ``url`` itself.
    """

    def __init__(
        self, url: str, storage_options: Mapping[str, Any] | None = None, *, fs: Any = None
    ) -> None:
        self.url = str(url)
        _check_url(self.url)
        options = dict(storage_options or {})
        self._secrets = _secret_values(options)
        if fs is not None:
            self.fs, self.root = fs, self.url
        else:
            self.fs, self.root = fsspec.core.url_to_fs(self.url, **options)
        protocol = self.fs.protocol
        self.protocol = protocol if isinstance(protocol, str) else protocol[0]
        self.local = self.protocol in _LOCAL_PROTOCOLS
        if not self.local:
            _guard_logs(self._secrets)

    def __repr__(self) -> str:
        return f"Stage({self.url!r})"

    def path(self, model: str, version: str | None = None) -> str:
        parts = [self.root.rstrip("/"), model] + ([version] if version else [])
        return "/".join(parts)

    def uri(self, model: str, version: str) -> str:
        path = self.path(model, version)
        return path if self.local else self.fs.unstrip_protocol(path)

    def create(self) -> None:
        """Create the store if the engine makes it (an internal stage); buckets are not created."""
        if hasattr(self.fs, "create_stage"):
            with self._io("create", self.root):
                self.fs.create_stage()

    # -- errors ----------------------------------------------------------------------------------

    def _redact(self, text: str) -> str:
        return _scrub(text, self._secrets | _env_secrets())

    @contextlib.contextmanager
    def _io(self, action: str, path: str) -> Iterator[None]:
        """Turn a remote store's failure (unreachable endpoint, missing bucket, access denied)
        into an EngineError naming the stage and object, with credentials scrubbed. Local
        disks keep their builtin OSErrors; a missing file is the caller's to interpret."""
        if not self.local:  # loggers the storage libraries created since the last call
            _guard_logs(self._secrets)
        try:
            yield
        except NeveError:
            raise
        except Exception as exc:
            # On a write, a remote "not found" means the bucket is missing.
            if self.local or (isinstance(exc, FileNotFoundError) and action != "write"):
                raise
            message = f"stage {self.url}: cannot {action} {path}: {type(exc).__name__}: {exc}"
            raise EngineError(self._redact(message)) from None

    # -- files -----------------------------------------------------------------------------------

    def write(self, model: str, version: str, files: dict[str, bytes]) -> None:
        """Write the data files, then the manifest, then read each back and check its hash.
        Any failure -- a full disk, an upload broken off -- is a :class:`StageWriteError`."""
        try:
            self._write(model, version, files)
        except StageWriteError:
            raise
        except (OSError, EngineError) as exc:
            cause = str(exc) if isinstance(exc, EngineError) else f"{type(exc).__name__}: {exc}"
            raise StageWriteError(self._redact(
                f"cannot write version {version!r} of model {model!r} to the stage {self.url}: {cause}"
            )) from None

    def _write(self, model: str, version: str, files: dict[str, bytes]) -> None:
        folder = self.path(model, version)
        with self._io("write", folder):
            self.fs.invalidate_cache(folder)
            if self.fs.exists(folder):  # leftovers of a crashed attempt that held this name
                self.fs.rm(folder, recursive=True)
            if self.local:  # object stores have no folders; makedirs there could create a bucket
                self.fs.makedirs(folder, exist_ok=True)
        for name in sorted(files, key=lambda n: n == MANIFEST):  # the manifest last
            path = f"{folder}/{name}"
            with self._io("write", path):
                self.fs.pipe_file(path, files[name])
        for name, data in files.items():
            if sha256(self.read(model, version, name)) != sha256(data):
                raise OSError(f"{folder}/{name}: read-back does not match what was written")

    def read(self, model: str, version: str, name: str) -> bytes:
        # cat_file is one GET: no size taken from a listing cache that a tamperer made stale.
        path = f"{self.path(model, version)}/{name}"
        try:
            with self._io("read", path):
                return self.fs.cat_file(path)
        except FileNotFoundError:
            raise ArtifactMissingError(f"{path} is missing from the stage {self.url}") from None

    def read_verified(self, model: str, version: str, name: str, manifest: dict) -> bytes:
        data = self.read(model, version, name)
        check_file(name, data, manifest, self.path(model, version))
        return data

    def remove(self, model: str, version: str) -> bool:
        folder = self.path(model, version)
        with self._io("remove", folder):
            self.fs.invalidate_cache(folder)
            if self.fs.exists(folder):
                self.fs.rm(folder, recursive=True)
                return True
        return False

    def exists(self, model: str, version: str) -> bool:
        folder = self.path(model, version)
        with self._io("list", folder):
            self.fs.invalidate_cache(folder)
            return bool(self.fs.exists(folder))

    def files(self, model: str, version: str) -> list[str]:
        """Names of the files in a version's folder (none when it is missing)."""
        folder = self.path(model, version)
        with self._io("list", folder):
            self.fs.invalidate_cache(folder)
            try:
                entries = self.fs.ls(folder, detail=True)
            except FileNotFoundError:
                return []
        return sorted(e["name"].rstrip("/").rsplit("/", 1)[-1] for e in entries if e["type"] != "directory")

    def modified(self, model: str, version: str) -> datetime | None:
        """When a version's folder last changed (naive UTC), or None when it is missing."""
        folder = self.path(model, version)
        with self._io("list", folder):
            self.fs.invalidate_cache(folder)
            try:
                entries = [self.fs.info(folder), *self.fs.ls(folder, detail=True)]
            except FileNotFoundError:
                return None
        times = [_when(e) for e in entries]
        known = [t for t in times if t is not None]
        return max(known) if known else datetime.now(UTC).replace(tzinfo=None)

    def folders(self) -> Iterator[tuple[str, str]]:
        """Every ``(model, version)`` folder present on the stage."""
        with self._io("list", self.root):
            # Other processes write here too; a listing cached by this process may be stale.
            self.fs.invalidate_cache(self.root)
            if not self.fs.exists(self.root):
                return
            found = []
            for model_dir in self.fs.ls(self.root, detail=True):
                if model_dir["type"] != "directory":
                    continue
                model = model_dir["name"].rstrip("/").rsplit("/", 1)[-1]
                self.fs.invalidate_cache(model_dir["name"])  # s3fs drops parents, not children
                for version_dir in self.fs.ls(model_dir["name"], detail=True):
                    if version_dir["type"] == "directory":
                        found.append((model, version_dir["name"].rstrip("/").rsplit("/", 1)[-1]))
        yield from found


def _when(entry: Mapping[str, Any]) -> datetime | None:
    """An fsspec listing entry's modification time as naive UTC: local files give ``mtime``
    (epoch seconds), object stores ``LastModified`` or ``mtime`` as a datetime."""
    value = entry.get("mtime", entry.get("LastModified", entry.get("last_modified")))
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, UTC).replace(tzinfo=None)
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    return None
