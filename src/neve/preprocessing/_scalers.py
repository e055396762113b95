"""Scalers and row-wise transforms: fit is one aggregate query, transform is arithmetic in SQL."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import ibis
import ibis.expr.types as ir
from scipy import stats
from sklearn import preprocessing as skp

from neve import _sql_templates as T
from neve._sql_literals import double
from neve.errors import InvalidParameterError, NeveError, NeveInputError
from neve.preprocessing._base import (
    FLOAT_EPS,
    ROW_COUNT,
    BaseTransformer,
    handle_zeros_in_scale,
)

__all__ = [
    "Binarizer",
    "MaxAbsScaler",
    "MinMaxScaler",
    "Normalizer",
    "RobustScaler",
    "StandardScaler",
]


def _float(value: Any) -> float:
    """A fitted statistic as a Python float; NULL (an all-missing column) is NaN, as in numpy."""
    return math.nan if value is None else float(value)


def _nonnegative(value: float) -> float:
    """Clamp rounding below zero (NaN, from an all-missing column, stays NaN)."""
    return 0.0 if value < 0 else value


def _as_float(column: ir.Column) -> ir.FloatingColumn:
    return column if column.type().is_floating() else column.cast("float64")


def _finite(x: ir.FloatingColumn) -> ir.FloatingColumn:
    """NaN (missing, as in scikit-learn) and infinities become NULL, in one CASE.

    Infinite values are counted and rejected separately; keeping them out of the
    statistics stops engines from failing first with an anonymous overflow error.
    One CASE instead of two nested ones: each aggregate re-evaluates its input,
    and the nested form cost StandardScaler.fit about 30% on DuckDB.
    """
    return (x.isnan() | x.isinf()).ifelse(ibis.null("float64"), x)


def _stat_type(stat: Any) -> str:
    """What the engine returns for one statistic: counts are integers, the rest doubles."""
    return "int64" if isinstance(stat, T.Call) and stat.func == "COUNT" else "float64"


def _count(x: Any, _: Any) -> T.Call:
    return T.Call("COUNT", (x,))


def _mean(x: Any, _: Any) -> T.Call:
    return T.Call("AVG", (x,))


def _mean_square(x: Any, _: Any) -> T.Call:
    return T.Call("AVG", (T.Arith("*", x, x),))


class _NumericTransformer(BaseTransformer):
    """Shared plumbing: every input column is read as float64 with NaN treated as missing."""

    def _stats(
        self, table: ir.Table, cols: list[str], *, centred: bool = False, **per_column: Any
    ) -> dict[str, Any]:
        """One query computing ``per_column[name](x, column)`` for every input column.

        ``x`` is the column as a :mod:`neve._sql_templates` template and ``column`` the same as an
        Ibis value (``None`` when centred); a function returns a ``T.Call`` aggregate, or an
        Ibis aggregate for what only Ibis can write in every dialect (a quantile).

        Returns ``{name: {col: value}}``, each column's ``"min"`` and ``"max"``
        (unless centred), and the row count under ``"rows"``. With ``centred=True`` the functions
        see ``column - mean`` from a first pass over the data (in the same
        query), and the means come back under ``"shift"``: the two-pass form
        that keeps mean and variance exact when the mean is large next to the
        spread (a one-pass sum of squares loses 10% at mean 1e6, sd 0.87).
        Infinite values are rejected, as scikit-learn's input validation does.

        The query first reads the raw values, as hand-written SQL would: a NaN
        or an infinity in a column makes its MIN or MAX (or its mean) non-finite
        on every engine (or aborts the query), as it does a first-pass mean, so
        finite results prove the raw
        statistics exact. Only then, for data that really holds NaN or infinity (pandas NaN arrives as
        NULL), a second query repeats the work with NaN read as missing. Guarding
        every value instead cost 2-3x on DuckDB, and hid plain MIN/MAX from the
        engines (DuckDB, Snowflake) that answer them from stored column metadata.
        """
        try:
            result = self._stats_query(table, cols, centred, per_column, clean=False)
        except NeveError:
            raise
        except Exception:  # noqa: BLE001 - retried below with guards, which re-raises
            # Some engines abort on NaN or infinity (DuckDB: "VARPOP is out of range");
            # the guarded query below gives the right answer or the right error.
            return self._stats_query(table, cols, centred, per_column, clean=True)
        suspect = [result["shift"]] if centred else [result["min"], result["max"]]
        if all(v is None or math.isfinite(v) for stat in suspect for v in stat.values()):
            return result
        return self._stats_query(table, cols, centred, per_column, clean=True)

    def _stats_query(
        self,
        table: ir.Table,
        cols: list[str],
        centred: bool,
        per_column: dict[str, Any],
        *,
        clean: bool,
    ) -> dict[str, Any]:
        # Written as SQL text (neve._sql_templates): through Ibis's expression API this query
        # cost more Python than the engine spends on 2M rows. Ibis compiles only what is
        # dialect specific: NaN/infinity tests, boolean casts, quantiles.
        schema = table.schema()
        inputs: dict[Any, ir.Value] = {}
        xs: dict[str, Any] = {}
        for i, col in enumerate(cols):
            dtype = schema[col]
            if clean:
                inputs[("x", i)] = _finite(_as_float(table[col]))
                inputs[("inf", i)] = _as_float(table[col]).isinf()
                xs[col] = T.Input(("x", i))
            elif dtype.is_floating():
                xs[col] = T.Col(col)
            elif dtype.is_integer() or dtype.is_decimal():
                xs[col] = T.AsDouble(T.Col(col))
            else:
                inputs[("x", i)] = _as_float(table[col])
                xs[col] = T.Input(("x", i))
        sources = [table]
        if centred:
            shift = [(f"shift__{i}", T.Call("AVG", (xs[col],)), "float64") for i, col in enumerate(cols)]
            sources.append(T.query_text([table], shift, {k: v for k, v in inputs.items() if k[0] == "x"}))
        columns: list[tuple[str, Any, Any]] = [(ROW_COUNT, T.Call("COUNT"), "int64")]
        for i, col in enumerate(cols):
            x = xs[col]
            if not centred:  # a centred query's first-pass mean is guard enough
                columns += [(f"min__{i}", T.Call("MIN", (x,)), "float64"),
                            (f"max__{i}", T.Call("MAX", (x,)), "float64")]  # fmt: skip
            else:
                # No COALESCE: a NULL shift (all-missing column) leaves NULL statistics,
                # which is the right answer, and COALESCE costs ~5% of the query.
                x = T.Arith("-", x, T.Col(f"shift__{i}", 1))
                columns.append((f"shift__{i}", T.Call("MAX", (T.Col(f"shift__{i}", 1),)), "float64"))
            for name, fn in per_column.items():
                stat = fn(x, None if centred else inputs.get(("x", i), _as_float(table[col])))
                if not isinstance(stat, T.Call):  # an Ibis aggregate (a quantile)
                    inputs[(name, i)] = stat
                    stat = T.Input((name, i))
                columns.append((f"{name}__{i}", stat, _stat_type(stat)))
            if clean:
                # On the raw value: once centred, inf - inf would hide as NaN (and NaN
                # is never infinite, so no NaN-to-NULL step is needed here).
                flag = T.Case(((T.Input(("inf", i)), T.Const(1)),), T.Const(0))
                columns.append((f"ninf__{i}", T.Call("SUM", (flag,)), "int64"))
        row = self._fetch_one(T.query_text(sources, columns, inputs))
        for i, col in enumerate(cols):
            if clean and row[f"ninf__{i}"]:
                raise NeveInputError(
                    f"{type(self).__name__}: column {col!r} contains infinity "
                    f"({row[f'ninf__{i}']} rows), which scikit-learn rejects too; "
                    f"filter or impute those rows first"
                )
        names = [*per_column, *(["shift"] if centred else ["min", "max"])]
        result: dict[str, Any] = {
            name: {col: row[f"{name}__{i}"] for i, col in enumerate(cols)} for name in names
        }
        result["rows"] = int(row[ROW_COUNT])
        return result

    def _columnwise(self, table: ir.Table, fn: Any) -> dict[str, list[tuple[str, ir.Value]]]:
        return {
            col: [(out, fn(self._numeric(table, col), col))]
            for col, out in zip(self.input_cols_, self.output_cols_, strict=True)
        }


class StandardScaler(_NumericTransformer):
    """Standardise columns to zero mean and unit variance, as scikit-learn's StandardScaler.

    ``var_`` is the population variance (ddof=0) over non-missing values; a
    near-constant column gets ``scale_ = 1`` by scikit-learn's bound.

    ``input_cols=None`` (the default) transforms every column but ``passthrough_cols``;
    ``output_cols=None`` replaces each input column in place.
    """

    _sklearn_class = skp.StandardScaler
    _fitted_attrs = ("mean_", "var_", "scale_", "n_samples_seen_")

    def __init__(
        self,
        *,
        copy: bool = True,
        with_mean: bool = True,
        with_std: bool = True,
        input_cols: str | list[str] | None = None,
        output_cols: str | list[str] | None = None,
        passthrough_cols: str | list[str] | None = None,
        drop_input_cols: bool = False,
    ) -> None:
        self.copy = copy
        self.with_mean = with_mean
        self.with_std = with_std
        self.input_cols = input_cols
        self.output_cols = output_cols
        self.passthrough_cols = passthrough_cols
        self.drop_input_cols = drop_input_cols

    def _fit(self, table: ir.Table, cols: list[str]) -> None:
        s = self._stats(
            table,
            cols,
            centred=True,
            n=_count,
            mean=_mean,
            # Mean of squares of the centred values, not VAR_POP: the corrected
            # two-pass formula below is as exact here and about 25% cheaper on DuckDB.
            sq=_mean_square,
        )
        self.n_samples_seen_ = {c: int(s["n"][c]) for c in cols}
        need_moments = self.with_mean or self.with_std
        self.mean_ = (
            {c: _float(s["shift"][c]) + _float(s["mean"][c]) for c in cols} if need_moments else None
        )
        self.var_ = (
            {c: _nonnegative(_float(s["sq"][c]) - _float(s["mean"][c]) ** 2) for c in cols}
            if self.with_std
            else None
        )
        if self.with_std:
            self.scale_ = {}
            for c in cols:
                var, mean, n = self.var_[c], self.mean_[c], self.n_samples_seen_[c]
                constant = var <= n * FLOAT_EPS * var + (n * mean * FLOAT_EPS) ** 2
                self.scale_[c] = handle_zeros_in_scale(math.sqrt(var), constant)
        else:
            self.scale_ = None

    def _transform_columns(self, table: ir.Table) -> dict[str, list[tuple[str, ir.Value]]]:
        return self._columnwise(table, _shift_and_scale(self.mean_ if self.with_mean else None, self.scale_))


class MinMaxScaler(_NumericTransformer):
    """Scale each column to ``feature_range``, as scikit-learn's MinMaxScaler (``clip`` included).

    ``input_cols=None`` (the default) transforms every column but ``passthrough_cols``;
    ``output_cols=None`` replaces each input column in place.
    """

    _sklearn_class = skp.MinMaxScaler
    _fitted_attrs = ("data_min_", "data_max_", "data_range_", "scale_", "min_", "n_samples_seen_")

    def __init__(
        self,
        feature_range: tuple[float, float] = (0, 1),
        *,
        copy: bool = True,
        clip: bool = False,
        input_cols: str | list[str] | None = None,
        output_cols: str | list[str] | None = None,
        passthrough_cols: str | list[str] | None = None,
        drop_input_cols: bool = False,
    ) -> None:
        self.feature_range = feature_range
        self.copy = copy
        self.clip = clip
        self.input_cols = input_cols
        self.output_cols = output_cols
        self.passthrough_cols = passthrough_cols
        self.drop_input_cols = drop_input_cols

    def _validate_extra(self) -> None:
        low, high = self.feature_range
        if low >= high:
            raise InvalidParameterError(
                f"MinMaxScaler: minimum of feature_range must be smaller than maximum, "
                f"got {tuple(self.feature_range)}"
            )

    def _fit(self, table: ir.Table, cols: list[str]) -> None:
        s = self._stats(table, cols)
        low, high = (float(v) for v in self.feature_range)
        self.n_samples_seen_ = s["rows"]
        self.data_min_ = {c: _float(s["min"][c]) for c in cols}
        self.data_max_ = {c: _float(s["max"][c]) for c in cols}
        self.data_range_ = {c: self.data_max_[c] - self.data_min_[c] for c in cols}
        self.scale_ = {c: (high - low) / handle_zeros_in_scale(self.data_range_[c]) for c in cols}
        self.min_ = {c: low - self.data_min_[c] * self.scale_[c] for c in cols}

    def _transform_columns(self, table: ir.Table) -> dict[str, list[tuple[str, ir.Value]]]:
        low, high = (float(v) for v in self.feature_range)

        def scale(x: ir.FloatingColumn, col: str) -> ir.Value:
            x = x * double(self.scale_[col]) + double(self.min_[col])
            return x.clip(lower=double(low), upper=double(high)) if self.clip else x

        return self._columnwise(table, scale)


class MaxAbsScaler(_NumericTransformer):
    """Divide each column by its maximum absolute value, as scikit-learn's MaxAbsScaler.

    ``clip=True`` clips held-out values to [-1, 1].

    ``input_cols=None`` (the default) transforms every column but ``passthrough_cols``;
    ``output_cols=None`` replaces each input column in place.
    """

    _sklearn_class = skp.MaxAbsScaler
    _fitted_attrs = ("max_abs_", "scale_", "n_samples_seen_")

    def __init__(
        self,
        *,
        copy: bool = True,
        clip: bool = False,
        input_cols: str | list[str] | None = None,
        output_cols: str | list[str] | None = None,
        passthrough_cols: str | list[str] | None = None,
        drop_input_cols: bool = False,
    ) -> None:
        self.copy = copy
        self.clip = clip
        self.input_cols = input_cols
        self.output_cols = output_cols
        self.passthrough_cols = passthrough_cols
        self.drop_input_cols = drop_input_cols

    def _fit(self, table: ir.Table, cols: list[str]) -> None:
        # max |x| is max(|min|, |max|) exactly; plain MIN/MAX are cheaper than MAX(ABS(x)).
        s = self._stats(table, cols)
        self.n_samples_seen_ = s["rows"]
        self.max_abs_ = {c: max(abs(_float(s["min"][c])), abs(_float(s["max"][c]))) for c in cols}
        self.scale_ = {c: handle_zeros_in_scale(self.max_abs_[c]) for c in cols}

    def _transform_columns(self, table: ir.Table) -> dict[str, list[tuple[str, ir.Value]]]:
        def scale(x: ir.FloatingColumn, col: str) -> ir.Value:
            x = x / double(self.scale_[col])
            return x.clip(lower=double(-1.0), upper=double(1.0)) if self.clip else x

        return self._columnwise(table, scale)


class RobustScaler(_NumericTransformer):
    """Centre on the median and scale by an exact interquantile range, as scikit-learn's RobustScaler.

    Quantiles are exact (``quantile_cont``/``percentile_cont``, numpy's "linear" method).

    ``input_cols=None`` (the default) transforms every column but ``passthrough_cols``;
    ``output_cols=None`` replaces each input column in place.
    """

    _sklearn_class = skp.RobustScaler
    _fitted_attrs = ("center_", "scale_")

    def __init__(
        self,
        *,
        with_centering: bool = True,
        with_scaling: bool = True,
        quantile_range: tuple[float, float] = (25.0, 75.0),
        copy: bool = True,
        unit_variance: bool = False,
        input_cols: str | list[str] | None = None,
        output_cols: str | list[str] | None = None,
        passthrough_cols: str | list[str] | None = None,
        drop_input_cols: bool = False,
    ) -> None:
        self.with_centering = with_centering
        self.with_scaling = with_scaling
        self.quantile_range = quantile_range
        self.copy = copy
        self.unit_variance = unit_variance
        self.input_cols = input_cols
        self.output_cols = output_cols
        self.passthrough_cols = passthrough_cols
        self.drop_input_cols = drop_input_cols

    def _validate_extra(self) -> None:
        q_min, q_max = self.quantile_range
        if not 0 <= q_min <= q_max <= 100:
            raise InvalidParameterError(
                f"RobustScaler: invalid quantile_range {tuple(self.quantile_range)}; "
                f"need 0 <= q_min <= q_max <= 100"
            )

    def _fit(self, table: ir.Table, cols: list[str]) -> None:
        q_min, q_max = (float(q) / 100 for q in self.quantile_range)
        s = self._stats(
            table,
            cols,
            median=lambda _, x: x.quantile(0.5),
            q_lo=lambda _, x: x.quantile(q_min),
            q_hi=lambda _, x: x.quantile(q_max),
        )
        self.center_ = {c: _float(s["median"][c]) for c in cols} if self.with_centering else None
        if self.with_scaling:
            adjust = 1.0
            if self.unit_variance:
                adjust = float(stats.norm.ppf(q_max) - stats.norm.ppf(q_min))
            self.scale_ = {
                c: handle_zeros_in_scale(_float(s["q_hi"][c]) - _float(s["q_lo"][c])) / adjust
                for c in cols
            }
        else:
            self.scale_ = None

    def _transform_columns(self, table: ir.Table) -> dict[str, list[tuple[str, ir.Value]]]:
        return self._columnwise(table, _shift_and_scale(self.center_, self.scale_))


class Normalizer(_NumericTransformer):
    """Scale each row of ``input_cols`` to unit norm (l1, l2 or max), as scikit-learn's Normalizer.

    Stateless: ``fit`` only checks the columns and that the table has rows.
    Difference: a row with a missing value gives NULL outputs for that row,
    where scikit-learn raises on NaN.

    ``input_cols=None`` (the default) transforms every column but ``passthrough_cols``;
    ``output_cols=None`` replaces each input column in place.
    """

    _sklearn_class = skp.Normalizer

    def __init__(
        self,
        norm: str = "l2",
        *,
        copy: bool = True,
        input_cols: str | list[str] | None = None,
        output_cols: str | list[str] | None = None,
        passthrough_cols: str | list[str] | None = None,
        drop_input_cols: bool = False,
    ) -> None:
        self.norm = norm
        self.copy = copy
        self.input_cols = input_cols
        self.output_cols = output_cols
        self.passthrough_cols = passthrough_cols
        self.drop_input_cols = drop_input_cols

    def _fit(self, table: ir.Table, cols: list[str]) -> None:
        self._stats(table, cols)

    def _transform_columns(self, table: ir.Table) -> dict[str, list[tuple[str, ir.Value]]]:
        xs = [self._numeric(table, c) for c in self.input_cols_]
        if self.norm == "l1":
            norm = sum((x.abs() for x in xs[1:]), xs[0].abs())
        elif self.norm == "l2":
            norm = sum((x * x for x in xs[1:]), xs[0] * xs[0]).sqrt()
        else:
            norm = ibis.greatest(*(x.abs() for x in xs)) if len(xs) > 1 else xs[0].abs()
        # scikit-learn divides by 1 where the norm is (near) zero, leaving such rows untouched.
        safe = (norm < double(10 * FLOAT_EPS)).ifelse(double(1.0), norm)
        return self._columnwise(table, lambda x, col: x / safe)


class Binarizer(_NumericTransformer):
    """1.0 where a value is above ``threshold``, else 0.0, as scikit-learn's Binarizer.

    Difference: missing values stay missing (scikit-learn raises on NaN).

    ``input_cols=None`` (the default) transforms every column but ``passthrough_cols``;
    ``output_cols=None`` replaces each input column in place.
    """

    _sklearn_class = skp.Binarizer

    def __init__(
        self,
        *,
        threshold: float = 0.0,
        copy: bool = True,
        input_cols: str | list[str] | None = None,
        output_cols: str | list[str] | None = None,
        passthrough_cols: str | list[str] | None = None,
        drop_input_cols: bool = False,
    ) -> None:
        self.threshold = threshold
        self.copy = copy
        self.input_cols = input_cols
        self.output_cols = output_cols
        self.passthrough_cols = passthrough_cols
        self.drop_input_cols = drop_input_cols

    def _fit(self, table: ir.Table, cols: list[str]) -> None:
        self._stats(table, cols)

    def _transform_columns(self, table: ir.Table) -> dict[str, list[tuple[str, ir.Value]]]:
        threshold = double(self.threshold)
        return self._columnwise(
            # ifelse rather than a bool cast: PostgreSQL cannot cast boolean to double.
            table,
            lambda x, col: x.isnull().ifelse(ibis.null("float64"), (x > threshold).ifelse(double(1.0), double(0.0))),
        )


def _shift_and_scale(
    shift: dict[str, float] | None, scale: dict[str, float] | None
) -> Callable[[ir.FloatingColumn, str], ir.Value]:
    """``(x - shift[col]) / scale[col]``, leaving out whichever of the two is ``None``."""

    def apply(x: ir.FloatingColumn, col: str) -> ir.Value:
        if shift is not None:
            x = x - double(shift[col])
        if scale is not None:
            x = x / double(scale[col])
        return x

    return apply
