"""The production Dockerfile, checked without a Docker engine: hadolint plus a parse."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from neve.envs._project import Project

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())  # join continuation lines
    rows = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(row.split(None, 1)[0].upper(), row.split(None, 1)[1]) for row in rows]


def args() -> dict[str, str]:
    found = {}
    for op, rest in instructions():
        if op == "ARG" and "=" in rest:
            key, value = rest.split("=", 1)
            found[key] = value.strip('"')
    return found


def test_hadolint_passes() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    proc = subprocess.run([hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_builds_envs_with_the_dev_command_and_a_uv_cache_mount() -> None:
    ops = instructions()
    assert ops[0][0] == "ARG" and any(op == "FROM" and rest.startswith("apache/airflow:")
                                      for op, rest in ops)
    [build] = [rest for op, rest in ops if op == "RUN" and "neve env build" in rest]
    assert "neve env build --locked" in build
    assert "--mount=type=cache,target=/home/airflow/.cache/uv" in build
    env = " ".join(rest for op, rest in ops if op == "ENV")
    assert "UV_CACHE_DIR=/home/airflow/.cache/uv" in env and "UV_LINK_MODE=copy" in env


def test_copies_what_a_locked_build_needs() -> None:
    sources = set()
    for op, rest in instructions():
        if op == "COPY":
            sources.update(t for t in rest.split()[:-1] if not t.startswith("--"))
    for needed in ("pyproject.toml", "uv.lock", "src/", "envs/"):
        assert needed in sources and (REPO / needed).exists()
    for name in Project(REPO).specs():
        assert (REPO / "envs" / f"{name}.lock").is_file(), f"--locked needs envs/{name}.lock"


def test_image_has_every_python_the_envs_declare() -> None:
    values = args()
    available = {values["PYTHON_VERSION"], *values["EXTRA_PYTHONS"].split()}
    declared = {spec.python for spec in Project(REPO).specs().values()}
    assert declared <= available, f"add {sorted(declared - available)} to EXTRA_PYTHONS"
