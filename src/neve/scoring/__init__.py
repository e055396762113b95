"""Scoring where the data lives: a fitted pipeline and model compiled to one SQL query.

:func:`score` compiles scikit-learn linear models, trees, forests and gradient
boosting to pure SQL (no UDFs) and falls back to streaming bounded Arrow batches
through the model in the client for anything else. The returned Ibis table says
which happened in ``.path``.
"""

from __future__ import annotations

from neve.scoring._compile import COMPILERS, compile_model, score

__all__ = ["COMPILERS", "compile_model", "score"]
