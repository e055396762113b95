"""``neve registry`` and ``neve models``: the registry from the shell, as rich tables."""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

from rich import box
from rich.table import Table
from rich.text import Text

__all__ = ["add_commands"]


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default=None, help="engine URL (default: $NEVE_URL, else ./neve.duckdb)")
    parser.add_argument("--schema", default=None, help="schema holding the NEVE_* tables")
    parser.add_argument("--stage", default=None, help="fsspec URL of the artifact stage")


def add_commands(subparsers: Any) -> None:
    registry = subparsers.add_parser("registry", help="create and maintain the model registry")
    reg_sub = registry.add_subparsers(dest="registry_command", required=True, metavar="ACTION")
    init = reg_sub.add_parser("init", help="create the registry tables (prints GRANTs if rights are missing)")
    _common(init)
    init.set_defaults(handler=_init)
    gc = reg_sub.add_parser("gc", help="remove stage folders no visible version owns")
    _common(gc)
    gc.add_argument("--older-than", type=float, default=3600.0, metavar="SECONDS",
                    help="leave unfinished versions younger than this alone (default 3600)")
    gc.add_argument("--dry-run", action="store_true", help="only list what would be removed")
    gc.set_defaults(handler=_gc)
    check = reg_sub.add_parser(
        "check", help="verify every live version's files, rows, events, aliases and stage folders"
    )
    _common(check)
    check.add_argument("--older-than", type=float, default=3600.0, metavar="SECONDS",
                       help="gc grace: a folder or reservation orphaned for longer is a problem (default 3600)")
    check.add_argument("--repair", action="store_true",
                       help="first do what `registry gc` does (and nothing else), then check")
    check.set_defaults(handler=_check)

    models = subparsers.add_parser("models", help="browse and promote model versions")
    models_sub = models.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    ls = models_sub.add_parser("list", help="list models")
    _common(ls)
    ls.set_defaults(handler=_list)
    show = models_sub.add_parser("show", help="a model's versions, or one version in detail")
    _common(show)
    show.add_argument("name")
    show.add_argument("version", nargs="?", help="version name or alias")
    detail = show.add_mutually_exclusive_group()
    detail.add_argument("--full", action="store_true", help="every field, including all params and feature stds")
    detail.add_argument("--json", action="store_true", help="everything as JSON, for scripts")
    show.set_defaults(handler=_show)
    promote = models_sub.add_parser("promote", help="point an alias at a version")
    _common(promote)
    promote.add_argument("name")
    promote.add_argument("version")
    promote.add_argument("--alias", default="production")
    promote.set_defaults(handler=_promote)
    drift = models_sub.add_parser("drift", help="check a table for drift against a version's training baseline")
    _common(drift)
    drift.add_argument("name")
    drift.add_argument("table", help="table in the engine holding the data to check")
    drift.add_argument("--version", default=None, help="version name or alias (default: the default version)")
    drift.add_argument("--plot", default=None, metavar="PNG", help="also write a picture of the worst features")
    drift.set_defaults(handler=_drift)


def _drift(args: argparse.Namespace) -> int:
    import neve

    model = _registry(args).get_model(args.name)
    version = model.version(args.version) if args.version else model.default
    with neve.connect(args.url) as session:
        report = version.drift(session.table(args.table))
    title = f"{args.name} {version.version_name} vs {args.table}: " + (
        "no drift" if report.ok else f"drift in {', '.join(report.drifted)}"
    )
    _console().print(report.to_rich_table(title=title))
    if args.plot:
        _console().print(f"plot: {report.plot(args.plot)}")
    return 0 if report.ok else 3


def _registry(args: argparse.Namespace, *, create: bool = False) -> Any:
    """The registry at ``--url``. Only ``registry init`` creates one: every other command
    fails, naming the URL, when the database or the registry tables are missing."""
    from neve.registry import Registry

    return Registry(args.url, schema=args.schema, stage=args.stage, create=create)


def _console() -> Any:
    from neve.cli import console

    return console


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, dict):
        return ", ".join(f"{k}={_cell(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _init(args: argparse.Namespace) -> None:
    # On missing rights the EngineError raised here lists the GRANTs an admin must run.
    reg = _registry(args, create=True)
    where = f"schema {args.schema}" if args.schema else "the current schema"
    _console().print(f"registry tables ready in {where} of {reg._driver.url.redacted()}; "
                     f"stage {reg.stage.url}", highlight=False)


def _gc(args: argparse.Namespace) -> None:
    removed = _registry(args).gc(older_than=args.older_than, dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    for path in removed:
        _console().print(f"{verb} {path}", highlight=False)
    _console().print(f"{len(removed)} folder(s) {verb}", highlight=False)


def _browser(args: argparse.Namespace) -> Any:
    """The registry at ``--url`` for reading, on the engine's own client (no Ibis, no pandas)."""
    from neve.registry._browse import Browser

    return Browser.open(args.url, args.schema)


def _minute(value: Any) -> str:
    """Registry times are UTC; a person reads them to the minute."""
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M")


def _compact(title: str) -> Table:
    """A table without side borders, columns two spaces apart: the most text per line."""
    return Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
                 collapse_padding=True)


def _lines(items: dict[str, Any] | list[str]) -> str:
    """One alias or tag per line: a narrow column wraps between them, not inside one."""
    if isinstance(items, dict):
        return "\n".join(f"{k}={_cell(v)}" for k, v in sorted(items.items()))
    return "\n".join(items)


def _models_table(models: list[dict[str, Any]], width: int) -> list[Any]:
    """Fits ``width`` columns with every model name, count, latest version and time whole:
    aliases and tags take what is left, one per line, or, where too little is left
    (long names), go on their own lines under the table."""
    table = _compact("models (times in UTC)")
    fixed = {"model": max((len(m["model_name"]) for m in models), default=5),
             "versions": 8, "latest": max((len(m["latest_version"] or "") for m in models), default=6),
             "created": 16}  # fmt: skip
    for header, widest in fixed.items():
        table.add_column(header, no_wrap=True, min_width=max(widest, len(header)),
                         justify="right" if header == "versions" else "left",
                         style="bold" if header == "model" else None)
    # Columns sit two spaces apart; aliases and tags need ~12 each to be worth a column.
    beside = width - sum(max(w, len(h)) + 2 for h, w in fixed.items()) >= 2 * 12 + 2
    if beside:
        table.add_column("aliases", overflow="fold")
        table.add_column("tags", overflow="fold")
    below = []
    for m in models:
        cells = [m["model_name"], str(m["versions"]), m["latest_version"] or "", _minute(m["created_at"])]
        if beside:
            cells += [_lines(m["aliases"]), _lines(m["tags"])]
        elif m["aliases"] or m["tags"]:
            below.append(Text.assemble((m["model_name"], "bold"), ": aliases ", _cell(_sorted(m["aliases"])) or "-",
                                       "; tags ", _cell(_sorted(m["tags"])) or "-"))
        table.add_row(*cells)
    return [table, Text(), *below] if below else [table]


def _sorted(items: dict[str, Any]) -> dict[str, Any]:
    return dict(sorted(items.items()))


def _versions_table(title: str, versions: list[dict[str, Any]], metrics: list[str]) -> Table:
    table = _compact(f"{title} (times in UTC)")
    table.add_column("version", no_wrap=True, style="bold")
    table.add_column("created", no_wrap=True)
    for header in ("by", "aliases", "tags", "comment", *metrics):
        table.add_column(header, overflow="fold", min_width=min(len(header), 10),
                         justify="right" if header in metrics else "left")
    for v in versions:
        table.add_row(v["version_name"], _minute(v["created_at"]), v["created_by"] or "", _lines(v["aliases"]),
                      _lines(v["tags"]), v["comment"] or "", *(_cell(v[k]) for k in metrics))
    return table


def _check(args: argparse.Namespace) -> int:
    report = _registry(args).check(older_than=args.older_than, repair=args.repair)
    _console().print(str(report), highlight=False, markup=False, soft_wrap=True)
    return 0 if report.ok else 4


def _list(args: argparse.Namespace) -> None:
    with _browser(args) as registry:
        models = registry.models()
    console = _console()
    for part in _models_table(models, console.width):
        console.print(part)


def _show(args: argparse.Namespace) -> None:
    with _browser(args) as registry:
        name = registry.require_model(args.name)
        if args.version is None:
            versions, metrics = registry.versions(name)
        else:
            record = registry.version(name, args.version)
    if args.version is None:
        if args.json:
            # Metrics a version lacks are NaN in the table and null in JSON.
            rows = [{k: None if isinstance(v, float) and math.isnan(v) else v for k, v in r.items()} for r in versions]
            print(json.dumps(rows, default=_json_default))
            return
        _console().print(_versions_table(f"{args.name} versions", versions, metrics))
        return
    if args.json:
        print(json.dumps(record, indent=2, default=str))
        return
    table = Table(title=f"{args.name} {record['version']}", show_header=False)
    table.add_column("field")
    table.add_column("value")
    training = record.get("training_data") or {}
    rows: dict[str, Any] = {
        "aliases": record["aliases"], "metrics": record["metrics"], "tags": record["tags"],
        "comment": record["comment"],
        "logged": f"{record['logged_at']:%Y-%m-%d %H:%M:%S} UTC by {record['logged_by']}",
        "flavor": record["flavor"], "airflow": record.get("airflow"), "artifact": record["artifact_uri"],
    }
    if args.full:
        rows["params"] = record["params"]
        rows["training data"] = json.dumps({k: v for k, v in training.items() if k != "sql"})
    else:
        rows["params"] = {k: _summary(v) for k, v in record["params"].items()}
        rows["training data"] = _training_summary(training)
        for i, step in enumerate((record.get("feature_pipeline") or {}).get("steps", []), 1):
            rows[f"step {i}"] = _step_summary(step)
    for key, value in rows.items():
        table.add_row(key, _cell(value))
    _console().print(table)
    if not args.full:
        _console().print("--full for every param and feature, --json for everything", style="dim")


def _json_default(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _summary(value: Any) -> Any:
    """Long lists and dicts (feature names, per-feature stds) as their size."""
    if isinstance(value, (list, tuple, dict)) and len(value) > 5:
        return f"<{len(value)} {'entries' if isinstance(value, dict) else 'items'}>"
    return value


def _training_summary(training: dict[str, Any]) -> str:
    tables = ", ".join(training.get("tables") or []) or ("in-memory data" if training.get("in_memory_data") else "?")
    rows = training.get("row_count")
    columns = len(training.get("schema") or {})
    fingerprint = training.get("fingerprint")
    return (f"{tables}: {rows:,} rows, {columns} columns" if isinstance(rows, int) else tables) + (
        f", fingerprint {fingerprint}" if fingerprint else "")


def _step_summary(step: dict[str, Any]) -> str:
    """``ohe OneHotEncoder: PICKUP_LOCATION_ID (245), ...``: a step's inputs and, where it
    learned one, the size of each input's fitted state (categories, bins, ...)."""
    state = step.get("state") or {}
    inputs = state.get("input_cols_") or (step.get("params") or {}).get("input_cols") or []
    learned = next((v for k, v in state.items() if k.endswith("_") and isinstance(v, dict)
                    and any(isinstance(x, (list, dict)) for x in v.values())), None)
    parts = [f"{c} ({len(learned[c])})" if learned and isinstance(learned.get(c), (list, dict)) else c
             for c in inputs]
    return f"{step.get('name')} {step.get('class')}: {', '.join(parts)}"


def _promote(args: argparse.Namespace) -> None:
    model = _registry(args).get_model(args.name)
    model.set_alias(args.alias, args.version)
    _console().print(f"{args.name}: {args.alias} -> {model.aliases[args.alias]}", highlight=False)
