"""The contract between the scoring entry point and the per-family model compilers."""

from __future__ import annotations

from typing import Any, ClassVar

import ibis.expr.types as ir
import numpy as np

__all__ = ["CompiledModel", "NotCompilable"]


class NotCompilable(Exception):
    """This fitted model (or this configuration of it) has no SQL translation.

    Internal: :func:`neve.scoring.score` catches it and takes the fallback path.
    """


class CompiledModel:
    """A fitted model translated to Ibis expressions.

    ``precision`` says how feature columns are prepared before the model sees them:
    ``"float32"`` for scikit-learn's trees (which cast X to float32), ``"float64"``
    otherwise. With ``nan_as_null``, prepared features have NaN turned into NULL.
    """

    precision: ClassVar[str] = "float64"
    #: Whether NaN must become NULL first (trees route missing values; linear models
    #: propagate NaN anyway, so they skip the extra CASE per feature).
    nan_as_null: ClassVar[bool] = True
    #: Whether :meth:`outputs` takes ``blocks`` of one-hot features fused into CASEs
    #: (see :mod:`neve.scoring._fuse`); such models also define ``weights()``.
    fuses_one_hot: ClassVar[bool] = False

    def __init__(self, model: Any) -> None:
        self.model = model

    @property
    def classes(self) -> np.ndarray | None:
        return getattr(self.model, "classes_", None)

    def categorical_features(self) -> set[int]:
        """Indices of features the model reads as categories: passed to it as they
        are (strings included), not cast to ``precision``."""
        return set()

    def functions(self) -> tuple[str, ...]:
        """The ``function_name`` values this model supports."""
        return ("predict",)

    def outputs(
        self, table: ir.Table, features: list[str], function_name: str
    ) -> tuple[ir.Table, list[ir.Value]]:
        """Return ``(table', columns)``: the output expressions over ``table'``, which is
        ``table`` plus any intermediate columns (named ``__neve_*``).

        One column for ``predict`` and binary ``decision_function``; one per class,
        in ``classes_`` order, for ``predict_proba`` and multiclass ``decision_function``.
        """
        raise NotImplementedError
