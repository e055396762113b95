"""Choosing a model in the engine: splits of a table in SQL, the same rows on every engine."""

from neve.model_selection._split import train_test_split

__all__ = ["train_test_split"]
