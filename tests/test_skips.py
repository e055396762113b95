"""The skip policy (tests/_skips.py): locally a missing service skips; in CI every skip fails
unless the allow-list names it. Checked on a probe suite run by a real pytest, with and without CI."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests._skips import in_ci

REPO = Path(__file__).resolve().parents[1]

PROBE = '''
import pytest
from tests._skips import require, require_module

def test_plain_skip():
    pytest.skip("nothing to test here")

def test_missing_service():
    require(False, "the frobnicator is not installed (apt-get install frobnicator)")

def test_present_service():
    require(True, "never shown")

@pytest.mark.xfail(strict=True, reason="a known gap")
def test_known_gap():
    assert False

def test_allowed():
    pytest.skip("deliberate")
'''
MISSING_EXTRA = '''
from tests._skips import require_module
require_module("neve_no_such_module", "the imaginary extra")

def test_never_collected():
    pass
'''
CONFTEST = '''
from tests._skips import EXPECTED_SKIPS, pytest_make_collect_report, pytest_runtest_makereport
EXPECTED_SKIPS["test_probe.py::test_allowed"] = "a deliberate skip, named with its reason"
'''


def _run_probe(tmp_path: Path, ci: str | None) -> tuple[int, str]:
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_probe.py").write_text(PROBE)
    (tmp_path / "test_missing_extra.py").write_text(MISSING_EXTRA)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    if ci is not None:
        env["CI"] = ci
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist", "-rA", "-q",
         "--continue-on-collection-errors", "--rootdir", str(tmp_path), "-c", os.devnull, str(tmp_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    return proc.returncode, proc.stdout


def test_locally_a_missing_service_skips_and_the_run_passes(tmp_path):
    code, out = _run_probe(tmp_path, ci=None)
    assert code == 0, out
    assert len(re.findall(r"^SKIPPED ", out, re.M)) == 4  # plain, missing service, allowed, missing extra
    assert "the frobnicator is not installed" in out and "neve_no_such_module is not installed" in out
    assert "PASSED test_probe.py::test_present_service" in out


@pytest.mark.parametrize("ci", ["true", "1"])
def test_in_ci_every_unexpected_skip_fails_the_run(tmp_path, ci):
    code, out = _run_probe(tmp_path, ci=ci)
    assert code != 0, out
    assert "CI must run this, but the frobnicator is not installed" in out
    assert "CI must run this, but neve_no_such_module is not installed (the imaginary extra)" in out
    assert "skipped in CI: nothing to test here" in out
    # The deliberate skip stays a skip, the xfail an xfail; nothing else was skipped.
    assert re.findall(r"^SKIPPED .*", out, re.M) == ["SKIPPED [1] test_probe.py:19: deliberate"]
    assert "XFAIL test_probe.py::test_known_gap - a known gap" in out
    assert "PASSED test_probe.py::test_present_service" in out


@pytest.mark.parametrize(("value", "expected"), [("true", True), ("1", True), ("", False), ("false", False),
                                                 ("0", False), (None, False)])
def test_ci_is_read_as_ci_services_set_it(monkeypatch, value, expected):
    if value is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", value)
    assert in_ci() is expected


def test_ci_run_sets_ci_before_it_runs_the_tests():
    """``bash .ci/run`` by hand checks a clean clone as the landing CI does."""
    script = (REPO / ".ci" / "run").read_text()
    assert 'export CI="${CI:-true}"' in script
    assert script.index('export CI="${CI:-true}"') < script.index("\nmake test")
