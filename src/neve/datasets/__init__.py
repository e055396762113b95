"""Synthetic data sets generated inside the engine, for demos, tests and benchmarks.

``taxi(session, rows, seed)`` writes NYC-taxi-shaped trips straight into a DuckDB
table; nothing passes through Python memory, so 50M rows cost what DuckDB needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from neve._lazy_exports import lazy_exports

if TYPE_CHECKING:
    from neve.datasets._taxi import TAXI_COLUMNS, taxi, taxi_marginals

__all__ = ["TAXI_COLUMNS", "taxi", "taxi_marginals"]

__getattr__ = lazy_exports(
    __name__,
    {
        "TAXI_COLUMNS": "neve.datasets._taxi",
        "taxi": "neve.datasets._taxi",
        "taxi_marginals": "neve.datasets._taxi",
    },
)
