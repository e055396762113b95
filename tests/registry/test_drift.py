"""ModelVersion.drift and `neve models drift`: the logged baseline against new data."""

from __future__ import annotations

import pytest

import neve
from neve.cli import main
from neve.errors import DriftError, NeveInputError


def test_version_drift_uses_the_logged_baseline(reg, fitted, train_df, session):
    model, X = fitted
    session.create_table("TRAIN", train_df)
    mv = reg.log_model(model, model_name="m", training_data=session.table("TRAIN"), sample_input=X.head(5))
    assert mv.drift(session.table("TRAIN")).ok
    shifted = train_df.assign(DIST=train_df.DIST * 3)
    session.create_table("NEW", shifted)
    report = mv.drift(session.table("NEW"))
    assert report.drifted == ["DIST"]
    with pytest.raises(DriftError, match="DIST"):
        report.raise_if_drifted()


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
