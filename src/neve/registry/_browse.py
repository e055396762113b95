"""Reading the registry on a plain DB-API cursor: models, versions, one version's details.

The registry's folding views (``NEVE_LIVE_VERSIONS``, ``NEVE_CURRENT_*``, built by
:mod:`neve.registry._tables` from the same expressions the :class:`Registry` reads with)
already turn the event log into current values, so a reader only selects from them. This
module does that in SQL text on :func:`neve.engine._dbapi.open_reader`, returning plain
Python rows: no Ibis, no pandas. ``neve models list`` / ``show`` and Airflow's registry
pages read through it; the results equal :meth:`Registry.show_models` and
:meth:`Model.show_versions` (tested).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any, Self

from neve.engine._dbapi import Reader, local_file, open_reader
from neve.engine._url import parse_url
from neve.errors import ModelNotFoundError, TableNotFoundError
from neve.registry._names import check_name, suggest
from neve.registry._schema import (
    ALIASES_VIEW,
    COMMENTS_VIEW,
    LIVE_VIEW,
    META,
    METRICS_VIEW,
    MODELS,
    SCHEMA_VERSION,
    TAGS_VIEW,
)

__all__ = ["Browser", "lineage_of", "model_not_found", "no_database", "no_registry", "version_not_found"]

#: What a version row holds beyond its name, as :func:`lineage_of` reads it.
_VERSION_ROW = ("VERSION_NAME", "ARTIFACT_URI", "FLAVOR", "PARAMS", "LINEAGE", "CREATED_AT", "CREATED_BY",
                "RUN_CONTEXT")
_VERSION_ROW_SQL = ", ".join(f'"{c}"' for c in _VERSION_ROW)


def no_registry(url: Any, schema: str | None) -> TableNotFoundError:
    """The error for a database without registry tables, saying how to create them."""
    where = f"{url.redacted()}" + (f" (schema {schema})" if schema else "")
    init = f" --url '{url.redacted()}'" + (f" --schema {schema}" if schema else "")
    return TableNotFoundError(
        f"no model registry in {where}: create one with `neve registry init{init}`, "
        f"or point NEVE_URL / --url at the right database"
    )


def no_database(url: Any, location: Any) -> TableNotFoundError:
    """The error for a database file that does not exist (reading must not create it)."""
    return TableNotFoundError(
        f"no database at {location} ({url.redacted()}): check NEVE_URL / --url, or create a "
        f"registry there with `neve registry init --url '{url.redacted()}'`"
    )


def model_not_found(name: str, names: list[str]) -> ModelNotFoundError:
    return ModelNotFoundError(
        f"no model {name!r} in the registry{suggest(name, names)}"
        + (f" (models: {', '.join(names)})" if names and len(names) <= 20 else "")
    )


def version_not_found(model: str, name: str, versions: list[str], aliases: list[str]) -> ModelNotFoundError:
    """``versions`` oldest first: the error lists the last ten."""
    return ModelNotFoundError(
        f"model {model!r} has no version or alias {name!r}{suggest(name, versions + aliases)}"
        + (f" (versions: {', '.join(versions[-10:])}" if versions else " (it has no versions")
        + (f"; aliases: {', '.join(aliases)})" if aliases else ")")
    )


def lineage_of(row: dict[str, Any]) -> dict[str, Any]:
    """A version's lineage from its row: training data, feature pipeline and Airflow ids
    as logged, plus who logged it from where, its params, artifact URI and flavor."""
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


class Browser:
    """Read-only views of the registry in ``schema`` of the engine ``reader`` is open on.

    >>> with Browser.open("duckdb:///./neve.duckdb") as registry:
    ...     registry.models()
    """

    def __init__(self, reader: Reader, schema: str | None = None) -> None:
        if schema is not None:
            check_name(schema, "schema name")
        self.reader, self.schema = reader, schema
        self._checked = False

    @classmethod
    def open(cls, url: str | None = None, schema: str | None = None) -> Browser:
        """A browser on its own connection to ``url`` (closed with the ``with`` block)."""
        if schema is not None:
            check_name(schema, "schema name")
        parsed = parse_url(url)
        location = local_file(parsed)
        if location is not None and not location.exists():
            raise no_database(parsed, location)
        return cls(open_reader(url), schema)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.reader.close()

    # -- running ---------------------------------------------------------------------------

    def _name(self, table: str) -> str:
        # Names are checked (letters, digits, '_', '-', '.'), so quoting cannot be escaped.
        return f'"{self.schema}"."{table}"' if self.schema else f'"{table}"'

    def _rows(self, sql: str, **params: Any) -> list[tuple]:
        """Rows of ``sql``, whose ``{TABLE}`` names are qualified with the schema."""
        self._check()
        return self._run(sql, params)

    def _run(self, sql: str, params: dict[str, Any]) -> list[tuple]:
        names = {n: self._name(n) for n in (META, MODELS, LIVE_VIEW, METRICS_VIEW, TAGS_VIEW, ALIASES_VIEW,
                                              COMMENTS_VIEW)}
        return self.reader.query(sql.format(**names), params)[1]

    def _check(self) -> None:
        """Fail, saying how to create one, where there is no registry of this schema version."""
        if self._checked:
            return
        try:
            found = self._run('SELECT max("VALUE") FROM {NEVE_META} WHERE "KEY" = :key', {"key": "schema_version"})
        except Exception as exc:  # any engine's "no such table": there is no registry
            raise no_registry(self.reader.url, self.schema) from exc
        if not found or found[0][0] is None or int(found[0][0]) < SCHEMA_VERSION:
            raise no_registry(self.reader.url, self.schema)
        self._checked = True

    # -- models ----------------------------------------------------------------------------

    def model_names(self) -> list[str]:
        return sorted(r[0] for r in self._rows('SELECT "MODEL_NAME" FROM {NEVE_MODELS}'))

    def require_model(self, name: str) -> str:
        """``name`` if a model of that name exists; else the error with close suggestions."""
        check_name(name, "model name")
        names = self.model_names()
        if name not in names:
            raise model_not_found(name, names)
        return name

    def models(self) -> list[dict[str, Any]]:
        """One dict per model, by name: model_name, created_at, versions (the count),
        latest_version (``None`` without versions), aliases and tags (dicts), as
        :meth:`Registry.show_models` has them."""
        models = self._rows('SELECT "MODEL_NAME", "CREATED_AT" FROM {NEVE_MODELS}')
        newest = self._rows(
            'SELECT n."MODEL_NAME", n."VERSIONS", v."VERSION_NAME" FROM '
            '(SELECT "MODEL_NAME", count(*) AS "VERSIONS", max("CREATED_AT") AS "NEWEST" '
            'FROM {NEVE_LIVE_VERSIONS} GROUP BY "MODEL_NAME") n '
            'JOIN {NEVE_LIVE_VERSIONS} v ON v."MODEL_NAME" = n."MODEL_NAME" AND v."CREATED_AT" = n."NEWEST"'
        )
        aliases = _group(self._rows('SELECT "MODEL_NAME", "ALIAS_NAME", "VERSION_NAME" FROM {NEVE_CURRENT_ALIASES}'))
        tags = _group(self._rows(
            'SELECT "MODEL_NAME", "KEY", "VALUE_STR" FROM {NEVE_CURRENT_TAGS} WHERE "VERSION_NAME" IS NULL'
        ))
        latest: dict[str, tuple[int, str]] = {}
        for model, count, version in newest:
            latest.setdefault(model, (int(count), version))
        return [
            {"model_name": name, "created_at": created, "versions": latest.get(name, (0, None))[0],
             "latest_version": latest.get(name, (0, None))[1], "aliases": aliases.get(name, {}),
             "tags": tags.get(name, {})}
            for name, created in sorted(models)
        ]

    # -- versions --------------------------------------------------------------------------

    def versions(self, model: str) -> tuple[list[dict[str, Any]], list[str]]:
        """The visible versions of ``model``, oldest first, as :meth:`Model.show_versions` has
        them (version_name, created_at, created_by, aliases, tags, comment, then one key per
        metric, NaN where a version lacks it), and the metric names."""
        live = self._rows(
            'SELECT v."VERSION_NAME", v."CREATED_AT", v."CREATED_BY", c."VALUE_STR" FROM {NEVE_LIVE_VERSIONS} v '
            'LEFT JOIN {NEVE_CURRENT_COMMENTS} c ON c."MODEL_NAME" = v."MODEL_NAME" '
            'AND c."VERSION_NAME" = v."VERSION_NAME" WHERE v."MODEL_NAME" = :model',
            model=model,
        )
        # Metric names come from every version ever logged, deleted ones too (as show_versions).
        metrics = _group(self._rows(
            'SELECT "VERSION_NAME", "KEY", "VALUE_NUM" FROM {NEVE_CURRENT_METRICS} WHERE "MODEL_NAME" = :model',
            model=model,
        ))
        keys = sorted({k for found in metrics.values() for k in found})
        tags = _group(self._rows(
            'SELECT "VERSION_NAME", "KEY", "VALUE_STR" FROM {NEVE_CURRENT_TAGS} '
            'WHERE "MODEL_NAME" = :model AND "VERSION_NAME" IS NOT NULL',
            model=model,
        ))
        aliases: dict[str, list[str]] = {}
        for alias, version in self._aliases(model):
            aliases.setdefault(version, []).append(alias)
        rows = []
        for version, created, by, comment in sorted(live, key=lambda r: (r[1], r[0])):
            values = metrics.get(version, {})
            rows.append({
                "version_name": version, "created_at": created, "created_by": by,
                "aliases": sorted(aliases.get(version, [])), "tags": dict(sorted(tags.get(version, {}).items())),
                "comment": comment, **{k: _float(values.get(k)) for k in keys},
            })
        return rows, keys

    def _aliases(self, model: str) -> list[tuple[str, str]]:
        return self._rows(
            'SELECT "ALIAS_NAME", "VERSION_NAME" FROM {NEVE_CURRENT_ALIASES} WHERE "MODEL_NAME" = :model', model=model
        )

    def version(self, model: str, name_or_alias: str) -> dict[str, Any]:
        """One version, by name or alias (names win): model, version, aliases, metrics,
        tags, comment and its lineage (:func:`lineage_of`)."""
        aliases = dict(self._aliases(model))
        row = self._version_row(model, name_or_alias)
        if row is None and name_or_alias in aliases:
            row = self._version_row(model, aliases[name_or_alias])
        if row is None:
            live = self._rows(
                'SELECT "VERSION_NAME", "CREATED_AT" FROM {NEVE_LIVE_VERSIONS} WHERE "MODEL_NAME" = :model',
                model=model,
            )
            names = [v for v, _ in sorted(live, key=lambda r: (r[1], r[0]))]
            raise version_not_found(model, name_or_alias, names, list(aliases))
        version = row["VERSION_NAME"]
        params = {"model": model, "version": version}
        where = 'WHERE "MODEL_NAME" = :model AND "VERSION_NAME" = :version'
        metrics = self._rows('SELECT "KEY", "VALUE_NUM" FROM {NEVE_CURRENT_METRICS} ' + where, **params)
        tags = self._rows('SELECT "KEY", "VALUE_STR" FROM {NEVE_CURRENT_TAGS} ' + where, **params)
        comment = self._rows('SELECT "VALUE_STR" FROM {NEVE_CURRENT_COMMENTS} ' + where, **params)
        return {
            "model": model, "version": version,
            "aliases": sorted(a for a, v in aliases.items() if v == version),
            "metrics": {k: float(v) for k, v in sorted(metrics)}, "tags": dict(sorted(tags)),
            "comment": comment[0][0] if comment else None, **lineage_of(row),
        }

    def _version_row(self, model: str, version: str) -> dict[str, Any] | None:
        rows = self._rows(
            f"SELECT {_VERSION_ROW_SQL} FROM {{NEVE_LIVE_VERSIONS}} "
            'WHERE "MODEL_NAME" = :model AND "VERSION_NAME" = :version',
            model=model, version=version,
        )
        return dict(zip(_VERSION_ROW, rows[0], strict=True)) if rows else None


def _group(rows: Iterable[tuple]) -> dict[Any, dict[Any, Any]]:
    """``(owner, key, value)`` rows as ``{owner: {key: value}}``."""
    out: dict[Any, dict[Any, Any]] = {}
    for owner, key, value in rows:
        out.setdefault(owner, {})[key] = value
    return out


def _float(value: Any) -> float:
    return math.nan if value is None else float(value)
