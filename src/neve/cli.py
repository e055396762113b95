"""The ``neve`` command.

Each command group lives beside the code it drives and registers itself
here through an ``add_commands(subparsers)`` function, so this module stays a
thin dispatcher.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from rich.console import Console
from rich.markup import escape

import neve
from neve.errors import NeveError

__all__ = ["main"]

console = Console()
err_console = Console(stderr=True)

#: Modules that define ``add_commands(subparsers)``; imported only when the CLI runs.
COMMAND_GROUPS: tuple[str, ...] = ("neve.envs._cli", "neve.registry._cli")
#: The group defining each top-level command: a command imports only its own group
#: (``neve models list`` does not import the envs machinery); help imports them all.
COMMAND_MODULES: dict[str, str] = {"env": "neve.envs._cli", "registry": "neve.registry._cli",
                                   "models": "neve.registry._cli"}


def _build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="neve", description=neve.__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"neve {neve.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    command = next((a for a in argv or () if not a.startswith("-")), None)
    groups = (COMMAND_MODULES[command],) if command in COMMAND_MODULES else COMMAND_GROUPS
    for module_name in groups:
        module = __import__(module_name, fromlist=["add_commands"])
        module.add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = _build_parser(argv)
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int | None] = args.handler
    try:
        return handler(args) or 0
    except NeveError as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
