"""Real builds of tiny envs: cold, warm, changed, concurrent, stale, pruned."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
from pathlib import Path

import pytest

from neve import envs
from neve.envs._check import MARKER


def run_in(python: str | Path, code: str, *, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "NEVE_ENV_NO_CHECK"}
    if not check:
        env["NEVE_ENV_NO_CHECK"] = "1"
    return subprocess.run([str(python), "-c", code], capture_output=True, text=True, env=env,
                          check=False)


SIX = "import six, sys; print(six.__version__, sys.version_info[:2])"


def test_cold_build_locks_builds_and_links(project: Path) -> None:
    [result] = envs.build(["tiny"], project=project)
    assert result.built
    lock = (project / "envs" / "tiny.lock").read_text()
    assert "six==1.16.0" in lock and "# input: " in lock
    assert result.path == project / ".neve" / "envs" / f"tiny-{result.hash}"
    link = project / ".neve" / "envs" / "tiny"
    assert link.is_symlink() and link.resolve() == result.path
    python = envs.python("tiny", project=project)
    assert python == str(link / "bin" / "python")
    out = run_in(python, SIX)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1.16.0 (3, 11)"
    [st] = envs.status(project=project)
    assert (st.state, st.hash) == ("fresh", result.hash)


def test_unchanged_declaration_is_a_no_op(project: Path) -> None:
    [first] = envs.build(["tiny"], project=project)
    marker = first.path / MARKER
    before = (marker.stat().st_mtime_ns, (first.path / "bin" / "python").lstat().st_ino)
    [second] = envs.build(["tiny"], project=project)
    assert not second.built
    assert second.hash == first.hash
    assert (marker.stat().st_mtime_ns, (first.path / "bin" / "python").lstat().st_ino) == before


def test_changed_requirements_build_beside_and_switch(project: Path, declare, tiny: dict) -> None:
    [old] = envs.build(["tiny"], project=project)
    old_python = old.path / "bin" / "python"
    link = project / ".neve" / "envs" / "tiny"
    declare(tiny={**tiny, "dependencies": ["six==1.15.0"]})
    seen_during_build = []

    def on_step(name: str, message: str) -> None:
        if message.startswith("installing"):
            # Mid-build the link still serves the old, complete env (stale, hence no check).
            py = link / "bin" / "python"
            seen_during_build.append((link.resolve(), run_in(py, SIX, check=False).stdout))

    [new] = envs.build(["tiny"], project=project, on_step=on_step)
    assert new.built and new.hash != old.hash
    assert seen_during_build == [(old.path, "1.16.0 (3, 11)\n")]
    assert link.resolve() == new.path
    assert run_in(link / "bin" / "python", SIX).stdout.startswith("1.15.0")
    # The old build stays whole until prune, for tasks that started on it.
    assert run_in(old_python, SIX, check=False).stdout.startswith("1.16.0")
    assert envs.prune(project) == [old.path]
    assert not old.path.exists() and new.path.exists()
    assert envs.prune(project) == []


def test_running_task_keeps_its_libraries_after_a_switch(project: Path) -> None:
    [old] = envs.build(["tiny"], project=project)
    out = run_in(envs.python("tiny", project=project), "import sys; print(sys.prefix)")
    assert out.stdout.strip() == str(old.path)  # pinned past the symlink at start-up


def _build_in_child(project: str, queue: multiprocessing.Queue) -> None:
    [result] = envs.build(["tiny"], project=project)
    queue.put((result.built, result.hash))


def test_concurrent_builds_in_two_processes(project: Path) -> None:
    ctx = multiprocessing.get_context("fork")  # real processes, without re-importing neve
    queue = ctx.Queue()
    procs = [ctx.Process(target=_build_in_child, args=(str(project), queue)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
        assert p.exitcode == 0
    results = sorted(queue.get(timeout=5) for _ in procs)
    assert [built for built, _ in results] == [False, True]  # one built, one waited and reused
    assert results[0][1] == results[1][1]
    builds = [p for p in (project / ".neve" / "envs").iterdir() if p.name.startswith("tiny-")]
    assert len(builds) == 1
    assert run_in(envs.python("tiny", project=project), SIX).returncode == 0


def test_missing_interpreter_lists_the_versions_found(project: Path, declare, tiny: dict) -> None:
    declare(tiny={**tiny, "python": "3.99"})
    with pytest.raises(envs.InterpreterNotFoundError) as info:
        envs.build(["tiny"], project=project)
    message = str(info.value)
    assert "Python 3.99 for env 'tiny' is not installed" in message
    found = message.split("found: ")[1].split(".  ")[0]
    assert "3.11." in found
    assert not (project / ".neve" / "envs" / "tiny").exists()


def test_unbuilt_env_path_fails_with_the_fix(project: Path) -> None:
    python = envs.python("tiny", project=project)
    out = run_in(python, "print('ran')")
    assert out.returncode == 1
    assert out.stderr.strip() == "env 'tiny' is not built: run `neve env build tiny`"
    with pytest.raises(envs.EnvNotBuiltError, match=r"env 'tiny' is not built: run `neve env build tiny`"):
        envs.require("tiny", project=project)
    [st] = envs.status(project=project)
    assert st.state == "not built"
    # The first build replaces the stub at the same path.
    envs.build(["tiny"], project=project)
    assert run_in(python, SIX).returncode == 0


def test_stale_env_is_detected_and_refuses_to_start(project: Path, declare, tiny: dict) -> None:
    envs.build(["tiny"], project=project)
    python = envs.python("tiny", project=project)
    declare(tiny={**tiny, "dependencies": ["six==1.15.0"]})
    [st] = envs.status(project=project)
    assert st.state == "stale" and "declaration changed" in st.reason
    with pytest.raises(envs.EnvStaleError, match="env 'tiny' is stale"):
        envs.require("tiny", project=project)
    out = run_in(python, "print('ran')")
    assert out.returncode == 1 and out.stdout == ""
    assert "env 'tiny' is stale (its declaration in pyproject.toml changed" in out.stderr
    assert "run `neve env build tiny`" in out.stderr


def test_edited_lock_makes_the_env_stale(project: Path) -> None:
    envs.build(["tiny"], project=project)
    lock = project / "envs" / "tiny.lock"
    lock.write_text(lock.read_text().replace("six==1.16.0", "six==1.15.0"))
    [st] = envs.status(project=project)
    assert (st.state, st.reason) == ("stale", "envs/tiny.lock changed since it was built")
    out = run_in(envs.python("tiny", project=project), "print('ran')")
    assert "envs/tiny.lock changed since it was built" in out.stderr
    [rebuilt] = envs.build(["tiny"], project=project)  # the lock is the input: no re-resolve
    assert rebuilt.built
    assert run_in(envs.python("tiny", project=project), SIX).stdout.startswith("1.15.0")


def test_locked_refuses_an_out_of_date_lock(project: Path, declare, tiny: dict) -> None:
    envs.build(["tiny"], project=project)
    declare(tiny={**tiny, "dependencies": ["six==1.15.0"]})
    with pytest.raises(envs.EnvStaleError, match="without --locked"):
        envs.build(["tiny"], project=project, locked=True)


def test_include_neve_needs_a_new_enough_python(project: Path, declare, tiny: dict) -> None:
    declare(tiny={**tiny, "python": "3.10", "include_neve": True})
    with pytest.raises(envs.EnvDeclarationError, match="include_neve = false or python >="):
        envs.build(["tiny"], project=project)


@pytest.mark.slow
def test_include_neve_installs_neve_without_airflow(project: Path, declare, tiny: dict) -> None:
    declare(tiny={"python": "3.11", "include_neve": True})
    [result] = envs.build(["tiny"], project=project)
    out = run_in(envs.python("tiny", project=project),
                 "import importlib.util as u, neve.envs, sklearn, ibis; "
                 "print(neve.envs.__file__); print(u.find_spec('airflow'), u.find_spec('uv'))")
    assert out.returncode == 0, out.stderr
    where, missing = out.stdout.splitlines()
    assert where.startswith(str(result.path))
    assert missing == "None None"
