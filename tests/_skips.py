"""The one way a test may be skipped for want of a service or an extra: :func:`require`.

On a developer's machine a missing PostgreSQL, Java, Chromium, Airflow extra or driver
skips the tests that need it, saying what to install. In CI (``$CI`` set, as ``.ci/run``
sets it) the same absence fails the run: a green CI must mean every column of the suite
ran. Any other skip under CI fails too (``tests/conftest.py`` turns it into a failure),
unless :data:`EXPECTED_SKIPS` names it with the reason it is deliberate.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest

#: Skips CI accepts: test node id (or a prefix of it) -> why the skip is deliberate. Keep it short.
EXPECTED_SKIPS: dict[str, str] = {}


def in_ci() -> bool:
    """True when ``$CI`` is set to anything but an explicit no (``""``, ``0``, ``false``, ``no``)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require(condition: object, reason: str, *, allow_module_level: bool = False) -> None:
    """Skip (locally) or fail (in CI) unless ``condition`` holds. ``reason`` says what is
    missing and how to install it."""
    if condition:
        return
    if in_ci():
        pytest.fail(f"CI must run this, but {reason} (.ci/run installs it)", pytrace=False)
    pytest.skip(reason, allow_module_level=allow_module_level)


def require_module(name: str, extra: str, *, allow_module_level: bool = True) -> ModuleType:
    """``pytest.importorskip`` through :func:`require`: the module, or a skip (a failure in CI)
    naming the extra or group that provides it."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        error = exc
    require(False, f"{name} is not installed ({extra}): {error}", allow_module_level=allow_module_level)
    raise error  # not reached: require skipped or failed


def expected_skip(nodeid: str) -> str | None:
    """Why the skip of ``nodeid`` is deliberate, or None when CI must not accept it."""
    return next((why for prefix, why in EXPECTED_SKIPS.items() if nodeid.startswith(prefix)), None)


# -- Hooks (tests/conftest.py imports them): in CI, a skip nobody expected is a failure ---------------


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    _fail_unexpected_skip(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):
    outcome = yield
    _fail_unexpected_skip(outcome.get_result())


def _fail_unexpected_skip(report: pytest.TestReport | pytest.CollectReport) -> None:
    """Under CI, turn a skip that tests/_skips.py's allow-list does not name into a failure:
    a run that silently leaves tests out must not pass. xfail reports are skips to pytest, and
    stay what they are."""
    if not report.skipped or hasattr(report, "wasxfail") or not in_ci() or expected_skip(report.nodeid) is not None:
        return
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    reason = reason.removeprefix("Skipped: ")
    report.outcome = "failed"
    report.longrepr = (
        f"skipped in CI: {reason}\nCI runs every test. Install what is missing (.ci/run), or, if the "
        "skip is deliberate, name it in tests/_skips.py EXPECTED_SKIPS with the reason."
    )
