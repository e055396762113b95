"""Single trees, forests and gradient-boosted ensembles.

Every tree becomes one nested ``CASE`` column (see :mod:`neve.scoring._trees`); the
ensemble combines those columns with the same arithmetic, in the same order, as
scikit-learn, so predictions match bit for bit wherever only additions and
divisions are involved. Probabilities of boosted models go through ``exp`` and
agree to within a few ulps.

Size: SQL grows by ~60 bytes per tree node and is built as text (~2 µs per node).
Known to work on DuckDB: 200 trees of depth 8 (~77k nodes, ~4-5 MB of SQL; the test
suite's guard) and the benchmark's 100 trees of depth 6. Larger ensembles were not
measured. DuckDB spends ~0.1 ms per node planning and ~0.5-1 µs per row and tree
evaluating nested CASE, so big forests score faster in the client; the SQL path's
gain is that the rows never leave the engine. See BENCHMARKS.md.
"""

from __future__ import annotations

from typing import Any

import ibis.expr.types as ir
import numpy as np

from neve.engine import driver_for_backend
from neve.scoring import _bitmask  # noqa: F401  (registers the "bitmask" form)
from neve.scoring._base import CompiledModel, NotCompilable
from neve.scoring._sql import argmax_label, double, expit, label, softmax, total
from neve.scoring._trees import Tree, TreeColumns, tree_from_hgb, tree_from_sklearn

__all__ = ["BoostingModel", "ForestModel", "HistBoostingModel", "TreeModel"]


def tree_form(table: ir.Table) -> str:
    """The form the engine holding ``table`` scores trees fastest in (its driver says);
    ``"case"``, which every dialect renders, for a table bound to no engine."""
    from ibis.common.exceptions import IbisError

    try:
        backend = table._find_backend(use_default=False)
    except IbisError:
        return "case"
    return driver_for_backend(backend).tree_scoring


def _with_trees(
    table: ir.Table, features: list[str], trees: list[Tree], prefix: str = "__neve_t"
) -> tuple[ir.Table, list[ir.Value]]:
    names = tuple(f"{prefix}{i}" for i in range(len(trees)))
    op = TreeColumns(parent=table.op(), features=tuple(features), names=names,
                     trees=tuple(trees), form=tree_form(table))
    out = op.to_expr()
    return out, [out[n] for n in names]


def _class_shares(estimator: Any) -> np.ndarray:
    """Per-node class shares as ``DecisionTreeClassifier.predict_proba`` returns them.

    scikit-learn >= 1.4 stores the weighted class fractions in ``tree_.value`` and
    returns them as they are; renormalising here would move some by an ulp.
    """
    if estimator.n_outputs_ != 1:
        raise NotCompilable(f"{type(estimator).__name__} with {estimator.n_outputs_} outputs")
    return estimator.tree_.value[:, 0, : estimator.n_classes_]


class TreeModel(CompiledModel):
    """DecisionTreeRegressor / DecisionTreeClassifier (and ExtraTree*)."""

    precision = "float32"

    def __init__(self, model: Any) -> None:
        super().__init__(model)
        if getattr(model, "n_outputs_", 1) != 1:
            raise NotCompilable(f"{type(model).__name__} with {model.n_outputs_} outputs")

    @property
    def estimators(self) -> list[Any]:
        return [self.model]

    def functions(self):
        return ("predict", "predict_proba") if self.classes is not None else ("predict",)

    def outputs(self, table, features, function_name):
        estimators = self.estimators
        n = len(estimators)
        if self.classes is None:
            trees = [tree_from_sklearn(e.tree_, e.tree_.value[:, 0, 0]) for e in estimators]
            table, cols = _with_trees(table, features, trees)
            return table, [total(cols) / double(n) if n > 1 else cols[0]]
        shares = [_class_shares(e) for e in estimators]
        trees = [
            tree_from_sklearn(e.tree_, share[:, k])
            for k in range(len(self.classes))
            for e, share in zip(estimators, shares, strict=True)
        ]
        table, cols = _with_trees(table, features, trees)
        proba = [
            total(cols[k * n : (k + 1) * n]) / double(n) if n > 1 else cols[k]
            for k in range(len(self.classes))
        ]
        if function_name == "predict_proba":
            return table, proba
        # predict_proba's columns are reused k times each by argmax: name them once.
        names = [f"__neve_p{k}" for k in range(len(proba))]
        table = table.mutate(**dict(zip(names, proba, strict=True)))
        return table, [argmax_label([table[p] for p in names], self.classes)]


class ForestModel(TreeModel):
    """RandomForest* and ExtraTrees*: the mean of the trees, accumulated in tree order."""

    @property
    def estimators(self) -> list[Any]:
        return list(self.model.estimators_)


def _constant_init(model: Any) -> np.ndarray:
    init = model.init_
    if isinstance(init, str) and init == "zero":
        return np.zeros(model.n_trees_per_iteration_)
    if type(init).__name__ not in {"DummyRegressor", "DummyClassifier"}:
        raise NotCompilable(f"gradient boosting with init={type(init).__name__}")
    # The dummy init is constant; evaluate it on one row to get the raw baseline.
    probe = np.zeros((1, model.n_features_in_), dtype=np.float32)
    return np.asarray(model._raw_predict_init(probe), dtype=np.float64)[0]


def _hgb_categories(model: Any) -> tuple[np.ndarray | None, dict, dict]:
    """``(feature_map, categories, known)`` for :func:`tree_from_hgb`: where scikit-learn's
    preprocessor moved each input column (categorical ones first), the raw values behind
    each categorical feature's codes, and its known-categories bitset."""
    categorical = getattr(model, "is_categorical_", None)
    if categorical is None or not np.any(categorical):
        return None, {}, {}
    categorical = np.asarray(categorical, dtype=bool)
    order = np.r_[np.flatnonzero(categorical), np.flatnonzero(~categorical)]
    encoder = model._preprocessor.named_transformers_["encoder"]
    known_bitsets, f_idx_map = model._bin_mapper.make_known_categories_bitsets()
    categories, known = {}, {}
    for j, values in enumerate(encoder.categories_):
        values = [v for v in values if not (isinstance(v, float) and np.isnan(v))]
        categories[j] = values
        known[j] = known_bitsets[f_idx_map[j]]
    return order, categories, known


class BoostingModel(CompiledModel):
    """GradientBoostingRegressor / GradientBoostingClassifier (finite features only)."""

    precision = "float32"

    def functions(self):
        if self.classes is None:
            return ("predict",)
        return ("predict", "predict_proba", "decision_function")

    def raw(self, table: ir.Table, features: list[str]) -> tuple[ir.Table, list[ir.Value]]:
        model = self.model
        init = _constant_init(model)
        lr = model.learning_rate
        n_iter, k = model.estimators_.shape
        # predict_stages adds ``learning_rate * leaf`` to the running total; folding the
        # product into the leaf literal gives the same double.
        trees = [
            tree_from_sklearn(model.estimators_[i, j].tree_,
                              lr * model.estimators_[i, j].tree_.value[:, 0, 0], nan_routing=False)
            for j in range(k)
            for i in range(n_iter)
        ]
        table, cols = _with_trees(table, features, trees)
        raw = [total([double(init[j]), *cols[j * n_iter : (j + 1) * n_iter]]) for j in range(k)]
        names = [f"__neve_r{j}" for j in range(k)]
        table = table.mutate(**dict(zip(names, raw, strict=True)))
        return table, [table[n] for n in names]

    def outputs(self, table, features, function_name):
        table, raw = self.raw(table, features)
        return table, self.finish(raw, function_name)

    def finish(self, raw: list[ir.Value], function_name: str) -> list[ir.Value]:
        classes = self.classes
        if classes is None:
            return [raw[0]]
        if function_name == "decision_function":
            return raw
        if function_name == "predict_proba":
            if len(raw) == 1:
                p = expit(raw[0])
                return [double(1.0) - p, p]
            return softmax(raw)
        if len(raw) == 1:
            return [(raw[0] >= double(0.0)).ifelse(label(classes[1]), label(classes[0]))]
        return [argmax_label(raw, classes)]


class HistBoostingModel(BoostingModel):
    """HistGradientBoostingRegressor / Classifier, numeric and categorical features.

    Numeric splits compare float64 features (no float32 cast) and route missing
    values by each node's ``missing_go_to_left``, as scikit-learn's predictor does.
    A categorical split is an ``IN`` list of the raw category values (scikit-learn
    encodes them with an internal OrdinalEncoder, whose categories give the values);
    NULL, NaN and categories unseen in training follow the missing side, as
    scikit-learn routes them.
    """

    precision = "float64"

    def __init__(self, model: Any) -> None:
        super().__init__(model)
        self.feature_map, self.categories, self.known = _hgb_categories(model)
        link = type(model._loss.link).__name__
        if self.classes is None and link not in {"IdentityLink", "LogLink"}:
            raise NotCompilable(f"HistGradientBoostingRegressor with {link}")
        self.log_link = link == "LogLink"

    def categorical_features(self) -> set[int]:
        if self.feature_map is None:
            return set()
        return {int(self.feature_map[j]) for j in self.categories}

    def raw(self, table, features):
        model = self.model
        k = model.n_trees_per_iteration_
        trees = [
            tree_from_hgb(it[j], self.feature_map, self.categories, self.known)
            for j in range(k) for it in model._predictors
        ]
        n_iter = len(model._predictors)
        table, cols = _with_trees(table, features, trees)
        baseline = np.ravel(model._baseline_prediction)
        raw = [total([double(baseline[j]), *cols[j * n_iter : (j + 1) * n_iter]]) for j in range(k)]
        names = [f"__neve_r{j}" for j in range(k)]
        table = table.mutate(**dict(zip(names, raw, strict=True)))
        return table, [table[n] for n in names]

    def finish(self, raw, function_name):
        classes = self.classes
        if classes is None:
            return [raw[0].exp() if self.log_link else raw[0]]
        if function_name == "predict" and len(raw) == 1:
            # HistGradientBoostingClassifier breaks a 0.5 tie towards classes_[0] ("> 0").
            return [(raw[0] > double(0.0)).ifelse(label(classes[1]), label(classes[0]))]
        return super().finish(raw, function_name)
