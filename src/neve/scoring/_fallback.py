"""Scoring in the client for models with no SQL translation, in bounded memory.

Rows stream out of the engine as Arrow record batches of ``batch_size`` rows, go
through ``model.<function_name>`` and are spooled to a local Parquet file; once the
read is finished the spool is inserted back batch by batch. Two phases because most
engines (DuckDB included) cancel an open result stream when the same connection runs
another statement. Client memory therefore holds one batch at a time, whatever
the table size.
"""

from __future__ import annotations

import contextlib
import tempfile
import uuid
import warnings
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from neve.engine import _queries

__all__ = ["score_in_client"]


def _features(batch: pa.RecordBatch, columns: list[str], features: list[str]) -> Any:
    """The batch's feature columns as the model expects them.

    All-numeric features become one float64 block built column by column; going
    through ``RecordBatch.to_pandas`` and back to numpy costs ~40x more for wide
    one-hot tables. Anything else (strings for a model that encodes them) stays a
    DataFrame.
    """
    arrays = [batch.column(c) for c in columns]
    numeric = (pa.types.is_integer, pa.types.is_floating, pa.types.is_boolean, pa.types.is_decimal)
    if all(any(test(a.type) for test in numeric) for a in arrays):
        matrix = np.empty((batch.num_rows, len(arrays)), dtype=np.float64)
        for j, a in enumerate(arrays):
            matrix[:, j] = a.cast(pa.float64()).to_numpy(zero_copy_only=False)
        return pd.DataFrame(matrix, columns=features, copy=False)
    frame = batch.select(columns).to_pandas()
    frame.columns = features
    return frame


def _predict(model: Any, function_name: str, frame: pd.DataFrame) -> np.ndarray:
    X = frame if hasattr(model, "feature_names_in_") else frame.to_numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # feature names given as plain arrays
        out = np.asarray(getattr(model, function_name)(X))
    return out.reshape(len(frame), -1)


def _output_type(model: Any, function_name: str) -> str:
    """The type ``model.<function_name>`` returns, known without rows to call it on: a
    classifier predicts its class labels, everything else returns floats."""
    classes = getattr(model, "classes_", None)
    if function_name != "predict" or classes is None:
        return "float64"
    kind = np.asarray(classes).dtype.kind
    return {"b": "boolean", "i": "int64", "u": "int64", "f": "float64"}.get(kind, "string")


def score_in_client(
    work: ir.Table,
    model: Any,
    *,
    kept: dict[str, str],
    features: list[str],
    function_name: str,
    names: list[str],
    batch_size: int,
    table_name: str | None,
) -> ir.Table:
    """Write ``kept`` columns plus the model's outputs to ``table_name`` and return it.

    Without ``table_name`` the result goes to a temporary table that lives as long
    as the connection.
    """
    backend = _queries.backend_of(work)
    feature_names = [f"__neve_f{i}" for i in range(len(features))]
    extract = work.select(
        *[work[k].name(c) for c, k in kept.items()],
        *[work[f].name(n) for f, n in zip(features, feature_names, strict=True)],
    )
    with tempfile.TemporaryDirectory(prefix="neve-score-") as spool_dir:
        spool = Path(spool_dir) / "scored.parquet"
        writer = None
        _queries._record(backend, extract)
        reader = backend.to_pyarrow_batches(extract, chunk_size=batch_size)
        try:
            for batch in reader:
                frame = _features(batch, feature_names, features)
                out = _predict(model, function_name, frame)
                columns = [batch.column(c) for c in kept]
                columns += [pa.array(out[:, j]) for j in range(out.shape[1])]
                result = pa.Table.from_arrays(columns, names=[*kept, *names])
                if writer is None:
                    writer = pq.ParquetWriter(spool, result.schema)
                writer.write_table(result.cast(writer.schema))
        finally:
            reader.close()
            if writer is not None:
                writer.close()
        name = table_name or f"__neve_scored_{uuid.uuid4().hex[:12]}"
        if writer is None:  # no rows: an empty table with the columns a scored table has
            outputs = [ibis.null(_output_type(model, function_name)).name(n) for n in names]
            empty = extract.select(*kept, *outputs).limit(0)
            return backend.create_table(name, empty, temp=table_name is None, overwrite=True)
        target = _load_spool(backend, name, spool, temp=table_name is None, batch_size=batch_size)
    return target


def _load_spool(backend: Any, name: str, spool: Path, *, temp: bool, batch_size: int) -> ir.Table:
    """Copy the spooled Parquet file into table ``name`` without holding it in memory.

    The engine's own Parquet reader streams the file; engines without one get the
    row groups inserted one at a time.
    """
    read_parquet = getattr(backend, "read_parquet", None)
    if read_parquet is not None:
        view = f"{name}_spool"
        try:
            source = read_parquet(spool, table_name=view)
        except NotImplementedError:
            pass
        else:
            target = backend.create_table(name, source, temp=temp, overwrite=True)
            with contextlib.suppress(Exception):  # the view only lives until the file goes
                backend.drop_view(view)
            return target
    spooled = pq.ParquetFile(spool)
    target = backend.create_table(
        name, schema=ibis.Schema.from_pyarrow(spooled.schema_arrow), temp=temp, overwrite=True
    )
    for chunk in spooled.iter_batches(batch_size=batch_size):
        backend.insert(name, pa.Table.from_batches([chunk]))
    return target
