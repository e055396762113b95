"""Choosing a model in the engine: splits of a table in SQL (the same rows on every engine),
cross-validation and grid search from fold-wise statistics."""

from __future__ import annotations

from typing import TYPE_CHECKING

from neve._lazy_exports import lazy_exports
from neve.model_selection._split import KFold, train_test_split

if TYPE_CHECKING:
    from neve.model_selection._search import GridSearchCV, cross_validate

__all__ = ["GridSearchCV", "KFold", "cross_validate", "train_test_split"]

# The search sits above the pipeline, which sits above linear_model, which imports the fold
# hash from _split: loaded on first use, so importing _split never imports the pipeline.
__getattr__ = lazy_exports(__name__, {"GridSearchCV": "neve.model_selection._search",
                                      "cross_validate": "neve.model_selection._search"})
