"""Training baselines and drift reports, computed in the engine.

:func:`baseline` profiles training features once, when a model version is
logged; :func:`drift` compares new data against that profile in one query and
returns a :class:`DriftReport`.
"""

from __future__ import annotations

from neve.monitoring._baseline import BASELINE_FORMAT, baseline
from neve.monitoring._drift import DriftReport, DriftThresholds, drift

__all__ = ["BASELINE_FORMAT", "DriftReport", "DriftThresholds", "baseline", "drift"]
