"""Typed constants for generated SQL.

Ibis writes a float as a bare decimal (``0.1``), which DuckDB reads as DECIMAL and
PostgreSQL as NUMERIC. The value then converts to DOUBLE with an error of up to an
ulp (DuckDB), or keeps a NUMERIC type that client libraries return as ``Decimal``
(PostgreSQL). A cast from the shortest round-trip string is exact and typed on every
engine, so fitted statistics and model coefficients go into SQL through here.
"""

from __future__ import annotations

from typing import Any

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

__all__ = ["double", "typed"]


def double(value: float) -> ir.FloatingScalar:
    """An exact float64 constant."""
    return ibis.literal(repr(float(value))).cast("float64")


def typed(value: Any, dtype: dt.DataType | str) -> ir.Scalar:
    """``value`` as a constant of ``dtype``, exact for floating types."""
    dtype = dt.dtype(dtype)
    if value is None:
        return ibis.null(dtype)
    if dtype.is_floating():
        return ibis.literal(repr(float(value))).cast(dtype)
    return ibis.literal(value, type=dtype)
