"""A model package: the files of one version and the manifest that vouches for them.

Models are written in formats that load without unpickling: skops for
scikit-learn, the library's own format for xgboost and lightgbm. The manifest
records the sha256 of every file; the manifest's own hash lives in the
registry's commit event, so the chain from the database row down to every byte
is verified on :func:`load`.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata as md
import io
import json
import platform
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from neve.errors import ArtifactError, NeveInputError
from neve.registry import _scoring_state, _trust

__all__ = ["FORMAT", "Package", "build", "load_model", "sha256"]

FORMAT = "neve.model/1"
MANIFEST = "manifest.json"

# Libraries whose versions every manifest records, besides those the model's classes come from.
_BASE_PACKAGES = ("neve", "numpy", "scipy", "pandas", "pyarrow")
_DIST_FOR_MODULE = {"sklearn": "scikit-learn", "skops": "skops", "xgboost": "xgboost", "lightgbm": "lightgbm"}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Package:
    files: dict[str, bytes]
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def manifest_bytes(self) -> bytes:
        return json.dumps(self.manifest, indent=2, sort_keys=True, allow_nan=False).encode()


def flavor_of(model: Any) -> str:
    root = type(model).__module__.split(".")[0]
    if root == "xgboost":
        return "xgboost"
    if root == "lightgbm":
        return "lightgbm"
    if hasattr(model, "get_params") and (hasattr(model, "fit") or hasattr(model, "predict")):
        return "sklearn"
    raise NeveInputError(
        f"cannot store a {type(model).__module__}.{type(model).__name__}: log_model takes "
        f"scikit-learn estimators and pipelines, xgboost or lightgbm models"
    )


def _serialize(model: Any, flavor: str) -> tuple[str, bytes, list[str]]:
    """(file name, bytes, types outside skops' default trusted list)."""
    if flavor == "xgboost":
        return "model.ubj", bytes(model.get_booster().save_raw(raw_format="ubj")), []
    if flavor == "lightgbm":
        booster = getattr(model, "booster_", model)
        return "model.txt", booster.model_to_string().encode(), []
    import skops.io as sio

    data = sio.dumps(model)
    return "model.skops", data, sorted(sio.get_untrusted_types(data=data))


def _arrow(sample: Any) -> pa.Table:
    import ibis.expr.types as ir

    if isinstance(sample, pa.Table):
        return sample
    if isinstance(sample, pd.DataFrame):
        return pa.Table.from_pandas(sample, preserve_index=False)
    if isinstance(sample, ir.Table):
        return sample.to_pyarrow()
    raise NeveInputError(
        f"sample_input must be a pandas DataFrame, a pyarrow Table or an ibis Table, "
        f"got {type(sample).__name__}"
    )


def signature(model: Any, sample: pa.Table) -> dict[str, Any]:
    """Input columns and types from the sample; the output's type and shape from predicting it."""
    inputs = [{"name": f.name, "type": str(f.type)} for f in sample.schema]
    outputs: list[dict[str, Any]] = []
    if hasattr(model, "predict"):
        try:
            pred = np.asarray(model.predict(sample.to_pandas()))
        except Exception as exc:
            raise NeveInputError(
                f"model.predict(sample_input) failed, so the sample cannot define the model's "
                f"signature: {type(exc).__name__}: {exc}"
            ) from exc
        outputs.append({"name": "PREDICTION", "type": str(pred.dtype), "shape": list(pred.shape[1:])})
    return {"inputs": inputs, "outputs": outputs}


@functools.cache
def _module_dists() -> Mapping[str, list[str]]:
    return md.packages_distributions()


@functools.cache
def _dist_version(module_root: str) -> tuple[str, str] | None:
    candidates = [_DIST_FOR_MODULE.get(module_root, module_root)]
    for dist in candidates:
        try:
            return dist, md.version(dist)
        except md.PackageNotFoundError:
            pass
    for dist in _module_dists().get(module_root, []):  # slow path, cached: scans site-packages once
        try:
            return dist, md.version(dist)
        except md.PackageNotFoundError:
            continue
    return None


def _model_modules(model: Any) -> set[str]:
    roots = {type(model).__module__.split(".")[0]}
    get_params = getattr(model, "get_params", None)
    if get_params is not None:
        try:
            params = get_params(deep=True)
        except Exception:  # noqa: BLE001 - third-party get_params may fail; lineage is best effort
            params = {}
        for value in params.values():
            if not isinstance(value, (str, int, float, bool, type(None), list, tuple, dict)):
                roots.add(type(value).__module__.split(".")[0])
    return roots - {"builtins", "__main__"}


def requirements(model: Any, flavor: str) -> dict[str, str]:
    """Installed versions of the packages the model needs, read from package metadata
    (no ``pip`` subprocess: that is what makes MLflow's log_model take seconds)."""
    roots = _model_modules(model) | set(_BASE_PACKAGES)
    roots.add("skops" if flavor == "sklearn" else flavor)
    found = dict(filter(None, (_dist_version(r) for r in sorted(roots))))
    return dict(sorted(found.items()))


def build(
    model: Any,
    *,
    model_name: str,
    version_name: str,
    sample_input: Any = None,
    pipeline: dict[str, Any] | None = None,
    baseline: dict[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
    extra_files: Mapping[str, bytes] | None = None,
) -> Package:
    flavor = flavor_of(model)
    model_file, model_bytes, extra_types = _serialize(model, flavor)
    files = {model_file: model_bytes}
    if flavor == "sklearn":
        state = _scoring_state.state_of(model)
        if state is not None:
            files[_scoring_state.FILE] = state
    sig = None
    if sample_input is not None:
        sample = _arrow(sample_input)
        sig = signature(model, sample)
        buf = io.BytesIO()
        pq.write_table(sample, buf)
        files["sample_input.parquet"] = buf.getvalue()
    if pipeline is not None:
        files["pipeline.json"] = json.dumps(pipeline, indent=2, allow_nan=False).encode()
    if baseline is not None:
        files["baseline.json"] = json.dumps(baseline, indent=2, allow_nan=False).encode()
    files.update(extra_files or {})
    manifest = {
        "format": FORMAT,
        "model_name": model_name,
        "version_name": version_name,
        "flavor": flavor,
        "model_file": model_file,
        "model_class": f"{type(model).__module__}.{type(model).__qualname__}",
        "skops_types_beyond_default": extra_types,
        "signature": sig,
        "params": dict(params or {}),
        "python": platform.python_version(),
        "requirements": requirements(model, flavor),
        "files": {name: {"sha256": sha256(data), "size": len(data)} for name, data in files.items()},
    }
    return Package(files=files, manifest=manifest)


def check_manifest(raw: bytes, expected_sha: str, where: str) -> dict[str, Any]:
    if sha256(raw) != expected_sha:
        raise ArtifactError(
            f"{where}/{MANIFEST} was modified after the version was logged "
            f"(sha256 {sha256(raw)[:12]}..., registry expects {expected_sha[:12]}...)"
        )
    manifest = json.loads(raw)
    if manifest.get("format") != FORMAT:
        raise ArtifactError(f"{where}/{MANIFEST}: unknown format {manifest.get('format')!r}")
    return manifest


def check_file(name: str, data: bytes, manifest: Mapping[str, Any], where: str) -> None:
    expected = manifest["files"][name]["sha256"]
    if sha256(data) != expected:
        raise ArtifactError(
            f"{where}/{name} does not match its manifest (sha256 {sha256(data)[:12]}..., "
            f"expected {expected[:12]}...): the file was modified or corrupted"
        )


def load_model(
    manifest: Mapping[str, Any], data: bytes, where: str, trusted: Iterable[str] | None = None
) -> Any:
    """Rebuild the model from verified bytes. scikit-learn models load through skops and
    may contain only the types :mod:`neve.registry._trust` accepts, plus ``trusted``;
    nothing in the manifest or the file widens that."""
    flavor = manifest["flavor"]
    if flavor == "sklearn":
        import skops.io as sio

        where_file = f"{where}/{manifest['model_file']}"
        extra = _trust.check_trusted_argument(trusted)
        refused = _trust.untrusted_types(data, extra, where_file)
        if refused:
            raise ArtifactError(
                f"{where_file} contains types neve does not trust: {', '.join(refused)}. "
                f"Loading runs code these types name; review them, then pass load(trusted=[...]) to accept."
            )
        used = _trust.accepted_names(data)
        _trust.log_accepted(sorted(set(extra) & set(used)), where_file)
        model = sio.loads(data, trusted=used or None)
        _trust.check_structure(model, where_file)
        return model
    if flavor == "xgboost":
        import xgboost

        cls_name = manifest["model_class"].rsplit(".", 1)[-1]
        cls = {"XGBRegressor": xgboost.XGBRegressor, "XGBClassifier": xgboost.XGBClassifier}.get(
            cls_name, xgboost.XGBRegressor
        )
        model = cls()
        model.load_model(bytearray(data))
        return model
    if flavor == "lightgbm":
        import lightgbm

        return lightgbm.Booster(model_str=data.decode())
    raise ArtifactError(f"{where}: unknown model flavor {flavor!r}")
