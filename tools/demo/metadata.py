"""Where the demo's files are, and what its Airflow run left in the metadata DB.

The DB is read with plain sqlite3, so showing progress does not pay for importing Airflow.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

__all__ = ["DAG_ID", "VARIANT_DAG_ID", "last_run", "read_xcom", "repo_root", "task_states"]

DAG_ID = "taxi_trip_duration"
#: The scikit-learn variant (HistGradientBoosting), run after the flagship for comparison.
VARIANT_DAG_ID = "taxi_trip_duration_sklearn"


def repo_root() -> Path:
    """The checkout this runner belongs to: it holds ``dags/`` and ``data/``."""
    return Path(__file__).resolve().parents[2]


def last_run(db_path: Path) -> int:
    """The newest DAG run's row id (0 for none): runs after it are this demo's."""
    if not db_path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=1) as con:
            return con.execute("SELECT coalesce(max(id), 0) FROM dag_run").fetchone()[0]
    except sqlite3.Error:  # no schema yet
        return 0


def task_states(
    db_path: Path, after_run: int = 0, dag_id: str = DAG_ID
) -> tuple[str | None, dict[str, tuple[str, int]]]:
    """``dag_id``'s newest run after row ``after_run``: its run id and each task's state and try."""
    if not db_path.exists():
        return None, {}
    try:
        with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=1) as con:
            row = con.execute(
                "SELECT run_id FROM dag_run WHERE dag_id = ? AND id > ? ORDER BY id DESC LIMIT 1", (dag_id, after_run)
            ).fetchone()
            if row is None:
                return None, {}
            rows = con.execute(
                "SELECT task_id, state, try_number FROM task_instance WHERE dag_id = ? AND run_id = ?",
                (dag_id, row[0]),
            ).fetchall()
    except sqlite3.Error:  # the child may be migrating the schema; try again next tick
        return None, {}
    return row[0], {task: (state or "scheduled", tries or 0) for task, state, tries in rows}


def read_xcom(db_path: Path, run_id: str, task_id: str, dag_id: str = DAG_ID) -> Any:
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as con:
        row = con.execute(
            "SELECT value FROM xcom WHERE dag_id = ? AND run_id = ? AND task_id = ? AND key = 'return_value'",
            (dag_id, run_id, task_id),
        ).fetchone()
    if row is None or row[0] is None:
        return None
    value = json.loads(row[0]) if isinstance(row[0], (str, bytes)) else row[0]
    return json.loads(value) if isinstance(value, str) else value
