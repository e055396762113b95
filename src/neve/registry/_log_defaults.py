"""What ``log_model`` works out for itself: a retry's earlier version, the Airflow tags, a sample.

Inside an Airflow task the run context (``AIRFLOW_CTX_*``, which Airflow exports to the
task's process and its children, task environments included) says which DAG run and task
is logging. The version row and its commit event record it, so a retry of the task can
find what an earlier try logged instead of logging a second version.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from neve.registry import _lineage

if TYPE_CHECKING:
    from neve.registry._model import ModelVersion
    from neve.registry._registry import Registry

__all__ = ["airflow_tags", "earlier_try_version", "sample_rows"]

TRY_NUMBER = "AIRFLOW_CTX_TRY_NUMBER"
#: How many rows a default sample input holds.
SAMPLE_ROWS = 5


def airflow_tags() -> dict[str, str]:
    """``airflow_dag_id``, ``airflow_run_id`` and ``airflow_task_id`` of the running task (none outside one)."""
    context = _lineage.airflow_context()
    if not context.get("dag_run_id"):
        return {}
    names = {"dag_id": "airflow_dag_id", "dag_run_id": "airflow_run_id", "task_id": "airflow_task_id"}
    return {tag: context[key] for key, tag in names.items() if context.get(key)}


def earlier_try_version(registry: Registry, model_name: str) -> ModelVersion | None:
    """On a retry of an Airflow task, the newest live version of ``model_name`` that an earlier
    try of the same task in the same DAG run logged; None on a first try or outside Airflow.

    One version per model and task try is what makes this safe: a task that logs several
    versions of one model gets the newest back for each call on its retry.
    """
    context = _lineage.airflow_context()
    try:
        attempt = int(os.environ.get(TRY_NUMBER) or 1)
    except ValueError:
        attempt = 1
    if attempt <= 1 or not context.get("dag_run_id") or not context.get("task_id"):
        return None
    commits = registry.events(
        model_name, kinds=("commit",), dag_id=context.get("dag_id"), run_id=context["dag_run_id"]
    )
    live = None
    for version, run in zip(commits["version_name"], commits["run_context"], strict=True):
        if (run.get("airflow") or {}).get("task_id") != context["task_id"]:
            continue
        if live is None:
            live = set(registry.get_model(model_name).show_versions()["version_name"])
        if version in live:
            return registry.get_model(model_name).version(version)
    return None


def sample_rows(model: Any, feature_pipeline: Any, training_data: Any) -> Any:
    """The first rows of the training data as the model reads them: through the feature
    pipeline, restricted to the model's ``feature_names_in_``. None when the model does not
    name its inputs, or the pipeline's output lacks one of them."""
    from neve.preprocessing._base import as_table  # scikit-learn: only when logging

    names = getattr(model, "feature_names_in_", None)
    if names is None:
        return None
    head = as_table(training_data)[0].limit(SAMPLE_ROWS)
    if feature_pipeline is not None:
        head = feature_pipeline.transform(head)
    names = [str(n) for n in names]
    if not set(names) <= set(head.columns):
        return None
    return head.select(*names)
