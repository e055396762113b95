"""The estimator contract: SnowML's column keywords, the NULL policy, lazy prediction,
and the fitted scikit-learn twin (``to_sklearn``).

NULL policy (documented on every estimator):
- rows whose label is NULL (or NaN) are dropped, as SnowML drops them;
- a NULL or NaN in a feature is an error naming the column (scikit-learn refuses NaN
  too); put a ``SimpleImputer`` before the estimator in a Pipeline;
- a NULL sample weight is an error naming the weight column.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any, ClassVar

import ibis.expr.types as ir
import numpy as np
from sklearn.base import BaseEstimator

from neve._columns import ColumnParams, as_list
from neve._sql_literals import double
from neve._table import as_table, missing_to_null
from neve.errors import ColumnNotFoundError, ColumnTypeError, InvalidParameterError, NeveInputError, NotFittedError
from neve.linear_model._stats import MAX_FEATURES, Design, Stats

__all__ = ["ConditioningWarning", "FeatureMap", "LinearEstimator", "as_float", "small_solves"]


#: Called once the first statistics query has run: returns the estimator's feature names
#: and ``A`` (``n_features x design.size``), each feature as a linear map of unshifted z.
FeatureMap = Callable[[Design, Stats], tuple[list[str], np.ndarray]]

#: Condition number (of the retained spectrum) above which the fit warns.
ILL_CONDITIONED = 1e10

class ConditioningWarning(UserWarning):
    """The design is ill-conditioned: coefficients may carry few exact digits."""


def identity_map(design: Design, stats: Stats) -> tuple[list[str], np.ndarray]:
    """Features are the design's numeric columns (minus the label, kept last)."""
    names = [n for n in design.numeric if n != LABEL]
    a = np.zeros((len(names), design.size))
    for k, name in enumerate(names):
        a[k, design.numeric_index(name)] = 1.0
    return names, a


LABEL = "__neve_label"


class LinearEstimator(ColumnParams, BaseEstimator):
    """Base class: not for direct use."""

    _sklearn_class: ClassVar[type]
    _is_classifier: ClassVar[bool] = False
    #: The statistics' last Gram matrix is unweighted, so it counts rows (least squares;
    #: not IRLS, whose Gram carries each step's weights).
    _gram_counts_rows: ClassVar[bool] = False

    # --- hooks ------------------------------------------------------------

    def _fit_design(
        self, design: Design, label: ir.Value, weight: ir.Value | None, features: FeatureMap,
        extras: dict[str, Any],
    ) -> Stats:
        raise NotImplementedError

    def _sklearn_params(self) -> dict[str, Any]:
        names = self._sklearn_class().get_params(deep=False)
        return {k: v for k, v in self.get_params(deep=False).items() if k in names}

    # --- fit --------------------------------------------------------------

    def fit(self, X: Any, y: Any = None) -> LinearEstimator:
        """Fit from the sufficient statistics of ``X`` (an ibis Table; pandas runs on an
        in-memory DuckDB): one aggregate query for least squares, one per Newton step for
        logistic regression. No table is written."""
        if y is not None:
            raise InvalidParameterError(
                f"{type(self).__name__}.fit takes the label inside the table: set label_cols=... "
                f"and call fit(table)"
            )
        self._validate_params()
        table, _ = as_table(X)
        label_col = self._label_col()
        inputs = self._input_cols(table)
        self._check_numeric(table, inputs)
        design, label, weight = self.prepare(table, label_col)
        design.numeric.update({col: missing_to_null(as_float(table[col])) for col in inputs})
        with small_solves():
            self._fit_design(design, label, weight, identity_map, {})
        return self

    def prepare(self, table: ir.Table, label_col: str) -> tuple[Design, ir.Value, ir.Value | None]:
        """The design's base table (rows with a NULL label dropped), label and weight."""
        self._validate_params()
        self.__dict__.pop("fit_summary_", None)  # only a fused fit leaves one (see _fused.FitSummary)
        missing = [c for c in [label_col, self.sample_weight_col] if c is not None and c not in table.columns]
        if missing:
            raise ColumnNotFoundError(
                f"{type(self).__name__}: column(s) {missing} not found; available: {list(table.columns)}"
            )
        label = missing_to_null(table[label_col])
        table = table.filter(label.notnull())
        label = missing_to_null(table[label_col])
        weight = None if self.sample_weight_col is None else as_float(table[self.sample_weight_col])
        self.label_cols_ = [label_col]
        return Design(table=table), label, weight

    def _label_col(self) -> str:
        labels = as_list(self.label_cols)
        if len(labels) != 1:
            raise InvalidParameterError(
                f"{type(self).__name__}: label_cols must name exactly one column, got {self.label_cols!r}"
            )
        return labels[0]

    def _input_cols(self, table: ir.Table) -> list[str]:
        return self._input_cols_from(list(table.columns))

    def _input_cols_from(self, columns: list[str]) -> list[str]:
        """``input_cols``, or every column but the label, weight and passthrough columns."""
        cols = as_list(self.input_cols)
        if not cols:
            skip = {*as_list(self.label_cols), *as_list(self.passthrough_cols), self.sample_weight_col}
            cols = [c for c in columns if c not in skip]
        missing = [c for c in cols if c not in columns]
        if missing:
            raise ColumnNotFoundError(
                f"{type(self).__name__}: input column(s) {missing} not found; available: {columns}"
            )
        return cols

    def _check_numeric(self, table: ir.Table, cols: list[str]) -> None:
        schema = table.schema()
        for col in cols:
            if not (schema[col].is_numeric() or schema[col].is_boolean()):
                raise ColumnTypeError(
                    f"{type(self).__name__} needs numeric features, but {col!r} has type {schema[col]}; "
                    f"encode it first (e.g. Pipeline([('ohe', OneHotEncoder(...)), ('model', ...)]))"
                )

    def _set_features(self, names: list[str]) -> None:
        if len(names) > MAX_FEATURES:
            raise NeveInputError(
                f"{type(self).__name__}: {len(names)} features is too wide for a dense "
                f"{len(names)}x{len(names)} solve in the client (limit {MAX_FEATURES}); group rare "
                f"categories (OneHotEncoder(min_frequency=..., max_categories=...)) or drop features"
            )
        self.n_features_in_ = len(names)
        self.feature_names_in_ = np.asarray(names, dtype=object)
        self.input_cols_ = list(names)

    def _check_stats(self, design: Design, stats: Stats, a: np.ndarray) -> None:
        """The NULL policy and non-finite input, from counts the query carried; ``a`` is the
        feature map, so columns the model does not use may hold NULLs."""
        used = {n for n in design.numeric if n == LABEL or np.any(a[:, design.numeric_index(n)])}
        for name in [*design.numeric, self.sample_weight_col]:
            nulls = stats.extras.get(f"null:{name}", 0.0)
            if nulls and name != LABEL and (name in used or name == self.sample_weight_col):
                what = "sample weight" if name == self.sample_weight_col else "feature"
                raise NeveInputError(
                    f"{type(self).__name__}: {what} column {name!r} has {int(nulls)} NULL/NaN value(s); "
                    f"impute them first (SimpleImputer in the Pipeline) or filter those rows"
                )
        for gram in stats.gram:
            at = [0, *sorted(design.numeric_index(n) for n in used)]
            if not np.all(np.isfinite(gram[np.ix_(at, at)])):
                raise NeveInputError(
                    f"{type(self).__name__}: a feature of {sorted(used - {LABEL})} holds an infinite value "
                    f"(or its sums overflow); filter or clip those rows first"
                )

    def null_checks(self, design: Design, weight: ir.Value | None) -> dict[str, tuple[ir.Scalar, str]]:
        checks = {f"null:{n}": (e.isnull().ifelse(1, 0).sum(), "sum") for n, e in design.numeric.items()}
        if weight is not None:
            checks[f"null:{self.sample_weight_col}"] = (weight.isnull().ifelse(1, 0).sum(), "sum")
        return checks

    def _warn_conditioning(self, cond: float) -> None:
        if not math.isfinite(cond) or cond > ILL_CONDITIONED:
            warnings.warn(
                f"{type(self).__name__}: the design is ill-conditioned (condition number {cond:.3g}); "
                f"coefficients may carry few exact digits. Scale the features or add regularisation.",
                ConditioningWarning,
                stacklevel=3,
            )

    # --- predict ----------------------------------------------------------

    def _check_is_fitted(self) -> None:
        if not hasattr(self, "coef_"):
            raise NotFittedError(f"This {type(self).__name__} instance is not fitted yet: call fit(table) first")

    def to_sklearn(self) -> Any:
        """The equivalent fitted scikit-learn estimator (same parameters and coefficients)."""
        self._check_is_fitted()
        model = self._sklearn_class(**self._sklearn_params())
        for attr in self._sklearn_attrs:
            if hasattr(self, attr):
                setattr(model, attr, getattr(self, attr))
        return model

    _sklearn_attrs: ClassVar[tuple[str, ...]] = ("coef_", "intercept_", "n_features_in_", "feature_names_in_")

    def _default_outputs(self, function_name: str, n: int) -> list[str]:
        if function_name == "predict":
            return as_list(self.output_cols) or [f"OUTPUT_{self.label_cols_[0]}"]
        prefix = {"predict_proba": "PREDICT_PROBA", "decision_function": "DECISION_FUNCTION",
                  "predict_log_proba": "PREDICT_LOG_PROBA"}[function_name]
        if n == 1:
            return [prefix]
        return [f"{prefix}_{c.item() if isinstance(c, np.generic) else c}" for c in self.classes_]

    def _run(self, X: Any, function_name: str) -> Any:
        """``X`` with the output column(s) of ``function_name`` appended, lazily."""
        # Scoring compiles the scikit-learn twin (one code path for SQL prediction); imported
        # on first use, as scoring loads every model family's compiler.
        from neve.scoring._compile import _label_type, compile_model

        self._check_is_fitted()
        table, convert = as_table(X)
        missing = [c for c in self.input_cols_ if c not in table.columns]
        if missing:
            raise ColumnNotFoundError(
                f"{type(self).__name__}: feature column(s) {missing} not found; available: {list(table.columns)}"
            )
        self._check_numeric(table, self.input_cols_)
        compiled = compile_model(self.to_sklearn())
        prepared = {f"__neve_f{i}": as_float(table[c]) for i, c in enumerate(self.input_cols_)}
        work = table.mutate(**prepared)
        work, outputs = compiled.outputs(work, list(prepared), function_name)
        if function_name == "predict" and self._is_classifier:
            outputs = [outputs[0].cast(_label_type(self.classes_))]
        names = self._default_outputs(function_name, len(outputs))
        if len(names) != len(outputs):
            raise InvalidParameterError(
                f"{type(self).__name__}: output_cols names {len(names)} column(s), {function_name} gives {len(outputs)}"
            )
        keep = [c for c in table.columns if c not in names and not (self.drop_input_cols and c in self.input_cols_)]
        result = work.select(*[work[c] for c in keep], *[o.name(n) for o, n in zip(outputs, names, strict=True)])
        return convert(result)

    def predict(self, X: Any) -> Any:
        """``X`` with the prediction column appended (``OUTPUT_<label>`` unless ``output_cols``)."""
        return self._run(X, "predict")

    def score(self, X: Any, y: Any = None) -> float:
        """R² (regressors) or accuracy (classifiers) on ``X``'s label column, computed in SQL
        (unweighted)."""
        table, _ = as_table(X)
        return score_predictions(self, self._run(table, "predict"))


def small_solves() -> Any:
    """BLAS on one thread for the client's p x p algebra (the engine's threads are its own).

    The systems are small (milliseconds on one core), and a threaded BLAS sharing busy
    cores spins: a 424 x 424 eigendecomposition took 0.5-6 s with OpenBLAS's threads on a
    loaded 2-core machine, 0.05 s on one thread.
    """
    from threadpoolctl import threadpool_limits  # a dependency of scikit-learn

    return threadpool_limits(limits=1, user_api="blas")


def as_float(column: ir.Value) -> ir.FloatingValue:
    """``column`` as float64; booleans through a CASE (PostgreSQL cannot cast them)."""
    if column.type().is_boolean():
        return column.ifelse(double(1.0), double(0.0))
    return column.cast("float64")


def score_predictions(estimator: LinearEstimator, predicted: ir.Table) -> float:
    """scikit-learn's ``score`` over a table holding the label and the prediction column."""
    from neve import metrics  # on first use: metrics is only needed to score

    metric = metrics.accuracy_score if estimator._is_classifier else metrics.r2_score
    return metric(predicted, estimator.label_cols_[0], estimator._default_outputs("predict", 1)[0])
