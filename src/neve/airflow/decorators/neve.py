"""``@task.neve``: a Python task that receives a neve ``session``.

>>> @task.neve(conn_id="neve_default")
... def transform(session, raw: TableRef) -> TableRef:
...     t = raw.table(session)
...     session.create_table("TAXI_DATA", t.filter(t.trip_distance > 0), overwrite=True)
...     return TableRef.of(session, "TAXI_DATA")

The session is opened from the Airflow connection when the task runs and closed
when it ends (on DuckDB that releases the file lock for the next task). Refs
come back from XCom as plain dicts and are turned back into ``TableRef`` and
``ModelVersionRef`` on the way in. A returned registry ``ModelVersion`` is
stored as a ``ModelVersionRef`` and records an Asset event on its model.

With ``env="taxi"`` the function runs in that neve task environment instead, with the
same session, refs and events (:mod:`neve.airflow.decorators.neve_env`).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from typing import Any

import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa
from airflow.providers.common.compat.sdk import DecoratedOperator, task_decorator_factory
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import AssetAlias

from neve.airflow._env_call import call_with_session, public_signature
from neve.airflow.assets import MODEL_ALIAS, model_version_ref, record_model_event
from neve.airflow.hooks.neve import NeveHook
from neve.errors import ConnectionNotFoundError, InvalidURLError, NeveInputError

__all__ = ["neve_task"]

_SESSION: ContextVar[Any] = ContextVar("neve_airflow_session")
#: Errors a retry cannot fix: the same input, file or URL fails the same way again.
_NOT_RETRIED = (NeveInputError, InvalidURLError, ConnectionNotFoundError)


def _inject_session(func: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap ``func`` so Airflow sees its signature without ``session`` and the running task's
    session is passed in by name, wherever ``session`` sits in the parameter list."""
    takes_session = "session" in inspect.signature(func).parameters

    @functools.wraps(func)
    def call(*args: Any, **kwargs: Any) -> Any:
        return call_with_session(func, _SESSION.get() if takes_session else None, args, kwargs)

    call.__signature__ = public_signature(func)  # type: ignore[attr-defined]
    return call


class _NeveDecoratedOperator(DecoratedOperator, PythonOperator):
    custom_operator_name = "@task.neve"
    template_fields: Sequence[str] = (*PythonOperator.template_fields, "conn_id")

    def __init__(
        self,
        *,
        python_callable: Callable[..., Any],
        op_args: Any,
        op_kwargs: Any,
        conn_id: str = NeveHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        self.conn_id = conn_id
        wrapped = _inject_session(python_callable)
        outlets = list(kwargs.pop("outlets", None) or [])
        if not any(isinstance(o, AssetAlias) and o.name == MODEL_ALIAS.name for o in outlets):
            outlets.append(MODEL_ALIAS)
        super().__init__(
            kwargs_to_upstream={
                "python_callable": wrapped,
                "op_args": op_args,
                "op_kwargs": op_kwargs,
            },
            python_callable=wrapped,
            op_args=op_args,
            op_kwargs=op_kwargs,
            outlets=outlets,
            **kwargs,
        )

    def execute(self, context: Any) -> Any:
        try:
            with NeveHook(self.conn_id).get_session() as session:
                token = _SESSION.set(session)
                try:
                    result = super().execute(context)
                    return _for_xcom(result, session, context)
                finally:
                    _SESSION.reset(token)
        except _NOT_RETRIED as exc:
            # Bad input, a missing file or a malformed URL fails the same way on every try:
            # fail now, with the message, instead of after the retry delay.
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(f"{type(exc).__name__}: {exc}") from exc


def _for_xcom(result: Any, session: Any, context: Any) -> Any:
    if isinstance(result, (ir.Table, pd.DataFrame, pa.Table)):
        raise NeveInputError(
            f"a @task.neve task returned a {type(result).__name__}: data does not go through "
            f"XCom. Save it with session.create_table(name, ...) and return "
            f"TableRef.of(session, name)"
        )
    if hasattr(result, "version_name") and hasattr(result, "model_name"):
        ref = model_version_ref(result, session)
        record_model_event(ref, "logged", context=context)
        return ref
    return result


def neve_task(
    python_callable: Callable[..., Any] | None = None,
    multiple_outputs: bool | None = None,
    **kwargs: Any,
) -> Any:
    """``@task.neve(conn_id="neve_default", env=None, ...)``: takes every ``@task`` argument
    plus ``conn_id``, the Airflow connection (neve, postgres, snowflake or spark type) to
    open, and ``env``, a neve task environment to run the function in (see
    :mod:`neve.airflow.decorators.neve_env`; ``project=`` names the project declaring it
    when it is not above the DAG file)."""
    if kwargs.get("env") is not None:
        from neve.airflow.decorators.neve_env import NeveEnvDecoratedOperator

        operator: type = NeveEnvDecoratedOperator
    else:
        kwargs.pop("env", None)
        operator = _NeveDecoratedOperator
    return task_decorator_factory(
        python_callable=python_callable,
        multiple_outputs=multiple_outputs,
        decorated_operator_class=operator,
        **kwargs,
    )
