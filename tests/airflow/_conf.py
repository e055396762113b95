"""Run confs for the in-process ``dag.test()`` runs of the taxi DAG, every param given.

``dag.test()`` runs the tasks in this process, and Airflow's param processing resolves a
run's conf into the DAG's own ``Param`` objects: a param one run set (``auto_approve``, the
lockdown month's ``score_month``) stays set for the next run in the process unless that run
gives it too. So every run here states all of them.
"""

from __future__ import annotations

from typing import Any

#: The DAG's declared defaults (tests/airflow/test_taxi_trip_duration.py checks them).
DEFAULTS: dict[str, Any] = {"score_month": None, "auto_approve": False}


def run_conf(**params: Any) -> dict[str, Any]:
    unknown = set(params) - set(DEFAULTS)
    assert not unknown, f"not a param of the taxi DAG: {sorted(unknown)}"
    return {**DEFAULTS, **params}
