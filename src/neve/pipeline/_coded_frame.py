"""Training rows for HistGradientBoosting: categories as small integer codes, streamed.

scikit-learn's HistGradientBoosting takes categorical features natively. Extracting the
raw rows would ship every category as text, and pandas and scikit-learn would then find
the categories again, scikit-learn by comparing Python objects row by row. Here the
engine does that work:

- one aggregate query finds each categorical column's categories (in scikit-learn's
  order, by neve's :class:`~neve.preprocessing.OrdinalEncoder`);
- the extract computes each value's code as its position in a constant array of the
  categories and sends it as ``int8`` (up to 127 categories) or ``int16``; numeric
  features come as float64, NULL as NaN;
- each code column reaches the model as a pandas nullable integer column over the
  streamed codes (no copy; NULL is the mask), named in ``categorical_features``;
- :func:`fit_on_codes` then gives the fitted model the raw category values in place of
  the codes, so it is the model scikit-learn fits on the same rows with
  ``astype("category")``: the same trees, ``predict`` on raw values, and
  :mod:`neve.scoring` compiles its categorical splits to ``IN`` lists of those values.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sklearn.base import clone

from neve._table import missing_to_null
from neve.engine import _queries
from neve.errors import (
    ColumnNotFoundError,
    ColumnTypeError,
    EmptyInputError,
    InvalidParameterError,
    NeveInputError,
)
from neve.pipeline._sparse import check_numeric
from neve.preprocessing import OrdinalEncoder
from neve.preprocessing import _categories as C

__all__ = ["CodedFrame", "categorical_columns", "extract_coded_frame", "fit_on_codes", "takes_categories"]

DEFAULT_BATCH_ROWS = 1_000_000


def takes_categories(estimator: Any) -> bool:
    """Whether ``estimator`` fits on pandas categorical columns natively."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    return isinstance(estimator, (HistGradientBoostingRegressor, HistGradientBoostingClassifier))


def categorical_columns(estimator: Any, table: ir.Table, features: Sequence[str]) -> list[str]:
    """The features ``estimator`` treats as categorical, read from its ``categorical_features``.

    ``"from_dtype"`` (scikit-learn's default) means the string columns: a warehouse table's
    text columns are what a pandas frame would hold as ``category``. Names, indices and
    boolean masks refer to ``features`` as scikit-learn's refer to the columns of ``X``.
    """
    name = type(estimator).__name__
    schema = table.schema()
    strings = [c for c in features if schema[c].is_string()]
    spec = estimator.categorical_features
    if isinstance(spec, str) and spec == "from_dtype":
        return strings
    if spec is None:
        chosen: list[str] = []
    else:
        chosen = _resolve(name, np.asarray(spec).ravel().tolist(), list(features))
    left_as_text = [c for c in strings if c not in chosen]
    if left_as_text:
        raise ColumnTypeError(
            f"{name}: feature column(s) {', '.join(map(repr, left_as_text))} hold text but are not "
            f"among its categorical_features ({spec!r}); list them there, leave categorical_features "
            f"at 'from_dtype', or encode them in the pipeline"
        )
    return chosen


def _resolve(name: str, spec: list[Any], features: list[str]) -> list[str]:
    if all(isinstance(s, (bool, np.bool_)) for s in spec) and spec:
        if len(spec) != len(features):
            raise InvalidParameterError(
                f"{name}: categorical_features is a mask of {len(spec)} but the model has "
                f"{len(features)} features ({', '.join(features)})"
            )
        return [f for f, keep in zip(features, spec, strict=True) if keep]
    if all(isinstance(s, (int, np.integer)) for s in spec):
        bad = [s for s in spec if not 0 <= s < len(features)]
        if bad:
            raise InvalidParameterError(
                f"{name}: categorical_features index(es) {bad} out of range for {len(features)} features"
            )
        return [features[s] for s in spec]
    unknown = [s for s in spec if s not in features]
    if unknown:
        raise ColumnNotFoundError(
            f"{name}: categorical_features {', '.join(map(repr, unknown))} are not features of the "
            f"transformed table (features: {', '.join(features)})"
        )
    return [s for s in features if s in set(spec)]


class CodedFrame(NamedTuple):
    """``X`` (code columns and float64 numeric columns), ``y``, and per categorical
    column its categories: code ``k`` stands for ``categories[column][k]``."""

    X: pd.DataFrame
    y: np.ndarray
    categories: dict[str, list[Any]]


def extract_coded_frame(
    estimator: Any,
    table: ir.Table,
    features: Sequence[str],
    label: str,
    *,
    batch_rows: int = DEFAULT_BATCH_ROWS,
) -> CodedFrame:
    """``table``'s ``features`` as a DataFrame for ``estimator``, categorical columns as
    nullable integer codes, and the ``label`` array: one query for the categories, one
    streamed extract."""
    features = list(features)
    categorical = categorical_columns(estimator, table, features)
    categories: dict[str, list[Any]] = {}
    if categorical:
        encoder = OrdinalEncoder(input_cols=categorical, handle_unknown="use_encoded_value", unknown_value=-1,
                                 encoded_missing_value=-1)
        try:
            encoder.fit(table)
        except EmptyInputError:  # said as the caller's model, which is what they fitted
            raise EmptyInputError(f"{type(estimator).__name__}.fit got a table with no rows with a label") from None
        categories = {c: [v for v in encoder.categories_[c] if not C.is_missing(v)] for c in categorical}
        _check_cardinality(estimator, categories)
    check_numeric(table, [f for f in features if f not in categories],
                  "feature column(s) {columns} are neither numeric nor categorical for the model")
    coded = _with_codes(table, categories)
    columns = [
        coded[f].cast("int8" if len(categories[f]) <= np.iinfo(np.int8).max else "int16").name(f)
        if f in categories
        else coded[f].cast("float64").name(f)
        for f in features
    ]
    parts: dict[str, list[np.ndarray]] = {name: [] for name in [*features, label]}
    for batch in _queries.to_pyarrow_batches(coded.select(*columns, coded[label]), chunk_size=batch_rows):
        for name in parts:
            parts[name].append(_numpy(batch.column(name)))
    frame: dict[str, Any] = {}
    for name in features:  # one column at a time, so the batches and the result overlap by one column
        if name in categories:
            values = _concatenate(parts.pop(name), np.int8)
            frame[name] = pd.arrays.IntegerArray(values, values < 0)
        else:
            frame[name] = _concatenate(parts.pop(name), np.float64)
    y = _concatenate(parts.pop(label), np.float64)
    return CodedFrame(pd.DataFrame(frame, copy=False), y, categories)


def fit_on_codes(estimator: Any, data: CodedFrame) -> Any:
    """Fit ``estimator`` on ``data``'s codes, then give it the raw category values.

    scikit-learn encodes categorical columns with an internal ``OrdinalEncoder`` whose
    codes are the positions in its sorted categories. The codes sent here are those
    positions, so the trees are the ones the raw values would grow; only the encoder's
    ``categories_`` differ, and are replaced by what it learns from the raw values. The
    tests hold this to scikit-learn's own fit on ``astype("category")``.
    """
    if not data.categories:
        return estimator.fit(data.X, data.y)
    spec = estimator.categorical_features
    estimator.set_params(categorical_features=list(data.categories))
    try:
        estimator.fit(data.X, data.y)
    finally:
        estimator.set_params(categorical_features=spec)
    encoder = estimator._preprocessor.named_transformers_["encoder"]
    for j, column in enumerate(encoder.feature_names_in_):
        values = data.categories[column]
        seen = list(values) + ([None] if C.is_missing(encoder.categories_[j][-1]) else [])
        raw = pd.DataFrame({column: pd.Categorical(seen, categories=values)})
        encoder.categories_[j] = clone(encoder).fit(raw).categories_[0]
    return estimator


def _with_codes(table: ir.Table, categories: dict[str, list[Any]]) -> ir.Table:
    """``table`` with each column of ``categories`` replaced by its code: the value's
    position in its categories, -1 for NULL. A position in a constant array is a
    projection (rows keep their order, unlike a join) and, on DuckDB, a tight loop
    (``list_position``: 17 ms per million rows for 223 zones, where a CASE takes 134 ms)."""
    codes = {}
    for column, values in categories.items():
        x = missing_to_null(table[column])
        codes[column] = ibis.array(values).index(x).fill_null(-1) if values else ibis.literal(-1)
    return table.mutate(**codes)


def _check_cardinality(estimator: Any, categories: dict[str, list[Any]]) -> None:
    max_bins = getattr(estimator, "max_bins", 255)
    over = {c: len(v) for c, v in categories.items() if len(v) > max_bins}
    if over:
        listed = ", ".join(f"{c!r} ({n})" for c, n in over.items())
        raise NeveInputError(
            f"{type(estimator).__name__}: categorical column(s) {listed} have more categories than "
            f"max_bins={max_bins}, scikit-learn's limit; group the rare ones in the pipeline first "
            f"(e.g. OrdinalEncoder(input_cols=[...], max_categories={max_bins})) and name the codes "
            f"in categorical_features"
        )


def _numpy(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    if pa.types.is_floating(column.type) and column.null_count:
        return pc.fill_null(column, np.nan).to_numpy(zero_copy_only=False)
    return column.to_numpy(zero_copy_only=False)


def _concatenate(chunks: list[np.ndarray], empty: type) -> np.ndarray:
    """The chunks as one array (the chunk itself when there is one); ``empty`` types an
    empty result."""
    if len(chunks) == 1:
        return chunks[0]
    return np.concatenate(chunks) if chunks else np.zeros(0, dtype=empty)
