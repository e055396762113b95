"""Airflow Asset events for model versions: ``neve://<registry>/<model>``.

A task that logs or promotes a model version records an event on the model's
asset, with the version, its metrics, tags and aliases in ``extra``, so a
scoring DAG can be scheduled on ``Asset("neve://<registry>/<model>")``. The
asset is reached through the alias :data:`MODEL_ALIAS` because its URI is only
known at run time; ``@task.neve`` tasks declare the alias as an outlet.
"""

from __future__ import annotations

import os
from typing import Any

from airflow.sdk import Asset, AssetAlias

from neve.airflow._refs import ModelVersionRef, model_version_ref, registry_name
from neve.errors import NeveInputError

__all__ = [
    "MODEL_ALIAS",
    "alias_asset",
    "connection_registry",
    "model_asset",
    "model_version_ref",
    "record_model_event",
    "registry_name",
]

#: The alias every ``@task.neve`` task declares as an outlet.
MODEL_ALIAS = AssetAlias("neve-model-versions")


def model_asset(registry: str, model: str) -> Asset:
    """The Asset a model publishes to; schedule a DAG on it to react to new versions."""
    uri = f"neve://{registry}/{model}"
    return Asset(uri=uri, name=uri, group="neve-model")


def alias_asset(registry: str, model: str, alias: str = "production") -> Asset:
    """The Asset an alias of a model publishes to, ``neve://<registry>/<model>/aliases/<alias>``:
    an event is recorded on it whenever the alias moves (from a task, or from the registry's
    page in Airflow's UI). Schedule a scoring DAG on it to follow the production model."""
    uri = f"neve://{registry}/{model}/aliases/{alias}"
    return Asset(uri=uri, name=uri, group="neve-model")


def connection_registry(conn_id: str) -> str:
    """The registry name (see :func:`registry_name`) of an Airflow connection, without opening
    it: for a DAG file to name a model's Asset at parse time. Read from ``AIRFLOW_CONN_<ID>``
    when set, else from the connection Airflow resolves."""
    from neve.engine._airflow_conn import env_var_name, url_from_env

    if os.environ.get(env_var_name(conn_id)):
        return registry_name(url_from_env(conn_id))
    from neve.airflow.hooks.neve import NeveHook

    return registry_name(NeveHook(conn_id).get_url())


def record_model_event(
    ref: ModelVersionRef,
    action: str = "logged",
    *,
    context: Any = None,
    alias: str | None = None,
) -> Asset:
    """Record an Asset event for ``ref`` on the running task (``action``: logged, promoted).
    With ``alias`` (the version was just given it), also one on :func:`alias_asset`.

    The task must declare :data:`MODEL_ALIAS` among its outlets; ``@task.neve`` does.
    """
    if context is None:
        from airflow.sdk import get_current_context

        context = get_current_context()
    task = context.get("task")
    outlets = getattr(task, "outlets", None) or []
    if task is not None and not any(
        isinstance(o, AssetAlias) and o.name == MODEL_ALIAS.name for o in outlets
    ):
        raise NeveInputError(
            f"task {task.task_id!r} cannot record a model event: add "
            f"outlets=[neve.airflow.MODEL_ALIAS] to it, or use @task.neve"
        )
    asset = model_asset(ref["registry"], ref["model"])
    extra = {
        "action": action,
        "model": ref["model"],
        "version": ref["version"],
        "metrics": dict(ref.get("metrics") or {}),
        "tags": dict(ref.get("tags") or {}),
        "aliases": list(ref.get("aliases") or []),
    }
    context["outlet_events"][MODEL_ALIAS].add(asset, extra=extra)
    if alias is not None:
        context["outlet_events"][MODEL_ALIAS].add(
            alias_asset(ref["registry"], ref["model"], alias), extra={**extra, "alias": alias}
        )
    return asset
