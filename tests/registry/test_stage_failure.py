"""A stage that fails in the middle of a write: a clean neve error, nothing visible, a retry
that succeeds. The failure is real I/O cut short -- a filesystem that stores the first N
bytes it is given and then raises, as a full disk or a dropped upload does."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pytest
from fsspec.implementations.memory import MemoryFileSystem

from neve.errors import DuplicateVersionError, EngineError, ModelNotFoundError, StageWriteError


class _Budget:
    """Bytes a filesystem may still write before it fails; shared so a test can refill it."""

    def __init__(self, limit: int) -> None:
        self.left = limit

    def take(self, path: str, data: bytes, write: Any) -> None:
        if len(data) > self.left:
            write(path, data[: self.left])  # the part that reached the disk before it filled up
            self.left = 0
            raise OSError(errno.ENOSPC, "No space left on device", path)
        self.left -= len(data)
        write(path, data)


class FullDisk:
    """A local fsspec filesystem whose disk fills up after ``budget`` bytes."""

    def __init__(self, fs: Any, budget: _Budget) -> None:
        self._fs, self._budget = fs, budget

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fs, name)

    def pipe_file(self, path: str, value: bytes, **kwargs: Any) -> None:
        self._budget.take(path, value, lambda p, v: self._fs.pipe_file(p, v, **kwargs))


class DroppingStore(MemoryFileSystem):
    """An object store whose connection drops after ``budget.left`` bytes of uploads."""

    protocol = "neve-dropping"
    budget = _Budget(0)

    def pipe_file(self, path: str, value: bytes, **kwargs: Any) -> None:
        self.budget.take(path, value, lambda p, v: super(DroppingStore, self).pipe_file(p, v, **kwargs))


fsspec.register_implementation(DroppingStore.protocol, DroppingStore, clobber=True)


@pytest.fixture(params=["local-disk-full", "object-store-drop"])
def failing(request, reg, session):
    """A registry whose stage fails part-way through a version's files, and its byte budget."""
    budget = _Budget(0)
    if request.param == "local-disk-full":
        reg.stage.fs = FullDisk(reg.stage.fs, budget)
        return reg, budget
    import neve

    DroppingStore.budget = budget
    DroppingStore.store.clear()
    return neve.Registry(session, stage=f"{DroppingStore.protocol}://stage"), budget


@pytest.mark.parametrize("fail_after", [0, 500, 4000])
def test_a_stage_failing_mid_write_logs_nothing_and_a_retry_succeeds(failing, fitted, fail_after):
    reg, budget = failing
    model, X = fitted
    budget.left = fail_after
    with pytest.raises(StageWriteError) as failed:
        reg.log_model(model, "m", sample_input=X.head(50), metrics={"mse": 1.0})
    message = str(failed.value)
    assert "cannot write version 'v1' of model 'm'" in message and reg.stage.url in message
    assert "No space left on device" in message
    assert isinstance(failed.value, OSError) and isinstance(failed.value, EngineError)
    # Nothing of it is visible, and nothing of it is left on the stage.
    assert reg.get_model("m").versions() == []
    with pytest.raises(ModelNotFoundError):
        reg.get_model("m").version("v1")
    assert not reg.stage.exists("m", "v1")
    assert reg.check(older_than=0).ok
    budget.left = 10**9  # the disk has room again
    mv = reg.log_model(model, "m", sample_input=X.head(50), metrics={"mse": 1.0})
    assert reg.get_model("m").versions() == [mv] and mv.metrics == {"mse": 1.0}
    np.testing.assert_array_equal(mv.load().predict(X), model.predict(X))
    # A named version's name is free again after the failure: the retry takes it -- where
    # the engine can rename the failed try's rows. Spark tables cannot (no row updates, the
    # declared "reusing names" gap): there the retry is refused, naming the name, and
    # nothing else changes.
    budget.left = fail_after
    with pytest.raises(StageWriteError):
        reg.log_model(model, "m", version_name="nightly")
    budget.left = 10**9
    if reg._driver.enforces_keys:
        assert reg.log_model(model, "m", version_name="nightly").version_name == "nightly"
    else:
        with pytest.raises(DuplicateVersionError, match="'nightly'"):
            reg.log_model(model, "m", version_name="nightly")
        assert reg.get_model("m").versions() == [mv]
    assert reg.check(older_than=0).ok


def test_the_partial_file_is_really_on_disk_before_the_failure(reg, fitted, tmp_path):
    """The wrapper's failure is the real thing: the first bytes land, the rest never do."""
    budget = _Budget(100)
    fs = FullDisk(reg.stage.fs, budget)
    target = tmp_path / "probe.bin"
    with pytest.raises(OSError, match="No space left"):
        fs.pipe_file(str(target), b"x" * 1000)
    assert Path(target).read_bytes() == b"x" * 100
