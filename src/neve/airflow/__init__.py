"""neve's Airflow provider: ``NeveHook``, ``@task.neve``, refs and model Asset events.

Installed with ``pip install 'neve[airflow]'`` and discovered by Airflow through
the ``apache_airflow_provider`` entry point. ``TableRef`` and ``ModelVersionRef``
import without Airflow, so a task environment that lacks it can still read them;
everything else here loads Airflow on first use.
"""

from __future__ import annotations

from neve._lazy import lazy_exports
from neve.airflow._refs import ModelVersionRef, TableRef, from_json_ref

__all__ = [
    "MODEL_ALIAS",
    "ModelVersionRef",
    "NeveHook",
    "TableRef",
    "from_json_ref",
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
    "model_asset": "neve.airflow.assets",
    "model_version_ref": "neve.airflow.assets",
    "record_model_event": "neve.airflow.assets",
    "registry_name": "neve.airflow.assets",
}


__getattr__ = lazy_exports(__name__, _LAZY)
