"""neve: machine learning where the data lives.

Pushdown preprocessing, a warehouse-native model registry and Airflow tasks
over any engine Ibis speaks, with embedded DuckDB as the default.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from neve import errors
from neve._lazy_exports import lazy_exports
from neve.errors import NeveError

if TYPE_CHECKING:
    from neve.engine import Session, capture_queries, connect
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

# Imported on first use: `import neve` stays cheap (no ibis, pandas or scikit-learn), which
# matters for the start-up of every task that runs in a neve env and for the CLI.
_LAZY = {
    "Session": "neve.engine",
    "capture_queries": "neve.engine",
    "connect": "neve.engine",
    "Pipeline": "neve.pipeline",
    "Registry": "neve.registry",
}


__getattr__ = lazy_exports(__name__, _LAZY)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
