"""neve's Airflow provider: ``NeveHook``, ``@task.neve``, refs and model Asset events.

Installed with ``pip install 'neve[airflow]'`` and discovered by Airflow through
the ``apache_airflow_provider`` entry point. ``TableRef``, ``ModelVersionRef``,
``model_version_ref``, ``logged_by_run`` and ``registry_name`` import without Airflow, so a task in an
environment that lacks it (``@task.external_python``) can still make and read
them; everything else here loads Airflow on first use.
"""

from __future__ import annotations

from neve._lazy_exports import lazy_exports
from neve.airflow._refs import (
    ModelVersionRef,
    TableRef,
    from_json_ref,
    logged_by_run,
    model_version_ref,
    registry_name,
)

__all__ = [
    "MODEL_ALIAS",
    "alias_asset",
    "connection_registry",
    "ModelVersionRef",
    "NeveHook",
    "TableRef",
    "from_json_ref",
    "logged_by_run",
    "model_asset",
    "model_version_ref",
    "neve_task",
    "record_model_event",
    "registry_name",
]

_LAZY = {
    "NeveHook": "neve.airflow.hooks.neve",
    "neve_task": "neve.airflow.decorators.neve",
    "MODEL_ALIAS": "neve.airflow.assets",
    "alias_asset": "neve.airflow.assets",
    "connection_registry": "neve.airflow.assets",
    "model_asset": "neve.airflow.assets",
    "record_model_event": "neve.airflow.assets",
}


__getattr__ = lazy_exports(__name__, _LAZY)
