"""ModelVersion.drift and `neve models drift`: the logged baseline against new data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import neve
from neve.cli import main
from neve.errors import DriftError, NeveInputError


def test_version_drift_uses_the_logged_baseline(reg, fitted, train_df, session):
    model, X = fitted
    session.create_table("TRAIN", train_df)
    mv = reg.log_model(model, model_name="m", training_data=session.table("TRAIN"), sample_input=X.head(5))
    # The control is a fresh sample of the same distribution, not the training rows
    # themselves: those match their own baseline whatever the drift statistics compute.
    session.create_table("SAME_DISTRIBUTION", _same_distribution(train_df))
    control = mv.drift(session.table("SAME_DISTRIBUTION"))
    assert control.ok, control.features
    psi = {f["feature"]: f["psi"] for f in control.to_dict()["features"]}
    assert 0 < psi["DIST"] < 0.2  # nonzero: a different sample, scored honestly
    shifted = train_df.assign(DIST=train_df.DIST * 3)
    session.create_table("NEW", shifted)
    report = mv.drift(session.table("NEW"))
    assert report.drifted == ["DIST"]
    with pytest.raises(DriftError, match="DIST"):
        report.raise_if_drifted()


def _same_distribution(train_df, seed=7):
    """A new draw from the generator of the ``train_df`` fixture (tests/registry/conftest.py)."""
    rng = np.random.default_rng(seed)
    n = len(train_df)
    df = pd.DataFrame({"DIST": rng.gamma(2.0, 2.0, n), "HOUR": rng.integers(0, 24, n).astype("int64"),
                       "ZONE": rng.choice(["a", "b", "c"], n)})
    return df.assign(DURATION=3.0 * df.DIST + 0.1 * df.HOUR + rng.normal(0, 0.5, n))


def test_version_without_baseline_says_how_to_get_one(reg, fitted, session):
    model, _ = fitted
    mv = reg.log_model(model, model_name="m")
    with pytest.raises(NeveInputError, match="training_data"):
        mv.drift(session.table("NEVE_MODELS"))


def test_cli_drift_prints_a_table_and_exits_nonzero_on_drift(
    engine_url, tmp_path, fitted, train_df, capsys
):
    url, stage = engine_url, str(tmp_path / "cli.stage")
    model, X = fitted
    with neve.connect(url) as session:
        session.create_table("TRAIN", train_df)
        session.create_table("NEW", train_df.assign(DIST=train_df.DIST + 20))
        neve.Registry(session, stage=stage).log_model(
            model, model_name="m", training_data=session.table("TRAIN"), sample_input=X.head(5)
        )
    at = ["--url", url, "--stage", stage]
    assert main(["models", "drift", "m", "TRAIN", *at]) == 0
    assert "no drift" in capsys.readouterr().out
    png = tmp_path / "d.png"
    assert main(["models", "drift", "m", "NEW", *at, "--plot", str(png)]) == 3
    out = capsys.readouterr().out
    assert "DIST" in out and "yes" in out
    assert png.exists()
