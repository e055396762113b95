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
from neve.registry import _tables
from neve.registry._names import check_key, check_metric, check_name, suggest, tag_value
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
            lambda s, p: s.live_versions(p["model"], commit_info=False).select(
                "VERSION_NAME", "CREATED_AT"
            ),
            model=self.name,
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
        with reg._connection():
            # The common cases look up one name; all names are read only for the error.
            if not reg._query(_live_version, model=self.name, version=name_or_alias).empty:
                return ModelVersion(reg, self.name, name_or_alias)
            aliases = reg._query(lambda s, p: s.current_aliases(p["model"]), model=self.name)
            target = dict(zip(aliases["ALIAS_NAME"], aliases["VERSION_NAME"], strict=True)).get(name_or_alias)
            if target is not None:
                return ModelVersion(reg, self.name, target)
            names = list(self._live()["VERSION_NAME"])
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
        frame = reg._query(lambda s, p: s.current_aliases(p["model"]), model=self.name)
        return dict(zip(frame["ALIAS_NAME"], frame["VERSION_NAME"], strict=True))

    def set_alias(self, alias: str, version: str | ModelVersion) -> None:
        """Point ``alias`` at ``version``. One appended event: the move is atomic and the
        alias never names two versions."""
        check_name(alias, "alias")
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
                raise ModelNotFoundError(
                f"model {self.name!r} has no alias {alias!r}{suggest(alias, list(aliases))}"
            )
        self._registry._append([(self.name, aliases[alias], _tables.UNALIAS, alias, None, None)])

    def alias_history(self, alias: str | None = None) -> pd.DataFrame:
        """Every alias change, newest first: alias, version_name (the version it pointed to
        from then on, or the one it left when unset), action ("set" or "unset"), created_at,
        created_by, run_context. Which version held ``production`` when, and who moved it."""
        events = self._registry.events(self.name, kinds=(_tables.ALIAS, _tables.UNALIAS))
        if alias is not None:
            events = events[events["key"] == alias]
        return pd.DataFrame(
            {
                "alias": events["key"],
                "version_name": events["version_name"],
                "action": events["kind"].map({_tables.ALIAS: "set", _tables.UNALIAS: "unset"}),
                "created_at": events["created_at"],
                "created_by": events["created_by"],
                "run_context": events["run_context"],
            }
        ).reset_index(drop=True)

    # -- model-level tags ----------------------------------------------------------------------

    @property
    def tags(self) -> dict[str, str]:
        return self._registry_tags(None)

    def _registry_tags(self, version: str | None) -> dict[str, str]:
        reg = self._registry

        if version is None:
            frame = reg._query(_model_tags, model=self.name)
        else:
            frame = reg._query(_version_tags, model=self.name, version=version)
        return dict(sorted(zip(frame["KEY"], frame["VALUE_STR"], strict=True)))

    def set_tag(self, key: str, value: Any) -> None:
        check_key(key, "tag name")
        self._registry._append([(self.name, None, _tables.TAG, key, None, tag_value(key, value))])

    def unset_tag(self, key: str) -> None:
        check_key(key, "tag name")
        self._registry._append([(self.name, None, _tables.UNTAG, key, None, None)])

    # -- browsing ------------------------------------------------------------------------------

    def show_versions(self) -> pd.DataFrame:
        """One row per visible version: version_name, created_at, created_by, aliases, tags,
        comment, and one column per current metric."""
        reg, m = self._registry, self.name
        with reg._connection():
            keys = tuple(sorted(reg._query(_metric_keys, model=m)["KEY"]))
            frame = reg._query(_wide_versions(keys), keys, model=m)
            tags = reg._query(_all_version_tags, model=m)
            aliases = reg._query(lambda s, p: s.current_aliases(p["model"], live_only=False), model=m)
        frame = frame.rename(
            columns={"VERSION_NAME": "version_name", "CREATED_AT": "created_at", "CREATED_BY": "created_by",
                     "COMMENT": "comment", **{f"_M{i}": k for i, k in enumerate(keys)}}
        ).sort_values(["created_at", "version_name"], ignore_index=True)
        by_version: dict[str, list[str]] = {}  # aliases of deleted versions find no row here
        for alias, version in zip(aliases["ALIAS_NAME"], aliases["VERSION_NAME"], strict=True):
            by_version.setdefault(version, []).append(alias)
        tag_map: dict[str, dict[str, str]] = {}
        for version, key, value in zip(tags["VERSION_NAME"], tags["KEY"], tags["VALUE_STR"], strict=True):
            tag_map.setdefault(version, {})[key] = value
        for found in by_version.values():
            found.sort()
        # Fresh containers per row (callers may mutate them); lookups only for the few
        # versions that have any, which keeps this cheap at 10k rows.
        names = frame.version_name.tolist()
        frame.insert(3, "aliases", [list(by_version[v]) if v in by_version else [] for v in names])
        frame.insert(4, "tags", [dict(tag_map[v]) if v in tag_map else {} for v in names])
        frame["comment"] = frame["comment"].astype(object).where(frame["comment"].notna(), None)
        front = ["version_name", "created_at", "created_by", "aliases", "tags", "comment"]
        return frame[front + list(keys)]


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
        self._event(_tables.METRIC, key, check_metric(key, value), None)

    @property
    def metrics(self) -> dict[str, float]:
        reg = self._registry

        def expr(s: Any, p: Any) -> Any:
            return s.current_metrics(p["model"], p["version"]).select("KEY", "VALUE_NUM")

        frame = reg._query(expr, model=self.model_name, version=self.version_name)
        return dict(sorted(zip(frame["KEY"], frame["VALUE_NUM"].astype(float), strict=True)))

    def metric_history(self, key: str) -> pd.DataFrame:
        """Every value ever recorded for ``key``, oldest first, with who and when."""
        reg = self._registry

        def expr(s: Any, p: Any) -> Any:
            e = s.table(_tables.EVENTS)
            return e.filter(
                (e.MODEL_NAME == p["model"]) & (e.VERSION_NAME == p["version"])
                & (e.KIND == _tables.METRIC) & (e.KEY == p["key"])
            ).order_by("EVENT_ID").select(value="VALUE_NUM", created_at="CREATED_AT", created_by="CREATED_BY")

        return reg._query(expr, model=self.model_name, version=self.version_name, key=key)

    @property
    def tags(self) -> dict[str, str]:
        return self.model._registry_tags(self.version_name)

    def set_tag(self, key: str, value: Any) -> None:
        check_key(key, "tag name")
        self._event(_tables.TAG, key, None, tag_value(key, value))

    def unset_tag(self, key: str) -> None:
        check_key(key, "tag name")
        self._event(_tables.UNTAG, key, None, None)

    @property
    def comment(self) -> str | None:
        reg = self._registry

        def expr(s: Any, p: Any) -> Any:
            return s.current_comments(p["model"], p["version"]).select("VALUE_STR")

        frame = reg._query(expr, model=self.model_name, version=self.version_name)
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

        def expr(s: Any, p: Any) -> Any:
            return s.live_versions(p["model"], p["version"])

        frame = reg._query(expr, model=self.model_name, version=self.version_name)
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

        Never unpickles: scikit-learn models load through skops and may hold only the
        types neve's code trusts (see ``docs/security.md``); pass ``trusted=[...]`` to
        accept reviewed extra types, which is logged.
        """
        manifest = self.manifest
        data = {name: self._file(name, manifest) for name in manifest["files"]}
        where = self._registry.stage.path(self.model_name, self.version_name)
        return load_model(manifest, data[manifest["model_file"]], where, trusted)

    def _scoring_model(self, trusted: Iterable[str] | None) -> Any:
        """The model to score with: rebuilt from ``model.json`` where the version has one
        (a linear model: no skops import, see ``_scoring_state``), else :meth:`load`."""
        from neve.registry import _scoring_state

        manifest = self.manifest
        raw = None if trusted else self._file(_scoring_state.FILE, manifest)
        # The skops file is verified too, and anything in it beyond a plain linear model
        # goes through load(), whose trust checks refuse it.
        if raw is None or not _scoring_state.plain(self._file(manifest["model_file"], manifest)):
            return self.load(trusted)
        return _scoring_state.rebuild(raw, self._registry.stage.path(self.model_name, self.version_name))

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

    def drift(self, table: Any, *, columns: Any = None, thresholds: Any = None, record: bool = False) -> Any:
        """Compare ``table`` with the training baseline (one query); see :func:`neve.monitoring.drift`.
        ``record=True`` also keeps the report in the registry (:meth:`record_drift`)."""
        from neve.monitoring import drift

        base = self.baseline()
        if base is None:
            raise NeveInputError(
                f"{self.model_name} {self.version_name} has no training baseline: "
                f"log it with training_data=... to enable drift checks"
            )
        report = drift(table, base, columns=columns, thresholds=thresholds)
        if record:
            self.record_drift(report)
        return report

    def record_drift(self, report: Any) -> None:
        """Keep ``report`` (a :class:`~neve.monitoring.DriftReport`, bins included) as one event,
        with who and which Airflow run computed it; :meth:`drift_reports` reads them back."""
        if not hasattr(report, "to_dict") or not hasattr(report, "drifted"):
            raise NeveInputError(f"record_drift takes a DriftReport, got {type(report).__name__}")
        payload = json.dumps(report.to_dict(bins=True), allow_nan=False, default=float)
        self._event(_tables.DRIFT, "report", float(len(report.drifted)), payload)

    def drift_reports(self, limit: int = 5) -> list[dict[str, Any]]:
        """The last ``limit`` recorded drift reports, newest first: each report's JSON (see
        ``DriftReport.to_dict(bins=True)``) plus recorded_at, recorded_by and run_context."""
        events = self._registry.events(self.model_name, self.version_name, kinds=(_tables.DRIFT,), limit=limit)
        return [
            {**json.loads(e.value_str), "recorded_at": e.created_at, "recorded_by": e.created_by,
             "run_context": e.run_context}
            for e in events.itertuples()
        ]

    def run(
        self,
        table: Any,
        function_name: str = "predict",
        output_cols: Any = None,
        *,
        trusted: Iterable[str] | None = None,
        **options: Any,
    ) -> Any:
        """Score ``table`` in the engine: the logged feature pipeline, then the model, as SQL.

        Returns a lazy Ibis table with the input columns plus the prediction column(s);
        its ``path`` says ``"sql"``, or ``"fallback"`` when the model could not be
        compiled and rows were streamed through it in bounded batches (see
        :func:`neve.scoring.score`, which also takes the ``options``). ``trusted`` is
        passed to :meth:`load`.
        """
        from neve.scoring import score

        return score(
            table,
            self._scoring_model(trusted),
            pipeline=self.pipeline(),
            function_name=function_name,
            output_cols=output_cols,
            **options,
        )


def _model_tags(s: Any, p: Any) -> Any:
    t = s.current_tags(p["model"])
    return t.filter(t.VERSION_NAME.isnull()).select("KEY", "VALUE_STR")


def _version_tags(s: Any, p: Any) -> Any:
    return s.current_tags(p["model"], p["version"]).select("KEY", "VALUE_STR")


def _live_version(s: Any, p: Any) -> Any:
    return s.live_versions(p["model"], p["version"], commit_info=False).select("VERSION_NAME")


def _all_version_tags(s: Any, p: Any) -> Any:
    t = s.current_tags(p["model"])
    return t.filter(t.VERSION_NAME.notnull()).select("VERSION_NAME", "KEY", "VALUE_STR")


def _metric_keys(s: Any, p: Any) -> Any:
    e = s.table(_tables.EVENTS)
    return e.filter((e.MODEL_NAME == p["model"]) & (e.KIND == _tables.METRIC)).select("KEY").distinct()


def _wide_versions(keys: tuple[str, ...]) -> Any:
    """Visible versions with their comment and one column per current metric, in ONE
    query: each metric column is an arg_max over that key's events (a single hash
    aggregation, no window sort), so listing 10k versions stays fast."""

    def build(s: Any, p: Any) -> Any:
        live = s.live_versions(p["model"], commit_info=False).select("VERSION_NAME", "CREATED_AT", "CREATED_BY")
        e = s.table(_tables.EVENTS)
        e = e.filter((e.MODEL_NAME == p["model"]) & (e.KIND == _tables.METRIC))
        wide = e.group_by(M_VERSION=e.VERSION_NAME).aggregate(
            **{f"_M{i}": e.VALUE_NUM.argmax(e.EVENT_ID, where=e.KEY == k) for i, k in enumerate(keys)}
        ) if keys else None
        comments = s.current_comments(p["model"]).select(C_VERSION="VERSION_NAME", COMMENT="VALUE_STR")
        out = live.left_join(comments, live.VERSION_NAME == comments.C_VERSION)
        if wide is not None:
            out = out.left_join(wide, out.VERSION_NAME == wide.M_VERSION)
        return out.select("VERSION_NAME", "CREATED_AT", "CREATED_BY", "COMMENT", *(f"_M{i}" for i in range(len(keys))))

    return build
