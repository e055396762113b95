"""References that travel between tasks: a table, a model version. Never the data.

Both are ``dict`` subclasses holding only JSON values, so Airflow's serde stores
them as plain JSON in XCom (it serialises any dict as a dict), and a task in an
environment without Airflow or neve's Airflow extra reads them back with
``TableRef.from_dict``. ``@task.neve`` turns such dicts back into refs on the
way into a task. This module does not import Airflow.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from neve.errors import NeveInputError

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from neve.engine import Session

__all__ = [
    "ModelVersionRef", "TableRef", "from_json_ref", "logged_by_run", "model_version_ref", "registry_name",
]

TABLE_KIND = "neve.table/1"
MODEL_VERSION_KIND = "neve.model_version/1"


class _Ref(dict):
    KIND: str = ""
    FIELDS: tuple[str, ...] = ()

    def __getattr__(self, name: str) -> Any:
        if name in self.FIELDS:
            return self.get(name)
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only")

    @classmethod
    def is_ref(cls, value: Any) -> bool:
        return isinstance(value, Mapping) and value.get("kind") == cls.KIND

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Any:
        """Rebuild a ref from the plain dict XCom gives back."""
        if isinstance(data, cls):
            return data
        if not cls.is_ref(data):
            found = data.get("kind") if isinstance(data, Mapping) else type(data).__name__
            raise NeveInputError(
                f"expected a {cls.__name__} (a dict with kind {cls.KIND!r}), got {found!r}"
            )
        obj = cls.__new__(cls)
        dict.update(obj, {k: data[k] for k in ("kind", *cls.FIELDS) if k in data})
        return obj


class TableRef(_Ref):
    """A table by name, with the row count seen when it was written.

    >>> ref = TableRef("TAXI_DATA", rows=19_880)
    >>> ref.table(session)      # the lazy ibis Table
    """

    KIND = TABLE_KIND
    FIELDS = ("name", "database", "schema", "rows")

    def __init__(
        self,
        name: str,
        *,
        database: str | None = None,
        schema: str | None = None,
        rows: int | None = None,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise NeveInputError(f"TableRef needs a table name, got {name!r}")
        super().__init__(kind=self.KIND, name=name)
        for key, value in (("database", database), ("schema", schema)):
            if value is not None:
                dict.__setitem__(self, key, value)
        if rows is not None:
            dict.__setitem__(self, "rows", int(rows))

    @classmethod
    def of(cls, session: Session, name: str) -> TableRef:
        """A ref to ``name`` in ``session``, with its current row count (one COUNT query)."""
        rows = int(session.table(name).count().execute())
        return cls(name, rows=rows)

    def table(self, session: Session) -> ir.Table:
        """The referenced table as a lazy ibis expression."""
        if self.get("database") is None and self.get("schema") is None:
            return session.table(self["name"])
        location = tuple(p for p in (self.get("database"), self.get("schema")) if p is not None)
        return session.engine.table(
            self["name"], database=location[0] if len(location) == 1 else location
        )

    def __repr__(self) -> str:
        rows = f", rows={self['rows']}" if "rows" in self else ""
        return f"TableRef({self['name']!r}{rows})"


class ModelVersionRef(_Ref):
    """A registered model version by name: where to find it, and what it scored."""

    KIND = MODEL_VERSION_KIND
    FIELDS = ("registry", "model", "version", "metrics", "tags", "aliases")

    def __init__(
        self,
        registry: str,
        model: str,
        version: str,
        *,
        metrics: Mapping[str, float] | None = None,
        tags: Mapping[str, str] | None = None,
        aliases: list[str] | None = None,
    ) -> None:
        super().__init__(kind=self.KIND, registry=registry, model=model, version=version)
        dict.__setitem__(self, "metrics", {str(k): _jsonable(v) for k, v in (metrics or {}).items()})
        dict.__setitem__(self, "tags", {str(k): str(v) for k, v in (tags or {}).items()})
        dict.__setitem__(self, "aliases", [str(a) for a in (aliases or [])])

    @property
    def asset_uri(self) -> str:
        """The Airflow Asset this version's model publishes to: ``neve://<registry>/<model>``."""
        return f"neve://{self['registry']}/{self['model']}"

    def __repr__(self) -> str:
        return f"ModelVersionRef({self['registry']!r}, {self['model']!r}, {self['version']!r})"


def _jsonable(value: Any) -> Any:
    if isinstance(value, (int, float, str, bool)) or value is None:
        return value
    try:
        return float(value)  # numpy scalars
    except (TypeError, ValueError):
        return str(value)


def from_json_ref(value: Any) -> Any:
    """Turn plain dicts that XCom gave back into refs, recursively; leave everything else."""
    if isinstance(value, Mapping) and not isinstance(value, _Ref):
        for cls in (TableRef, ModelVersionRef):
            if cls.is_ref(value):
                return cls.from_dict(value)
        return {k: from_json_ref(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_json_ref(v) for v in value]
    if isinstance(value, tuple):
        return tuple(from_json_ref(v) for v in value)
    return value


def registry_name(session: Session | str) -> str:
    """A stable name for the registry a session (or an engine URL) writes to: the DuckDB
    file's stem, else the database (and schema) of the URL. From a URL nothing is opened,
    so a DAG file can name a model's Asset when Airflow parses it."""
    from neve.engine import driver_for

    driver = driver_for(session) if isinstance(session, str) else session.driver
    location = driver.location
    if location is not None:
        return Path(location).stem.lower()
    url = driver.url
    parts = [p for p in url.path.strip("/").split("/") if p]
    if not parts and url.query.get("database"):
        parts = [url.query["database"]]
    return ".".join(parts).lower() or (url.host or driver.name).lower()


def model_version_ref(
    mv: Any, session: Session | None = None, *, registry: str | None = None
) -> ModelVersionRef:
    """A JSON ref to a registry ``ModelVersion`` (or an existing ref, returned as is)."""
    if ModelVersionRef.is_ref(mv):
        return ModelVersionRef.from_dict(mv)
    model = getattr(mv, "model_name", None)
    version = getattr(mv, "version_name", None)
    if model is None or version is None:
        raise NeveInputError(
            f"expected a registry ModelVersion (with model_name and version_name), "
            f"got {type(mv).__name__}"
        )
    if registry is None:
        if session is None:
            raise NeveInputError("model_version_ref needs the session or the registry name")
        registry = registry_name(session)
    aliases = getattr(mv, "aliases", None)
    return ModelVersionRef(
        registry,
        model,
        version,
        metrics=dict(getattr(mv, "metrics", None) or {}),
        tags=dict(getattr(mv, "tags", None) or {}),
        aliases=list(aliases() if callable(aliases) else aliases or []),
    )


def logged_by_run(registry: Any, model_name: str, run_id: str) -> Any:
    """The version of ``model_name`` whose ``airflow_run_id`` tag is ``run_id``, or None.

    A training task calls this first, so a retry after ``log_model`` succeeded returns the
    version its DAG run already logged instead of logging a second one.
    """
    from neve.errors import ModelNotFoundError

    try:
        model = registry.get_model(model_name)
    except ModelNotFoundError:
        return None
    versions = model.show_versions()
    for name, tags in zip(versions["version_name"], versions["tags"], strict=True):
        if tags.get("airflow_run_id") == run_id:
            return model.version(name)
    return None
