"""The artifact stage: ``<stage>/<model_name>/<version_name>/`` on any fsspec filesystem.

A local folder by default (next to the DuckDB file); ``s3://`` or ``gs://``
URLs work when the matching fsspec backend is installed.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import fsspec

from neve.engine import Driver
from neve.errors import ArtifactMissingError
from neve.registry._package import check_file, sha256

__all__ = ["Stage", "default_stage_url"]


def default_stage_url(driver: Driver) -> str:
    """``<db>.stage`` beside a DuckDB file; ``./.neve/stage`` for in-memory or server engines."""
    location = driver.location
    if location is not None:
        return str(location.with_name(location.stem + ".stage"))
    if driver.name == "duckdb":  # in memory: the models live as long as the database does
        return tempfile.mkdtemp(prefix="neve-stage-")
    return str(Path(".neve/stage").resolve())


class Stage:
    def __init__(self, url: str) -> None:
        self.url = str(url)
        self.fs, self.root = fsspec.core.url_to_fs(self.url)

    def __repr__(self) -> str:
        return f"Stage({self.url!r})"

    def path(self, model: str, version: str | None = None) -> str:
        parts = [self.root.rstrip("/"), model] + ([version] if version else [])
        return "/".join(parts)

    def uri(self, model: str, version: str) -> str:
        protocol = self.fs.protocol if isinstance(self.fs.protocol, str) else self.fs.protocol[0]
        path = self.path(model, version)
        return path if protocol in ("file", "local") else f"{protocol}://{path}"

    def write(self, model: str, version: str, files: dict[str, bytes]) -> None:
        """Write every file, then read each back and check its hash before returning."""
        folder = self.path(model, version)
        if self.fs.exists(folder):  # leftovers of a crashed attempt that held this name
            self.fs.rm(folder, recursive=True)
        self.fs.makedirs(folder, exist_ok=True)
        for name, data in files.items():
            with self.fs.open(f"{folder}/{name}", "wb") as fh:
                fh.write(data)
        for name, data in files.items():
            if sha256(self.read(model, version, name)) != sha256(data):
                raise OSError(f"{folder}/{name}: read-back does not match what was written")

    def read(self, model: str, version: str, name: str) -> bytes:
        path = f"{self.path(model, version)}/{name}"
        try:
            with self.fs.open(path, "rb") as fh:
                return fh.read()
        except FileNotFoundError:
            raise ArtifactMissingError(f"{path} is missing from the stage {self.url}") from None

    def read_verified(self, model: str, version: str, name: str, manifest: dict) -> bytes:
        data = self.read(model, version, name)
        check_file(name, data, manifest, self.path(model, version))
        return data

    def remove(self, model: str, version: str) -> bool:
        folder = self.path(model, version)
        if self.fs.exists(folder):
            self.fs.rm(folder, recursive=True)
            return True
        return False

    def folders(self) -> Iterator[tuple[str, str]]:
        """Every ``(model, version)`` folder present on the stage."""
        if not self.fs.exists(self.root):
            return
        for model_dir in self.fs.ls(self.root, detail=True):
            if model_dir["type"] != "directory":
                continue
            model = model_dir["name"].rstrip("/").rsplit("/", 1)[-1]
            for version_dir in self.fs.ls(model_dir["name"], detail=True):
                if version_dir["type"] == "directory":
                    yield model, version_dir["name"].rstrip("/").rsplit("/", 1)[-1]
