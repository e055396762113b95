"""The model registry: versions in ``NEVE_*`` tables, files on a verified stage.

>>> reg = Registry(session)
>>> mv = reg.log_model(model, model_name="taxi", sample_input=X.head(5), metrics={"mse": 12.3})
>>> reg.get_model("taxi").set_alias("production", mv.version_name)
>>> reg.get_model("taxi").version("production").load()
"""

from __future__ import annotations

from neve.registry._model import Model, ModelVersion
from neve.registry._registry import Registry
from neve.registry._stage import Stage

__all__ = ["Model", "ModelVersion", "Registry", "Stage"]
