"""``neve env``: build, list, python, run, prune."""

from __future__ import annotations

import argparse
import os
import subprocess
from datetime import datetime

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from neve import envs
from neve.envs._project import PROJECT_VARIABLE

__all__ = ["add_commands"]

console = Console()
err_console = Console(stderr=True)


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    env = subparsers.add_parser("env", help="build and use declared task environments")
    sub = env.add_subparsers(dest="env_command", required=True, metavar="ACTION")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--project", help="project folder (default: nearest with [tool.neve])")

    p = sub.add_parser("build", parents=[common], help="lock and build envs (default: all)")
    p.add_argument("names", nargs="*", metavar="NAME")
    p.add_argument("--upgrade", action="store_true", help="re-resolve to the newest allowed versions")
    p.add_argument("--locked", action="store_true",
                   help="fail instead of re-locking when a lock is out of date (CI, Docker)")
    p.set_defaults(handler=_build)

    p = sub.add_parser("list", parents=[common], help="show each env and whether it is fresh")
    p.set_defaults(handler=_list)

    p = sub.add_parser("python", parents=[common], help="print an env's interpreter path")
    p.add_argument("name", metavar="NAME")
    p.set_defaults(handler=_python)

    p = sub.add_parser("run", parents=[common], help="run a command inside a fresh env")
    p.add_argument("name", metavar="NAME")
    # REMAINDER keeps the command's own flags; options given after NAME are split off in _run.
    p.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD")
    p.set_defaults(handler=_run)

    p = sub.add_parser("prune", parents=[common], help="delete builds no env points at")
    p.set_defaults(handler=_prune)


def _build(args: argparse.Namespace) -> int:
    results = []
    with Progress(SpinnerColumn(), TextColumn("[bold]{task.fields[env]}[/]"),
                  TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=err_console, transient=False) as progress:
        tasks: dict[str, int] = {}

        def on_step(name: str, message: str) -> None:
            if name not in tasks:
                tasks[name] = progress.add_task(message, env=name, total=None)
            progress.update(tasks[name], description=message)

        for name in args.names or list(envs.declarations(args.project)):
            result = envs.build([name], project=args.project, upgrade=args.upgrade,
                                locked=args.locked, on_step=on_step)[0]
            done = "built" if result.built else "up to date"
            progress.update(tasks[name], description=f"[green]{done}[/] {result.hash}",
                            total=1, completed=1)
            results.append(result)
    return 0


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return ""


def _list(args: argparse.Namespace) -> int:
    table = Table("name", "python", "hash", "size", "built", "state")
    colour = {"fresh": "green", "stale": "yellow", "not built": "dim", "error": "red"}
    for st in envs.status(project=args.project):
        python = st.interpreter.partition("-")[2] if st.interpreter else st.python
        built = datetime.fromisoformat(st.built_at).strftime("%Y-%m-%d %H:%M") if st.built_at else "-"
        state = f"[{colour[st.state]}]{st.state}[/]" + (f": {escape(st.reason)}" if st.reason else "")
        table.add_row(st.name, python, st.hash or "-", _size(st.size()) if st.path else "-",
                      built, state)
    console.print(table)
    return 0


def _python(args: argparse.Namespace) -> int:
    # Explicit: python() would otherwise look above its caller, this module.
    project = args.project or os.environ.get(PROJECT_VARIABLE) or os.getcwd()
    path = envs.python(args.name, project=project)
    print(path)
    return 0


def _run(args: argparse.Namespace) -> int:
    cmd = args.cmd if "--" in args.cmd else []
    if cmd:
        split = cmd.index("--")
        options = argparse.ArgumentParser(prog=f"neve env run {args.name}")
        options.add_argument("--project", default=args.project)
        args.project = options.parse_args(cmd[:split]).project
        cmd = cmd[split + 1:]
    if not cmd:
        err_console.print("[bold red]error:[/] give a command after --, e.g. "
                          f"neve env run {args.name} -- python script.py")
        return 2
    python = envs.require(args.name, project=args.project)
    prefix = os.path.dirname(os.path.dirname(python))
    env = dict(os.environ, VIRTUAL_ENV=prefix,
               PATH=os.path.join(prefix, "bin") + os.pathsep + os.environ.get("PATH", ""))
    env.pop("PYTHONHOME", None)
    try:
        return subprocess.run(cmd, env=env, check=False).returncode
    except FileNotFoundError:
        err_console.print(f"[bold red]error:[/] command not found in env '{args.name}': {cmd[0]}")
        return 127


def _prune(args: argparse.Namespace) -> int:
    removed = envs.prune(args.project)
    for path in removed:
        console.print(f"removed {path}")
    if not removed:
        console.print("nothing to prune")
    return 0
