"""KBinsDiscretizer: bin edges from one query, binning as a CASE expression in SQL."""

from __future__ import annotations

import warnings
from numbers import Integral
from typing import Any

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import numpy as np
from sklearn import preprocessing as skp

from neve._sql_literals import double
from neve._table import ROW_COUNT
from neve.errors import InvalidParameterError, NeveInputError
from neve.preprocessing._base import BaseTransformer
from neve.preprocessing._sklearn_twin import sklearn_params, with_names_in

__all__ = ["KBinsDiscretizer"]

#: Methods whose value is picked from, or interpolated between, order statistics.
_QUANTILE_METHODS = ("averaged_inverted_cdf", "inverted_cdf", "linear")
#: Ranks fetched either side of ``floor(n * q)``: numpy's index for every
#: supported method lies within one of it, so two leaves room for rounding.
_WINDOW = 2


def percentile_indexes(
    method: str, n: int, q: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """numpy's ``percentile(..., method=method)`` reduced to order statistics.

    Returns ``(lower, upper, gamma)``: the 0-based ranks (in the sorted
    non-missing values) to interpolate between, and the weight, so that
    :func:`interpolate` gives numpy's value bit for bit. Mirrors
    ``numpy.lib._function_base_impl._quantile`` for numpy 2.x.
    """
    q = np.asarray(q, dtype=np.float64)
    if method == "inverted_cdf":
        virtual = n * q - 1
        previous = np.floor(virtual)
        rank = np.where(virtual - previous == 0, previous, previous + 1).astype(np.intp)
        rank[rank < 0] = 0
        return rank, rank, np.zeros_like(q)
    virtual = (n - 1) * q if method == "linear" else n * q - 1
    previous = np.floor(virtual)
    following = previous + 1
    above = virtual >= n - 1
    previous[above] = following[above] = n - 1
    below = virtual < 0
    previous[below] = following[below] = 0
    # numpy measures gamma from its clipped index (-1 stands for n - 1); it only
    # matters where the two ranks differ, which clipping rules out.
    gamma = virtual - previous
    if method == "averaged_inverted_cdf":
        gamma = np.where(gamma == 0, 0.5, 1.0)
    return previous.astype(np.intp), following.astype(np.intp), gamma


def interpolate(lower: np.ndarray, upper: np.ndarray, gamma: np.ndarray) -> np.ndarray:
    """numpy's ``_lerp``: the form that is exact at both ends of the interval."""
    lower, upper = np.asarray(lower, np.float64), np.asarray(upper, np.float64)
    diff = upper - lower
    result = lower + diff * gamma
    high = gamma >= 0.5
    result[high] = (upper - diff * (1 - gamma))[high]
    return result


class KBinsDiscretizer(BaseTransformer):
    """Bin continuous columns into intervals, as scikit-learn's KBinsDiscretizer.

    ``fit`` runs one query: min/max for ``strategy="uniform"``; for
    ``"quantile"`` the exact order statistics around each quantile level
    (a ``row_number()`` window per column), from which numpy's
    ``percentile`` value is rebuilt bit for bit for ``quantile_method`` in
    ``"averaged_inverted_cdf"`` (the default), ``"inverted_cdf"`` and
    ``"linear"``. Bins narrower than 1e-8 are removed and constant columns get
    one bin with edges ``[-inf, inf]``, as in scikit-learn.

    ``transform`` is a CASE over the inner edges, equal to
    ``np.searchsorted(edges[1:-1], x, side="right")``. ``encode="ordinal"``
    replaces each column with its bin index (float); ``"onehot-dense"`` emits
    one float 0/1 column per bin named ``f"{output_col}_{float(bin)}"``
    (``"x_0.0"``, ``"x_1.0"``, ... as scikit-learn's
    ``get_feature_names_out``). ``"onehot"`` (scikit-learn's default, a sparse
    matrix there) gives the same dense columns: a table has no sparse form.

    Deliberate differences from scikit-learn:

    - ``subsample`` is accepted but neve always uses every row (exact edges).
      Results match scikit-learn when ``n_samples <= subsample`` or
      ``subsample=None``; above that scikit-learn bins a random resample.
    - Missing values (NULL or NaN) are skipped by ``fit`` and come out of
      ``transform`` as NULL (every one-hot column NULL); scikit-learn raises.
      ``transform`` puts -inf/+inf in the first/last bin (scikit-learn raises).
    - ``dtype=None`` gives float32 output for float32 columns and float64
      otherwise, decided per column rather than for the whole array.
    - ``strategy="kmeans"`` is refused: it is iterative and has no one-query form.

    Fitted ``bin_edges_`` and ``n_bins_`` are scikit-learn's (and SnowML's) arrays in
    ``input_cols`` order; ``bin_edges_by_col_`` and ``n_bins_by_col_`` key them by column.
    ``input_cols=None`` bins every column but ``passthrough_cols``; ``output_cols=None``
    replaces each input in place.
    """

    _sklearn_class = skp.KBinsDiscretizer
    _fitted_attrs = ("bin_edges_by_col_", "n_bins_by_col_")
    _renamed_state = {"bin_edges_": "bin_edges_by_col_", "n_bins_": "n_bins_by_col_"}

    @property
    def bin_edges_(self) -> np.ndarray:
        """scikit-learn's shape: an object array holding one float array of edges per input column."""
        self._check_is_fitted()
        edges = np.empty(len(self.input_cols_), dtype=object)
        for i, col in enumerate(self.input_cols_):
            edges[i] = np.asarray(self.bin_edges_by_col_[col], dtype=np.float64)
        return edges

    @property
    def n_bins_(self) -> np.ndarray:
        self._check_is_fitted()
        return np.asarray([self.n_bins_by_col_[c] for c in self.input_cols_], dtype=np.int64)

    def __init__(
        self,
        n_bins: int | list[int] = 5,
        *,
        encode: str = "onehot",
        strategy: str = "quantile",
        quantile_method: str = "averaged_inverted_cdf",
        dtype: type | None = None,
        subsample: int | None = 200_000,
        random_state: Any = None,
        input_cols: str | list[str] | None = None,
        output_cols: str | list[str] | None = None,
        passthrough_cols: str | list[str] | None = None,
        drop_input_cols: bool = False,
    ) -> None:
        self.n_bins = n_bins
        self.encode = encode
        self.strategy = strategy
        self.quantile_method = quantile_method
        self.dtype = dtype
        self.subsample = subsample
        self.random_state = random_state
        self.input_cols = input_cols
        self.output_cols = output_cols
        self.passthrough_cols = passthrough_cols
        self.drop_input_cols = drop_input_cols

    # --- parameters --------------------------------------------------------

    def _validate_extra(self) -> None:
        if self.strategy == "kmeans":
            raise InvalidParameterError(
                "KBinsDiscretizer: strategy='kmeans' is not supported in SQL (k-means is "
                "iterative and has no one-query form); use 'uniform' or 'quantile'"
            )
        if self.strategy == "quantile" and self.quantile_method not in _QUANTILE_METHODS:
            raise InvalidParameterError(
                f"KBinsDiscretizer: quantile_method={self.quantile_method!r} is not supported "
                f"in SQL; use one of {', '.join(map(repr, _QUANTILE_METHODS))}"
            )



    def _bins_per_column(self, cols: list[str]) -> dict[str, int]:
        if isinstance(self.n_bins, Integral):
            return dict.fromkeys(cols, int(self.n_bins))
        bins = np.asarray(self.n_bins)
        if bins.ndim != 1 or bins.shape[0] != len(cols):
            raise InvalidParameterError(
                f"KBinsDiscretizer: n_bins must be an int or have one entry per input column "
                f"({len(cols)}: {cols}), got {self.n_bins!r}"
            )
        result = {}
        for col, value in zip(cols, bins.tolist(), strict=True):
            if isinstance(value, bool) or int(value) != value or value < 2:
                raise InvalidParameterError(
                    f"KBinsDiscretizer: n_bins for column {col!r} must be an int >= 2, "
                    f"got {value!r}"
                )
            result[col] = int(value)
        return result

    # --- fit -----------------------------------------------------------------

    def _fit(self, table: ir.Table, cols: list[str]) -> None:
        n_bins = self._bins_per_column(cols)
        levels = {c: np.true_divide(np.linspace(0, 100, n_bins[c] + 1), 100) for c in cols}
        metrics: dict[str, ir.Scalar] = {}
        for i, col in enumerate(cols):
            x = self._numeric(table, col)
            metrics[f"n__{i}"] = x.count()
            metrics[f"lo__{i}"] = x.min()
            metrics[f"hi__{i}"] = x.max()
            metrics[f"ninf__{i}"] = x.isinf().ifelse(1, 0).sum()
        expr = table.aggregate(**{ROW_COUNT: table.count()}, **metrics)
        if self.strategy == "quantile":
            for i, col in enumerate(cols):
                expr = expr.cross_join(self._order_statistics(table, col, i, levels[col]))
        row = self._fetch_one(expr)

        self.bin_edges_by_col_: dict[str, list[float]] = {}
        self.n_bins_by_col_: dict[str, int] = {}
        for i, col in enumerate(cols):
            if row[f"ninf__{i}"]:
                raise NeveInputError(
                    f"KBinsDiscretizer: column {col!r} contains infinity ({row[f'ninf__{i}']} "
                    f"rows), which scikit-learn rejects too; filter or impute those rows first"
                )
            n = int(row[f"n__{i}"])
            if n == 0:
                raise NeveInputError(
                    f"KBinsDiscretizer: column {col!r} has no non-missing values to bin"
                )
            lo, hi = float(row[f"lo__{i}"]), float(row[f"hi__{i}"])
            bins = n_bins[col]
            if lo == hi:
                warnings.warn(
                    f"KBinsDiscretizer: column {col!r} is constant and will be replaced with 0",
                    UserWarning,
                    stacklevel=3,
                )
                self.bin_edges_by_col_[col], self.n_bins_by_col_[col] = [-np.inf, np.inf], 1
                continue
            if self.strategy == "uniform":
                edges = np.linspace(lo, hi, bins + 1)
            else:
                edges = self._quantile_edges(row, i, n, levels[col])
                keep = np.ediff1d(edges, to_begin=np.inf) > 1e-8
                if not keep.all():
                    warnings.warn(
                        f"KBinsDiscretizer: bins narrower than 1e-8 in column {col!r} are "
                        f"removed; consider fewer bins",
                        UserWarning,
                        stacklevel=3,
                    )
                edges = edges[keep]
                if len(edges) < 2 and self.encode != "ordinal":
                    # scikit-learn fails here with an IndexError from its one-hot encoder.
                    raise NeveInputError(
                        f"KBinsDiscretizer: every quantile bin of column {col!r} is narrower "
                        f"than 1e-8 (values span {hi - lo!r}), leaving no bin to one-hot encode; "
                        f"rescale the column or use encode='ordinal'"
                    )
            self.bin_edges_by_col_[col] = [float(e) for e in edges]
            self.n_bins_by_col_[col] = len(edges) - 1

    def _order_statistics(self, table: ir.Table, col: str, i: int, levels: np.ndarray) -> ir.Table:
        """One row: the sorted values at ranks ``floor(n*q) - 2 .. floor(n*q) + 2`` for each level.

        The window sorts the column once; only the few ranks near each level
        survive the filter, and come back as two arrays ordered by rank.
        """
        values = table.select(x=self._numeric(table, col))
        values = values.filter(values.x.notnull())
        ranked = values.mutate(
            rn=ibis.row_number().over(order_by=values.x), cnt=values.x.count().over()
        )
        n = ranked.cnt.cast(dt.float64)
        near = ibis.or_(
            *[
                (ranked.rn - (n * q).floor().cast(dt.int64)).abs() <= _WINDOW
                for q in levels.tolist()
            ]
        )
        picked = ranked.filter(near)
        return picked.aggregate(
            **{
                f"ranks__{i}": picked.rn.collect(order_by=picked.rn),
                f"values__{i}": picked.x.collect(order_by=picked.rn),
            }
        )

    def _quantile_edges(
        self, row: dict[str, Any], i: int, n: int, levels: np.ndarray
    ) -> np.ndarray:
        fetched = dict(zip(row[f"ranks__{i}"], row[f"values__{i}"], strict=True))
        lower, upper, gamma = percentile_indexes(self.quantile_method, n, levels)
        try:
            a = [fetched[int(r)] for r in lower]
            b = [fetched[int(r)] for r in upper]
        except KeyError as exc:  # would mean SQL and numpy disagree on n * q by > 1
            raise NeveInputError(
                f"KBinsDiscretizer: order statistic {exc} was not fetched"
            ) from None
        return interpolate(np.array(a, dtype=np.float64), np.array(b, dtype=np.float64), gamma)

    # --- transform -------------------------------------------------------------

    def _output_type(self, col: str, table_type: dt.DataType | None = None) -> dt.DataType:
        if self.dtype is not None:
            return dt.float32 if np.dtype(self.dtype) == np.float32 else dt.float64
        if table_type is not None and table_type.is_floating() and table_type == dt.float32:
            return dt.float32
        return dt.float64

    def _bin_index(self, table: ir.Table, col: str) -> ir.Value:
        x = self._numeric(table, col)
        inner = self.bin_edges_by_col_[col][1:-1]
        if not inner:
            return x.isnull().ifelse(ibis.null(dt.int64), ibis.literal(0, dt.int64))
        # searchsorted(inner, x, side="right"): the first inner edge above x.
        branches = [(x < double(edge), ibis.literal(b, dt.int64)) for b, edge in enumerate(inner)]
        return ibis.cases(
            (x.isnull(), ibis.null(dt.int64)), *branches, else_=ibis.literal(len(inner), dt.int64)
        )

    def _transform_columns(self, table: ir.Table) -> dict[str, list[tuple[str, ir.Value]]]:
        schema = table.schema()
        produced: dict[str, list[tuple[str, ir.Value]]] = {}
        for col, out in zip(self.input_cols_, self.output_cols_, strict=True):
            out_type = self._output_type(col, schema[col])
            index = self._bin_index(table, col)
            if self.encode == "ordinal":
                produced[col] = [(out, index.cast(out_type))]
            else:
                names = self._output_names(col, out)
                # cases() rather than a boolean cast: PostgreSQL cannot cast boolean to
                # double, and a NULL bin index must stay NULL.
                produced[col] = [
                    (name, ibis.cases((index == b, 1), (index != b, 0)).cast(out_type))
                    for b, name in enumerate(names)
                ]
        return produced

    def _output_names(self, col: str, output_col: str) -> list[str]:
        if self.encode == "ordinal":
            return [output_col]
        return [f"{output_col}_{float(b)}" for b in range(self.n_bins_by_col_[col])]

    def _sklearn_twin(self) -> Any:
        encode = "onehot-dense" if self.encode == "onehot" else self.encode  # neve writes dense columns
        est = self._sklearn_class(**sklearn_params(self, encode=encode))
        est.bin_edges_, est.n_bins_ = self.bin_edges_, self.n_bins_
        if encode != "ordinal":
            est._encoder = skp.OneHotEncoder(
                categories=[np.arange(i) for i in est.n_bins_],
                sparse_output=False,
                dtype=self.dtype or np.float64,
            ).fit(np.zeros((1, len(est.n_bins_))))
        return with_names_in(est, self)
