"""The Makefile's set-up on a machine without uv: a fresh clone needs only Python and make."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: A PATH with make and a system Python but no uv (uv lives in pyenv's shims and .venv/bin here).
BARE_PATH = os.pathsep.join(p for p in ("/usr/local/bin", "/usr/bin", "/bin") if Path(p).is_dir())

pytestmark = pytest.mark.skipif(
    shutil.which("make", path=BARE_PATH) is None or shutil.which("uv", path=BARE_PATH) is not None,
    reason="needs make on the system PATH and uv off it",
)


def _make(*args: str, cwd: Path = REPO, python: str = "python3") -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": BARE_PATH, "PYTHON": python}
    return subprocess.run(["make", "-f", str(REPO / "Makefile"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def test_without_uv_sync_bootstraps_it_into_a_throwaway_venv_and_compiles_bytecode(tmp_path):
    # -W uv.lock: as if the lock changed, so make prints the sync recipe; -n: print, run nothing.
    out = _make("-n", "-W", "uv.lock", "sync", f"BOOTSTRAP={tmp_path / 'b'}").stdout
    assert f"-m venv {tmp_path / 'b'}" in out
    assert f"{tmp_path / 'b'}/bin/python -m pip install" in out
    assert "-m pip install" not in out.replace(f"{tmp_path / 'b'}/bin/python -m pip install", "")  # never system pip
    assert f"{tmp_path / 'b'}/bin/uv sync --locked --all-extras --group dev --compile-bytecode" in out


@pytest.mark.slow
def test_the_bootstrap_recipe_installs_a_working_uv(tmp_path):
    system_python = shutil.which("python3", path=BARE_PATH) or sys.executable
    result = _make(".neve/bootstrap/bin/uv", cwd=tmp_path, python=system_python)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "uv is not on PATH" in result.stdout
    uv = tmp_path / ".neve" / "bootstrap" / "bin" / "uv"
    version = subprocess.run([str(uv), "--version"], capture_output=True, text=True, check=True).stdout
    assert version.startswith("uv ")
