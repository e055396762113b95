"""Loading a model trusts only neve's code: a registry writer must never run code in a reader."""

from __future__ import annotations

import functools
import importlib
import inspect
import io
import json
import logging
import subprocess
import zipfile

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from numpy.testing import assert_allclose
from sklearn.preprocessing import FunctionTransformer
from sklearn.tree import DecisionTreeRegressor
from sklearn.utils import all_estimators

from neve.errors import ArtifactError
from neve.registry import _package
from neve.registry._trust import ALLOWED, ALLOWED_FUNCTIONS
from neve.scoring import COMPILERS


def _calling(module: str, function: str, *args: object) -> bytes:
    """A skops file whose root node calls ``module.function(*args)`` on load -- what an attacker
    who may log models writes instead of a model."""
    inner = json.loads(zipfile.ZipFile(io.BytesIO(sio.dumps(args))).read("schema.json"))
    schema = {
        "__class__": function, "__module__": module, "__loader__": "ConstructorFromReduceNode",
        "content": inner, "protocol": inner.pop("protocol"), "_skops_version": inner.pop("_skops_version"),
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("schema.json", json.dumps(schema))
    return buf.getvalue()


def _log_crafted(reg, monkeypatch, fitted, payload: bytes, declared: list[str], name: str = "evil"):
    """Log ``payload`` through the public log_model, as a writer running modified neve code
    would: the manifest even declares the payload's types as the model's own."""
    monkeypatch.setattr(_package, "_serialize", lambda model, flavor: ("model.skops", payload, declared))
    model, _ = fitted
    mv = reg.log_model(model, name)
    monkeypatch.undo()
    reg.get_model(name).set_alias("production", mv.version_name)
    return reg.get_model(name).version("production")


@pytest.mark.parametrize(
    ("module", "function"),
    [
        ("sklearn.utils._testing", "check_output"),  # subprocess.check_output under a scikit-learn name
        ("subprocess", "check_output"),
        ("sklearn.utils", "_testing.check_output"),  # the same name split differently
    ],
)
def test_a_crafted_model_never_runs_code_in_a_reader(reg, session, monkeypatch, fitted, tmp_path, module, function):
    marker = tmp_path / "pwned"
    payload = _calling(module, function, ["touch", str(marker)])
    mv = _log_crafted(reg, monkeypatch, fitted, payload, [f"{module}.{function}"])
    table = session.create_table("SCORE", fitted[1].head(3))
    for attempt in (mv.load, lambda: mv.run(table)):
        with pytest.raises(ArtifactError, match=rf"{module}\.{function}") as info:
            attempt()
        assert "/evil/v1/model.skops" in str(info.value).replace("\\", "/")  # names the version
    assert not marker.exists()


def test_a_crafted_model_cannot_delete_files(reg, monkeypatch, fitted, tmp_path):
    victim = tmp_path / "precious.txt"
    victim.write_text("keep me")
    mv = _log_crafted(reg, monkeypatch, fitted, _calling("sklearn.datasets._rcv1", "remove", str(victim)),
                      ["sklearn.datasets._rcv1.remove"])
    with pytest.raises(ArtifactError, match=r"sklearn\.datasets\._rcv1\.remove"):
        mv.load()
    assert victim.read_text() == "keep me"


def test_trusted_is_an_explicit_logged_opt_in(reg, monkeypatch, fitted, tmp_path, caplog):
    marker = tmp_path / "reviewed"
    mv = _log_crafted(reg, monkeypatch, fitted, _calling("subprocess", "check_output", ["touch", str(marker)]),
                      ["subprocess.check_output"])
    with caplog.at_level(logging.WARNING, logger="neve.registry"):
        mv.load(trusted=["subprocess.check_output"])
    assert marker.exists()  # the caller asked for exactly this
    assert "subprocess.check_output" in caplog.text and "evil/v1" in caplog.text.replace("\\", "/")
    with pytest.raises(ArtifactError, match="list of fully qualified type names"):
        mv.load(trusted="subprocess.check_output")


def test_a_tree_whose_nodes_point_out_of_bounds_is_refused(reg, fitted):
    model, X = fitted
    tree = DecisionTreeRegressor(max_depth=3, random_state=0).fit(X, X.DIST)
    state = tree.tree_.__getstate__()
    nodes = state["nodes"].copy()
    nodes["left_child"][0] = 0  # a cycle: predict would never return
    tree.tree_.__setstate__({**state, "nodes": nodes})
    mv = reg.log_model(tree, "loop")
    with pytest.raises(ArtifactError, match="decision tree node 0 points to child 0"):
        mv.load()


def test_no_allowed_name_resolves_to_a_function():
    for module, name in sorted(ALLOWED):
        assert "." not in name
        obj = getattr(importlib.import_module(module), name)
        assert isinstance(obj, type), f"{module}.{name} is {type(obj).__name__}, not a class"
        assert (obj.__module__, obj.__qualname__) == (module, name), f"{module}.{name} is re-exported"


def test_every_allowed_function_is_defined_where_it_is_named():
    for module, name in sorted(ALLOWED_FUNCTIONS):
        obj = getattr(importlib.import_module(module), name)
        assert inspect.isfunction(obj), f"{module}.{name} is {type(obj).__name__}, not a function"
        assert (obj.__module__, obj.__qualname__) == (module, name), f"{module}.{name} is re-exported"


def test_a_partial_of_an_untrusted_function_is_refused(reg):
    """``functools.partial`` is trusted for what HistGradientBoosting holds; what it wraps is not."""
    model = FunctionTransformer(functools.partial(subprocess.check_output, ["true"]))
    mv = reg.log_model(model.fit(np.zeros((2, 1))), "partial_of_check_output")
    with pytest.raises(ArtifactError, match="subprocess.check_output"):
        mv.load()


def _data(n: int = 120) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"A": rng.normal(size=n), "B": rng.normal(size=n), "C": rng.gamma(2.0, 1.0, n)})
    y = X.A * 2 + X.B - X.C + rng.normal(0, 0.1, n)
    return X, y.to_numpy(), np.digitize(y, [-1, 1])


ESTIMATORS = dict(all_estimators())


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning", "ignore::FutureWarning")
@pytest.mark.parametrize("name", sorted(COMPILERS))
def test_every_model_scoring_compiles_round_trips(reg, name):
    X, y, classes = _data()
    cls = ESTIMATORS[name]
    params = {k: v for k, v in {"n_estimators": 5, "max_iter": 5, "random_state": 0}.items()
              if k in cls().get_params()}
    classifier = "Classifier" in name or "Logistic" in name
    model = cls(**params).fit(X, classes if classifier else y)
    loaded = reg.log_model(model, name.lower(), sample_input=X.head(3)).load()
    assert type(loaded) is cls
    predict = "predict_proba" if classifier else "predict"
    assert_allclose(getattr(loaded, predict)(X), getattr(model, predict)(X), rtol=1e-12)
