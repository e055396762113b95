"""Which compiler handles which scikit-learn estimator, and the :func:`score` entry point."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np

from neve.errors import ColumnNotFoundError, ColumnTypeError, InvalidParameterError, NeveInputError
from neve.scoring import _fallback, _fuse
from neve.scoring._base import CompiledModel, NotCompilable
from neve.scoring._ensembles import BoostingModel, ForestModel, HistBoostingModel, TreeModel
from neve.scoring._fitted_state import LinearState
from neve.scoring._linear import LinearModel, LogisticModel

__all__ = ["COMPILERS", "compile_model", "score"]

logger = logging.getLogger("neve.scoring")

FUNCTIONS = ("predict", "predict_proba", "decision_function")
DEFAULT_NAMES = {
    "predict": "PREDICTION",
    "predict_proba": "PROBABILITY",
    "decision_function": "DECISION_FUNCTION",
}

#: scikit-learn class name -> compiler. Matched on the exact class, not subclasses:
#: a subclass may override predict, and would then be scored wrongly.
COMPILERS: dict[str, type[CompiledModel]] = {
    **dict.fromkeys(
        ["LinearRegression", "Ridge", "Lasso", "ElasticNet", "SGDRegressor", "LassoLars",
         "RidgeCV", "LassoCV", "ElasticNetCV", "BayesianRidge", "ARDRegression", "HuberRegressor"],
        LinearModel,
    ),
    "LogisticRegression": LogisticModel,
    "LogisticRegressionCV": LogisticModel,
    **dict.fromkeys(
        ["DecisionTreeRegressor", "DecisionTreeClassifier", "ExtraTreeRegressor",
         "ExtraTreeClassifier"],
        TreeModel,
    ),
    **dict.fromkeys(
        ["RandomForestRegressor", "RandomForestClassifier", "ExtraTreesRegressor",
         "ExtraTreesClassifier"],
        ForestModel,
    ),
    "GradientBoostingRegressor": BoostingModel,
    "GradientBoostingClassifier": BoostingModel,
    "HistGradientBoostingRegressor": HistBoostingModel,
    "HistGradientBoostingClassifier": HistBoostingModel,
}


def compile_model(model: Any) -> CompiledModel:
    """The SQL translation of a fitted ``model``; raises :class:`NotCompilable` if there is none."""
    cls = type(model)
    compiler = COMPILERS.get(cls.__name__)
    if compiler is None or not (cls.__module__.startswith("sklearn.") or isinstance(model, LinearState)):
        raise NotCompilable(f"no SQL translation for {cls.__module__}.{cls.__name__}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # feature-name warnings from probing the init estimator
        return compiler(model)


def _feature_names(model: Any, feature_cols: Sequence[str] | None) -> list[str]:
    if feature_cols is not None:
        names = [feature_cols] if isinstance(feature_cols, str) else list(feature_cols)
        expected = getattr(model, "n_features_in_", len(names))
        if len(names) != expected:
            raise InvalidParameterError(
                f"feature_cols names {len(names)} columns but {type(model).__name__} was "
                f"fitted on {expected} features"
            )
        return names
    names = getattr(model, "feature_names_in_", None)
    if names is None:
        raise InvalidParameterError(
            f"{type(model).__name__} was fitted without column names (no feature_names_in_); "
            f"pass feature_cols=[...] in the model's feature order"
        )
    return [str(n) for n in names]


def _output_names(
    model: Any, function_name: str, n_outputs: int, output_cols: str | Sequence[str] | None
) -> list[str]:
    if output_cols is not None:
        names = [output_cols] if isinstance(output_cols, str) else list(output_cols)
        if len(names) != n_outputs:
            raise InvalidParameterError(
                f"{function_name} of {type(model).__name__} produces {n_outputs} column(s), "
                f"but output_cols names {len(names)}: {names}"
            )
        return names
    base = DEFAULT_NAMES[function_name]
    if n_outputs == 1:
        return [base]
    return [f"{base}_{c.item() if isinstance(c, np.generic) else c}" for c in model.classes_]


def _n_outputs(model: Any, function_name: str) -> int:
    classes = getattr(model, "classes_", None)
    if function_name == "predict" or classes is None:
        return 1
    if function_name == "decision_function" and len(classes) == 2:
        return 1
    return len(classes)


def _prepare(
    table: ir.Table,
    features: list[str],
    precision: str,
    nan_as_null: bool = True,
    categorical: Sequence[bool] | None = None,
) -> tuple[ir.Table, list[str]]:
    """Feature columns as the model sees them: NaN -> NULL, then cast to ``precision``
    (categorical features keep their type: their splits list raw values)."""
    names = [f"__neve_f{i}" for i in range(len(features))]
    categorical = categorical or [False] * len(features)
    prepared = {}
    for name, col, is_category in zip(names, features, categorical, strict=True):
        column = table[col]
        kind = column.type()
        if is_category:
            if kind.is_floating():
                column = column.isnan().ifelse(ibis.null(kind), column)
            prepared[name] = column
            continue
        if not (kind.is_numeric() or kind.is_boolean()):
            raise ColumnTypeError(
                f"feature column {col!r} is {kind}; compiled models take numeric features "
                f"(encode it in the pipeline first)"
            )
        if nan_as_null and kind.is_floating():
            column = column.isnan().ifelse(ibis.null(kind), column)
        prepared[name] = column.cast(precision)
    return table.mutate(**prepared), names


def _label_type(classes: np.ndarray) -> str:
    kind = np.asarray(classes).dtype.kind
    return {"i": "int64", "u": "int64", "f": "float64", "b": "boolean"}.get(kind, "string")


def score(
    table: ir.Table,
    model: Any,
    *,
    pipeline: Any = None,
    function_name: str = "predict",
    output_cols: str | Sequence[str] | None = None,
    feature_cols: Sequence[str] | None = None,
    batch_size: int = 16_384,
    allow_fallback: bool = True,
    fallback_table: str | None = None,
) -> ir.Table:
    """Score ``table`` with a fitted scikit-learn ``model``, in the engine where possible.

    Returns a lazy Ibis table: every column of ``table`` (untransformed) followed by the
    output column(s) - ``PREDICTION`` for ``predict``, ``PROBABILITY_<class>`` per class
    for ``predict_proba``, ``DECISION_FUNCTION`` (binary) or ``DECISION_FUNCTION_<class>``
    for ``decision_function``; ``output_cols`` renames them. The table carries a
    ``path`` attribute: ``"sql"`` when the model compiled to SQL, ``"fallback"`` when
    rows were streamed through ``model`` in the client (see
    :func:`neve.scoring._fallback.score_in_client`); ``path`` is lost on further
    Ibis operations, as it describes how this table was produced.

    ``pipeline`` (a fitted :class:`neve.Pipeline`) is applied in SQL first. The model's
    ``feature_names_in_`` name its input columns in the transformed table; pass
    ``feature_cols`` for models fitted on plain arrays.

    >>> preds = score(session.table("TAXI_FEATURE"), model)
    >>> preds.path
    'sql'
    >>> session.create_table("TAXI_PRED", preds, overwrite=True)
    """
    if not isinstance(table, ir.Table):
        raise NeveInputError(f"score() takes an ibis Table, got {type(table).__name__}")
    if function_name not in FUNCTIONS:
        raise InvalidParameterError(
            f"function_name must be one of {', '.join(FUNCTIONS)}, got {function_name!r}"
        )
    if not callable(getattr(model, function_name, None)):
        raise InvalidParameterError(f"{type(model).__name__} has no {function_name} method")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidParameterError(f"batch_size must be a positive integer, got {batch_size!r}")
    features = _feature_names(model, feature_cols)
    originals = list(table.columns)
    names = _output_names(model, function_name, _n_outputs(model, function_name), output_cols)
    clash = sorted(set(names) & set(originals))
    if clash:
        raise InvalidParameterError(
            f"output column(s) {clash} already exist in the input table; pass output_cols=[...]"
        )

    try:
        compiled: CompiledModel | None = compile_model(model)
        if function_name not in compiled.functions():
            raise NotCompilable(f"{function_name} of {type(model).__name__}")
    except NotCompilable as exc:
        if not allow_fallback:
            raise NeveInputError(
                f"{type(model).__name__} cannot be compiled to SQL ({exc}) and "
                f"allow_fallback=False"
            ) from exc
        compiled, reason = None, exc

    work = table
    kept = {c: c for c in originals}
    blocks: list[_fuse.OneHotBlock] = []
    if pipeline is not None:
        # The pipeline may rewrite columns in place; keep the untransformed values to return.
        kept = {c: f"__neve_in{i}" for i, c in enumerate(originals)}
        work = table.mutate(**{k: table[c] for c, k in kept.items()})
        fused = (
            _fuse.split_one_hot(pipeline, work, features, compiled.weights())
            if compiled is not None and compiled.fuses_one_hot
            else None
        )
        work, blocks = fused if fused is not None else (pipeline.transform(work), [])
    fused_features = {j for block in blocks for _, j in block.branches} | {
        j for block in blocks for _, _, j in block.guards
    }
    missing = [c for j, c in enumerate(features) if j not in fused_features and c not in work.columns]
    if missing:
        raise ColumnNotFoundError(
            f"feature column(s) {missing} of {type(model).__name__} not found in the "
            f"{'transformed ' if pipeline is not None else ''}table; available: {list(work.columns)}"
        )

    if compiled is None:
        logger.info("scoring %s in the client, in batches of %d rows: %s",
                    type(model).__name__, batch_size, reason)
        result = _fallback.score_in_client(
            work, model, kept=kept, features=features, function_name=function_name,
            names=names, batch_size=batch_size, table_name=fallback_table,
        )
        object.__setattr__(result, "path", "fallback")
        return result

    plain = [c for j, c in enumerate(features) if j not in fused_features]
    categorical = compiled.categorical_features()
    prepared, prepared_names = _prepare(
        work, plain, compiled.precision, compiled.nan_as_null,
        [j in categorical for j in range(len(features)) if j not in fused_features],
    )
    named = iter(prepared_names)
    columns = [None if j in fused_features else next(named) for j in range(len(features))]
    if blocks:
        scored, outputs = compiled.outputs(prepared, columns, function_name, blocks)
    else:
        scored, outputs = compiled.outputs(prepared, columns, function_name)
    if function_name == "predict" and compiled.classes is not None:
        outputs = [outputs[0].cast(_label_type(compiled.classes))]
    result = scored.select(
        *[scored[k].name(c) for c, k in kept.items()],
        *[expr.name(name) for expr, name in zip(outputs, names, strict=True)],
    )
    logger.info("scoring %s in SQL", type(model).__name__)
    object.__setattr__(result, "path", "sql")
    return result
