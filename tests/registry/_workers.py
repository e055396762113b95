"""Functions run in child processes by the concurrency and crash tests (importable by name)."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
from sklearn.linear_model import Ridge

import neve


def small_model() -> tuple[Ridge, pd.DataFrame]:
    X = pd.DataFrame({"A": np.arange(20.0), "B": np.arange(20.0) % 3})
    return Ridge().fit(X, X.A * 2), X


def log_versions(url: str, worker: int, count: int) -> list[str]:
    model, _ = small_model()
    reg = neve.Registry(url)
    names = []
    for i in range(count):
        mv = reg.log_model(model, "shared", metrics={"worker": worker, "i": i})
        mv.set_metric("after", worker * 1000 + i)
        names.append(mv.version_name)
    return names


def move_alias(url: str, worker: int, rounds: int) -> None:
    reg = neve.Registry(url)
    model = reg.get_model("shared")
    for i in range(rounds):
        model.set_alias("production", f"v{1 + (worker + i) % 4}")


def crash_before_commit(url: str) -> None:
    """Log a model but die (no cleanup, no exception handlers) right before the commit."""
    from neve.registry import _registry

    def die(*args: object, **kwargs: object) -> None:
        os._exit(17)

    _registry.Registry._commit = die
    model, X = small_model()
    neve.Registry(url).log_model(model, "crashy", sample_input=X.head(3))


def pause_after_reserve(url: str, stage: str, version: str, reserved: str) -> None:
    """Log ``version`` but stop for good right after its row is reserved, announcing it by
    creating the file ``reserved``; the test then kills this process with SIGKILL."""
    import time
    from pathlib import Path

    from neve.registry import _registry

    reserve = _registry.Registry._reserve

    def reserve_then_wait(self, *args, **kwargs):
        reserve(self, *args, **kwargs)
        Path(reserved).write_text(str(os.getpid()))
        while True:
            time.sleep(60)

    _registry.Registry._reserve = reserve_then_wait
    model, _ = small_model()
    neve.Registry(url, stage=stage).log_model(model, "nightly", version_name=version, metrics={"attempt": 1})


def log_named(url: str, stage: str, version: str, seed: int) -> str:
    """Log ``version`` of model "nightly"; the outcome's class name, or "ok"."""
    model, _ = small_model()
    try:
        neve.Registry(url, stage=stage).log_model(model, "nightly", version_name=version, metrics={"seed": seed})
    except Exception as exc:  # noqa: BLE001 - the test counts outcomes
        return type(exc).__name__
    return "ok"


def log_on_spark_connect(url: str, stage: str, worker: int, count: int) -> dict:
    """Claim the version name ``best`` of ``named`` (every worker at once), then log ``count``
    automatically numbered versions of ``shared``; what was acknowledged and what was refused."""
    from neve.errors import DuplicateVersionError

    model, _ = small_model()
    reg = neve.Registry(url, stage=stage)
    out: dict = {"logged": [], "named": None, "refused": []}
    try:
        out["named"] = reg.log_model(model, "named", version_name="best", metrics={"worker": worker}).version_name
    except DuplicateVersionError as exc:
        out["refused"].append(str(exc))
    for i in range(count):
        mv = reg.log_model(model, "shared", metrics={"worker": worker, "i": i})
        out["logged"].append(mv.version_name)
    return out
