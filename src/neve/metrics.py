"""Model metrics computed in the engine: one SQL query each, equal to scikit-learn's.

Every function takes an Ibis table and the names of its label and prediction
columns, runs a single query and returns a Python float (or, with
``average=None``, a numpy array per label)::

    mse = mean_squared_error(preds, y_true="TRIP_DURATION_SEC", y_pred="PREDICTION")

Classification metrics fetch small summaries (a confusion matrix, per-label
sums) and finish the arithmetic in Python, so the result matches scikit-learn's
definitions exactly, including its handling of ties and empty denominators.
Rows where any named column is NULL are ignored.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from neve.engine import _queries
from neve.errors import ColumnNotFoundError, EmptyInputError, InvalidParameterError, NeveInputError

__all__ = [
    "accuracy_score",
    "f1_score",
    "log_loss",
    "mean_absolute_error",
    "mean_squared_error",
    "precision_score",
    "r2_score",
    "recall_score",
    "regression_metrics",
    "roc_auc_score",
]

_EPS = float(np.finfo(np.float64).eps)


def _rows(table: ir.Table, *columns: str) -> ir.Table:
    if not isinstance(table, ir.Table):
        raise NeveInputError(f"metrics take an ibis Table, got {type(table).__name__}")
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ColumnNotFoundError(
            f"column(s) {missing} not found; available: {list(table.columns)}"
        )
    return table.drop_null(list(columns))


def _one(expr: ir.Expr) -> Any:
    return _queries.execute(expr)


def _check_rows(n: int, what: str) -> None:
    if not n:
        raise EmptyInputError(f"{what} needs at least one row without NULLs")


def _regression(table: ir.Table, y_true: str, y_pred: str, **aggs: Any) -> pd.Series:
    rows = _rows(table, y_true, y_pred)
    err = rows[y_true].cast("float64") - rows[y_pred].cast("float64")
    frame = _one(rows.aggregate(n=rows.count(), **{k: f(rows, err) for k, f in aggs.items()}))
    row = frame.iloc[0]
    _check_rows(int(row["n"]), "a regression metric")
    return row


def mean_squared_error(table: ir.Table, y_true: str, y_pred: str) -> float:
    row = _regression(table, y_true, y_pred, v=lambda t, e: (e * e).mean())
    return float(row["v"])


def mean_absolute_error(table: ir.Table, y_true: str, y_pred: str) -> float:
    row = _regression(table, y_true, y_pred, v=lambda t, e: e.abs().mean())
    return float(row["v"])


def r2_score(table: ir.Table, y_true: str, y_pred: str) -> float:
    """``1 - SS_res / SS_tot``; like scikit-learn, a constant ``y_true`` gives 1.0 for a
    perfect prediction and 0.0 otherwise."""
    row = _regression(
        table, y_true, y_pred,
        res=lambda t, e: (e * e).sum(),
        # var_pop is computed with a stable one-pass update, not sum(y^2) - n mean^2.
        var=lambda t, e: t[y_true].cast("float64").var(how="pop"),
    )
    res, tot = float(row["res"]), float(row["var"]) * int(row["n"])
    if tot == 0.0:
        return 1.0 if res == 0.0 else 0.0
    return 1.0 - res / tot


def regression_metrics(table: ir.Table, y_true: str, y_pred: str) -> dict[str, float]:
    """``mse``, ``rmse``, ``mae`` and ``r2`` of ``y_pred`` against ``y_true`` from one
    aggregate query; each equals its own function's value (and scikit-learn's)."""
    row = _regression(
        table, y_true, y_pred,
        res=lambda t, e: (e * e).sum(),
        abs=lambda t, e: e.abs().sum(),
        var=lambda t, e: t[y_true].cast("float64").var(how="pop"),
    )
    n = int(row["n"])
    res, tot = float(row["res"]), float(row["var"]) * n
    r2 = (1.0 if res == 0.0 else 0.0) if tot == 0.0 else 1.0 - res / tot
    return {"mse": res / n, "rmse": (res / n) ** 0.5, "mae": float(row["abs"]) / n, "r2": r2}


def accuracy_score(table: ir.Table, y_true: str, y_pred: str) -> float:
    rows = _rows(table, y_true, y_pred)
    frame = _one(rows.aggregate(n=rows.count(), hits=(rows[y_true] == rows[y_pred]).sum()))
    _check_rows(int(frame["n"].iloc[0]), "accuracy_score")
    return float(frame["hits"].iloc[0]) / float(frame["n"].iloc[0])


def _confusion(table: ir.Table, y_true: str, y_pred: str) -> pd.DataFrame:
    rows = _rows(table, y_true, y_pred)
    frame = _one(rows.group_by([rows[y_true].name("t"), rows[y_pred].name("p")]).aggregate(n=rows.count()))
    _check_rows(int(frame["n"].sum()), "a classification metric")
    return frame


def _prf(
    table: ir.Table, y_true: str, y_pred: str, *, average: str | None, pos_label: Any,
    labels: Sequence[Any] | None, beta_kind: str,
) -> float | np.ndarray:
    if average not in ("binary", "macro", "micro", "weighted", None):
        raise InvalidParameterError(
            f"average must be 'binary', 'macro', 'micro', 'weighted' or None, got {average!r}"
        )
    frame = _confusion(table, y_true, y_pred)
    present = sorted(set(frame["t"]) | set(frame["p"]))
    if average == "binary":
        if len(present) > 2:
            raise NeveInputError(
                f"average='binary' needs at most two labels in {y_true!r}/{y_pred!r}, found "
                f"{present}; pass average='macro' (or 'micro', 'weighted')"
            )
        if pos_label not in present and len(present) == 2:
            raise NeveInputError(f"pos_label={pos_label!r} is not a label; labels are {present}")
        chosen = [pos_label]
    else:
        chosen = list(labels) if labels is not None else present
    tp = np.array([frame.loc[(frame.t == c) & (frame.p == c), "n"].sum() for c in chosen], float)
    n_pred = np.array([frame.loc[frame.p == c, "n"].sum() for c in chosen], float)
    n_true = np.array([frame.loc[frame.t == c, "n"].sum() for c in chosen], float)
    if average == "micro":
        tp, n_pred, n_true = tp.sum(keepdims=True), n_pred.sum(keepdims=True), n_true.sum(keepdims=True)
    # zero_division: scikit-learn's default ("warn") scores an empty denominator as 0.
    precision = np.divide(tp, n_pred, out=np.zeros_like(tp), where=n_pred > 0)
    recall = np.divide(tp, n_true, out=np.zeros_like(tp), where=n_true > 0)
    if beta_kind == "precision":
        values = precision
    elif beta_kind == "recall":
        values = recall
    else:
        denom = n_pred + n_true
        values = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    if average is None:
        return values
    if average == "weighted":
        return float(np.average(values, weights=n_true)) if n_true.sum() else 0.0
    return float(values.mean()) if average == "macro" else float(values[0])


def precision_score(table: ir.Table, y_true: str, y_pred: str, *, average: str | None = "binary",
                    pos_label: Any = 1, labels: Sequence[Any] | None = None) -> float | np.ndarray:
    return _prf(table, y_true, y_pred, average=average, pos_label=pos_label, labels=labels,
                beta_kind="precision")


def recall_score(table: ir.Table, y_true: str, y_pred: str, *, average: str | None = "binary",
                 pos_label: Any = 1, labels: Sequence[Any] | None = None) -> float | np.ndarray:
    return _prf(table, y_true, y_pred, average=average, pos_label=pos_label, labels=labels,
                beta_kind="recall")


def f1_score(table: ir.Table, y_true: str, y_pred: str, *, average: str | None = "binary",
             pos_label: Any = 1, labels: Sequence[Any] | None = None) -> float | np.ndarray:
    return _prf(table, y_true, y_pred, average=average, pos_label=pos_label, labels=labels,
                beta_kind="f1")


def roc_auc_score(table: ir.Table, y_true: str, y_score: str, *, pos_label: Any = None) -> float:
    """Binary ROC AUC, exact with tied scores.

    Computed as the Mann-Whitney statistic over distinct scores: each positive counts
    the negatives scored below it plus half of those tied with it. That equals the
    trapezoidal area scikit-learn integrates. ``pos_label`` defaults to the greater label.
    """
    rows = _rows(table, y_true, y_score)
    labels = rows.select(label=rows[y_true]).distinct()
    # Positive is pos_label, or the greatest of the (two) labels: decided inside the query.
    positive = ibis.literal(pos_label) if pos_label is not None else labels.label.max().as_scalar()
    is_pos = rows[y_true] == positive
    per_score = rows.group_by(s=rows[y_score]).aggregate(
        pos=is_pos.ifelse(1, 0).sum(), neg=is_pos.ifelse(0, 1).sum()
    )
    below = per_score.neg.sum().over(ibis.window(order_by=per_score.s, rows=(None, -1)))
    ranked = per_score.mutate(below=below.fill_null(0))
    summary = ranked.aggregate(
        twice_u=(ranked.pos * (2 * ranked.below + ranked.neg)).sum(),
        P=ranked.pos.sum(),
        N=ranked.neg.sum(),
        n_labels=labels.count().as_scalar(),
    )
    row = _one(summary).iloc[0]
    if int(row["n_labels"]) != 2 and pos_label is None:
        raise NeveInputError(
            f"roc_auc_score needs exactly two labels in {y_true!r}, found {int(row['n_labels'])}"
        )
    P, N = int(row["P"]), int(row["N"])
    if P == 0 or N == 0:
        raise NeveInputError(
            f"roc_auc_score is undefined when {y_true!r} has only one class in the table"
        )
    return float(int(row["twice_u"]) / (2 * P * N))


def log_loss(
    table: ir.Table, y_true: str, y_proba: str | Sequence[str], *,
    labels: Sequence[Any] | None = None,
) -> float:
    """Cross-entropy, clipped to ``[eps, 1 - eps]`` as scikit-learn 1.9 does.

    ``y_proba`` is one column (the probability of the greater label, binary) or one
    column per label in sorted label order (e.g. the ``PROBABILITY_<class>`` columns of
    :func:`neve.scoring.score` with ``function_name="predict_proba"``).
    """
    columns = [y_proba] if isinstance(y_proba, str) else list(y_proba)
    rows = _rows(table, y_true, *columns)
    probs = [rows[c].cast("float64") for c in columns]
    if len(probs) == 1:
        probs = [ibis.literal(1.0) - probs[0], probs[0]]

    def clipped_log(p: ir.FloatingValue) -> ir.FloatingValue:
        return ibis.greatest(ibis.least(p, 1.0 - _EPS), _EPS).ln()

    row_sum = probs[0] if len(columns) == 1 else sum(probs[1:], probs[0])
    agg = {f"l{j}": clipped_log(p).sum() for j, p in enumerate(probs)}
    frame = _one(
        rows.group_by(label=rows[y_true]).aggregate(
            n=rows.count(),
            lo=_least([rows[c] for c in columns]).min(),
            hi=_greatest([rows[c] for c in columns]).max(),
            off=(row_sum - 1.0).abs().max() if len(columns) > 1 else ibis.literal(0.0),
            **agg,
        )
    )
    _check_rows(int(frame["n"].sum()), "log_loss")
    if frame["hi"].max() > 1 or frame["lo"].min() < 0:
        raise NeveInputError(
            f"{columns} hold values outside [0, 1] (min {frame['lo'].min()}, max {frame['hi'].max()})"
        )
    order = sorted(labels) if labels is not None else sorted(frame["label"])
    if len(order) != len(probs):
        raise NeveInputError(
            f"{y_true!r} has labels {order} but {len(probs)} probability columns were given "
            f"({columns}); pass labels=[...] in column order"
        )
    if frame["off"].max() > math.sqrt(_EPS):
        raise NeveInputError(f"the rows of {columns} do not sum to 1 (off by up to {frame['off'].max()})")
    index = {label: j for j, label in enumerate(order)}
    total = 0.0
    for _, group in frame.iterrows():
        if group["label"] not in index:
            raise NeveInputError(f"label {group['label']!r} in {y_true!r} is not in labels={order}")
        total += float(group[f"l{index[group['label']]}"])
    return -total / float(frame["n"].sum())


def _least(values: list[ir.NumericValue]) -> ir.NumericValue:
    # LEAST of one argument is an error on Spark.
    return values[0] if len(values) == 1 else ibis.least(*values)


def _greatest(values: list[ir.NumericValue]) -> ir.NumericValue:
    return values[0] if len(values) == 1 else ibis.greatest(*values)
