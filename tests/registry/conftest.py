"""Fixtures for the registry tests: a small fitted model on a real DuckDB file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import Ridge

import neve


@pytest.fixture
def train_df() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {
            "DIST": rng.gamma(2.0, 2.0, 300),
            "HOUR": rng.integers(0, 24, 300).astype("int64"),
            "ZONE": rng.choice(["a", "b", "c"], 300),
        }
    )
    df["DURATION"] = 3.0 * df.DIST + 0.1 * df.HOUR + rng.normal(0, 0.5, 300)
    return df


@pytest.fixture
def fitted(train_df: pd.DataFrame) -> tuple[Ridge, pd.DataFrame]:
    X = train_df[["DIST", "HOUR"]]
    return Ridge(alpha=0.5).fit(X, train_df.DURATION), X


@pytest.fixture
def reg(session: neve.Session, tmp_path: Path, engine: str) -> neve.Registry:
    # DuckDB's default stage sits beside the database file; a server engine has no file,
    # so its tests name a stage in the same place.
    stage = None if engine == "duckdb" else str(tmp_path / "test.stage")
    return neve.Registry(session, stage=stage)
