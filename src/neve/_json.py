"""Plain-JSON encoding of fitted state that round-trips exactly.

JSON has no NaN, infinity, tuple or numpy dtype; these are written as one-key
objects (``{"$float": "nan"}``, ``{"$tuple": [...]}``, ``{"$dtype": "float32"}``) so ``from_dict(to_dict(x))``
gives back equal values. Python's float repr is shortest round-trip, so
finite floats need nothing special.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from neve.errors import SerializationError

__all__ = ["decode", "encode"]


def encode(value: Any) -> Any:
    """Turn ``value`` into JSON-compatible data (raising on anything that is not plain)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else {"$float": repr(value)}
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.dtype) or (isinstance(value, type) and issubclass(value, np.generic)):
        # scikit-learn's dtype parameters take numpy scalar types such as np.float64.
        return {"$dtype": np.dtype(value).name}
    if isinstance(value, tuple):
        return {"$tuple": [encode(v) for v in value]}
    if isinstance(value, (list, np.ndarray)):
        return [encode(v) for v in list(value)]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            # JSON objects need string keys; keep the pairs to preserve key types.
            return {"$items": [[encode(k), encode(v)] for k, v in value.items()]}
        return {k: encode(v) for k, v in value.items()}
    raise SerializationError(f"cannot serialise {type(value).__name__} value {value!r} to JSON")


def decode(value: Any) -> Any:
    """Inverse of :func:`encode`."""
    if isinstance(value, list):
        return [decode(v) for v in value]
    if isinstance(value, dict):
        if value.keys() == {"$float"}:
            return float(value["$float"])
        if value.keys() == {"$dtype"}:
            return np.dtype(value["$dtype"]).type
        if value.keys() == {"$tuple"}:
            return tuple(decode(v) for v in value["$tuple"])
        if value.keys() == {"$items"}:
            return {_hashable(decode(k)): decode(v) for k, v in value["$items"]}
        return {k: decode(v) for k, v in value.items()}
    return value


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value
