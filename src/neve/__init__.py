"""neve: machine learning where the data lives.

Pushdown preprocessing, a warehouse-native model registry and Airflow tasks
over any engine Ibis speaks, with embedded DuckDB as the default.
"""

from __future__ import annotations

from neve import errors
from neve.engine import Session, capture_queries, connect
from neve.errors import NeveError
from neve.pipeline import Pipeline
from neve.registry import Registry

__all__ = [
    "NeveError",
    "Pipeline",
    "Registry",
    "Session",
    "capture_queries",
    "connect",
    "errors",
]

__version__ = "0.1.0"
