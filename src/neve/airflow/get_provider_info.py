"""Provider metadata for Airflow, found through the ``apache_airflow_provider`` entry point.

This module must not import Airflow or neve's heavy parts: Airflow calls it while
it discovers providers.
"""

from __future__ import annotations

from typing import Any


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "neve",
        "name": "neve",
        "description": "ML where the data lives: pushdown preprocessing, a warehouse-native "
        "model registry and the @task.neve decorator (in-process, or in a neve task "
        "environment with env=...).",
        "connection-types": [
            {
                "connection-type": "neve",
                "hook-class-name": "neve.airflow.hooks.neve.NeveHook",
                "hook-name": "neve",
            }
        ],
        "task-decorators": [
            {"name": "neve", "class-name": "neve.airflow.decorators.neve.neve_task"},
        ],
    }
