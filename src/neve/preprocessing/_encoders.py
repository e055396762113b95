"""Categorical encoders: fit is one counting query, transform is CASE expressions
with the fitted categories as literals (no UDFs, no category table uploaded)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.operations as ops
import ibis.expr.types as ir
import numpy as np
import pandas as pd
from sklearn import preprocessing as skp
from sklearn.utils._param_validation import StrOptions

from neve._sql_literals import typed
from neve._table import missing_to_null
from neve.errors import InvalidParameterError, NeveError, UnknownCategoryError
from neve.preprocessing import _categories as C
from neve.preprocessing._base import BaseTransformer
from neve.preprocessing._sklearn_twin import sklearn_params

__all__ = ["LabelEncoder", "OneHotEncoder", "OrdinalEncoder"]

Produced = dict[str, list[tuple[str, ir.Value]]]


class _Encoder(BaseTransformer):
    """Shared plumbing: the counting query, the dtype parameter and unknown-category errors."""

    _numeric_only = False
    # SnowML passes categories as {column: [values]}.
    _constraints_override = {"categories": [StrOptions({"auto"}), list, Mapping]}

    def _categories_param(self, cols: list[str]) -> Any:
        """``categories`` as one list per input column; a dict (SnowML's form) is keyed by column."""
        categories = getattr(self, "categories", "auto")
        if not isinstance(categories, Mapping):
            return categories
        missing = [c for c in cols if c not in categories]
        extra = [k for k in categories if k not in cols]
        if missing or extra:
            raise InvalidParameterError(
                f"{type(self).__name__}: categories is keyed by column and must name each input "
                f"column once; missing {missing}, not in input_cols {extra}"
            )
        return [list(categories[c]) for c in cols]

    def _count(self, table: ir.Table, cols: list[str], *, check_unknown: bool) -> Any:
        owner = type(self).__name__
        C.check_types(owner, table, cols)
        row = self._fetch_one(C.count_query(table, cols))
        return C.learn_categories(
            owner, table, row, cols, self._categories_param(cols), check_unknown=check_unknown
        )

    def _out_type(self) -> dt.DataType:
        try:
            return dt.dtype(np.dtype(self.dtype))
        except Exception as exc:
            raise InvalidParameterError(
                f"{type(self).__name__}: dtype {self.dtype!r} is not a numeric dtype"
            ) from exc

    def _known(self) -> dict[str, list[Any]]:
        return self.categories_

    def fit(self, X: Any, y: Any = None) -> Any:
        super().fit(X, y)
        # Transforming the very table the step was fitted on meets no unseen category, so
        # that transform (Pipeline.fit makes one per step) skips the check below.
        self._fitted_on = X if isinstance(X, ir.Table) else None
        return self

    def transform(self, X: Any) -> Any:
        # With handle_unknown="error" an Ibis result is checked here, by one query that stops
        # at the first unseen value, because the engine error its SQL would raise later (from
        # to_pandas, create_table, ...) reaches the caller without passing through neve. The
        # in-query failure stays, for rows that arrive between this check and execution.
        # An unbound table (SQL compiled for another engine) has no rows to check.
        if (
            isinstance(X, ir.Table) and X is not getattr(self, "_fitted_on", None) and self._raises_on_unknown()
            and not X.op().find(ops.UnboundTable)
        ):
            self._check_is_fitted()
            self._check_columns(X, self.input_cols_)
            found = C.first_unknown(X, {col: self._known()[col] for col in self.input_cols_})
            if found is not None:
                raise UnknownCategoryError(C.unknown_message(type(self).__name__, *found, self._known()[found[0]]))
        return super().transform(X)

    def _raises_on_unknown(self) -> bool:
        return getattr(self, "handle_unknown", "error") == "error"

    def _translate_error(self, exc: BaseException) -> NeveError | None:
        # With handle_unknown="error" an unseen category aborts the query when it runs:
        # eagerly as UnknownCategoryError, lazily as the engine's error quoting
        # "neve: unknown category in column ...".
        return C.unknown_category_error(exc, type(self).__name__, self._known())



    def _infrequent(self, counts: dict[str, list[int]], n_samples: int, skip_missing: bool) -> None:
        self.infrequent_indices_: dict[str, list[int] | None] = {}
        for col, count in counts.items():
            if not C.infrequent_enabled(self.min_frequency, self.max_categories):
                self.infrequent_indices_[col] = None
                continue
            if skip_missing and C.is_missing(self.categories_[col][-1]):
                count = count[:-1]  # missing is never grouped as infrequent (OrdinalEncoder)
            self.infrequent_indices_[col] = C.identify_infrequent(
                count, n_samples, self.min_frequency, self.max_categories
            )

    @property
    def infrequent_categories_(self) -> dict[str, list[Any] | None]:
        """Infrequent categories per input column (``None`` where there are none)."""
        self._check_is_fitted()
        return {
            col: None if idx is None else [self.categories_[col][i] for i in idx]
            for col, idx in self.infrequent_indices_.items()
        }

    def _groups(self, col: str, skip_missing: bool = False) -> list[tuple[str, list[int]]]:
        """Output groups after infrequent grouping: ``(label, category indices)``, in
        scikit-learn's order (frequent categories, then the infrequent bucket)."""
        cats = self.categories_[col]
        idx = list(range(len(cats)))
        if skip_missing and cats and C.is_missing(cats[-1]):
            idx = idx[:-1]
        infrequent = self.infrequent_indices_.get(col) or []
        skip = set(infrequent)  # 100k categories: a list here made this quadratic
        groups = [(C.label(cats[i]), [i]) for i in idx if i not in skip]
        if infrequent:
            groups.append(("infrequent_sklearn", list(infrequent)))
        return groups

    def _sklearn_twin(self) -> Any:
        categories = _sklearn_categories(self)
        plain = sklearn_params(self, categories=categories, min_frequency=None, max_categories=None)
        if isinstance(self._sklearn_class(), skp.OneHotEncoder):
            plain["sparse_output"] = False  # neve writes dense columns
        est = self._sklearn_class(**plain).fit(_category_rows(self, categories))
        est.set_params(min_frequency=self.min_frequency, max_categories=self.max_categories)
        if isinstance(est, skp.OneHotEncoder):
            _group_infrequent(est, self, skip_missing=False)
            est._set_drop_idx()
            est._n_features_outs = est._compute_n_features_outs()
        else:
            _group_infrequent(est, self, skip_missing=True)
        return est


class OneHotEncoder(_Encoder):
    """One 0/1 column per category, as scikit-learn's OneHotEncoder.

    Columns are named ``f"{output_col}_{category}"`` in scikit-learn's order
    (missing is ``nan``, last; grouped rare values are ``infrequent_sklearn``);
    with ``output_col == input_col`` the block replaces the input column.

    Differences from scikit-learn, by design: the output is always dense
    columns (``sparse_output`` is accepted and ignored, since a SQL result has
    no sparse form); ``feature_name_combiner`` must be ``"concat"`` so the
    state stays plain JSON; ``handle_unknown="warn"`` behaves as
    ``"infrequent_if_exist"`` without the warning (a lazy query cannot warn).
    With ``handle_unknown="error"``, ``transform`` of an Ibis table runs one query
    that stops at the first unseen value and raises :class:`UnknownCategoryError`
    (a ``ValueError``) on every engine; rows added before the result executes are
    still caught in the query, by the first output column of each input, as the
    engine's error quoting neve's message.
    Categories of float32 columns are kept (and named) by their exact float64
    value, e.g. ``x_0.10000000149011612`` where scikit-learn prints ``x_0.1``.

    SnowML's forms are accepted: ``sparse=False`` beside ``sparse_output``
    (``sparse=True``, SnowML's one JSON column per input, is refused), and
    ``categories`` as ``{column: [values]}``. Fitted: ``categories_`` is
    ``{column: [categories]}`` (SnowML's shape), ``drop_idx_`` scikit-learn's array
    in ``input_cols`` order (``drop_idx_by_col_`` keyed by column).
    ``input_cols=None`` encodes every column but ``passthrough_cols``;
    ``output_cols=None`` replaces each input by its block.
    """

    _sklearn_class = skp.OneHotEncoder
    _fitted_attrs = ("categories_", "drop_idx_by_col_", "infrequent_indices_")
    _renamed_state = {"drop_idx_": "drop_idx_by_col_"}
    _constraints_override = {**_Encoder._constraints_override, "sparse": ["boolean", None]}

    def __init__(
        self,
        *,
        categories: str | list[Any] = "auto",
        drop: str | list[Any] | None = None,
        sparse_output: bool = True,
        dtype: Any = np.float64,
        handle_unknown: str = "error",
        min_frequency: float | None = None,
        max_categories: int | None = None,
        feature_name_combiner: str = "concat",
        input_cols: str | list[str] | None = None,
        output_cols: str | list[str] | None = None,
        passthrough_cols: str | list[str] | None = None,
        drop_input_cols: bool = False,
        sparse: bool | None = None,
    ) -> None:
        self.categories = categories
        self.drop = drop
        self.sparse = sparse
        self.sparse_output = sparse_output
        self.dtype = dtype
        self.handle_unknown = handle_unknown
        self.min_frequency = min_frequency
        self.max_categories = max_categories
        self.feature_name_combiner = feature_name_combiner
        self.input_cols = input_cols
        self.output_cols = output_cols
        self.passthrough_cols = passthrough_cols
        self.drop_input_cols = drop_input_cols

    def _validate_extra(self) -> None:
        if self.feature_name_combiner != "concat":
            raise InvalidParameterError(
                "OneHotEncoder: feature_name_combiner must be 'concat'; a callable cannot be "
                "saved in the plain-JSON state"
            )
        if self.sparse:
            raise InvalidParameterError(
                "OneHotEncoder: sparse=True (SnowML's one JSON column per input) is not "
                "supported; neve writes one dense column per category, as sparse=False does"
            )
        self._out_type()

    def _fit(self, table: ir.Table, cols: list[str]) -> None:
        cats, counts, n_samples = self._count(
            table, cols, check_unknown=self.handle_unknown == "error"
        )
        self.categories_ = cats
        self._infrequent(counts, n_samples, skip_missing=False)
        self.drop_idx_by_col_ = self._drop_indices(cols)

    @property
    def drop_idx_(self) -> np.ndarray | None:
        """scikit-learn's ``drop_idx_``: per input column, the index in its categories to drop."""
        self._check_is_fitted()
        if self.drop_idx_by_col_ is None:
            return None
        return np.asarray([self.drop_idx_by_col_[c] for c in self.input_cols_], dtype=object)

    def _mapping(self, col: str) -> list[int]:
        """Category index -> output group index (before dropping)."""
        mapping = [0] * len(self.categories_[col])
        for g, (_, members) in enumerate(self._groups(col)):
            for i in members:
                mapping[i] = g
        return mapping

    def _drop_indices(self, cols: list[str]) -> dict[str, int | None] | None:
        """scikit-learn's ``drop_idx_``: per column the index in ``categories_`` to drop."""
        if self.drop is None:
            return None
        if isinstance(self.drop, str) and self.drop == "first":
            grouped: dict[str, int | None] = {col: 0 for col in cols}
        elif isinstance(self.drop, str):  # if_binary: after grouping rare values
            grouped = {col: 0 if len(self._groups(col)) == 2 else None for col in cols}
        else:
            drop = list(np.asarray(self.drop, dtype=object))
            if len(drop) != len(cols):
                raise InvalidParameterError(
                    f"OneHotEncoder: drop should have one value per input column "
                    f"({len(cols)}), got {len(drop)}"
                )
            grouped, missing = {}, []
            for col, value in zip(cols, drop, strict=True):
                cats = self.categories_[col]
                found = [
                    i
                    for i, c in enumerate(cats)
                    if (C.is_missing(c) and C.is_missing(value))
                    or (not C.is_missing(value) and c == value)
                ]
                if not found:
                    missing.append(f"category {value!r} of column {col!r}")
                    continue
                if found[0] in (self.infrequent_indices_.get(col) or []):
                    raise InvalidParameterError(
                        f"OneHotEncoder: unable to drop category {value!r} from column {col!r} "
                        f"because it is infrequent"
                    )
                grouped[col] = self._mapping(col)[found[0]]
            if missing:
                raise InvalidParameterError(
                    "OneHotEncoder: these categories were to be dropped but were not found in "
                    "the training data: " + "; ".join(missing)
                )
        # Back to an index into categories_, as scikit-learn reports it.
        return {
            col: None if g is None else self._mapping(col).index(g) for col, g in grouped.items()
        }

    def _kept_groups(self, col: str) -> list[tuple[str, list[int]]]:
        groups = self._groups(col)
        drop = None if self.drop_idx_by_col_ is None else self.drop_idx_by_col_.get(col)
        if drop is not None:
            dropped = self._mapping(col)[drop]
            groups = [g for i, g in enumerate(groups) if i != dropped]
        return groups

    def _output_names(self, col: str, output_col: str) -> list[str]:
        return [f"{output_col}_{name}" for name, _ in self._kept_groups(col)]

    def _one_hot_plans(self, table: ir.Table) -> dict[str, C.OneHotPlan]:
        """Per input column, its output columns as conditions (see :class:`C.OneHotPlan`);
        the transform and the fused scoring of a linear model are both written from these."""
        out_type = self._out_type()
        # With "error" an unknown value aborts the query, so the rest is infrequent there too.
        grouped = self.handle_unknown in ("infrequent_if_exist", "warn", "error")
        plans = {}
        for col, out in zip(self.input_cols_, self.output_cols_, strict=True):
            x = missing_to_null(table[col])
            error = C.fail_unknown(x, col).cast(out_type) if self.handle_unknown == "error" else None
            infrequent = set(self.infrequent_indices_.get(col) or ())
            plans[col] = C.one_hot_plan(
                col, x, self.categories_[col], infrequent, self._kept_groups(col), out,
                infrequent_is_rest=grouped, error=error,
            )
        return plans

    def _transform_columns(self, table: ir.Table) -> Produced:
        out_type = self._out_type()
        one, zero = typed(1, out_type), typed(0, out_type)
        return {col: plan.columns(out_type, one, zero) for col, plan in self._one_hot_plans(table).items()}


class OrdinalEncoder(_Encoder):
    """Integer codes per category in scikit-learn's order, as scikit-learn's OrdinalEncoder.

    Missing values become ``encoded_missing_value`` (NaN by default, written as
    SQL NULL, which pandas shows as NaN); unseen values raise or become
    ``unknown_value`` (``handle_unknown="use_encoded_value"``).

    ``input_cols=None`` (the default) encodes every column but ``passthrough_cols``;
    ``output_cols=None`` replaces each input column in place.
    """

    _sklearn_class = skp.OrdinalEncoder
    _fitted_attrs = ("categories_", "infrequent_indices_")

    def __init__(
        self,
        *,
        categories: str | list[Any] = "auto",
        dtype: Any = np.float64,
        handle_unknown: str = "error",
        unknown_value: float | None = None,
        encoded_missing_value: float = np.nan,
        min_frequency: float | None = None,
        max_categories: int | None = None,
        input_cols: str | list[str] | None = None,
        output_cols: str | list[str] | None = None,
        passthrough_cols: str | list[str] | None = None,
        drop_input_cols: bool = False,
    ) -> None:
        self.categories = categories
        self.dtype = dtype
        self.handle_unknown = handle_unknown
        self.unknown_value = unknown_value
        self.encoded_missing_value = encoded_missing_value
        self.min_frequency = min_frequency
        self.max_categories = max_categories
        self.input_cols = input_cols
        self.output_cols = output_cols
        self.passthrough_cols = passthrough_cols
        self.drop_input_cols = drop_input_cols

    def _validate_extra(self) -> None:
        out_type = self._out_type()
        if self.handle_unknown == "use_encoded_value":
            if self.unknown_value is not None and C.is_missing(self.unknown_value):
                if not out_type.is_floating():
                    raise InvalidParameterError(
                        f"OrdinalEncoder: unknown_value is NaN, so dtype must be a float dtype, "
                        f"got {self.dtype}"
                    )
            elif isinstance(self.unknown_value, bool) or not isinstance(
                self.unknown_value, (int, np.integer)
            ):
                raise InvalidParameterError(
                    "OrdinalEncoder: unknown_value must be an integer or np.nan when "
                    f"handle_unknown is 'use_encoded_value', got {self.unknown_value!r}"
                )
        elif self.unknown_value is not None:
            raise InvalidParameterError(
                "OrdinalEncoder: unknown_value should only be set when handle_unknown is "
                f"'use_encoded_value', got {self.unknown_value!r}"
            )

    def _fit(self, table: ir.Table, cols: list[str]) -> None:
        cats, counts, n_samples = self._count(
            table, cols, check_unknown=self.handle_unknown == "error"
        )
        self.categories_ = cats
        self._infrequent(counts, n_samples, skip_missing=True)
        # Codes in use per column, as scikit-learn counts them for its checks.
        cardinality = {
            col: len(self._groups(col, skip_missing=True))
            - (1 if self.infrequent_indices_.get(col) else 0)
            for col in cols
        }
        if self.handle_unknown == "use_encoded_value" and not C.is_missing(self.unknown_value):
            for col in cols:
                if 0 <= self.unknown_value < cardinality[col]:
                    raise InvalidParameterError(
                        f"OrdinalEncoder: unknown_value {self.unknown_value} is already used to "
                        f"encode a category seen in column {col!r}"
                    )
        with_missing = [col for col in cols if C.is_missing(cats[col][-1])]
        if with_missing and C.is_missing(self.encoded_missing_value):
            if not self._out_type().is_floating():
                raise InvalidParameterError(
                    f"OrdinalEncoder: columns {with_missing} have missing values; with dtype "
                    f"{self.dtype} set encoded_missing_value to a non-NaN value, or use a float dtype"
                )
        elif with_missing:
            clash = [c for c in with_missing if 0 <= self.encoded_missing_value < cardinality[c]]
            if clash:
                raise InvalidParameterError(
                    f"OrdinalEncoder: encoded_missing_value ({self.encoded_missing_value}) is "
                    f"already used to encode a known category in columns {clash}"
                )

    def _literal(self, value: Any, out_type: dt.DataType) -> ir.Value:
        return ibis.null(out_type) if C.is_missing(value) else typed(value, out_type)

    def _transform_columns(self, table: ir.Table) -> Produced:
        out_type = self._out_type()
        produced: Produced = {}
        for col, out in zip(self.input_cols_, self.output_cols_, strict=True):
            x = missing_to_null(table[col])
            if self.handle_unknown == "use_encoded_value":
                otherwise = self._literal(self.unknown_value, out_type)
            else:
                otherwise = C.fail_unknown(x, col).cast(out_type)
            cats = self.categories_[col]
            codes = [
                (cats[i], code)
                for code, (_, members) in enumerate(self._groups(col, skip_missing=True))
                for i in members
            ]
            missing = self._literal(self.encoded_missing_value, out_type)
            produced[col] = [(out, _codes(x, codes, out_type, otherwise, cats, missing))]
        return produced


def _codes(
    x: ir.Value,
    codes: list[tuple[Any, int]],
    out_type: dt.DataType,
    otherwise: ir.Value,
    cats: list[Any],
    missing_code: ir.Value,
) -> ir.Value:
    """``CASE x WHEN cat THEN code ... ELSE otherwise END``; missing maps to ``missing_code``
    when NaN is a fitted category and counts as unknown otherwise."""
    branches = [(value, typed(code, out_type)) for value, code in codes]
    expr = x.cases(*branches, else_=otherwise) if branches else otherwise
    if cats and C.is_missing(cats[-1]):
        expr = ibis.ifelse(x.isnull(), missing_code, expr)
    return expr


class LabelEncoder(_Encoder):
    """Encode one column's labels as ``0 .. n_classes - 1``, as scikit-learn's LabelEncoder.

    ``classes_`` is an array of the labels sorted as scikit-learn sorts them
    (``classes_by_col_`` is ``{column: [labels]}``); a missing label is a class
    of its own, last (``None`` in a string column, NaN otherwise, as
    scikit-learn does). An unseen label raises when the result executes.
    The column parameters may be passed positionally, as SnowML's
    ``LabelEncoder("LABEL", "LABEL_CODE")``. ``input_cols=None`` works when the
    table (less ``passthrough_cols``) has exactly one column; ``output_cols=None``
    encodes it in place.
    """

    _sklearn_class = skp.LabelEncoder
    _fitted_attrs = ("classes_by_col_",)
    _renamed_state = {"classes_": "classes_by_col_"}

    def __init__(
        self,
        input_cols: str | list[str] | None = None,
        output_cols: str | list[str] | None = None,
        passthrough_cols: str | list[str] | None = None,
        drop_input_cols: bool = False,
    ) -> None:
        self.input_cols = input_cols
        self.output_cols = output_cols
        self.passthrough_cols = passthrough_cols
        self.drop_input_cols = drop_input_cols

    def _known(self) -> dict[str, list[Any]]:
        return self.classes_by_col_

    @property
    def classes_(self) -> np.ndarray:
        self._check_is_fitted()
        classes = self.classes_by_col_[self.input_cols_[0]]
        if any(isinstance(c, str) for c in classes):
            classes = [None if C.is_missing(c) else c for c in classes]
        return np.asarray(classes, dtype=object if classes and None in classes else None)

    def _fit(self, table: ir.Table, cols: list[str]) -> None:
        if len(cols) != 1:
            raise InvalidParameterError(
                f"LabelEncoder encodes exactly one column, got {len(cols)}: {cols}; "
                f"set input_cols to the label column"
            )
        cats, _, _ = self._count(table, cols, check_unknown=False)
        self.classes_by_col_ = cats

    def _transform_columns(self, table: ir.Table) -> Produced:
        col, out = self.input_cols_[0], self.output_cols_[0]
        x = missing_to_null(table[col])
        classes = self.classes_by_col_[col]
        present = [(c, i) for i, c in enumerate(classes) if not C.is_missing(c)]
        otherwise = C.fail_unknown(x, col)
        missing_code = ibis.literal(len(classes) - 1, type=dt.int64)
        return {col: [(out, _codes(x, present, dt.int64, otherwise, classes, missing_code))]}

    def _sklearn_twin(self) -> Any:
        est = skp.LabelEncoder()
        est.classes_ = self.classes_
        return est


def _sklearn_categories(step: _Encoder) -> list[np.ndarray]:
    """``categories_`` as scikit-learn holds them: numbers in a numeric array, anything
    else (strings, booleans) in an object array, missing as NaN, last."""
    out = []
    for col in step.input_cols_:
        cats = [np.nan if C.is_missing(c) else c for c in step.categories_[col]]
        textual = any(isinstance(c, (str, bool, np.bool_)) for c in cats)
        out.append(np.asarray(cats, dtype=object if textual else None))
    return out


def _category_rows(step: _Encoder, categories: list[np.ndarray]) -> pd.DataFrame:
    """Rows holding every category of every column (columns cycle through theirs)."""
    n = max(len(c) for c in categories)
    return pd.DataFrame(
        {
            col: pd.Series([cats[i % len(cats)] for i in range(n)], dtype=cats.dtype)
            for col, cats in zip(step.input_cols_, categories, strict=True)
        }
    )


def _group_infrequent(est: Any, step: _Encoder, skip_missing: bool) -> None:
    """Give a scikit-learn encoder neve's infrequent grouping (scikit-learn's own mapping rule)."""
    est._infrequent_enabled = C.infrequent_enabled(step.min_frequency, step.max_categories)
    if not est._infrequent_enabled:
        return
    est._infrequent_indices, est._default_to_infrequent_mappings = [], []
    for col, cats in zip(step.input_cols_, est.categories_, strict=True):
        idx = step.infrequent_indices_.get(col)
        est._infrequent_indices.append(None if idx is None else np.asarray(idx, dtype=np.int64))
        if idx is None:
            est._default_to_infrequent_mappings.append(None)
            continue
        n_cats = len(cats) - (1 if skip_missing and len(cats) and C.is_missing(cats[-1]) else 0)
        mapping = np.empty(n_cats, dtype=np.int64)
        frequent = np.setdiff1d(np.arange(n_cats), idx)
        mapping[idx] = len(frequent)
        mapping[frequent] = np.arange(len(frequent))
        est._default_to_infrequent_mappings.append(mapping)
