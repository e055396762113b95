"""neve.metrics against scikit-learn's, one query each, on a real DuckDB file."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sklearn.metrics as skm

from neve import metrics
from neve.engine._queries import capture_queries
from neve.errors import ColumnNotFoundError, EmptyInputError, NeveInputError

N = 1000


@pytest.fixture
def table(session):
    rng = np.random.default_rng(7)
    y = rng.normal(size=N)
    proba = rng.dirichlet([1, 1, 1], N)
    frame = pd.DataFrame(
        {
            "Y": y,
            "P": y + rng.normal(size=N),
            "YB": rng.integers(0, 2, N),
            "PB": rng.integers(0, 2, N),
            "SCORE": np.round(rng.random(N), 2),  # many ties
            "YM": rng.choice(["a", "b", "c"], N),
            "PM": rng.choice(["a", "b", "c", "d"], N, p=[0.4, 0.3, 0.2, 0.1]),
            "P0": proba[:, 0],
            "P1": proba[:, 1],
            "P2": proba[:, 2],
        }
    )
    frame.loc[:3, "SCORE"] = [0.0, 1.0, 0.0, 1.0]  # exercise log_loss clipping
    return session.create_table("PREDS", frame), frame


def _one_query(fn, *args, **kwargs):
    with capture_queries() as log:
        value = fn(*args, **kwargs)
    assert len(log) == 1, log.queries
    return value


@pytest.mark.parametrize("name", ["mean_squared_error", "mean_absolute_error", "r2_score"])
def test_regression_metrics(table, name):
    t, f = table
    got = _one_query(getattr(metrics, name), t, y_true="Y", y_pred="P")
    assert got == pytest.approx(getattr(skm, name)(f["Y"], f["P"]), rel=1e-12)


def test_all_regression_metrics_from_one_query(table):
    t, f = table
    got = _one_query(metrics.regression_metrics, t, y_true="Y", y_pred="P")
    mse = skm.mean_squared_error(f["Y"], f["P"])
    expected = {"mse": mse, "rmse": mse**0.5, "mae": skm.mean_absolute_error(f["Y"], f["P"]),
                "r2": skm.r2_score(f["Y"], f["P"])}
    assert got == pytest.approx(expected, rel=1e-12)


def test_r2_constant_target(session):
    t = session.create_table("C", pd.DataFrame({"Y": [1.0, 1.0], "P": [1.0, 2.0]}))
    assert metrics.r2_score(t, "Y", "P") == skm.r2_score([1.0, 1.0], [1.0, 2.0]) == 0.0


def test_accuracy(table):
    t, f = table
    assert _one_query(metrics.accuracy_score, t, "YM", "PM") == skm.accuracy_score(f["YM"], f["PM"])


@pytest.mark.parametrize("name", ["precision_score", "recall_score", "f1_score"])
@pytest.mark.parametrize("average", ["macro", "micro", "weighted", None])
def test_precision_recall_f1_multiclass(table, name, average):
    t, f = table
    got = _one_query(getattr(metrics, name), t, "YM", "PM", average=average)
    expected = getattr(skm, name)(f["YM"], f["PM"], average=average, zero_division=0)
    np.testing.assert_allclose(got, expected, rtol=1e-12)


@pytest.mark.parametrize("name", ["precision_score", "recall_score", "f1_score"])
@pytest.mark.parametrize("pos_label", [0, 1])
def test_precision_recall_f1_binary(table, name, pos_label):
    t, f = table
    got = getattr(metrics, name)(t, "YB", "PB", pos_label=pos_label)
    assert got == pytest.approx(getattr(skm, name)(f["YB"], f["PB"], pos_label=pos_label), rel=1e-12)


def test_binary_average_refuses_more_labels(table):
    with pytest.raises(NeveInputError, match="average='macro'"):
        metrics.f1_score(table[0], "YM", "PM")


def test_roc_auc_with_ties(table):
    t, f = table
    got = _one_query(metrics.roc_auc_score, t, "YB", "SCORE")
    assert got == pytest.approx(skm.roc_auc_score(f["YB"], f["SCORE"]), rel=1e-12)
    flipped = metrics.roc_auc_score(t, "YB", "SCORE", pos_label=0)
    assert flipped == pytest.approx(skm.roc_auc_score(1 - f["YB"], f["SCORE"]), rel=1e-12)


def test_log_loss_binary_clipped_and_multiclass(table):
    t, f = table
    assert _one_query(metrics.log_loss, t, "YB", "SCORE") == pytest.approx(
        skm.log_loss(f["YB"], f["SCORE"]), rel=1e-12
    )
    probs = f[["P0", "P1", "P2"]].to_numpy()
    got = _one_query(metrics.log_loss, t, "YM", ["P0", "P1", "P2"])
    assert got == pytest.approx(skm.log_loss(f["YM"], probs), rel=1e-12)
    with pytest.raises(NeveInputError, match="2 probability columns"):
        metrics.log_loss(t, "YM", ["P0", "P1"])


def test_bad_input(table, session):
    t, _ = table
    with pytest.raises(ColumnNotFoundError, match="NOPE"):
        metrics.mean_squared_error(t, "Y", "NOPE")
    with pytest.raises(NeveInputError, match="outside"):
        metrics.log_loss(t, "YB", "Y")
    empty = session.create_table("E", pd.DataFrame({"Y": [np.nan], "P": [1.0]}))
    with pytest.raises(EmptyInputError):
        metrics.mean_squared_error(empty, "Y", "P")
