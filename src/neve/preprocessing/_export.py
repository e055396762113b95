"""``to_sklearn()``: the fitted scikit-learn equivalent of a neve step or pipeline.

SnowML users hand fitted models to scikit-learn code this way. A step becomes the
scikit-learn transformer of the same class over its ``input_cols`` (what SnowML's
``to_sklearn`` returns); a pipeline becomes a scikit-learn ``Pipeline`` of
``ColumnTransformer`` steps that takes and returns pandas frames with neve's column names.
Fitted state is copied, never refitted: scalers get their attributes set, encoders are
fitted on their own categories (the rows do not matter once the categories are given)
and get neve's infrequent grouping, the imputer is fitted on rows that reproduce its
statistics exactly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn import preprocessing as skp
from sklearn.compose import ColumnTransformer
from sklearn.frozen import FrozenEstimator
from sklearn.pipeline import Pipeline as SkPipeline
from sklearn.preprocessing import FunctionTransformer

from neve.errors import InvalidParameterError
from neve.preprocessing import _categories as C

if TYPE_CHECKING:
    from neve.pipeline import Pipeline
    from neve.preprocessing._base import BaseTransformer

__all__ = ["pipeline_to_sklearn", "step_to_sklearn"]

_NEVE_ONLY = {"input_cols", "output_cols", "passthrough_cols", "drop_input_cols", "sparse"}


class FixedNames:
    """``feature_names_out`` for a FunctionTransformer: neve's output names (picklable)."""

    def __init__(self, names: list[str]) -> None:
        self.names = list(names)

    def __call__(self, transformer: Any, input_features: Any) -> np.ndarray:
        return np.asarray(self.names, dtype=object)


def _sk_params(step: BaseTransformer, **overrides: Any) -> dict[str, Any]:
    accepted = step._sklearn_class().get_params()
    params = {k: v for k, v in step.get_params(deep=False).items() if k not in _NEVE_ONLY and k in accepted}
    return {**params, **overrides}


def _by_col(step: BaseTransformer, values: Any) -> Any:
    if values is None or not isinstance(values, dict):
        return values
    return np.asarray([values[c] for c in step.input_cols_], dtype=np.float64)


def _names_in(est: Any, step: BaseTransformer) -> Any:
    est.n_features_in_ = len(step.input_cols_)
    est.feature_names_in_ = np.asarray(step.input_cols_, dtype=object)
    return est


def _scaler(step: BaseTransformer) -> Any:
    est = step._sklearn_class(**_sk_params(step))
    for attr in step._fitted_attrs:
        value = getattr(step, attr)
        if attr == "n_samples_seen_" and isinstance(value, dict):
            counts = np.asarray([value[c] for c in step.input_cols_], dtype=np.int64)
            value = int(counts[0]) if np.ptp(counts) == 0 else counts  # as scikit-learn stores it
        else:
            value = _by_col(step, value)
        setattr(est, attr, value)
    return _names_in(est, step)


def _categories(step: BaseTransformer) -> list[np.ndarray]:
    """``categories_`` as scikit-learn holds them: numbers in a numeric array, anything
    else (strings, booleans) in an object array, missing as NaN, last."""
    out = []
    for col in step.input_cols_:
        cats = [np.nan if C.is_missing(c) else c for c in step.categories_[col]]
        textual = any(isinstance(c, (str, bool, np.bool_)) for c in cats)
        out.append(np.asarray(cats, dtype=object if textual else None))
    return out


def _category_rows(step: BaseTransformer, categories: list[np.ndarray]) -> pd.DataFrame:
    """Rows holding every category of every column (columns cycle through theirs)."""
    n = max(len(c) for c in categories)
    return pd.DataFrame(
        {
            col: pd.Series([cats[i % len(cats)] for i in range(n)], dtype=cats.dtype)
            for col, cats in zip(step.input_cols_, categories, strict=True)
        }
    )


def _group_infrequent(est: Any, step: BaseTransformer, skip_missing: bool) -> None:
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


def _encoder(step: BaseTransformer) -> Any:
    categories = _categories(step)
    plain = _sk_params(step, categories=categories, min_frequency=None, max_categories=None)
    if isinstance(step._sklearn_class(), skp.OneHotEncoder):
        plain["sparse_output"] = False  # neve writes dense columns
    est = step._sklearn_class(**plain).fit(_category_rows(step, categories))
    est.set_params(min_frequency=step.min_frequency, max_categories=step.max_categories)
    if isinstance(est, skp.OneHotEncoder):
        _group_infrequent(est, step, skip_missing=False)
        est._set_drop_idx()
        est._n_features_outs = est._compute_n_features_outs()
    else:
        _group_infrequent(est, step, skip_missing=True)
    return est


def _label_encoder(step: BaseTransformer) -> Any:
    est = skp.LabelEncoder()
    est.classes_ = step.classes_
    return est


def _discretizer(step: BaseTransformer) -> Any:
    encode = "onehot-dense" if step.encode == "onehot" else step.encode  # neve writes dense columns
    est = step._sklearn_class(**_sk_params(step, encode=encode))
    est.bin_edges_, est.n_bins_ = step.bin_edges_, step.n_bins_
    if encode != "ordinal":
        est._encoder = skp.OneHotEncoder(
            categories=[np.arange(i) for i in est.n_bins_],
            sparse_output=False,
            dtype=step.dtype or np.float64,
        ).fit(np.zeros((1, len(est.n_bins_))))
    return _names_in(est, step)


def _imputer(step: BaseTransformer) -> Any:
    """Fitted on two rows per column, ``[stat, stat]`` (``[stat, missing]`` where fit saw
    missing values, so the indicator marks the same columns): every strategy gives back
    ``stat`` exactly."""
    rows = {}
    for col in step.input_cols_:
        stat = step.statistics_[col]
        missing = np.nan if col in step.indicator_ or C.is_missing(stat) else stat
        rows[col] = [np.nan if C.is_missing(stat) else stat, missing]
    frame = pd.DataFrame(rows)
    for col in step.input_cols_:
        if not any(isinstance(v, str) for v in frame[col]):
            frame[col] = frame[col].astype(np.float64)
        else:
            frame[col] = frame[col].astype(object)
    strategy = "most_frequent" if step.strategy in ("mean", "median") and frame.dtypes.eq(object).any() else None
    est = step._sklearn_class(**_sk_params(step, **({"strategy": strategy} if strategy else {})))
    return est.fit(frame)


def step_to_sklearn(step: BaseTransformer) -> Any:
    """The fitted scikit-learn transformer of ``step``'s class over ``step.input_cols_``."""
    step._check_is_fitted()
    name = type(step).__name__
    if name in ("OneHotEncoder", "OrdinalEncoder"):
        return _encoder(step)
    if name == "LabelEncoder":
        return _label_encoder(step)
    if name == "KBinsDiscretizer":
        return _discretizer(step)
    if name == "SimpleImputer":
        return _imputer(step)
    return _scaler(step)


def _sample_row(step: BaseTransformer, columns: list[str]) -> pd.DataFrame:
    """One row with a value every column of the step's input table accepts (what
    ``ColumnTransformer.fit`` needs to record its columns; the frozen step ignores it)."""
    row: dict[str, Any] = dict.fromkeys(columns, 0.0)
    for col in step.input_cols_:
        known = getattr(step, "categories_", None)
        if known is not None:
            row[col] = next((c for c in known[col] if not C.is_missing(c)), np.nan)
        elif type(step).__name__ == "SimpleImputer" and isinstance(step.statistics_[col], str):
            row[col] = step.statistics_[col]
    return pd.DataFrame({k: [v] for k, v in row.items()})


def _column_step(name: str, step: BaseTransformer, columns: list[str]) -> ColumnTransformer:
    if type(step).__name__ == "LabelEncoder":
        raise InvalidParameterError(
            f"pipeline step {name!r}: scikit-learn's LabelEncoder encodes a target (1-D y) and has "
            f"no place in a scikit-learn Pipeline of features; call to_sklearn() on the step itself"
        )
    est = step_to_sklearn(step)
    sample = _sample_row(step, columns)
    produced = list(step.get_feature_names_out())
    native = list(est.set_output(transform="pandas").transform(sample[step.input_cols_]).columns)
    if native != produced:
        rename = FunctionTransformer(feature_names_out=FixedNames(produced)).set_output(transform="pandas")
        est = SkPipeline([("step", est), ("names", rename.fit(est.transform(sample[step.input_cols_])))])
    parts: list[tuple[str, Any, list[str]]] = [(name, FrozenEstimator(est), list(step.input_cols_))]
    kept = [c for c in step.input_cols_ if c not in step._in_place() and not step.drop_input_cols and c not in produced]
    if kept:
        parts.append((f"{name}_inputs", "passthrough", kept))
    ct = ColumnTransformer(parts, remainder="passthrough", verbose_feature_names_out=False)
    return ct.set_output(transform="pandas").fit(sample)


def pipeline_to_sklearn(pipe: Pipeline) -> SkPipeline:
    """A fitted scikit-learn Pipeline of ColumnTransformers: pandas in, pandas out, with the
    columns neve's ``transform`` returns (their order may differ)."""
    pipe._check_is_fitted()
    columns = list(pipe.columns_in_)
    steps = []
    for name, step in pipe.steps:
        steps.append((name, _column_step(name, step, columns)))
        columns = step.output_columns(columns)
    return SkPipeline(steps)
