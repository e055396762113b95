"""The env side of ``@task.neve(env=...)``: runs inside a task environment, without Airflow.

Airflow's external-Python operator runs a task's source in the env's interpreter and calls
the function by name. ``@task.neve(env=...)`` appends one line to that source, rebinding
the name to :func:`in_env` around the function, so the call gets what an in-process
``@task.neve`` task gets: an open ``session`` for the Airflow connection (read from the
``AIRFLOW_CONN_<ID>`` variable the task inherits), refs rebuilt from XCom's plain dicts on
the way in, and plain JSON on the way out (a returned registry ``ModelVersion`` becomes a
model-version ref, which the Airflow side turns into an Asset event).

This module imports neither Airflow nor anything heavy: it runs at every env task's start.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from neve.airflow._refs import from_json_ref, model_version_ref
from neve.errors import ConnectionNotFoundError, InvalidURLError, NeveInputError

__all__ = ["NOT_RETRIED_MARK", "call_with_session", "in_env", "public_signature", "to_json"]

#: Starts the message of an error a retry cannot fix; the Airflow side fails the task at once.
NOT_RETRIED_MARK = "[neve: not retried] "
_NOT_RETRIED = (NeveInputError, InvalidURLError, ConnectionNotFoundError)


class NotRetriedError(RuntimeError):
    """Carries an error a retry cannot fix across the process boundary (by its message)."""


def public_signature(func: Callable[..., Any]) -> inspect.Signature:
    """``func``'s signature without ``session``: what the DAG author calls the task with."""
    signature = inspect.signature(func)
    return signature.replace(parameters=[p for p in signature.parameters.values() if p.name != "session"])


def call_with_session(func: Callable[..., Any], session: Any, args: Any, kwargs: Any) -> Any:
    """Call ``func`` with the task's arguments (refs rebuilt from plain dicts) and, if it
    declares one, ``session``, wherever ``session`` sits in its parameter list."""
    signature = inspect.signature(func)
    bound = public_signature(func).bind(*args, **kwargs)
    arguments = {name: from_json_ref(value) for name, value in bound.arguments.items()}
    if "session" in signature.parameters:
        arguments["session"] = session
    ordered = {n: arguments[n] for n in signature.parameters if n in arguments}
    full = inspect.BoundArguments(signature, ordered)  # type: ignore[arg-type]
    return func(*full.args, **full.kwargs)


def in_env(func: Callable[..., Any], conn_id: str) -> Callable[..., Any]:
    """``func`` called as an env task: ``session`` injected by name, refs in, JSON out."""
    takes_session = "session" in inspect.signature(func).parameters

    @functools.wraps(func)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            if not takes_session:
                return to_json(call_with_session(func, None, args, kwargs), None)
            import neve

            with neve.connect(airflow_conn_id=conn_id) as session:
                return to_json(call_with_session(func, session, args, kwargs), session)
        except _NOT_RETRIED as exc:
            # Bad input, a missing file or a malformed URL fails the same way on every try.
            raise NotRetriedError(f"{NOT_RETRIED_MARK}{type(exc).__name__}: {exc}") from exc

    return call


def to_json(value: Any, session: Any) -> Any:
    """``value`` as plain JSON types: refs as dicts, a registry ModelVersion as its ref."""
    if hasattr(value, "version_name") and hasattr(value, "model_name"):
        return dict(model_version_ref(value, session))
    if isinstance(value, Mapping):
        return {k: to_json(v, session) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v, session) for v in value]
    type_name = type(value).__module__.split(".")[0]
    if type_name in ("ibis", "pandas", "pyarrow", "polars"):
        raise NeveInputError(
            f"an env task returned a {type(value).__name__}: data does not go through XCom. Save it "
            f"with session.create_table(name, ...) and return TableRef.of(session, name)"
        )
    return value
