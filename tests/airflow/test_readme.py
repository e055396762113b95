"""Every shell and Python block of README.md, run verbatim and in order after a demo run.

The demo's registry is the one the flagship DAG's ``dag.test()`` built for tests/airflow
(``taxi_run``), copied into a scratch checkout (``data/`` and ``.venv`` linked in) with
what ``make demo`` adds on top: ``production`` promoted and ``TAXI_SCORE`` holding the
2020-04 sample (as after ``make demo MONTH=2020-04``, so the drift example finds drift).

A block opts out with an HTML comment on the line before it,
``<!-- readme-test: skip (reason) -->`` (long-running, needs the UI or a server), or
names the exit codes it may end with, ``<!-- readme-test: exit 0 3 -->`` (drift exits 3).
Python blocks share one namespace, as in one REPL. DuckDB admits one process per file,
so the open sessions are closed while a shell block runs and reopened after it, as a user
would quit the REPL before running the CLI.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

import neve
from neve import Registry

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
RUNNABLE = {"python", "bash", "console"}
_BLOCK = re.compile(
    r"(?:<!-- readme-test: (?P<directive>[^>]*?) -->\n)?^```(?P<lang>\w*)\n(?P<body>.*?)^```", re.S | re.M
)


@dataclass
class Block:
    line: int
    lang: str
    body: str
    directive: str

    @property
    def skip_reason(self) -> str | None:
        m = re.match(r"skip \((.*)\)", self.directive)
        return m.group(1) if m else None

    @property
    def exit_codes(self) -> set[int]:
        m = re.match(r"exit ((?:\d+ ?)+)", self.directive)
        return {int(c) for c in m.group(1).split()} if m else {0}

    def commands(self) -> str:
        """The shell text: a console block's ``$ `` lines (with continuations), a bash block whole."""
        if self.lang == "bash":
            return self.body
        lines, keep = [], False
        for line in self.body.splitlines():
            if line.startswith("$ "):
                lines.append(line[2:])
                keep = line.endswith("\\")
            elif keep:
                lines.append(line)
                keep = line.endswith("\\")
        return "\n".join(lines)


def readme_blocks() -> list[Block]:
    text = README.read_text()
    return [
        Block(text[: m.start("lang")].count("\n") + 1, m.group("lang"), m.group("body"), m.group("directive") or "")
        for m in _BLOCK.finditer(text)
        if m.group("lang") in RUNNABLE
    ]


def test_the_readme_has_blocks_to_run_and_every_skip_says_why():
    blocks = readme_blocks()
    assert sum(b.lang == "python" for b in blocks) >= 5 and sum(b.lang != "python" for b in blocks) >= 5
    for block in blocks:
        assert block.directive == "" or block.skip_reason or block.exit_codes != {0}, block


@pytest.fixture
def demo_checkout(taxi_run, taxi_db, taxi_module, tmp_path, monkeypatch) -> Path:
    assert str(taxi_run.state).endswith("success"), taxi_run.state
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    (checkout / "data").symlink_to(REPO / "data")
    (checkout / ".venv").symlink_to(REPO / ".venv")
    shutil.copy(taxi_db, checkout / "neve.duckdb")
    shutil.copytree(taxi_db.with_name(f"{taxi_db.stem}.stage"), checkout / "neve.stage")  # the model files
    url = f"duckdb://{checkout / 'neve.duckdb'}"
    from tools.demo.report import promote_if_better

    with neve.connect(url) as session:
        model = Registry(session).get_model("trip_duration_estimator")
        promote_if_better(model, model.versions()[-1])
        raw = session.load_files([REPO / "data" / "nyc_taxi" / "yellow_tripdata_sample_2020-04.csv"], "R_2020_04")
        session.create_table("TAXI_SCORE", taxi_module.clean_trips(raw), overwrite=True)
    monkeypatch.setenv("NEVE_URL", url)
    monkeypatch.chdir(checkout)
    return checkout


def _reopen(namespace: dict, closed: dict[str, str]) -> None:
    for name, url in closed.items():
        namespace[name] = neve.connect(url)


def _close_sessions(namespace: dict) -> dict[str, str]:
    closed = {}
    for name, value in list(namespace.items()):
        if isinstance(value, neve.Session):
            closed[name] = value.url
            value.close()
    return closed


@pytest.mark.slow
def test_every_readme_block_runs_verbatim_after_make_demo(demo_checkout):
    namespace: dict = {"__name__": "readme"}
    ran = []
    for block in readme_blocks():
        if block.skip_reason:
            continue
        where = f"README.md line {block.line}"
        if block.lang == "python":
            exec(compile(block.body, where, "exec"), namespace)
        else:
            closed = _close_sessions(namespace)
            result = subprocess.run(["bash", "-euo", "pipefail", "-c", block.commands()], cwd=demo_checkout,
                                    env=os.environ.copy(), capture_output=True, text=True, timeout=300, check=False)
            assert result.returncode in block.exit_codes, f"{where}:\n{result.stdout}\n{result.stderr}"
            _reopen(namespace, closed)
        ran.append(block.line)
    assert len(ran) >= 8
    # What the snippets made: a plot under .neve/, never in the checkout's root.
    assert (demo_checkout / ".neve" / "drift.png").is_file()
    assert not list(demo_checkout.glob("*.png"))
    _close_sessions(namespace)
