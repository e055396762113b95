"""Every shell and Python block of README.md, run verbatim and in order after a demo run.

The demo's registry is the one the flagship DAG's ``dag.test()`` built for tests/airflow
(``taxi_run``), copied into a scratch checkout (``data/`` and ``.venv`` linked in) with
what ``make demo`` adds on top: ``TAXI_SCORE`` holding the 2020-04 sample (as after
``make demo MONTH=2020-04``, so the drift example finds drift).

A block opts out with an HTML comment on the line before it,
``<!-- readme-test: skip (reason) -->`` (long-running, needs the UI or a server), or
names the commands that must end with another code than 0,
``<!-- readme-test: exit 3: models drift -->`` (drift exits 3). A console block's commands
run one by one, each checked for its own exit code, and the lines the README shows under a
command must be among the lines it prints (so its numbers hold to their printed precision).
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
    def exit_rules(self) -> list[tuple[int, str]]:
        """``(code, text)``: a command containing ``text`` must exit with ``code``."""
        m = re.fullmatch(r"exit (.*)", self.directive)
        if not m:
            return []
        rules = [re.fullmatch(r"\s*(\d+): (.+?)\s*", rule) for rule in m.group(1).split(";")]
        assert all(rules), f"README.md line {self.line}: write 'exit CODE: command text; ...'"
        return [(int(r.group(1)), r.group(2)) for r in rules]

    def expected_exit(self, command: str) -> int:
        return next((code for code, text in self.exit_rules if text in command), 0)

    def commands(self) -> list[tuple[str, list[str]]]:
        """``(shell text, lines shown under it)``: each ``$ `` line of a console block (with its
        continuations) and its output as printed in the README; a bash block is one command."""
        if self.lang == "bash":
            return [(self.body, [])]
        commands: list[tuple[str, list[str]]] = []
        keep = False
        for line in self.body.splitlines():
            if line.startswith("$ "):
                commands.append((line[2:], []))
                keep = line.endswith("\\")
            elif keep:
                commands[-1] = (f"{commands[-1][0]}\n{line}", [])
                keep = line.endswith("\\")
            elif commands and line.strip():
                commands[-1][1].append(line)
        return commands


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
        assert block.directive == "" or block.skip_reason or block.exit_rules, block
        for _, text in block.exit_rules:
            assert any(text in command for command, _ in block.commands()), (block.line, text)


def test_a_command_is_held_to_its_own_exit_code_and_its_printed_output():
    block = Block(1, "console", "$ neve a\n$ neve models drift m T\n  drift in X\n│ X │ 0.789 │\n",
                  "exit 3: models drift")
    assert [c for c, _ in block.commands()] == ["neve a", "neve models drift m T"]
    assert block.expected_exit("neve a") == 0 and block.expected_exit("neve models drift m T") == 3
    assert block.commands()[1][1] == ["  drift in X", "│ X │ 0.789 │"]
    assert _missing_lines(["│ X │ 0.789 │"], "header\n│ X │ 0.788 │\n") == ["│ X │ 0.789 │"]
    assert _missing_lines(["  drift in X"], "drift  in X\n") == []


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
    with neve.connect(url) as session:
        # The run approved its own promotion (auto_approve), as make demo's does.
        assert Registry(session).get_model("trip_duration_estimator").aliases["production"] == "v1"
        raw = session.load_files([REPO / "data" / "nyc_taxi" / "yellow_tripdata_sample_2020-04.csv"], "R_2020_04")
        session.create_table("TAXI_SCORE", taxi_module.clean_trips(raw), overwrite=True)
    monkeypatch.setenv("NEVE_URL", url)
    monkeypatch.chdir(checkout)
    return checkout


def _missing_lines(shown: list[str], printed: str) -> list[str]:
    """The README's output lines that the command did not print (whitespace runs aside)."""
    squash = lambda line: " ".join(line.split())  # noqa: E731
    printed_lines = {squash(line) for line in printed.splitlines()}
    return [line for line in shown if squash(line) not in printed_lines]


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
            ran.append(block.line)
        else:
            closed = _close_sessions(namespace)
            for command, shown in block.commands():
                result = subprocess.run(["bash", "-euo", "pipefail", "-c", command], cwd=demo_checkout,
                                        env={**os.environ, "COLUMNS": "120"}, capture_output=True, text=True,
                                        timeout=300, check=False)
                said = f"{where}: {command}\n{result.stdout}\n{result.stderr}"
                assert result.returncode == block.expected_exit(command), said
                assert not _missing_lines(shown, result.stdout), said
                ran.append(command)
            _reopen(namespace, closed)
    assert len(ran) >= 14
    # What the snippets made: a plot under .neve/, never in the checkout's root.
    assert (demo_checkout / ".neve" / "drift.png").is_file()
    assert not list(demo_checkout.glob("*.png"))
    _close_sessions(namespace)
