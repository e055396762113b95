"""What each page shows, read through the public ``Registry`` API (no SQL of its own).

Each function returns plain data for a template. Imported on the first page request,
so Airflow's start-up never pays for pandas or Ibis.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

from neve.airflow.ui._svg import bar_chart, line_chart

__all__ = ["PAGE_SIZE", "model_page", "models_page", "run_page", "version_page"]

PAGE_SIZE = 50
_MODEL_COLUMNS = {"model_name", "created_at", "versions", "latest_version", "aliases", "tags", "updated_at",
                  "latest_tags"}
_VERSION_COLUMNS = {"version_name", "created_at", "created_by", "aliases", "tags", "comment"}
_TABLE_KIND = "neve.table/1"


def _number(value: Any) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def _paginate(rows: list[Any], page: int) -> tuple[list[Any], dict[str, int]]:
    pages = max(1, math.ceil(len(rows) / PAGE_SIZE))
    page = min(max(page, 1), pages)
    start = (page - 1) * PAGE_SIZE
    return rows[start:start + PAGE_SIZE], {"page": page, "pages": pages, "total": len(rows),
                                          "first": start + 1 if rows else 0,
                                          "last": min(start + PAGE_SIZE, len(rows))}


def _sorted(rows: list[dict[str, Any]], key: str, descending: bool) -> list[dict[str, Any]]:
    """Sort on ``key``; rows without a value go last whatever the order."""
    have = [r for r in rows if r.get(key) is not None]
    return sorted(have, key=lambda r: r[key], reverse=descending) + [r for r in rows if r.get(key) is None]


def _airflow(run_context: Mapping[str, Any] | None, tags: Mapping[str, str] | None = None) -> dict[str, str]:
    """The Airflow DAG run that wrote something: from the event's run context, else the
    ``airflow_dag_id``/``airflow_run_id`` tags the taxi DAG sets."""
    found = dict((run_context or {}).get("airflow") or {})
    tags = tags or {}
    if not found.get("dag_run_id") and tags.get("airflow_run_id"):
        found = {"dag_id": tags.get("airflow_dag_id", ""), "dag_run_id": tags["airflow_run_id"]}
    return found


def models_page(reg: Any, *, q: str, tag: str, alias: str, sort: str, descending: bool, page: int) -> dict[str, Any]:
    frame = reg.show_models(latest=True)
    metrics = [c for c in frame.columns if c not in _MODEL_COLUMNS]
    rows = []
    for record in frame.to_dict("records"):
        record["metrics"] = {m: _number(record.pop(m)) for m in metrics}
        rows.append(record)
    if q:
        rows = [r for r in rows if q.lower() in r["model_name"].lower()]
    if tag:
        key, has_value, value = tag.partition("=")
        rows = [r for r in rows
                if key in (tags := {**r["latest_tags"], **r["tags"]}) and (not has_value or tags[key] == value)]
    if alias:
        rows = [r for r in rows if alias in r["aliases"]]
    if sort in metrics:
        for r in rows:
            r["_sort"] = r["metrics"][sort]
        rows = _sorted(rows, "_sort", descending)
    elif sort in ("updated_at", "versions", "created_at"):
        rows = _sorted(rows, sort, descending)
    else:
        rows = _sorted(rows, "model_name", descending)
    shown, pager = _paginate(rows, page)
    all_aliases = sorted({a for r in frame["aliases"] for a in r})
    return {"models": shown, "pager": pager, "metrics": metrics, "aliases": all_aliases,
            "model_count": len(frame)}


def model_page(reg: Any, name: str, *, sort: str, descending: bool, page: int, metric: str) -> dict[str, Any]:
    model = reg.get_model(name)
    frame = model.show_versions()
    metrics = [c for c in frame.columns if c not in _VERSION_COLUMNS]
    commits = reg.events(name, kinds=["commit"])
    contexts = dict(zip(commits["version_name"], commits["run_context"], strict=True))
    rows = []
    for record in frame.to_dict("records"):
        record["metrics"] = {m: _number(record.pop(m)) for m in metrics}
        rows.append(record)
    chart_metric = metric if metric in metrics else (metrics[0] if metrics else "")
    chart = line_chart(
        [r["version_name"] for r in rows], [r["metrics"][chart_metric] for r in rows], title=chart_metric
    ) if chart_metric else ""
    if sort in metrics:
        for r in rows:
            r["_sort"] = r["metrics"][sort]
        ordered = _sorted(rows, "_sort", descending)
    else:
        ordered = list(reversed(rows)) if descending else rows  # show_versions is oldest first
    shown, pager = _paginate(ordered, page)
    for r in shown:
        r["airflow"] = _airflow(contexts.get(r["version_name"]), r["tags"])
    latest = rows[-1]["version_name"] if rows else None
    lineage = model.version(latest).lineage() if latest else {}
    return {
        "model": name, "versions": shown, "pager": pager, "metrics": metrics, "chart": chart,
        "chart_metric": chart_metric, "aliases": model.aliases, "tags": model.tags,
        "alias_history": model.alias_history().head(200).to_dict("records"),
        "latest": latest, "lineage": _lineage_summary(lineage), "version_count": len(rows),
        "recent_versions": [r["version_name"] for r in rows[-200:]][::-1],
    }


def _lineage_summary(lineage: Mapping[str, Any]) -> dict[str, Any]:
    training = lineage.get("training_data") or {}
    return {
        "tables": training.get("tables") or [],
        "row_count": training.get("row_count"),
        "fingerprint": training.get("fingerprint"),
        "sql": training.get("sql"),
        "steps": _steps(lineage.get("feature_pipeline")),
        "logged_by": lineage.get("logged_by"),
        "logged_at": lineage.get("logged_at"),
        "flavor": lineage.get("flavor"),
        "airflow": _airflow(lineage.get("run_context"), None) or (lineage.get("airflow") or {}),
    }


def _steps(pipeline: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """Each pipeline step: name, class, columns in and out, and its fitted state in a line."""
    steps = []
    for step in (pipeline or {}).get("steps") or []:
        state = step.get("state") or {}
        params = step.get("params") or {}
        fitted = []
        for attr, value in state.items():
            if attr in ("input_cols_", "output_cols_"):
                continue
            if isinstance(value, Mapping):
                sizes = [len(v) for v in value.values() if isinstance(v, (list, tuple, Mapping))]
                fitted.append(f"{attr} for {len(value)} column(s)"
                              + (f", {sum(sizes)} values" if sizes else ""))
            elif isinstance(value, (list, tuple)):
                fitted.append(f"{attr} ({len(value)})")
            elif value is not None:
                fitted.append(f"{attr} = {value}")
        steps.append({
            "name": step.get("name"), "class": step.get("class"),
            "inputs": state.get("input_cols_") or params.get("input_cols") or [],
            "outputs": state.get("output_cols_") or params.get("output_cols") or [],
            "fitted": fitted,
            "params": {k: v for k, v in params.items() if k not in ("input_cols", "output_cols") and v is not None},
        })
    return steps


@functools.lru_cache(maxsize=64)
def _compiled_sql(reg: Any, model: str, version: str, dialect: str) -> str:
    """The SELECT ``mv.run`` compiles for a table shaped like the training data.
    Versions never change once committed, so the text is cached per process."""
    import ibis

    mv = reg.get_model(model).version(version)
    schema = ((mv.lineage().get("training_data") or {}).get("schema")) or {}
    if not schema:
        sample = mv.sample_input()
        if sample is None:
            return "-- no training schema or sample input was logged, so there is no input to compile against"
        schema = dict(ibis.memtable(sample).schema().items())
    table = ibis.table(schema, name="INPUT_TABLE")
    try:
        scored = mv.run(table)
    except Exception as exc:  # noqa: BLE001 - shown on the page instead of failing it
        return f"-- mv.run could not compile for this version: {exc}"
    if getattr(scored, "path", "sql") != "sql":
        return "-- this model does not compile to SQL: mv.run scores it in batches (the fallback path)"
    return ibis.to_sql(scored, dialect=dialect)


def version_page(reg: Any, name: str, version: str, *, compare: str, dialect: str) -> dict[str, Any]:
    model = reg.get_model(name)
    mv = model.version(version)
    lineage = mv.lineage()
    manifest = mv.manifest
    tags = mv.tags
    data = {
        "model": name, "version": mv.version_name, "requested": version,
        "aliases": sorted(a for a, v in model.aliases.items() if v == mv.version_name),
        "metrics": mv.metrics, "tags": tags, "comment": mv.comment,
        "params": lineage.get("params") or {}, "lineage": _lineage_summary(lineage),
        "airflow": _airflow(lineage.get("run_context"), tags),
        "files": [{"name": n, **f} for n, f in sorted(manifest["files"].items())],
        "manifest": {k: manifest.get(k) for k in ("flavor", "model_class", "python_version", "packages",
                                                  "format_version", "signature") if manifest.get(k)},
        "sql": _compiled_sql(reg, name, mv.version_name, dialect),
        "baseline": _baseline_rows(mv.baseline()),
        "drift": [_drift_view(r) for r in mv.drift_reports(limit=3)],
        "search": _search_view(mv.search_results()),
        "compare": None,
    }
    if compare:
        other = model.version(compare)
        other_lineage = other.lineage()
        data["compare"] = {
            "version": other.version_name,
            "metrics": _side_by_side(data["metrics"], other.metrics),
            "params": _side_by_side(data["params"], other_lineage.get("params") or {}),
            "tags": _side_by_side(tags, other.tags),
            "steps": _side_by_side(
                {s["name"]: f"{s['class']}: {', '.join(s['fitted'])}" for s in data["lineage"]["steps"]},
                {s["name"]: f"{s['class']}: {', '.join(s['fitted'])}"
                 for s in _steps(other_lineage.get("feature_pipeline"))},
            ),
        }
    return data


def _search_view(search: Any) -> dict[str, Any] | None:
    """The candidates of the search that chose the version, best rank first: each one's
    params and mean ± std per scorer, the chosen one marked."""
    if search is None:
        return None
    rows = sorted(search.candidates(), key=lambda r: (r["rank"], r["index"]))
    for row in rows:
        row["params"] = {k: _param_text(v) for k, v in row["params"].items()}
    return {"search": search.search, "n_splits": search.n_splits_, "refit": search.refit,
            "scorers": search.scorers, "candidates": rows}


def _param_text(value: Any) -> str:
    """A swapped-in step by its class name (its own grid params show beside it), else the value."""
    if hasattr(value, "get_params") and not isinstance(value, type):
        return type(value).__name__
    return _short(value)


def _side_by_side(left: Mapping[str, Any], right: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{"key": k, "left": left.get(k), "right": right.get(k), "same": left.get(k) == right.get(k)}
            for k in sorted({*left, *right})]


def _baseline_rows(baseline: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    rows = []
    for name, profile in ((baseline or {}).get("columns") or {}).items():
        row = {"feature": name, "type": profile.get("type"), "null_fraction": profile.get("null_fraction")}
        if profile.get("type") == "numeric":
            row["summary"] = ", ".join(f"{k} {_short(profile[k])}" for k in ("mean", "std", "min", "max")
                                       if profile.get(k) is not None)
        else:
            top = profile.get("top") or []
            row["summary"] = f"{len(top)} categories: " + ", ".join(
                f"{t['value']} ({t['fraction']:.1%})" for t in top[:5]) + (" ..." if len(top) > 5 else "")
        rows.append(row)
    return rows


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, (int, float)) else str(value)


def _drift_view(report: Mapping[str, Any]) -> dict[str, Any]:
    features = sorted(report.get("features") or [], key=lambda f: (not f.get("drifted"), -(f.get("psi") or 0)))
    bins = report.get("bins") or {}
    charts = [
        bar_chart(b["labels"], b["expected"], b["actual"],
                  title=f"{f['feature']}: PSI {f['psi']:.3f}" + (" (drift)" if f.get("drifted") else ""))
        for f in features[:4] if (b := bins.get(f["feature"]))
    ]
    return {**report, "features": features, "charts": charts,
            "airflow": _airflow(report.get("run_context"))}


def table_refs(values: Iterable[Any]) -> list[dict[str, Any]]:
    """Every neve TableRef inside XCom values (refs nest inside task results)."""
    found: dict[tuple[Any, ...], dict[str, Any]] = {}

    def walk(value: Any) -> None:
        if isinstance(value, Mapping):
            if value.get("kind") == _TABLE_KIND and value.get("name"):
                found[(value.get("database"), value.get("schema"), value["name"])] = dict(value)
                return
            for v in value.values():
                walk(v)
        elif isinstance(value, (list, tuple)):
            for v in value:
                walk(v)

    for value in values:
        walk(value)
    return list(found.values())


def run_page(reg: Any, dag_id: str, run_id: str, outputs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``outputs``: (task_id, value) of the run's XComs, for the tables it wrote and a drift
    verdict the run returned without recording it in the registry."""
    commits = reg.events(kinds=["commit"], dag_id=dag_id, run_id=run_id)
    versions = []
    for e in commits.itertuples():
        mv = reg.get_model(e.model_name).version(e.version_name)
        versions.append({"model": e.model_name, "version": e.version_name, "metrics": mv.metrics,
                         "tags": mv.tags, "task_id": (e.run_context.get("airflow") or {}).get("task_id"),
                         "created_at": e.created_at})
    recorded = reg.events(kinds=["drift"], dag_id=dag_id, run_id=run_id)
    drift = []
    for e in recorded.itertuples():
        drift.append({"model": e.model_name, "version": e.version_name, "task_id":
                      (e.run_context.get("airflow") or {}).get("task_id"),
                      **_drift_view({**json.loads(e.value_str), "run_context": e.run_context})})
    if not drift:
        for task_id, value in outputs:
            report = value.get("drift") if isinstance(value, Mapping) else None
            if isinstance(report, Mapping) and "ok" in report:
                model = value.get("model") if isinstance(value.get("model"), Mapping) else {}
                drift.append({"model": model.get("model"), "version": model.get("version"), "task_id": task_id,
                              **_drift_view(report)})
    tables = []
    for task_id, value in outputs:
        tables += [{**ref, "task_id": task_id} for ref in table_refs([value])]
    seen, unique = set(), []
    for t in tables:
        key = (t.get("schema"), t["name"])
        if key not in seen:
            seen.add(key)
            unique.append(t)
    return {"dag_id": dag_id, "run_id": run_id, "versions": versions, "drift": drift, "tables": unique}
