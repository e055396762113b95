"""The artifact stage: layout, manifest, verification on load, crash safety and gc."""

from __future__ import annotations

import json
import multiprocessing
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import BaseEstimator, RegressorMixin

import neve
from neve.errors import ArtifactError, ArtifactMissingError, ModelNotFoundError
from neve.registry._package import sha256
from tests.registry import _workers

FILES = ["manifest.json", "model.skops", "model.json", "pipeline.json", "baseline.json", "sample_input.parquet"]


@pytest.fixture
def logged(reg, session, train_df, fitted):
    table = session.create_table("TRAIN", train_df)
    pipe = neve.Pipeline([("sc", neve.preprocessing.StandardScaler(input_cols=["DIST"]))]).fit(table)
    model, X = fitted
    return reg.log_model(model, "trip", feature_pipeline=pipe, training_data=table, sample_input=X.head(5))


def test_layout_and_manifest(reg, logged, tmp_path):
    folder = Path(reg.stage.path("trip", "v1"))
    assert folder == tmp_path / "test.stage" / "trip" / "v1"  # default: beside the DuckDB file
    assert sorted(p.name for p in folder.iterdir()) == sorted(FILES)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["format"] == "neve.model/1" and manifest["flavor"] == "sklearn"
    assert manifest["signature"]["inputs"] == [{"name": "DIST", "type": "double"}, {"name": "HOUR", "type": "int64"}]
    assert manifest["signature"]["outputs"][0]["type"] == "float64"
    assert manifest["python"] == ".".join(map(str, sys.version_info[:3]))
    import sklearn

    assert manifest["requirements"]["scikit-learn"] == sklearn.__version__
    for name in FILES[1:]:
        assert manifest["files"][name]["sha256"] == sha256((folder / name).read_bytes())


@pytest.mark.parametrize("name", FILES)
def test_tampering_any_file_fails_naming_it(reg, logged, name):
    path = Path(reg.stage.path("trip", "v1")) / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # one flipped bit
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=name.replace(".", r"\.")):
        logged.load()


def test_an_edited_manifest_that_still_parses_fails(reg, logged):
    """The manifest is trusted by its sha256 in the registry's row, not by whether it parses:
    an edit that leaves valid JSON and every file's hash intact is refused too."""
    path = Path(reg.stage.path("trip", "v1")) / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["python"] = "0.0.0"
    path.write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match=r"manifest\.json was modified after the version was logged"):
        logged.load()


def test_missing_file_fails_naming_it(reg, logged):
    (Path(reg.stage.path("trip", "v1")) / "baseline.json").unlink()
    with pytest.raises(ArtifactMissingError, match="baseline.json"):
        logged.load()


class Custom(BaseEstimator, RegressorMixin):
    def fit(self, X, y):
        self.mean_ = float(np.mean(y))
        return self

    def predict(self, X):
        return np.full(len(X), self.mean_)


def test_unknown_types_refused_unless_trusted(reg, fitted):
    model, X = fitted
    mv = reg.log_model(Custom().fit(X, X.DIST), "custom")
    with pytest.raises(ArtifactError, match="Custom"):
        mv.load()
    name = f"{Custom.__module__}.Custom"
    assert mv.load(trusted=[name]).predict(X.head(2)).tolist() == [X.DIST.mean()] * 2


@pytest.mark.engines(
    "duckdb", reason="the killed worker finds its stage beside the DuckDB file; server engines: "
    "the S3 crash test and tests/registry/test_concurrency_postgres.py"
)
def test_crash_before_commit_leaves_no_version(tmp_path: Path):
    url = f"duckdb:///{tmp_path / 'r.duckdb'}"
    reg = neve.Registry(url)
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["neve", "sklearn.linear_model", "tests.registry._workers"])
    proc = ctx.Process(target=_workers.crash_before_commit, args=(url,))
    proc.start()
    proc.join(300)
    assert proc.exitcode == 17  # died with the files written and the commit not made
    folder = Path(reg.stage.path("crashy", "v1"))
    assert (folder / "manifest.json").exists()
    model = reg.get_model("crashy")
    assert model.versions() == []
    assert reg.show_models().set_index("model_name").versions["crashy"] == 0
    with pytest.raises(ModelNotFoundError):
        model.version("v1")
    # A young orphan may still be in progress, so gc keeps it; an old one is removed.
    assert reg.gc() == []
    assert reg.gc(older_than=0) == [reg.stage.path("crashy", "v1")]
    assert not folder.exists()
    next_version = reg.log_model(_workers.small_model()[0], "crashy")
    assert next_version.version_name == "v2" and model.versions() == [next_version]


def test_gc_removes_deleted_and_unowned_folders(reg, fitted):
    model, X = fitted
    reg.log_model(model, "m")
    reg.log_model(model, "m")
    stray = Path(reg.stage.path("ghost", "v9"))
    stray.mkdir(parents=True)
    (stray / "model.skops").write_bytes(b"x")
    assert reg.gc(dry_run=True) == [str(stray)]
    assert stray.exists()
    assert reg.gc() == [str(stray)]
    assert not stray.exists()
    assert [v.version_name for v in reg.get_model("m").versions()] == ["v1", "v2"]
    np.testing.assert_array_equal(reg.get_model("m").version("v2").load().predict(X), model.predict(X))


def test_fsspec_memory_stage(session, fitted):
    model, X = fitted
    reg = neve.Registry(session, stage="memory://neve-test-stage")
    mv = reg.log_model(model, "m", sample_input=X.head(2))
    np.testing.assert_array_equal(mv.load().predict(X), model.predict(X))
    assert mv.sample_input().shape == (2, 2)
