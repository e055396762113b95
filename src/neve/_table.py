"""Tables in, tables out: what every layer above the engine needs to take user data.

``as_table`` accepts an Ibis table, a pandas DataFrame or a pyarrow Table and gives back
an Ibis table plus the way home; the NULL and NaN helpers give scikit-learn's missing
value semantics in SQL. Nothing here imports scikit-learn, so the registry and the
monitors can take a table without loading it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

import ibis
import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa

from neve.engine import _queries
from neve.errors import NeveError, NeveInputError

__all__ = ["ROW_COUNT", "as_table", "missing_to_null", "raise_in_query", "run_translating"]

#: The row count every fit's aggregate carries, to tell an empty input from a NULL statistic.
ROW_COUNT = "__neve_n_rows"


class TranslatesErrors(Protocol):
    def _translate_error(self, exc: BaseException) -> NeveError | None: ...


def as_table(X: Any) -> tuple[ir.Table, Callable[[ir.Table], Any]]:
    """Wrap ``X`` as an Ibis table and return a function that converts results back.

    Ibis tables stay lazy; pandas and pyarrow inputs run on an in-memory
    DuckDB and come back as the same type (pandas keeps its index).
    """
    if isinstance(X, ir.Table):
        return X, lambda result: result
    if isinstance(X, pd.DataFrame):
        index = X.index
        # Non-string labels (e.g. ints) would not survive as SQL column names.
        renamed = X.rename(columns=str) if not all(isinstance(c, str) for c in X.columns) else X
        table = ibis.memtable(renamed.reset_index(drop=True))

        def to_pandas(result: ir.Table) -> pd.DataFrame:
            frame = _queries.execute(result)
            frame.index = index
            return frame

        return table, to_pandas
    if isinstance(X, pa.Table):
        return ibis.memtable(X), _queries.to_pyarrow
    raise NeveInputError(
        f"expected an ibis Table, a pandas DataFrame or a pyarrow Table, got {type(X).__name__}"
    )


def run_translating(
    convert: Callable[[ir.Table], Any], result: ir.Table, steps: Iterable[TranslatesErrors]
) -> Any:
    """``convert(result)``, re-raising an engine error that a step raised from inside the
    query (see :func:`raise_in_query`) as that step's neve error."""
    try:
        return convert(result)
    except NeveError:
        raise
    except Exception as exc:
        for step in steps:
            error = step._translate_error(exc)
            if error is not None:
                raise error from exc
        raise


def missing_to_null(column: ir.Column) -> ir.Column:
    """Treat NaN as missing, as scikit-learn does: NaN becomes NULL so aggregates skip it."""
    if column.type().is_floating():
        return column.isnan().ifelse(ibis.null(column.type()), column)
    return column


def raise_in_query(message: ir.StringValue) -> ir.Value:
    """An int64 expression that aborts the query with ``message`` when it is evaluated.

    Casting a non-numeric string to an integer fails on every SQL engine and
    the engine's error quotes the string, so the user sees ``message``; used
    inside a CASE branch it fires only for the rows that reach it. Dialect
    neutral, so the transformers need no engine-specific code (the same idea
    as ``Driver.raise_error_sql``).
    """
    return message.cast("int64")
