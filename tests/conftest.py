"""Shared fixtures. Tests mirror src/neve/: tests/engine, tests/preprocessing, ..."""

from __future__ import annotations

from pathlib import Path

import pytest

import neve

REPO = Path(__file__).resolve().parents[1]
TAXI_DIR = REPO / "data" / "nyc_taxi"


@pytest.fixture
def session(tmp_path: Path) -> neve.Session:
    """A real DuckDB file in a temporary folder."""
    with neve.connect(f"duckdb:///{tmp_path / 'test.duckdb'}") as s:
        yield s


@pytest.fixture
def taxi_files() -> list[Path]:
    return [TAXI_DIR / f"yellow_tripdata_sample_2019-0{m}.csv" for m in (1, 2)]
