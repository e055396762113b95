"""Registry: model versions in warehouse tables, their files on a verified stage.

Connection handling. On engines that serve many clients (Postgres, Snowflake)
the registry uses the session's connection. An embedded DuckDB file can be
open in only one process at a time, and Airflow runs tasks as parallel
processes, so on DuckDB files every registry operation opens its own
connection and closes it when done: the file lock is held for milliseconds per
operation instead of for the life of the process, and a concurrent process
waits (with backoff, see ``neve.engine.duckdb``) only that long. Inside one
process DuckDB shares the open database between connections, so this costs
little while the caller's session is open.

Visibility. ``log_model`` (1) reserves the version name by inserting its row
-- the primary key makes the name unique, a losing writer retries with the
next number; (2) writes and verifies the files; (3) appends the COMMIT event
together with the initial metrics and tags in ONE insert statement. Versions
without a COMMIT are invisible, so a crash anywhere leaves no half-made
version; ``gc`` later removes what such crashes leave behind.
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import ibis
import pandas as pd

from neve import _json
from neve._table import as_table
from neve.engine import Session, _airflow_conn, driver_for
from neve.errors import EngineError, InvalidNameError, ModelNotFoundError, NeveInputError, TableNotFoundError
from neve.registry import _lineage, _log_defaults, _reclaim, _tables
from neve.registry._model import Model, ModelVersion
from neve.registry._names import case_collision, check_key, check_metric, check_name, suggest, tag_value
from neve.registry._package import MANIFEST, build, sha256
from neve.registry._stage import Stage, default_stage_url
from neve.registry._tables import EVENTS, MODELS, VERSIONS, Store, event_id

if TYPE_CHECKING:
    from neve.engine._driver import Driver

__all__ = ["Registry"]

_EVENT_COLUMNS = [
    "EVENT_ID", "MODEL_NAME", "VERSION_NAME", "KIND", "KEY", "VALUE_NUM", "VALUE_STR",
    "CREATED_AT", "CREATED_BY", "RUN_CONTEXT",
]
_VERSION_COLUMNS = [
    "MODEL_NAME", "VERSION_NAME", "VERSION_NUMBER", "ARTIFACT_URI", "FLAVOR", "PARAMS", "LINEAGE",
    "CREATED_AT", "CREATED_BY", "RUN_CONTEXT",
]
_MAX_NUMBERING_RETRIES = 100


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Registry:
    """Models and their versions, stored in ``NEVE_*`` tables of ``session``'s engine.

    ``session`` is a :class:`neve.Session` or a connection URL. Tables go in ``schema``
    (default: the session's current schema; only table and view creation rights are
    needed there). ``stage`` is an fsspec URL for the model files (default: a folder
    next to the DuckDB file; ``s3://bucket/prefix`` with the ``s3`` extra).
    ``storage_options`` go to the fsspec filesystem (for S3: ``key``, ``secret``,
    ``endpoint_url``, ...); ``aws_conn_id`` takes them from an Airflow ``aws`` connection
    (``AIRFLOW_CONN_<ID>``, as ``neve.connect(airflow_conn_id=...)`` reads engines; inside
    Airflow, ``NeveHook.get_registry`` resolves any connection); without either the usual
    ``AWS_*`` variables apply. They are never stored or shown. On Snowflake the default
    stage is the internal stage ``@NEVE_STAGE`` in the registry's schema.
    """

    def __init__(
        self,
        session: Session | str | None = None,
        schema: str | None = None,
        stage: str | None = None,
        storage_options: Mapping[str, Any] | None = None,
        *,
        aws_conn_id: str | None = None,
        create: bool = True,
    ) -> None:
        if aws_conn_id is not None:
            # Without importing Airflow, as neve.connect(airflow_conn_id=...) does; explicit
            # storage_options win over the connection's.
            conn = _airflow_conn.connection_from_env(aws_conn_id)
            storage_options = {**_airflow_conn.storage_options(conn), **(storage_options or {})}
        if schema is not None:
            check_name(schema, "schema name")
        if isinstance(session, Session):
            self._session: Session | None = session
            self._driver = session.driver
        else:
            self._driver = driver_for(session)
            if not create:
                _require_database(self._driver)
            self._session = None if self._driver.exclusive else Session(self._driver, self._driver.connect())
        self.schema = schema
        self._held: Any = None
        self._known_models: set[str] = set()
        self._store = Store(self._driver, schema)
        url = stage if stage is not None else self._driver.default_stage(schema)
        url = url if url is not None else default_stage_url(self._driver)
        fs = self._driver.stage_filesystem(url, lambda: self._connection_object())
        self.stage = Stage(url, storage_options, fs=fs)
        with self._connection() as backend:
            if not create:
                if not self._store.is_current(backend):
                    raise TableNotFoundError(
                        f"no model registry in {self._where()}: create one with "
                        f"`neve registry init{self._init_args()}`, or point NEVE_URL / --url at the right database"
                    )
                return
            self._store.create(backend)
            try:
                self.stage.create()
            except EngineError as exc:
                if not _tables._is_permission_error(exc):
                    raise
                grants = "\n".join(self._store.grants())
                raise EngineError(f"{exc}\nAsk an administrator to run:\n{grants}") from None

    def _where(self) -> str:
        schema = f" (schema {self.schema})" if self.schema else ""
        return f"{self._driver.url.redacted()}{schema}"

    def _init_args(self) -> str:
        schema = f" --schema {self.schema}" if self.schema else ""
        return f" --url '{self._driver.url.redacted()}'{schema}"

    def __repr__(self) -> str:
        return f"Registry({self._driver.url.redacted()!r}, schema={self.schema!r}, stage={self.stage.url!r})"

    @property
    def dialect(self) -> str:
        """The SQL dialect of the registry's engine (an Ibis backend name: duckdb, postgres, ...)."""
        return self._driver.name

    def acting_as(self, user: str, **context: Any) -> contextlib.AbstractContextManager[None]:
        """Within ``with registry.acting_as("alice", via="airflow-ui"):`` every event written is
        attributed to ``alice`` and its run context carries ``via``: for a server that writes
        for its signed-in users (the event log's created_by is otherwise the OS login)."""
        return _lineage.acting_as(user, **context)

    def _connection_object(self) -> Any:
        """The DB-API connection under the session, for a stage the engine serves itself."""
        if self._session is None:
            raise NeveInputError(f"{self._driver.name} has no stage of its own; pass stage=...")
        return self._session.engine.con

    @contextlib.contextmanager
    def _connection(self) -> Iterator[Any]:
        """The backend for one registry operation; nested uses share the outer one."""
        if self._held is not None:
            yield self._held
        elif self._driver.exclusive or self._session is None:
            backend = self._held = self._driver.connect_briefly()
            try:
                yield backend
            finally:
                self._held = None
                self._driver.close(backend)
        else:
            yield self._session.engine

    # -- appending -------------------------------------------------------------------------------

    def _append(self, events: list[tuple[Any, ...]]) -> None:
        """Append ``(model, version, kind, key, value_num, value_str)`` events in one statement."""
        now, who, context = _now(), _lineage.user(), _lineage.run_context()
        with self._connection() as backend:
            for attempt in range(_MAX_NUMBERING_RETRIES):
                # Fresh ids each try: a rolled-back insert left nothing behind, and an id
                # collision (the one conflict an append can meet) must not repeat.
                rows = [(event_id(), *event, now, who, context) for event in events]
                try:
                    self._store.insert(backend, EVENTS, _EVENT_COLUMNS, rows)
                    return
                except Exception as exc:
                    if not self._driver.is_conflict(exc) or attempt == _MAX_NUMBERING_RETRIES - 1:
                        raise
                    _backoff(attempt)

    # -- reading ---------------------------------------------------------------------------------

    def _query(self, build: Any, _variant: Any = None, **params: str) -> pd.DataFrame:
        """Run ``build(store, p) -> ibis expr`` with ``params`` bound (see :meth:`Store.run`)."""
        with self._connection() as backend:
            return self._store.run(backend, build, params, _variant)

    def _model_names(self) -> list[str]:
        return sorted(self._query(lambda s, p: s.table(MODELS).select("MODEL_NAME"))["MODEL_NAME"])

    def get_model(self, model_name: str) -> Model:
        """The model called ``model_name``; unknown names raise with close suggestions."""
        check_name(model_name, "model name")
        names = self._model_names()
        if model_name not in names:
            raise ModelNotFoundError(
                f"no model {model_name!r} in the registry{suggest(model_name, names)}"
                + (f" (models: {', '.join(names)})" if names and len(names) <= 20 else "")
            )
        return Model(self, model_name)

    def models(self) -> list[Model]:
        return [Model(self, name) for name in self._model_names()]

    def show_models(self, *, latest: bool = False) -> pd.DataFrame:
        """One row per model: created_at, version count, latest version, aliases, tags.
        ``latest=True`` adds ``updated_at`` (the model's newest event), the latest version's
        ``latest_tags`` and one column per its current metric (what a registry browser shows,
        filters and sorts on)."""

        def counts(s: Store, p: Any) -> Any:
            live = s.live_versions()
            return live.group_by("MODEL_NAME").aggregate(versions=live.count())

        def newest_versions(s: Store, p: Any) -> Any:
            # A join with the per-model maximum, not a filter on a window: Ibis 12 compiles
            # the latter for PostgreSQL into a subquery whose WHERE names an inner alias.
            live = s.live_versions()
            newest = live.group_by(N_MODEL="MODEL_NAME").aggregate(NEWEST=live.CREATED_AT.max())
            joined = live.join(
                newest, [live.MODEL_NAME == newest.N_MODEL, live.CREATED_AT == newest.NEWEST]
            )
            return joined.select("MODEL_NAME", "VERSION_NAME")

        def model_tags(s: Store, p: Any) -> Any:
            tags = s.current_tags()
            return tags.filter(tags.VERSION_NAME.isnull())

        def latest_detail(kind: str) -> Any:
            def build(s: Store, p: Any) -> Any:
                newest = newest_versions(s, p).select(N_MODEL="MODEL_NAME", N_VERSION="VERSION_NAME")
                t = s.current_metrics() if kind == "metrics" else s.current_tags()
                value = "VALUE_NUM" if kind == "metrics" else "VALUE_STR"
                t = t.join(newest, [t.MODEL_NAME == newest.N_MODEL, t.VERSION_NAME == newest.N_VERSION])
                return t.select("MODEL_NAME", "KEY", value)

            return build

        with self._connection():
            models = self._query(lambda s, p: s.table(MODELS))
            counts, newest = self._query(counts), self._query(newest_versions)
            aliases, tags = self._query(lambda s, p: s.current_aliases()), self._query(model_tags)
            if latest:
                metrics = self._query(latest_detail("metrics"), "metrics")
                version_tags = self._query(latest_detail("tags"), "tags")
                updated = self._query(
                    lambda s, p: s.table(EVENTS).group_by("MODEL_NAME").aggregate(AT=ibis._.CREATED_AT.max())
                )
        frame = pd.DataFrame(
            {"model_name": models["MODEL_NAME"], "created_at": models["CREATED_AT"]}
        ).sort_values("model_name", ignore_index=True)
        frame["versions"] = frame.model_name.map(counts.set_index("MODEL_NAME")["versions"]).fillna(0).astype(int)
        frame["latest_version"] = frame.model_name.map(
            newest.drop_duplicates("MODEL_NAME").set_index("MODEL_NAME")["VERSION_NAME"]
        )
        frame["aliases"] = frame.model_name.map(_group_dict(aliases, "ALIAS_NAME", "VERSION_NAME"))
        frame["tags"] = frame.model_name.map(_group_dict(tags, "KEY", "VALUE_STR"))
        for col in ("aliases", "tags"):
            frame[col] = frame[col].apply(lambda v: v if isinstance(v, dict) else {})
        if latest:
            frame["updated_at"] = frame.model_name.map(updated.set_index("MODEL_NAME")["AT"])
            frame["latest_tags"] = [
                dict(found) for found in frame.model_name.map(_group_dict(version_tags, "KEY", "VALUE_STR"))
                .apply(lambda v: v if isinstance(v, dict) else {})
            ]
            by_model = _group_dict(metrics, "KEY", "VALUE_NUM")
            for key in sorted(set(metrics["KEY"])):
                frame[key] = [float(by_model.get(m, {}).get(key, math.nan)) for m in frame.model_name]
        return frame

    def events(
        self,
        model_name: str | None = None,
        version_name: str | None = None,
        *,
        kinds: tuple[str, ...] | list[str] | None = None,
        dag_id: str | None = None,
        run_id: str | None = None,
        limit: int | None = None,
    ) -> pd.DataFrame:
        """The append-only event log, newest first: what changed, when, by whom and from where.

        Columns: event_id, model_name, version_name, kind, key, value_num, value_str,
        created_at, created_by, run_context (a dict: host, pid and, inside Airflow, the
        ``airflow`` dag_id, dag_run_id and task_id). ``kinds`` keeps those event kinds
        (commit, metric, tag, untag, alias, unalias, comment, delete, drift); ``dag_id`` and
        ``run_id`` keep the events an Airflow DAG run wrote (its commits are the versions it
        logged); ``limit`` keeps the newest ``limit``.
        """
        import json

        kinds = tuple(kinds or ())
        unknown = sorted(set(kinds) - set(_tables.KINDS))
        if unknown:
            raise NeveInputError(f"unknown event kinds {unknown}; known: {', '.join(_tables.KINDS)}")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise NeveInputError(f"limit must be a positive integer, got {limit!r}")
        params = {}
        if model_name is not None:
            params["model"] = check_name(model_name, "model name")
        if version_name is not None:
            params["version"] = check_name(version_name, "version name")
        # RUN_CONTEXT is JSON written with sorted keys (see _lineage.run_context): a run
        # matches on the exact '"key": "value"' text, with the value JSON-quoted as written.
        if dag_id is not None:
            params["dag"] = f'"dag_id": {json.dumps(str(dag_id))}'
        if run_id is not None:
            params["run"] = f'"dag_run_id": {json.dumps(str(run_id))}'
        frame = self._query(_event_log(kinds, limit), (kinds, limit), **params)
        frame.columns = [c.lower() for c in frame.columns]
        frame["run_context"] = [json.loads(c) if c else {} for c in frame["run_context"]]
        return frame

    # -- logging ---------------------------------------------------------------------------------

    def log_model(
        self,
        model: Any,
        model_name: str,
        version_name: str | None = None,
        feature_pipeline: Any = None,
        training_data: Any = None,
        sample_input: Any = None,
        metrics: Mapping[str, float] | None = None,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
        comment: str | None = None,
        *,
        sample_input_data: Any = None,
    ) -> ModelVersion:
        """Store ``model`` as a new version of ``model_name`` and return it.

        Everything is validated before anything is written, so bad input leaves the
        registry untouched. Versions are named v1, v2, ... unless ``version_name`` is given.
        ``sample_input_data`` is SnowML's name for ``sample_input``; without either, the
        sample is the first rows of ``training_data`` as the model reads them (through the
        feature pipeline, the model's ``feature_names_in_``).

        Inside an Airflow task, the version gets ``airflow_dag_id``, ``airflow_run_id`` and
        ``airflow_task_id`` tags, and a retry of the task returns the version an earlier try
        of it logged in the same DAG run instead of logging a second one.
        """
        if sample_input_data is not None:
            if sample_input is not None:
                raise NeveInputError("pass sample_input or SnowML's sample_input_data, not both")
            sample_input = sample_input_data
        # A fused fit's statistics (categories with their counts) spare the baseline a scan.
        fit_summary = getattr(getattr(model, "_estimator", None), "fit_summary_", None)
        model, feature_pipeline = _split_pipeline(model, feature_pipeline)
        check_name(model_name, "model name")
        if (logged := _log_defaults.earlier_try_version(self, model_name)) is not None:
            return logged
        tags = {**_log_defaults.airflow_tags(), **dict(tags or {})}
        if version_name is not None:
            check_name(version_name, "version name")
            if _number_of(version_name.lower()) is not None and version_name != version_name.lower():
                raise InvalidNameError(
                    f"version name {version_name!r} would collide with the automatic "
                    f"{version_name.lower()!r} on a case-insensitive stage; write it in lower case"
                )
        metric_rows = [(k, check_metric(k, v)) for k, v in (metrics or {}).items()]
        tag_rows = [(check_key(k, "tag name"), tag_value(k, v)) for k, v in (tags or {}).items()]
        if comment is not None and not isinstance(comment, str):
            raise NeveInputError(f"comment must be a string, got {type(comment).__name__}")
        params_json = _json.encode(dict(params or {}))
        pipeline_state = None
        if feature_pipeline is not None:
            if not hasattr(feature_pipeline, "to_dict"):
                raise NeveInputError(
                    f"feature_pipeline must be a fitted neve.Pipeline, got {type(feature_pipeline).__name__}"
                )
            feature_pipeline._check_is_fitted()
            pipeline_state = feature_pipeline.to_dict()
        lineage: dict[str, Any] = {"airflow": _lineage.airflow_context() or None}
        baseline = None
        if training_data is not None:
            columns = list(as_table(training_data)[0].columns)
            if sample_input is not None and hasattr(sample_input, "columns"):
                columns = [c for c in sample_input.columns if c in columns] or columns
            lineage["training_data"], baseline = _lineage.training_lineage(
                training_data, self._driver, profile_columns=columns, fit_summary=fit_summary
            )
        if pipeline_state is not None:
            lineage["feature_pipeline"] = pipeline_state
        if sample_input is None and training_data is not None:
            sample_input = _log_defaults.sample_rows(model, feature_pipeline, training_data)
            if sample_input is not None and self._session is not None:
                sample_input = self._session.execute(sample_input)  # the session's retries and query log
        package = build(
            model, model_name=model_name, version_name=version_name or "",
            sample_input=sample_input, pipeline=pipeline_state, baseline=baseline, params=params_json,
        )
        # One connection for reserve, write and commit: on a DuckDB file the lock is taken
        # once per log, for the few milliseconds the files take to write.
        with self._connection():
            version_name = self._reserve(model_name, version_name, package.manifest["flavor"], params_json, lineage)
            package.manifest["version_name"] = version_name
            manifest = package.manifest_bytes
            try:
                self.stage.write(model_name, version_name, {**package.files, MANIFEST: manifest})
            except BaseException:
                self._abandon(model_name, version_name)
                raise
            self._commit(model_name, version_name, sha256(manifest), metric_rows, tag_rows, comment)
        return ModelVersion(self, model_name, version_name)

    def _reserve(
        self, model: str, version: str | None, flavor: str, params: Any, lineage: dict[str, Any]
    ) -> str:
        """Insert the (still invisible) version row, claiming its name."""
        import json

        now, who, context = _now(), _lineage.user(), _lineage.run_context()
        with self._connection() as backend:
            # Checked before anything is inserted, so a refused name leaves the registry as it was.
            if version is not None:
                case_collision(version, self._query(_held_names, model=model)["VERSION_NAME"], "version name")
            if model not in self._known_models:  # models are never dropped, so this cache stays true
                case_collision(model, self._model_names(), "model name")
                self._ensure_model(backend, model, (model, now, who, context))
                self._known_models.add(model)
            for attempt in range(_MAX_NUMBERING_RETRIES):
                if version is None:
                    top = self._query(_max_number, model=model)["top"].iloc[0]
                    number = 1 if pd.isna(top) else int(top) + 1
                    name = f"v{number}"
                else:
                    name, number = version, _number_of(version)
                row = (model, name, number, self.stage.uri(model, name), flavor,
                       json.dumps(params, sort_keys=True), json.dumps(lineage, sort_keys=True, default=str),
                       now, who, context)
                try:
                    self._store.insert(backend, VERSIONS, _VERSION_COLUMNS, [row])
                    return name
                except Exception as exc:
                    if not self._driver.is_conflict(exc):
                        raise
                    # A conflict is either the name being taken or a transient serialization
                    # failure or deadlock (rolled back, so retrying is safe); only the row
                    # itself tells a named version which one it met. A name no live version
                    # holds is reclaimed (see _reclaim), then inserted again.
                    held = None if version is None else _reclaim.holder(self._store, backend, model, version)
                    if held is not None:
                        if not held.reclaimable():
                            raise _reclaim.refuse(model, version, held) from None
                        archived = _reclaim.reclaim(self._store, self._driver, backend, model, version, held)
                        if archived is not None:
                            if not held.deleted:
                                superseded = f"superseded: {version} logged again"
                                self._append([(model, archived, _tables.DELETE, None, None, superseded)])
                            continue
                    _backoff(attempt)
        raise NeveInputError(f"could not allocate a version number for {model!r}: too much contention")

    def _ensure_model(self, backend: Any, model: str, row: tuple[Any, ...]) -> None:
        columns = ["MODEL_NAME", "CREATED_AT", "CREATED_BY", "RUN_CONTEXT"]
        for attempt in range(_MAX_NUMBERING_RETRIES):
            try:
                self._store.insert(backend, MODELS, columns, [row])
                return
            except Exception as exc:
                if not self._driver.is_conflict(exc):
                    raise
                if model in self._model_names():  # another process created it first
                    return
                _backoff(attempt)
        raise NeveInputError(f"could not register model {model!r}: too much contention")

    def _commit(
        self, model: str, version: str, manifest_sha: str, metrics: list, tags: list, comment: str | None
    ) -> None:
        events = [(model, version, _tables.COMMIT, None, None, manifest_sha)]
        events += [(model, version, _tables.METRIC, k, v, None) for k, v in metrics]
        events += [(model, version, _tables.TAG, k, None, v) for k, v in tags]
        if comment is not None:
            events.append((model, version, _tables.COMMENT, None, None, comment))
        self._append(events)

    def _abandon(self, model: str, version: str) -> None:
        with contextlib.suppress(Exception):  # best effort: gc covers whatever this misses
            self._append([(model, version, _tables.DELETE, None, None, "abandoned")])
            self.stage.remove(model, version)

    # -- maintenance -----------------------------------------------------------------------------

    def gc(self, older_than: float = 3600.0, dry_run: bool = False) -> list[str]:
        """Remove stage folders no visible version owns: deleted versions, versions whose
        logging crashed more than ``older_than`` seconds ago, and folders without a row.
        Returns the folders removed (or that would be, with ``dry_run``)."""
        cutoff = _now() - timedelta(seconds=older_than)

        with self._connection():
            rows = self._query(lambda s, p: s.table(VERSIONS).select("MODEL_NAME", "VERSION_NAME", "CREATED_AT"))
            live = self._query(lambda s, p: s.live_versions().select("MODEL_NAME", "VERSION_NAME"))
            committed_or_deleted = self._query(
                lambda s, p: s.table(EVENTS)
                .filter(lambda e: e.KIND.isin([_tables.COMMIT, _tables.DELETE]))
                .select("MODEL_NAME", "VERSION_NAME")
            )
        live_keys = set(zip(live.MODEL_NAME, live.VERSION_NAME, strict=True))
        created = {(m, v): t for m, v, t in zip(rows.MODEL_NAME, rows.VERSION_NAME, rows.CREATED_AT, strict=True)}
        settled = set(zip(committed_or_deleted.MODEL_NAME, committed_or_deleted.VERSION_NAME, strict=True))
        removed, abandon = [], []
        for key in sorted(set(self.stage.folders()) | {k for k in created if k not in settled}):
            if key in live_keys:
                continue
            if key in created and key not in settled:
                if created[key] > cutoff:
                    continue  # a log_model may still be writing it
                abandon.append(key)
            if self.stage.exists(*key):
                removed.append(self.stage.path(*key))
                if not dry_run:
                    self.stage.remove(*key)
        if abandon and not dry_run:
            self._append([(m, v, _tables.DELETE, None, None, "gc") for m, v in abandon])
        return removed


def _backoff(attempt: int) -> None:
    """Sleep before retrying a write that lost a race: a few ms growing to ~50 ms, with
    full jitter so the losers of one round do not collide again in lockstep. The first
    retry is immediate -- a lost version number is usually free one number up."""
    if attempt:
        time.sleep(random.uniform(0, min(0.05, 0.002 * 2**attempt)))


def _held_names(s: Store, p: Any) -> Any:
    """Version names of ``model`` whose stage folder may exist: every row not deleted."""
    versions = s.table(VERSIONS).filter(lambda v: v.MODEL_NAME == p["model"])
    deletes = s._events(p["model"]).filter(lambda e: e.KIND == _tables.DELETE)
    return versions.anti_join(deletes, versions.VERSION_NAME == deletes.VERSION_NAME).select("VERSION_NAME")


def _event_log(kinds: tuple[str, ...], limit: int | None) -> Any:
    def build(s: Store, p: Any) -> Any:
        e = s.table(EVENTS)
        if "model" in p:
            e = e.filter(e.MODEL_NAME == p["model"])
        if "version" in p:
            e = e.filter(e.VERSION_NAME == p["version"])
        if "dag" in p:
            e = e.filter(e.RUN_CONTEXT.contains(p["dag"]))
        if "run" in p:
            e = e.filter(e.RUN_CONTEXT.contains(p["run"]))
        if kinds:
            e = e.filter(e.KIND.isin(kinds))
        e = e.select(*_EVENT_COLUMNS).order_by(e.EVENT_ID.desc())
        return e.limit(limit) if limit is not None else e

    return build


def _max_number(s: Store, p: Any) -> Any:
    versions = s.table(VERSIONS)
    return versions.filter(versions.MODEL_NAME == p["model"]).aggregate(top=versions.VERSION_NUMBER.max())


def _number_of(name: str) -> int | None:
    return int(name[1:]) if name[:1] == "v" and name[1:].isdigit() else None


def _group_dict(frame: pd.DataFrame, key: str, value: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for model, k, v in zip(frame["MODEL_NAME"], frame[key], frame[value], strict=True):
        out.setdefault(model, {})[k] = v
    return out


def _split_pipeline(model: Any, feature_pipeline: Any) -> tuple[Any, Any]:
    """A neve Pipeline ending in an estimator is logged as one unit: its transformers as the
    feature pipeline, its estimator as the scikit-learn model (a neve estimator's twin)."""
    if getattr(model, "_estimator", None) is not None and hasattr(model, "feature_pipeline"):
        if feature_pipeline is not None:
            raise NeveInputError(
                "model is a Pipeline ending in an estimator, which carries its own transformers; "
                "do not also pass feature_pipeline"
            )
        feature_pipeline, model = model.feature_pipeline(), model._estimator
    to_sklearn = getattr(model, "to_sklearn", None)
    if callable(to_sklearn) and type(model).__module__.startswith("neve.linear_model"):
        model = to_sklearn()
    return model, feature_pipeline


def _require_database(driver: Driver) -> None:
    """A read-only open must not create the database file an embedded engine would make."""
    location = driver.location
    if location is not None and not location.exists():
        raise TableNotFoundError(
            f"no database at {location} ({driver.url.redacted()}): check NEVE_URL / --url, or create a "
            f"registry there with `neve registry init --url '{driver.url.redacted()}'`"
        )
