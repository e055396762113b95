"""Generated data for the scoring tests: regression, binary and multiclass, with NaNs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

N = 400


@pytest.fixture(scope="module")
def data() -> dict[str, object]:
    rng = np.random.default_rng(42)
    X = pd.DataFrame(rng.normal(size=(N, 4)), columns=["A", "B", "C", "D"])
    X["C"] = np.round(X["C"], 1)  # ties on thresholds
    noise = rng.normal(scale=0.3, size=N)
    y = 2 * X["A"] - X["B"] + X["C"] * X["D"] + noise
    X_nan = X.copy()
    X_nan.loc[rng.random(N) < 0.1, "A"] = np.nan
    X_nan.loc[rng.random(N) < 0.1, "D"] = np.nan
    return {
        "X": X,
        "X_nan": X_nan,
        "y": y.to_numpy(),
        "y_bin": np.where(y > 0, "yes", "no"),
        "y_multi": np.digitize(y, [-1.0, 1.0]),
    }
