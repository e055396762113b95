"""The Makefile's set-up on a machine without uv: a fresh clone needs only Python and make."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests._skips import require

REPO = Path(__file__).resolve().parents[1]
#: The system's folders of programs (uv may live in pyenv's shims, .venv/bin, or /usr/local/bin
#: as in uv's own Docker images).
SYSTEM_PATH = os.pathsep.join(p for p in ("/usr/local/bin", "/usr/bin", "/bin") if Path(p).is_dir())
UV_NAMES = ("uv", "uvx")


@pytest.fixture(scope="module")
def bare_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A PATH with every program of the system's folders but uv: a fresh machine with only
    Python and make, whatever this one has installed."""
    require(shutil.which("make", path=SYSTEM_PATH) is not None, "make is not installed (apt-get install make)")
    folder = tmp_path_factory.mktemp("bare-bin")
    for directory in reversed(SYSTEM_PATH.split(os.pathsep)):  # earlier folders win, as on PATH
        for program in Path(directory).iterdir():
            if program.name not in UV_NAMES and os.access(program, os.X_OK) and not program.is_dir():
                (folder / program.name).unlink(missing_ok=True)
                (folder / program.name).symlink_to(program)
    assert shutil.which("uv", path=str(folder)) is None
    return str(folder)


def _make(bare_path: str, *args: str, cwd: Path = REPO, python: str = "python3") -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": bare_path, "PYTHON": python}
    return subprocess.run(["make", "-f", str(REPO / "Makefile"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def test_without_uv_sync_bootstraps_it_into_a_throwaway_venv_and_compiles_bytecode(tmp_path, bare_path):
    # -W uv.lock: as if the lock changed, so make prints the sync recipe; -n: print, run nothing.
    out = _make(bare_path, "-n", "-W", "uv.lock", "sync", f"BOOTSTRAP={tmp_path / 'b'}").stdout
    assert f"-m venv {tmp_path / 'b'}" in out
    assert f"{tmp_path / 'b'}/bin/python -m pip install" in out
    assert "-m pip install" not in out.replace(f"{tmp_path / 'b'}/bin/python -m pip install", "")  # never system pip
    assert f"{tmp_path / 'b'}/bin/uv sync --locked --all-extras --group dev --compile-bytecode" in out


@pytest.mark.slow
def test_the_bootstrap_recipe_installs_a_working_uv(tmp_path, bare_path):
    system_python = shutil.which("python3", path=SYSTEM_PATH) or sys.executable
    result = _make(bare_path, ".neve/bootstrap/bin/uv", cwd=tmp_path, python=system_python)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "uv is not on PATH" in result.stdout
    uv = tmp_path / ".neve" / "bootstrap" / "bin" / "uv"
    version = subprocess.run([str(uv), "--version"], capture_output=True, text=True, check=True).stdout
    assert version.startswith("uv ")
