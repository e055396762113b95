"""A fitted pipeline's output as a scipy CSR matrix, for estimators neve cannot fit in SQL.

Trees, boosting and any other scikit-learn model need the rows on the client. The dense
one-hot table would be hundreds of columns of zeros, so the engine sends something far
smaller instead: per one-hot block one integer code (the column a row's 1 sits in), plus
the numeric features, streamed as Arrow record batches; each batch becomes a slice of a
CSR matrix straight away. Peak client memory is the CSR result plus one batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import ibis
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from neve._table import as_table, missing_to_null, run_translating
from neve.engine import _queries
from neve.errors import ColumnNotFoundError, ColumnTypeError, NeveInputError
from neve.preprocessing import _categories as C
from neve.preprocessing._encoders import OneHotEncoder

if TYPE_CHECKING:
    from neve.pipeline import Pipeline

__all__ = ["SparseDesign", "check_numeric", "transform_sparse"]

DEFAULT_BATCH_ROWS = 1_000_000
_CODE = "__neve_code_{}"


class SparseDesign(NamedTuple):
    """``X`` (CSR, one column per feature), ``y`` (or None) and the feature names of ``X``."""

    X: sp.csr_matrix
    y: np.ndarray | None
    feature_names: np.ndarray


@dataclass(frozen=True)
class _Block:
    """One one-hot encoded input: its code column and the feature index of each code."""

    code_column: str
    feature_index: np.ndarray  # code -> column of X


def transform_sparse(
    pipeline: Pipeline,
    X: Any,
    *,
    label_col: str | None = None,
    feature_cols: Sequence[str] | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
) -> SparseDesign:
    """``pipeline.transform(X)`` as a CSR matrix, without ever forming the dense one-hot
    columns: see :meth:`neve.Pipeline.transform_sparse`."""
    pipeline._check_is_fitted()
    table, _ = as_table(X)
    names = [str(n) for n in pipeline.get_feature_names_out(table.columns)]
    if label_col is not None and label_col not in names:
        raise ColumnNotFoundError(
            f"transform_sparse: label_col {label_col!r} is not a column of the transformed table "
            f"(columns: {', '.join(map(repr, names))})"
        )
    features = _feature_list(names, label_col, feature_cols)
    coded, blocks, numeric = _coded_table(pipeline, table, features)
    check_numeric(
        coded, numeric, "transform_sparse: feature column(s) {columns} are not numeric; encode them in the "
        "pipeline, or leave them out with feature_cols=[...]",
    )
    selected = coded.select(
        *[coded[b.code_column] for b in blocks],
        *[coded[c].cast("float64").name(c) for c in numeric],
        *([coded[label_col]] if label_col else []),
    )
    numeric_index = np.asarray([features.index(c) for c in numeric], dtype=np.int32)
    steps = [step for _, step in pipeline.steps]

    def build(expr: ir.Table) -> SparseDesign:
        return _stream(expr, blocks, numeric, numeric_index, label_col, len(features), batch_rows)

    design = run_translating(build, selected, steps)
    return design._replace(feature_names=np.asarray(features, dtype=object))


def _feature_list(names: list[str], label_col: str | None, feature_cols: Sequence[str] | None) -> list[str]:
    if feature_cols is None:
        return [n for n in names if n != label_col]
    wanted = list(feature_cols)
    unknown = [c for c in wanted if c not in names]
    if unknown:
        raise ColumnNotFoundError(
            f"transform_sparse: feature_cols {', '.join(map(repr, unknown))} are not columns of the "
            f"transformed table (columns: {', '.join(map(repr, names))})"
        )
    if label_col in wanted:
        raise NeveInputError(f"transform_sparse: label_col {label_col!r} is also listed in feature_cols")
    return [n for n in names if n in set(wanted)]


def _coded_table(
    pipeline: Pipeline, table: ir.Table, features: list[str]
) -> tuple[ir.Table, list[_Block], list[str]]:
    """The pipeline's expression with each one-hot block replaced by one integer code column.

    Returns the table, the blocks (only those with a feature in ``features``) and the
    non-one-hot features, in feature order.
    """
    position = {name: i for i, name in enumerate(features)}
    blocks: list[_Block] = []
    one_hot_outputs: set[str] = set()
    for step_name, step in pipeline.steps:
        consumed = set(step.input_cols_) & one_hot_outputs
        if consumed:
            raise NeveInputError(
                f"transform_sparse: step {step_name!r} reads one-hot output column(s) "
                f"{', '.join(map(repr, sorted(consumed)))}; the sparse path needs one-hot encoders "
                f"whose outputs go straight to the model"
            )
        if not isinstance(step, OneHotEncoder):
            step._check_columns(table, step.input_cols_)
            table = step._assemble(table, step._transform_columns(table))
            continue
        step._check_columns(table, step.input_cols_)
        codes: dict[str, ir.Value] = {}
        for col, out in zip(step.input_cols_, step.output_cols_, strict=True):
            outputs = step._output_names(col, out)
            one_hot_outputs.update(outputs)
            if not any(o in position for o in outputs):
                continue
            code_column = _CODE.format(len(blocks))
            # A code whose column the caller left out of feature_cols points nowhere (-1).
            index = np.asarray([position.get(o, -1) for o in outputs], dtype=np.int32)
            codes[code_column] = _code(step, col, table)
            blocks.append(_Block(code_column, index))
        dropped = step._in_place() | (set(step.input_cols_) if step.drop_input_cols else set())
        table = table.mutate(**codes).drop(*[c for c in dropped if c in table.columns])
    numeric = [f for f in features if f not in one_hot_outputs]
    missing = [f for f in numeric if f not in table.columns]
    if missing:  # an output some later step replaced: cannot happen with the check above
        raise NeveInputError(f"transform_sparse: cannot place feature(s) {missing}")
    return table, blocks, numeric


def _code(step: OneHotEncoder, col: str, table: ir.Table) -> ir.IntegerValue:
    """The index, among the block's output columns, of the one a row sets to 1; NULL for
    a row whose block is all zeros (an ignored unknown category, a dropped category)."""
    x = missing_to_null(table[col])
    cats = step.categories_[col]
    code_of: dict[int, int] = {
        member: code for code, (_, members) in enumerate(step._kept_groups(col)) for member in members
    }
    none = ibis.null("int32")
    infrequent = [code for code, (name, _) in enumerate(step._kept_groups(col)) if name == "infrequent_sklearn"]
    if step.handle_unknown in ("infrequent_if_exist", "warn") and infrequent:
        otherwise: ir.Value = ibis.literal(infrequent[0], type="int32")
    elif step.handle_unknown == "error":
        otherwise = C.fail_unknown(x, col).cast("int32")
    else:
        otherwise = none
    branches = [
        (cat, ibis.literal(code_of[i], type="int32") if i in code_of else none)
        for i, cat in enumerate(cats)
        if not C.is_missing(cat)
    ]
    code = x.cases(*branches, else_=otherwise) if branches else otherwise
    if cats and C.is_missing(cats[-1]):
        missing_code = code_of.get(len(cats) - 1)
        code = ibis.ifelse(x.isnull(), none if missing_code is None else ibis.literal(missing_code, "int32"), code)
    return code


def check_numeric(table: ir.Table, numeric: list[str], message: str) -> None:
    """Raise :class:`ColumnTypeError` naming the columns of ``numeric`` that are neither
    numbers nor booleans; ``message`` is formatted with ``columns``, their names and types."""
    schema = table.schema()
    bad = [c for c in numeric if not (schema[c].is_numeric() or schema[c].is_boolean())]
    if bad:
        raise ColumnTypeError(message.format(columns=", ".join(f"{c!r} ({schema[c]})" for c in bad)))


def _stream(
    expr: ir.Table,
    blocks: list[_Block],
    numeric: list[str],
    numeric_index: np.ndarray,
    label_col: str | None,
    n_features: int,
    batch_rows: int,
) -> SparseDesign:
    # Slots in the order of their first feature column, so every row's indices come out sorted.
    slots: list[tuple[int, str, np.ndarray]] = [
        (int(b.feature_index[b.feature_index >= 0].min()), b.code_column, b.feature_index) for b in blocks
    ]
    slots += [(int(i), name, np.asarray(i)) for name, i in zip(numeric, numeric_index, strict=True)]
    slots.sort(key=lambda slot: slot[0])
    indptr_parts, index_parts, value_parts, labels = [np.zeros(1, dtype=np.int64)], [], [], []
    rows = 0
    for batch in _queries.to_pyarrow_batches(expr, chunk_size=batch_rows):
        if batch.num_rows == 0:
            continue
        indptr, indices, values = _csr_slice(batch, slots)
        indptr_parts.append(indptr[1:] + indptr_parts[-1][-1])
        index_parts.append(indices)
        value_parts.append(values)
        if label_col is not None:
            labels.append(batch.column(label_col).to_numpy(zero_copy_only=False))
        rows += batch.num_rows
    indptr = np.concatenate(indptr_parts)
    indices = np.concatenate(index_parts) if index_parts else np.zeros(0, dtype=np.int32)
    values = np.concatenate(value_parts) if value_parts else np.zeros(0)
    X = sp.csr_matrix((values, indices, indptr), shape=(rows, n_features))
    y = None
    if label_col is not None:
        y = np.concatenate(labels) if labels else np.zeros(0)
    return SparseDesign(X, y, np.asarray([], dtype=object))


def _csr_slice(
    batch: pa.RecordBatch, slots: list[tuple[int, str, np.ndarray]]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One batch as CSR parts. Each row has one slot per one-hot block (its column is
    ``index[code]``) and per numeric feature (a fixed column); a slot holds an entry
    unless its code is NULL or its value is 0 (scipy's sparse matrices keep no zeros)."""
    n = batch.num_rows
    columns = np.empty((n, len(slots)), dtype=np.int32)
    values = np.empty((n, len(slots)), dtype=np.float64)
    present = np.empty((n, len(slots)), dtype=bool)
    for k, (_, name, index) in enumerate(slots):
        column = batch.column(name)
        if index.ndim:  # a one-hot block: the value is a code
            valid = pc.is_valid(column).to_numpy(zero_copy_only=False)
            code = pc.fill_null(column, 0).to_numpy(zero_copy_only=False)
            columns[:, k] = index[code]
            values[:, k] = 1.0
            present[:, k] = valid & (columns[:, k] >= 0)
        else:
            value = pc.fill_null(column, np.nan).to_numpy(zero_copy_only=False)
            columns[:, k] = index
            values[:, k] = value
            present[:, k] = value != 0
    counts = present.sum(axis=1, dtype=np.int64)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    flat = present.ravel()
    return indptr, columns.ravel()[flat], values.ravel()[flat]
