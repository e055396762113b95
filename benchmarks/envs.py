"""Task environments: neve env build against venv + pip and Airflow's cached virtualenv.

Also the per-task start-up of an external-python task: Airflow's own task script, run
by the interpreter of a neve env (no Airflow inside) and of an env with Airflow inside.

Writes the ``## Task environments`` section of BENCHMARKS.md (other sections are kept).

    uv run --no-sync python benchmarks/envs.py          # the taxi env's full requirement set
    uv run --no-sync python benchmarks/envs.py --quick  # a two-package set

Every build starts from a new folder; package caches (uv's and pip's) are warm,
as on a developer machine or with a Docker cache mount, so the numbers compare
installers and caching, not the network. Airflow's PythonVirtualenvOperator is timed
through its own cache step (``_ensure_venv_cache_exists``, what a task with
``venv_cache_path`` runs before its callable), with each of its two installers.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from neve import envs
from neve.envs._interpreters import find_interpreter
from neve.envs._lock import lock_body
from neve.envs._uv import uv_command

SECTION = "## Task environments"


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def best_of(n: int, cmd: list[str], env: dict | None = None, **kw) -> float:
    return min(timed(lambda: run(cmd, env=env, **kw)) for _ in range(n))


def requirements(quick: bool) -> list[str]:
    if quick:
        return ["six==1.16.0", "tabulate==0.9.0"]
    return lock_body((REPO / "envs" / "taxi.lock").read_text()).splitlines()


def write_project(root: Path, reqs: list[str]) -> None:
    deps = ", ".join(f'"{r}"' for r in reqs)
    (root / "pyproject.toml").write_text(
        '[project]\nname = "bench"\nversion = "0"\n\n[tool.neve.envs.bench]\n'
        f'python = "3.11"\ninclude_neve = false\ndependencies = [{deps}]\n'
    )


def measure(quick: bool) -> list[tuple[str, str, str]]:
    reqs = requirements(quick)
    python = str(find_interpreter("3.11").path)
    rows = []
    with tempfile.TemporaryDirectory(prefix="neve-bench-") as tmp:
        tmp_path = Path(tmp)
        (tmp_path / "requirements.txt").write_text("\n".join(reqs) + "\n")

        # Warm both caches once, untimed.
        proj = tmp_path / "warmup"
        proj.mkdir()
        write_project(proj, reqs)
        envs.build(["bench"], project=proj)
        run([python, "-m", "venv", str(tmp_path / "pipwarm")])
        run([str(tmp_path / "pipwarm" / "bin" / "python"), "-m", "pip", "install", "-q",
             "-r", str(tmp_path / "requirements.txt")])

        proj = tmp_path / "proj"
        proj.mkdir()
        write_project(proj, reqs)
        cold = timed(lambda: envs.build(["bench"], project=proj))
        rows.append(("neve env build, cold (resolve + lock + venv + install)", f"{cold:.2f} s",
                     "includes compiling bytecode, as pip does"))
        warm = min(timed(lambda: envs.build(["bench"], project=proj)) for _ in range(5))
        [result] = envs.build(["bench"], project=proj)
        assert not result.built
        rows.append(("neve env build, unchanged declaration (library call)", f"{warm * 1000:.0f} ms",
                     "no rebuild"))
        cli = best_of(3, [sys.executable, "-m", "neve.cli", "env", "build", "--project", str(proj)])
        rows.append(("`neve env build`, unchanged declaration (CLI process)", f"{cli:.2f} s",
                     "the whole CLI process; the library call is the row above"))
        write_project(proj, [*reqs, "six==1.17.0"] if "six" not in " ".join(reqs) else
                      [*reqs, "idna==3.10"])
        changed = timed(lambda: envs.build(["bench"], project=proj))
        rows.append(("neve env build, one package added", f"{changed:.2f} s",
                     "a whole new env beside the old, then switch"))

        def pip_build() -> None:
            venv = tmp_path / f"pip{time.monotonic_ns()}"
            run([python, "-m", "venv", str(venv)])
            run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
                 "-r", str(tmp_path / "requirements.txt")])

        pip_time = timed(pip_build)
        rows.append(("`python -m venv` + `pip install -r` (every build)", f"{pip_time:.2f} s",
                     "no reuse: every image build or restart pays it"))

        py = envs.python("bench", project=proj)
        env = {k: v for k, v in os.environ.items() if k != "NEVE_ENV_NO_CHECK"}
        bare = best_of(5, [py, "-c", "pass"], env)
        unchecked = best_of(5, [py, "-c", "pass"], {**env, "NEVE_ENV_NO_CHECK": "1"})
        rows.append(("start-up: env interpreter, `pass` (incl. stale check)", f"{bare * 1000:.0f} ms",
                     f"check costs {max(bare - unchecked, 0) * 1000:.0f} ms"))
        if not quick:
            sk = best_of(3, [py, "-c", "import sklearn.linear_model"], env)
            rows.append(("start-up: env interpreter, `import sklearn.linear_model`", f"{sk:.2f} s", ""))

    taxi = Path(envs.python("taxi", project=REPO))
    if (REPO / ".neve" / "envs" / "taxi").resolve().name.startswith("taxi-") and not quick:
        imp = best_of(3, [str(taxi), "-c", "import neve"], env)
        rows.append(("start-up: taxi env, `import neve`", f"{imp:.2f} s",
                     "target 0.5 s: met; `import neve` is lazy, and ibis/scikit-learn load when a task uses them (`import sklearn` row above)"))
    rows += airflow_rows(reqs, quick)
    return rows


def _noop() -> int:
    return 1


def _airflow_home(tmp: Path) -> None:
    # Before Airflow's first import: it reads its configuration then, and would create
    # ~/airflow otherwise.
    os.environ.setdefault("AIRFLOW_HOME", str(tmp / "airflow-home"))
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    # The operator reads this Variable into its cache key; from the environment, not a
    # metadata DB this script does not have.
    os.environ.setdefault("AIRFLOW_VAR_PYTHON_VIRTUALENV_OPERATOR_CACHE_KEY", "bench")


def airflow_rows(reqs: list[str], quick: bool) -> list[tuple[str, str, str]]:
    """PythonVirtualenvOperator + venv_cache_path on ``reqs`` (first task, repeat task), and
    the start-up of an external-python task in a neve env vs. an env with Airflow."""
    import importlib.util

    if importlib.util.find_spec("airflow") is None:
        return [("Airflow PythonVirtualenvOperator", "not measured", "apache-airflow not installed")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="neve-bench-af-") as tmp:
        tmp_path = Path(tmp)
        _airflow_home(tmp_path)
        from airflow.providers.standard.operators.python import PythonVirtualenvOperator

        for method in ("uv", "pip"):
            os.environ["AIRFLOW__STANDARD__VENV_INSTALL_METHOD"] = method
            cache = tmp_path / f"cache-{method}"
            op = PythonVirtualenvOperator(task_id=f"bench_{method}", python_callable=_noop,
                                          requirements=reqs, venv_cache_path=str(cache))
            first = timed(lambda op=op, cache=cache: op._ensure_venv_cache_exists(cache))
            repeat = min(timed(lambda op=op, cache=cache: op._ensure_venv_cache_exists(cache))
                         for _ in range(5))
            rows.append((f"Airflow PythonVirtualenvOperator + venv_cache_path ({method}), first task",
                         f"{first:.2f} s", "installs the strings as given: no resolve to a lock"
                         + (", no bytecode (the first import compiles it)" if method == "uv" else "")))
            rows.append((f"Airflow PythonVirtualenvOperator + venv_cache_path ({method}), repeat task",
                         f"{repeat * 1000:.1f} ms",
                         "cache hit keyed on requirement strings (apache/airflow#41328)"))
        os.environ.pop("AIRFLOW__STANDARD__VENV_INSTALL_METHOD", None)
        if not quick:
            rows += startup_rows(tmp_path)
    return rows


def airflow_env(tmp_path: Path) -> Path:
    """A venv with this machine's Airflow (same versions as the project's), as a user who
    puts Airflow into a task env would have; built with uv from its cache."""
    frozen = run([*uv_command(), "pip", "freeze", "--python", sys.executable]).stdout.splitlines()
    pins = [line for line in frozen if "==" in line and not line.startswith(("-e", "neve"))]
    (tmp_path / "constraints.txt").write_text("\n".join(pins) + "\n")
    wanted = [p for p in pins if p.split("==")[0] in (
        "apache-airflow", "apache-airflow-core", "apache-airflow-task-sdk",
        "apache-airflow-providers-standard")]
    venv = tmp_path / "with-airflow"
    run([*uv_command(), "venv", str(venv), "--python", str(find_interpreter("3.11").path), "--quiet"])
    run([*uv_command(), "pip", "install", "--python", str(venv / "bin" / "python"), "--quiet",
         "--compile-bytecode", "-c", str(tmp_path / "constraints.txt"), *wanted])
    return venv / "bin" / "python"


def startup_rows(tmp_path: Path) -> list[tuple[str, str, str]]:
    """Airflow's external-python task script with a trivial callable, timed end to end."""
    from airflow.providers.standard.utils.python_virtualenv import write_python_script

    def task_script(expect_airflow: bool) -> list[str]:
        folder = tmp_path / f"script-{expect_airflow}"
        folder.mkdir()
        write_python_script(
            jinja_context={"op_args": [], "op_kwargs": {}, "expect_airflow": expect_airflow,
                           "pickling_library": "pickle", "python_callable": "noop",
                           "python_callable_source": "def noop():\n    return 1\n"},
            filename=str(folder / "script.py"),
        )
        (folder / "string_args.txt").write_text("")
        return [str(folder / name) for name in
                ("script.py", "in", "out", "string_args.txt", "termination.log", "ctx.json")]

    taxi = envs.build(["taxi"], project=REPO)[0]
    neve_py = str(taxi.path / "bin" / "python")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    neve_time = best_of(5, [neve_py, *task_script(False)], env)
    with_airflow = str(airflow_env(tmp_path))
    # The full script cannot run here with Airflow importable: it reconnects to the task
    # supervisor and waits for it. Time what it imports before the callable instead (a
    # floor for the real start-up): Airflow's plugins manager and task runner.
    airflow_time = best_of(3, [with_airflow, "-c", "import airflow.plugins_manager, "
                               "airflow.sdk.execution_time.task_runner"], env)
    return [
        ("external-python task start-up: taxi env (neve, no Airflow)", f"{neve_time:.2f} s",
         "Airflow's task script, trivial callable; target under 0.5 s"),
        ("external-python task start-up: env with Airflow 3.3.2 inside", f"{airflow_time:.2f} s",
         "only the imports the same script makes when it finds Airflow (a floor)"),
        ("start-up ratio, Airflow inside / neve env", f"{airflow_time / neve_time:.0f}x", ""),
    ]


def write_section(rows: list[tuple[str, str, str]], quick: bool) -> None:
    path = REPO / "BENCHMARKS.md"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    reqs = "six + tabulate" if quick else "the taxi env's locked set (scikit-learn, pandas, pyarrow, duckdb, ibis, ...)"
    uv_version = run([*uv_command(), "--version"]).stdout.split()[1]
    setup = (
        f"`benchmarks/envs.py{' --quick' if quick else ''}`, {platform.machine()}, "
        f"{os.cpu_count()} cores (load average {os.getloadavg()[0]:.1f} at the end: other jobs "
        f"shared the machine), Python 3.11, uv {uv_version}. Requirements: {reqs}. "
        "Package caches warm for both tools; every build into a new folder. "
        "Airflow's PythonVirtualenvOperator keys its cache on requirement strings, "
        "not resolved versions (apache/airflow#41328)."
    )
    lines = [
        SECTION, "", setup, "",
        "| what | time | note |",
        "|---|---|---|",
        *[f"| {what} | {value} | {note} |" for what, value, note in rows],
        "",
        "Reading it: a repeat costs both neve and Airflow's cache about a millisecond. On a "
        "first build Airflow's cache with uv is faster than `neve env build` because it does "
        "less: it installs the requirement strings as given, with no resolve to a committed "
        "lock and no bytecode, so it is not reproducible and its first task compiles what it "
        "imports; with pip (Airflow's installer when uv is absent) it is slower than neve. "
        "The start-up rows are what every external-python task pays before its callable: "
        "keeping Airflow out of the env is the large saving. The Airflow-inside figure times "
        "only the imports the task script makes (the script itself waits for a task "
        "supervisor outside a real run), so the real cost is higher.",
        "",
    ]
    section = "\n".join(lines)
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.MULTILINE | re.DOTALL)
    text = pattern.sub(section + "\n", text) if pattern.search(text) else text.rstrip() + "\n\n" + section
    path.write_text(text.rstrip() + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    rows = measure(args.quick)
    for row in rows:
        print(" | ".join(row))
    write_section(rows, args.quick)


if __name__ == "__main__":
    main()
