"""``@task.neve(env="taxi")``: a ``@task.neve`` task that runs in a neve task environment.

>>> @task.neve(conn_id="neve_default", env="taxi")
... def train(session, data: TableRef) -> ModelVersionRef:
...     from neve import Registry
...     ...
...     return Registry(session).log_model(model, model_name="trip_duration")

Built as Airflow's own ``@task.external_python`` is (``task_decorator_factory`` around
an ``ExternalPythonOperator``), with the interpreter of the env ``neve env build`` made
(``[tool.neve.envs.<env>]`` in the project's pyproject.toml). Airflow runs only the
function's source there, so it imports what it uses, and no Airflow is needed in the env.
Inside, the function gets what an in-process ``@task.neve`` task gets (see
:mod:`neve.airflow._env_call`): an open ``session``, refs rebuilt from XCom, and its
return value stored as JSON; a returned registry ``ModelVersion`` becomes a
``ModelVersionRef`` and an Asset event on its model, recorded on the Airflow side.

The task fails at once, without retries, when the env is not built or is stale (with the
``neve env build`` command that fixes it), and when the function raises a neve input
error (bad data, a missing file, a malformed URL): a retry would fail the same way.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from airflow.providers.common.compat.sdk import DecoratedOperator
from airflow.providers.standard.operators.python import ExternalPythonOperator
from airflow.sdk import AssetAlias
from airflow.sdk.exceptions import AirflowException, AirflowFailException

import neve.envs
from neve.airflow._env_call import NOT_RETRIED_MARK, public_signature
from neve.airflow._refs import ModelVersionRef
from neve.airflow.assets import MODEL_ALIAS, record_model_event
from neve.airflow.hooks.neve import NeveHook
from neve.engine._airflow_conn import env_var_name
from neve.envs import PROJECT_VARIABLE, EnvDeclarationError, EnvError, find_project
from neve.errors import ConnectionNotFoundError, InvalidURLError

__all__ = ["NeveEnvDecoratedOperator"]


def _project_of(func: Callable[..., Any], project: str | os.PathLike[str] | None) -> Path:
    """The project declaring the env: ``project``, else $NEVE_PROJECT, else the nearest one
    above the DAG file."""
    if project is None and os.environ.get(PROJECT_VARIABLE):
        project = os.environ[PROJECT_VARIABLE]
    root = find_project(project if project is not None else inspect.getfile(func))
    if root is None:
        raise EnvDeclarationError(
            f"no pyproject.toml with a [tool.neve.envs] table at or above {inspect.getfile(func)}: "
            f"declare the env there, or set {PROJECT_VARIABLE} (or project=) to the project that does"
        )
    return root


def _with_public_signature(func: Callable[..., Any]) -> Callable[..., Any]:
    """A stand-in for ``func`` that Airflow binds and inspects without ``session``. It is
    never called: the env runs ``func``'s source."""

    @functools.wraps(func)
    def stand_in(*args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    stand_in.__signature__ = public_signature(func)  # type: ignore[attr-defined]
    return stand_in


class NeveEnvDecoratedOperator(DecoratedOperator, ExternalPythonOperator):
    custom_operator_name = "@task.neve"
    template_fields: Sequence[str] = (*ExternalPythonOperator.template_fields, "conn_id")

    def __init__(
        self,
        *,
        python_callable: Callable[..., Any],
        op_args: Any,
        op_kwargs: Any,
        env: str,
        conn_id: str = NeveHook.default_conn_name,
        project: str | os.PathLike[str] | None = None,
        **kwargs: Any,
    ) -> None:
        self.env = env
        self.conn_id = conn_id
        self.project = str(_project_of(python_callable, project))
        # Only a path: DAG files parse whether or not the env is built (see execute).
        python = neve.envs.python(env, project=self.project)
        stand_in = _with_public_signature(python_callable)
        outlets = list(kwargs.pop("outlets", None) or [])
        if not any(isinstance(o, AssetAlias) and o.name == MODEL_ALIAS.name for o in outlets):
            outlets.append(MODEL_ALIAS)
        kwargs.setdefault("expect_airflow", False)
        super().__init__(
            kwargs_to_upstream={"python_callable": stand_in, "op_args": op_args, "op_kwargs": op_kwargs},
            python_callable=stand_in,
            op_args=op_args,
            op_kwargs=op_kwargs,
            python=python,
            outlets=outlets,
            **kwargs,
        )

    def get_python_source(self) -> str:
        """The function's source, its name rebound to the env-side wrapper (session, refs, JSON)."""
        name = self.python_callable.__name__
        return (
            f"{super().get_python_source()}\n"
            f"from neve.airflow._env_call import in_env as _neve_in_env\n"
            f"{name} = _neve_in_env({name}, {self.conn_id!r})\n"
        )

    def execute(self, context: Any) -> Any:
        try:
            neve.envs.require(self.env, project=self.project)
        except EnvError as exc:
            # Not built or stale: every retry would find it so. Fail now, with the fix.
            raise AirflowFailException(f"{type(exc).__name__}: {exc}") from exc
        self.env_vars = {**(self.env_vars or {}), **self._connection_variable()}
        try:
            result = super().execute(context)
        except AirflowException as exc:
            message = str(exc)
            if NOT_RETRIED_MARK in message:
                raise AirflowFailException(message.split(NOT_RETRIED_MARK, 1)[1].strip()) from exc
            raise
        if ModelVersionRef.is_ref(result):
            record_model_event(ModelVersionRef.from_dict(result), "logged", context=context)
        return result

    def _connection_variable(self) -> dict[str, str]:
        """``AIRFLOW_CONN_<ID>`` for the env, which reads the connection without Airflow: the
        inherited variable when there is one, else the connection Airflow resolves (metadata
        DB, secrets backend) in its JSON form. Passed to the child only, never logged."""
        var = env_var_name(self.conn_id)
        if os.environ.get(var):
            return {}
        try:
            conn = NeveHook(self.conn_id).connection()
        except (ConnectionNotFoundError, InvalidURLError) as exc:
            raise AirflowFailException(f"{type(exc).__name__}: {exc}") from exc
        fields = {"conn_type": conn.conn_type, "host": conn.host, "login": conn.login,
                  "password": conn.password, "schema": conn.schema, "port": conn.port, "extra": conn.extra}
        return {var: json.dumps({k: v for k, v in fields.items() if v not in (None, "", {})})}
