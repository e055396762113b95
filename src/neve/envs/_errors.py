"""Errors raised by ``neve.envs``.

They live beside the code that raises them; all derive from
:class:`neve.errors.NeveError` and the builtin a caller would catch::

    NeveError
    └── EnvError
        ├── EnvDeclarationError(NeveInputError)   a bad or missing [tool.neve.envs.<name>] table
        ├── InterpreterNotFoundError(LookupError) the asked Python is not on this machine
        ├── EnvBuildError(RuntimeError)           uv failed while locking or building
        └── EnvNotBuiltError(RuntimeError)        the env has no current build
            └── EnvStaleError                     the build no longer matches its declaration
"""

from __future__ import annotations

from neve.errors import NeveError, NeveInputError

__all__ = [
    "EnvBuildError",
    "EnvDeclarationError",
    "EnvError",
    "EnvNotBuiltError",
    "EnvStaleError",
    "InterpreterNotFoundError",
]


class EnvError(NeveError):
    """Root of the task-environment errors."""


class EnvDeclarationError(EnvError, NeveInputError):
    """A declaration is missing, names an unknown env, or has a bad field."""


class InterpreterNotFoundError(EnvError, LookupError):
    """No interpreter on this machine satisfies the declared ``python``."""

    def __str__(self) -> str:  # LookupError subclasses KeyError-like repr otherwise
        return str(self.args[0]) if self.args else ""


class EnvBuildError(EnvError, RuntimeError):
    """uv failed to resolve or install the env; the message carries uv's output."""


class EnvNotBuiltError(EnvError, RuntimeError):
    """The env has never been built here."""


class EnvStaleError(EnvNotBuiltError):
    """The env was built, but from an older declaration or lock."""
