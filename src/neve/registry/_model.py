"""Model and ModelVersion: handles onto registry rows. Every change is one appended event."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow.parquet as pq

from neve.errors import InvalidNameError, ModelNotFoundError, NeveInputError
from neve.registry import _lineage, _tables
from neve.registry._package import MANIFEST, check_manifest, load_model

if TYPE_CHECKING:
    from neve.registry._registry import Registry

__all__ = ["Model", "ModelVersion"]

DEFAULT_ALIAS = "default"
_AUTO_NAME = re.compile(r"v\d+")


class Model:
    """A registered model: its versions, aliases and model-level tags."""

    def __init__(self, registry: Registry, name: str) -> None:
        self._registry = registry
        self.name = name

    def __repr__(self) -> str:
        return f"Model({self.name!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Model) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)

    # -- versions ------------------------------------------------------------------------------

    def _live(self) -> pd.DataFrame:
        reg = self._registry
        frame = reg._query(
            lambda b: reg._store.live_versions(b, self.name).select(
                "VERSION_NAME", "VERSION_NUMBER", "CREATED_AT", "CREATED_BY", "COMMITTED_AT"
            )
        )
        return frame.sort_values(["CREATED_AT", "VERSION_NAME"], ignore_index=True)

    def versions(self) -> list[ModelVersion]:
        """Visible versions, oldest first."""
        return [ModelVersion(self._registry, self.name, v) for v in self._live()["VERSION_NAME"]]

    def version(self, name_or_alias: str) -> ModelVersion:
        """The version called ``name_or_alias``, or the one that alias points to.
        Version names take precedence over aliases."""
        if not isinstance(name_or_alias, str):
            raise InvalidNameError(f"version name must be a string, got {type(name_or_alias).__name__}")
        reg = self._registry
        with reg._connection() as backend:
            live = reg._store.live_versions(backend, self.name).select("VERSION_NAME").execute()
            aliases = reg._store.current_aliases(backend, self.name).execute()
        names = list(live["VERSION_NAME"])
        if name_or_alias in names:
            return ModelVersion(reg, self.name, name_or_alias)
        target = dict(zip(aliases["ALIAS_NAME"], aliases["VERSION_NAME"], strict=True)).get(name_or_alias)
        if target is not None:
            return ModelVersion(reg, self.name, target)
        from neve.registry._registry import suggest

        known = names + list(aliases["ALIAS_NAME"])
        raise ModelNotFoundError(
            f"model {self.name!r} has no version or alias {name_or_alias!r}{suggest(name_or_alias, known)}"
            + (f" (versions: {', '.join(names[-10:])}" if names else " (it has no versions")
            + (f"; aliases: {', '.join(aliases['ALIAS_NAME'])})" if len(aliases) else ")")
        )

    @property
    def default(self) -> ModelVersion:
        """The version the ``default`` alias points to, else the most recent one."""
        aliases = self.aliases
        if DEFAULT_ALIAS in aliases:
            return ModelVersion(self._registry, self.name, aliases[DEFAULT_ALIAS])
        live = self._live()
        if live.empty:
            raise ModelNotFoundError(f"model {self.name!r} has no versions")
        return ModelVersion(self._registry, self.name, live["VERSION_NAME"].iloc[-1])

    @default.setter
    def default(self, version: str | ModelVersion) -> None:
        self.set_alias(DEFAULT_ALIAS, version)

    def delete_version(self, version_name: str) -> None:
        """Hide the version (a deletion event) and remove its files from the stage."""
        mv = self.version(version_name)
        if mv.version_name != version_name:
            raise NeveInputError(
                f"delete_version takes a version name, not an alias: {version_name!r} points to "
                f"{mv.version_name!r}"
            )
        self._registry._append([(self.name, version_name, _tables.DELETE, None, None, None)])
        self._registry.stage.remove(self.name, version_name)

    # -- aliases -------------------------------------------------------------------------------

    @property
    def aliases(self) -> dict[str, str]:
        reg = self._registry
        frame = reg._query(lambda b: reg._store.current_aliases(b, self.name))
        return dict(zip(frame["ALIAS_NAME"], frame["VERSION_NAME"], strict=True))

    def set_alias(self, alias: str, version: str | ModelVersion) -> None:
        """Point ``alias`` at ``version``. One appended event: the move is atomic and the
        alias never names two versions."""
        _lineage.check_name(alias, "alias")
        if _AUTO_NAME.fullmatch(alias):
            raise InvalidNameError(f"alias {alias!r} looks like a version name (v<N>); pick another")
        name = version.version_name if isinstance(version, ModelVersion) else version
        target = self.version(name)
        if alias in set(self._live()["VERSION_NAME"]):
            raise InvalidNameError(f"alias {alias!r} is already a version name of {self.name!r}")
        self._registry._append([(self.name, target.version_name, _tables.ALIAS, alias, None, target.version_name)])

    def unset_alias(self, alias: str) -> None:
        aliases = self.aliases
        if alias not in aliases:
            from neve.registry._registry import suggest

            raise ModelNotFoundError(
                f"model {self.name!r} has no alias {alias!r}{suggest(alias, list(aliases))}"
            )
        self._registry._append([(self.name, aliases[alias], _tables.UNALIAS, alias, None, None)])

    # -- model-level tags ----------------------------------------------------------------------

    @property
    def tags(self) -> dict[str, str]:
        return self._registry_tags(None)

    def _registry_tags(self, version: str | None) -> dict[str, str]:
        reg = self._registry

        def expr(b: Any) -> Any:
            t = reg._store.current_tags(b, self.name)
            cond = t.VERSION_NAME.isnull() if version is None else t.VERSION_NAME == version
            return t.filter(cond).select("KEY", "VALUE_STR")

        frame = reg._query(expr)
        return dict(sorted(zip(frame["KEY"], frame["VALUE_STR"], strict=True)))

    def set_tag(self, key: str, value: Any) -> None:
        from neve.registry._registry import _tag_value

        _lineage.check_key(key, "tag name")
        self._registry._append([(self.name, None, _tables.TAG, key, None, _tag_value(key, value))])

    def unset_tag(self, key: str) -> None:
        _lineage.check_key(key, "tag name")
        self._registry._append([(self.name, None, _tables.UNTAG, key, None, None)])

    # -- browsing ------------------------------------------------------------------------------

    def show_versions(self) -> pd.DataFrame:
        """One row per visible version: version_name, created_at, created_by, aliases, tags,
        comment, and one column per current metric."""
        reg, store, m = self._registry, self._registry._store, self.name
        with reg._connection() as b:
            live = store.live_versions(b, m).select("VERSION_NAME", "CREATED_AT", "CREATED_BY").execute()
            metrics = store.current_metrics(b, m).select("VERSION_NAME", "KEY", "VALUE_NUM").execute()
            tags = store.current_tags(b, m)
            tags = tags.filter(tags.VERSION_NAME.notnull()).select("VERSION_NAME", "KEY", "VALUE_STR").execute()
            aliases = store.current_aliases(b, m).execute()
            comments = store.current_comments(b, m).select("VERSION_NAME", "VALUE_STR").execute()
        frame = live.rename(
            columns={"VERSION_NAME": "version_name", "CREATED_AT": "created_at", "CREATED_BY": "created_by"}
        ).sort_values(["created_at", "version_name"], ignore_index=True)
        by_version: dict[str, list[str]] = {}
        for alias, version in zip(aliases["ALIAS_NAME"], aliases["VERSION_NAME"], strict=True):
            by_version.setdefault(version, []).append(alias)
        frame["aliases"] = [sorted(by_version.get(v, [])) for v in frame.version_name]
        tag_map: dict[str, dict[str, str]] = {}
        for version, key, value in zip(tags["VERSION_NAME"], tags["KEY"], tags["VALUE_STR"], strict=True):
            tag_map.setdefault(version, {})[key] = value
        frame["tags"] = [tag_map.get(v, {}) for v in frame.version_name]
        frame["comment"] = frame.version_name.map(
            dict(zip(comments["VERSION_NAME"], comments["VALUE_STR"], strict=True))
        )
        if len(metrics):
            wide = metrics.pivot(index="VERSION_NAME", columns="KEY", values="VALUE_NUM")
            frame = frame.join(wide[sorted(wide.columns)], on="version_name")
        return frame


class ModelVersion:
    """One stored version: its files, metrics, tags, comment and lineage."""

    def __init__(self, registry: Registry, model_name: str, version_name: str) -> None:
        self._registry = registry
        self.model_name = model_name
        self.version_name = version_name

    def __repr__(self) -> str:
        return f"ModelVersion({self.model_name!r}, {self.version_name!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ModelVersion) and (other.model_name, other.version_name) == (
            self.model_name, self.version_name
        )

    def __hash__(self) -> int:
        return hash((self.model_name, self.version_name))

    @property
    def model(self) -> Model:
        return Model(self._registry, self.model_name)

    def _event(self, kind: str, key: str | None, num: float | None, text: str | None) -> None:
        self._registry._append([(self.model_name, self.version_name, kind, key, num, text)])

    # -- metrics, tags, comment ------------------------------------------------------------------

    def set_metric(self, key: str, value: float) -> None:
        """Record ``value`` for ``key``; history is kept and the latest value is current."""
        from neve.registry._registry import check_metric

        self._event(_tables.METRIC, key, check_metric(key, value), None)

    @property
    def metrics(self) -> dict[str, float]:
        reg = self._registry

        def expr(b: Any) -> Any:
            t = reg._store.current_metrics(b, self.model_name)
            return t.filter(t.VERSION_NAME == self.version_name).select("KEY", "VALUE_NUM")

        frame = reg._query(expr)
        return dict(sorted(zip(frame["KEY"], frame["VALUE_NUM"].astype(float), strict=True)))

    def metric_history(self, key: str) -> pd.DataFrame:
        """Every value ever recorded for ``key``, oldest first, with who and when."""
        reg = self._registry

        def expr(b: Any) -> Any:
            e = reg._store.table(b, _tables.EVENTS)
            return e.filter(
                (e.MODEL_NAME == self.model_name) & (e.VERSION_NAME == self.version_name)
                & (e.KIND == _tables.METRIC) & (e.KEY == key)
            ).order_by("EVENT_ID").select(value="VALUE_NUM", created_at="CREATED_AT", created_by="CREATED_BY")

        return reg._query(expr)

    @property
    def tags(self) -> dict[str, str]:
        return self.model._registry_tags(self.version_name)

    def set_tag(self, key: str, value: Any) -> None:
        from neve.registry._registry import _tag_value

        _lineage.check_key(key, "tag name")
        self._event(_tables.TAG, key, None, _tag_value(key, value))

    def unset_tag(self, key: str) -> None:
        _lineage.check_key(key, "tag name")
        self._event(_tables.UNTAG, key, None, None)

    @property
    def comment(self) -> str | None:
        reg = self._registry

        def expr(b: Any) -> Any:
            t = reg._store.current_comments(b, self.model_name)
            return t.filter(t.VERSION_NAME == self.version_name).select("VALUE_STR")

        frame = reg._query(expr)
        return None if frame.empty else frame["VALUE_STR"].iloc[0]

    @comment.setter
    def comment(self, text: str) -> None:
        self.set_comment(text)

    def set_comment(self, text: str) -> None:
        if not isinstance(text, str):
            raise NeveInputError(f"comment must be a string, got {type(text).__name__}")
        self._event(_tables.COMMENT, None, None, text)

    def delete(self) -> None:
        self.model.delete_version(self.version_name)

    # -- stored files ----------------------------------------------------------------------------

    def _row(self) -> dict[str, Any]:
        reg = self._registry

        def expr(b: Any) -> Any:
            t = reg._store.live_versions(b, self.model_name)
            return t.filter(t.VERSION_NAME == self.version_name)

        frame = reg._query(expr)
        if frame.empty:
            raise ModelNotFoundError(
                f"version {self.version_name!r} of model {self.model_name!r} does not exist or was deleted"
            )
        return frame.iloc[0].to_dict()

    @property
    def manifest(self) -> dict[str, Any]:
        """The manifest, checked against the hash recorded when the version was committed."""
        row = self._row()
        stage = self._registry.stage
        raw = stage.read(self.model_name, self.version_name, MANIFEST)
        return check_manifest(raw, row["MANIFEST_SHA256"], stage.path(self.model_name, self.version_name))

    def _file(self, name: str, manifest: dict[str, Any] | None = None) -> bytes | None:
        manifest = manifest or self.manifest
        if name not in manifest["files"]:
            return None
        return self._registry.stage.read_verified(self.model_name, self.version_name, name, manifest)

    def load(self, trusted: Iterable[str] | None = None) -> Any:
        """The model, after verifying every file of the version against its manifest.

        Never unpickles: scikit-learn models load through skops, which refuses types
        outside its trusted list; pass ``trusted=[...]`` to accept reviewed extra types.
        """
        manifest = self.manifest
        data = {name: self._file(name, manifest) for name in manifest["files"]}
        where = self._registry.stage.path(self.model_name, self.version_name)
        return load_model(manifest, data[manifest["model_file"]], where, trusted)

    def pipeline(self) -> Any:
        """The feature pipeline logged with the version, or ``None``."""
        from neve.pipeline import Pipeline

        raw = self._file("pipeline.json")
        return None if raw is None else Pipeline.from_dict(json.loads(raw))

    def baseline(self) -> dict[str, Any] | None:
        """Training feature statistics (see :func:`neve.monitoring.baseline`), or ``None``."""
        raw = self._file("baseline.json")
        return None if raw is None else json.loads(raw)

    def sample_input(self) -> pd.DataFrame | None:
        raw = self._file("sample_input.parquet")
        return None if raw is None else pq.read_table(io.BytesIO(raw)).to_pandas()

    def lineage(self) -> dict[str, Any]:
        """Training data (tables, SQL, row count, schema, fingerprint), the feature
        pipeline's JSON, Airflow ids, and who logged the version from where."""
        row = self._row()
        out = json.loads(row["LINEAGE"] or "{}")
        out.update(
            logged_by=row["CREATED_BY"],
            logged_at=row["CREATED_AT"],
            run_context=json.loads(row["RUN_CONTEXT"] or "{}"),
            params=json.loads(row["PARAMS"] or "{}"),
            artifact_uri=row["ARTIFACT_URI"],
            flavor=row["FLAVOR"],
        )
        return out

    # Scoring (``run``) and drift reports (``drift``) arrive with the scoring and
    # monitoring issues; they will delegate to neve.scoring / neve.monitoring with
    # ``self.load()``, ``self.pipeline()`` and ``self.baseline()``.
