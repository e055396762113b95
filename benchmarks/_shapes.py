"""Tables of four shapes for the fit-by-shape benchmark, generated inside DuckDB.

* ``taxi``: the flagship's three correlated categoricals (pickup zone, dropoff zone, hour)
  and one numeric, from the real samples (:func:`benchmarks.fit_taxi.generate`);
* ``independent``: three uniform, independent categoricals of 260, 260 and 24 values and
  one numeric: the full GROUP BY has about as many groups as rows;
* ``wide``: ten categoricals of 2 to 12 values and ten numerics, shaped like UCI bank
  marketing;
* ``numeric``: fifty numerics and no categorical column.

Each has a numeric label ``Y`` (``TRIP_DURATION_SEC`` for taxi) linear in the features plus
noise, and a 0/1 label ``Y01`` for LogisticRegression.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from benchmarks import fit_taxi

SHAPES = ("taxi", "independent", "wide", "numeric")


@dataclass(frozen=True)
class Shape:
    name: str
    categorical: list[str]
    numeric: list[str]
    label: str
    binary_label: str = "Y01"


WIDE_CARDINALITIES = [2, 3, 4, 5, 6, 7, 8, 10, 11, 12]


def shape(name: str) -> Shape:
    if name == "taxi":
        return Shape(name, list(fit_taxi.CATEGORICAL), [fit_taxi.NUMERIC], fit_taxi.TARGET)
    if name == "independent":
        return Shape(name, ["C0", "C1", "C2"], ["X0"], "Y")
    if name == "wide":
        return Shape(name, [f"C{i}" for i in range(10)], [f"X{i}" for i in range(10)], "Y")
    if name == "numeric":
        return Shape(name, [], [f"X{i}" for i in range(50)], "Y")
    raise ValueError(f"unknown shape {name!r}; one of {SHAPES}")


def _u(k: int) -> str:
    """A deterministic uniform in [0, 1) per row ``i`` and purpose ``k``."""
    return f"((hash(i * 1000 + {k}) % 1000000)::DOUBLE / 1e6)"


def generate(con: Any, name: str, rows: int, table: str) -> Shape:
    """``rows`` rows of shape ``name`` in DuckDB table ``table``."""
    s = shape(name)
    if name == "taxi":
        fit_taxi.generate(con, rows, table)
        con.execute(f"""CREATE OR REPLACE TABLE {table} AS SELECT *,
            (TRIP_DURATION_SEC > 900)::INTEGER AS Y01 FROM {table}""")
        return s
    if name == "independent":
        cats = [("C0", 260), ("C1", 260), ("C2", 24)]
    elif name == "wide":
        cats = list(zip(s.categorical, WIDE_CARDINALITIES, strict=True))
    else:
        cats = []
    columns, signal = [], []
    for k, (col, card) in enumerate(cats):
        # hash(i, k) of two arguments is not independent across k: one argument mixes well.
        code = f"(hash(i * 1000 + {100 + k}) % {card})"
        columns.append(f"'v' || {code}::VARCHAR AS {col}")
        signal.append(f"(({code} * 37) % 11)::DOUBLE / 5")
    for k, col in enumerate(s.numeric):
        columns.append(f"({_u(200 + k)} * 4 - 2 + {k % 5}) AS {col}")
        signal.append(f"{((k % 7) - 3) / 2:.1f} * ({_u(200 + k)} * 4 - 2 + {k % 5})")
    y = " + ".join(signal) + f" + {_u(999)} * 3"
    con.execute(
        f"""CREATE OR REPLACE TABLE {table} AS
        SELECT * EXCLUDE (i), (Y > avg(Y) OVER ())::INTEGER AS Y01 FROM (
            SELECT i, {', '.join(columns)}, {y} AS Y FROM range({int(rows)}) t(i))"""
    )
    return s
