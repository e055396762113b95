"""The model registry: versions in ``NEVE_*`` tables, files on a verified stage.

>>> reg = Registry(session)
>>> mv = reg.log_model(model, model_name="taxi", sample_input=X.head(5), metrics={"mse": 12.3})
>>> reg.get_model("taxi").set_alias("production", mv.version_name)
>>> reg.get_model("taxi").version("production").load()
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from neve._lazy_exports import lazy_exports

if TYPE_CHECKING:
    from neve.registry._model import Model, ModelVersion
    from neve.registry._registry import Registry
    from neve.registry._stage import Stage

__all__ = ["Model", "ModelVersion", "Registry", "Stage"]

# Loaded on first use, so `neve --help` and `neve env ...` do not pay for ibis and
# scikit-learn just because the CLI registers the registry's commands.
_LAZY = {
    "Model": "neve.registry._model",
    "ModelVersion": "neve.registry._model",
    "Registry": "neve.registry._registry",
    "Stage": "neve.registry._stage",
}


__getattr__ = lazy_exports(__name__, _LAZY)
