"""`make mutate` stays runnable: every planted bug in tools/mutate.py still finds its code."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("neve_mutate", REPO / "tools" / "mutate.py")
mutate = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = mutate  # dataclasses look their module up there
_spec.loader.exec_module(mutate)


@pytest.mark.parametrize("mutant", mutate.MUTANTS, ids=lambda m: m.id)
def test_mutant_applies_exactly_once_and_changes_the_code(mutant):
    assert mutate.applies(mutant), f"{mutant.id}: its `old` text no longer occurs exactly once in {mutant.path}"
    assert mutant.old != mutant.new
    for test in mutant.tests:
        assert (REPO / test).is_file(), f"{mutant.id}: guarding test {test} is gone"


def test_mutant_ids_are_unique():
    ids = [m.id for m in mutate.MUTANTS]
    assert len(ids) == len(set(ids))


@pytest.mark.long
def test_make_mutate_catches_every_mutant(capsys):
    """The whole `make mutate` run: a planted bug that the suite lets through fails this test."""
    status = mutate.main([])
    report = capsys.readouterr().out
    assert "SURVIVED" not in report, report
    assert report.count(" caught ") == len(mutate.MUTANTS), report
    assert status == 0
