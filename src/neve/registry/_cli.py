"""``neve registry`` and ``neve models``: the registry from the shell, as rich tables."""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

from rich.table import Table

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

    models = subparsers.add_parser("models", help="browse and promote model versions")
    models_sub = models.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    ls = models_sub.add_parser("list", help="list models")
    _common(ls)
    ls.set_defaults(handler=_list)
    show = models_sub.add_parser("show", help="a model's versions, or one version in detail")
    _common(show)
    show.add_argument("name")
    show.add_argument("version", nargs="?", help="version name or alias")
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


def _registry(args: argparse.Namespace) -> Any:
    from neve.registry import Registry

    return Registry(args.url, schema=args.schema, stage=args.stage)


def _console() -> Any:
    from neve.cli import console

    return console


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _table(title: str, frame: Any) -> Table:
    table = Table(title=title)
    for column in frame.columns:
        table.add_column(str(column))
    for row in frame.itertuples(index=False):
        table.add_row(*(_cell(v) for v in row))
    return table


def _init(args: argparse.Namespace) -> None:
    # On missing rights the EngineError raised here lists the GRANTs an admin must run.
    reg = _registry(args)
    where = f"schema {args.schema}" if args.schema else "the current schema"
    _console().print(f"registry tables ready in {where} of {reg._driver.url.redacted()}; "
                     f"stage {reg.stage.url}", highlight=False)


def _gc(args: argparse.Namespace) -> None:
    removed = _registry(args).gc(older_than=args.older_than, dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    for path in removed:
        _console().print(f"{verb} {path}", highlight=False)
    _console().print(f"{len(removed)} folder(s) {verb}", highlight=False)


def _list(args: argparse.Namespace) -> None:
    _console().print(_table("models", _registry(args).show_models()))


def _show(args: argparse.Namespace) -> None:
    model = _registry(args).get_model(args.name)
    if args.version is None:
        _console().print(_table(f"{args.name} versions", model.show_versions()))
        return
    mv = model.version(args.version)
    lineage = mv.lineage()
    table = Table(title=f"{args.name} {mv.version_name}", show_header=False)
    table.add_column("field")
    table.add_column("value")
    aliases = [a for a, v in model.aliases.items() if v == mv.version_name]
    rows = {
        "aliases": aliases, "logged by": lineage["logged_by"], "logged at": lineage["logged_at"],
        "flavor": lineage["flavor"], "artifact": lineage["artifact_uri"], "metrics": mv.metrics,
        "tags": mv.tags, "comment": mv.comment, "params": lineage["params"],
        "training data": json.dumps({k: v for k, v in (lineage.get("training_data") or {}).items() if k != "sql"}),
        "airflow": lineage.get("airflow"),
    }
    for key, value in rows.items():
        table.add_row(key, _cell(value))
    _console().print(table)


def _promote(args: argparse.Namespace) -> None:
    model = _registry(args).get_model(args.name)
    model.set_alias(args.alias, args.version)
    _console().print(f"{args.name}: {args.alias} -> {model.aliases[args.alias]}", highlight=False)
