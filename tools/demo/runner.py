"""``make demo`` and ``make airflow``: the taxi DAG on embedded DuckDB, no account, no Docker.

``python -m tools.demo``          runs the whole DAG once through Airflow's ``dag.test()``
                                 and prints what it made.
``python -m tools.demo airflow``  starts ``airflow standalone`` with the project's DAGs and
                                 the ``neve_default`` connection, and prints URL and login.

The engine is ``$NEVE_URL`` (default ``duckdb:///./neve.duckdb``). Airflow's home, its
metadata DB and logs live in ``.neve/airflow`` (git-ignored). The connection reaches
Airflow as the ``AIRFLOW_CONN_NEVE_DEFAULT`` environment variable of the processes
started here, so no credential is written to a file, and the DAG's env tasks
(``@task.external_python`` in the ``taxi`` env, without Airflow) inherit it and
open it with ``neve.connect(airflow_conn_id=...)``. Both commands first run
``neve env build`` for the envs the DAGs use.

``make demo`` then runs the scikit-learn variant (``taxi_trip_duration_sklearn``,
HistGradientBoosting on native categories) on the same data, and shows both models'
test-split metrics side by side.

The DAGs run in a child process whose log goes to ``.neve/airflow/demo.log``; this
process shows progress by reading task states from the metadata DB (plain sqlite3,
so it does not pay for importing Airflow).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from tools.demo.metadata import DAG_ID, VARIANT_DAG_ID, last_run, repo_root, task_states

__all__ = ["airflow_env", "main", "repo_root"]

CONN_ID = "neve_default"
#: The envs the taxi DAG's train and predict run in; ``make airflow`` also shows the
#: task-environments example, which needs ``legacy`` (Python 3.10) too.
DEMO_ENVS = ("taxi",)
#: The month ``make demo`` scores by default: not one the model trains on, so the drift
#: verdict and the predictions say something. ``MONTH=2020-04`` (the lockdown) drifts.
HELD_OUT_MONTH = "2019-03"
STANDALONE_ENVS = ("taxi", "legacy")
STATE_STYLE = {
    "success": "green",
    "failed": "bold red",
    "upstream_failed": "red",
    "running": "yellow",
    "up_for_retry": "magenta",
    "queued": "cyan",
    "scheduled": "cyan",
}

console = Console()


def engine_url(url: str | None) -> str:
    """``url`` (default ``$NEVE_URL``) with a relative DuckDB path made absolute, so every
    Airflow process finds the same file whatever its working directory."""
    from neve.engine import driver_for

    driver = driver_for(url)
    location = driver.location
    if driver.name != "duckdb" or location is None:
        return url or os.environ.get("NEVE_URL") or "duckdb:///./neve.duckdb"
    query = "&".join(f"{k}={v}" for k, v in driver.url.query.items())
    return f"duckdb://{location}" + (f"?{query}" if query else "")


def airflow_env(home: Path, url: str, dags_folder: Path, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for Airflow processes: home, SQLite metadata DB, the DAGs folder and
    ``neve_default`` pointing at ``url``. Must be set before Airflow is imported."""
    env = dict(os.environ if base is None else base)
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(dags_folder),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}",
        AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="False",
        AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK="False",
    )
    env[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = json.dumps({"conn_type": "neve", "extra": {"url": url}})
    env.setdefault("NEVE_CONN_ID", CONN_ID)
    # `airflow standalone` starts its components as `airflow ...` from PATH: make it this
    # interpreter's, even when the venv is not activated.
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in env.get("PATH", "").split(os.pathsep):
        env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    return env


# -- the DAG run (child process) -----------------------------------------------------------------


def _run_dag_child() -> int:
    """Runs inside the child: set up the metadata DB, then one ``dag.test()``."""
    from airflow.dag_processing.dagbag import BundleDagBag
    from airflow.utils import db

    db.initdb()
    # As Airflow's DAG processor parses a bundle: its folder on sys.path, where the taxi DAGs
    # import their shared tasks from (taxi_tasks.py); a plain DagBag leaves it off.
    folder = os.environ["AIRFLOW__CORE__DAGS_FOLDER"]
    bag = BundleDagBag(folder, bundle_path=Path(folder))
    missing = [d for d in (DAG_ID, VARIANT_DAG_ID) if d not in bag.dags]
    if missing:
        print(f"DAG(s) {', '.join(missing)} did not load: {bag.import_errors}", file=sys.stderr)
        return 2
    conf = json.loads(os.environ.get("NEVE_DEMO_RUN_CONF") or "{}")
    if not _succeeded(bag.dags[DAG_ID].test(run_conf=conf)):
        return 1
    # The variant has no promotion step: only the month to score is its param.
    variant = bag.dags[VARIANT_DAG_ID].test(run_conf={k: v for k, v in conf.items() if k == "score_month"})
    return 0 if _succeeded(variant) else 1


def _succeeded(run: Any) -> bool:
    return str(run.state) in ("success", "DagRunState.SUCCESS")


def _progress(states: dict[str, tuple[str, int]], phase: str, elapsed: float, dag_id: str = DAG_ID) -> Table:
    table = Table(title=f"{dag_id}: {phase} ({elapsed:.0f}s)", title_justify="left", expand=False)
    table.add_column("task")
    table.add_column("state")
    table.add_column("try", justify="right")
    for task, (state, tries) in sorted(states.items(), key=lambda kv: _ORDER.get(kv[0], 99)):
        table.add_row(task, f"[{STATE_STYLE.get(state, 'white')}]{state}[/]", str(tries or ""))
    return table


_ORDER = {
    t: i
    for i, t in enumerate(
        ["setup_registry", "load.load_2019_01", "load.load_2019_02", "transform",
         "feature_engineering", "train", "register_model", "score_data", "predict", "drift_gate"]
    )
}


def build_envs(root: Path, names: Sequence[str]) -> bool:
    """``neve env build NAMES`` with its progress display: the DAGs' env tasks need them.
    A no-op in well under a second when nothing changed; minutes only on a cold uv cache."""
    from neve import cli

    console.print(f"envs     {', '.join(names)} (neve env build: reused unless changed)")
    if cli.main(["env", "build", "--project", str(root), *names]) != 0:
        console.print(f"[bold red]building the task envs failed[/]; run `neve env build {' '.join(names)}`")
        return False
    return True


def run_demo(url: str | None, month: str = HELD_OUT_MONTH) -> int:
    root = repo_root()
    home = root / ".neve" / "airflow"
    home.mkdir(parents=True, exist_ok=True)
    url = engine_url(url)
    from tools.demo.checks import check_engine, check_env_reaches_engine
    from tools.demo.report import month_problem

    console.rule("[bold]neve demo: NYC taxi trip duration on Airflow")
    problem = month_problem(root, month) or check_engine(url)
    if problem:
        console.print(f"[bold red]error:[/] {problem}", highlight=False)
        return 2
    console.print(f"engine   {_redacted(url)}", highlight=False)
    console.print(f"data     trains on 2019-01 and 2019-02, scores {month} (MONTH=YYYY-MM to change)")
    if not build_envs(root, DEMO_ENVS):
        return 1
    for env in DEMO_ENVS:
        if problem := check_env_reaches_engine(root, env, url):
            console.print(f"[bold red]error:[/] {problem}", highlight=False)
            return 2
    console.print(f"airflow  {home} (dag.test, metadata in SQLite)")
    log_path = home / "demo.log"
    env = airflow_env(home, url, root / "dags")
    env["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "WARNING"
    # Unattended: the promotion is approved by the DAG param, and the summary says so.
    env["NEVE_DEMO_RUN_CONF"] = json.dumps({"score_month": month, "auto_approve": True})
    started, before = time.monotonic(), last_run(home / "airflow.db")
    with log_path.open("w") as log:
        # Its own session: Ctrl-C reaches this process only, which then stops the run cleanly.
        child = subprocess.Popen(
            [sys.executable, "-m", "tools.demo", "_run"], env=env, cwd=root, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        run_id, states, dag_id = None, {}, DAG_ID
        try:
            with Live(_progress({}, "starting Airflow", 0), console=console, refresh_per_second=4) as live:
                while child.poll() is None:
                    run_id, states, dag_id = _latest(home / "airflow.db", before)
                    phase = "running" if states else "starting Airflow (first run sets up its metadata DB)"
                    live.update(_progress(states, phase, time.monotonic() - started, dag_id))
                    time.sleep(0.5)
                run_id, states, dag_id = _latest(home / "airflow.db", before)
                live.update(_progress(states, "finished", time.monotonic() - started, dag_id))
        except KeyboardInterrupt:
            console.print("[yellow]Ctrl-C: stopping the DAG run ...[/]")
            stop(child)
            console.print(f"stopped. Tables the run was writing may be partial; `make demo` starts over. "
                          f"Airflow log: {log_path}", highlight=False)
            return 130
    console.print()
    from tools.demo.report import failure, summary

    if child.returncode != 0 or run_id is None:
        failure(console, url, home / "airflow.db", run_id, states, log_path, dag_id)
        return 1
    flagship_run, _ = task_states(home / "airflow.db", before, DAG_ID)
    summary(console, url, home / "airflow.db", flagship_run, time.monotonic() - started, variant_run=run_id)
    return 0


def _latest(db_path: Path, before: int) -> tuple[str | None, dict[str, tuple[str, int]], str]:
    """The run to show: the variant's once it has started, else the flagship's."""
    run_id, states = task_states(db_path, before, VARIANT_DAG_ID)
    if states:
        return run_id, states, VARIANT_DAG_ID
    run_id, states = task_states(db_path, before, DAG_ID)
    return run_id, states, DAG_ID


# -- airflow standalone -------------------------------------------------------------------------


def _free_port(preferred: int = 0) -> int:
    """``preferred`` if it is free on loopback, else (or for 0) any free port."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", preferred))
        except OSError:
            s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def standalone_env(home: Path, url: str, dags_folder: Path, port: int) -> dict[str, str]:
    """``airflow standalone`` with the API on loopback ``port``, the worker and triggerer log
    servers on free ports (the defaults, 8793 and 8794, collide with any other Airflow on
    the machine), and the execution API URL moved along with the API port."""
    env = airflow_env(home, url, dags_folder)
    env.update(
        AIRFLOW__API__HOST="127.0.0.1",
        AIRFLOW__API__PORT=str(port),
        AIRFLOW__API__BASE_URL=f"http://127.0.0.1:{port}",
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://127.0.0.1:{port}/execution/",
        AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(_free_port(8793)),
        AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT=str(_free_port(8794)),
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="admin:admin",
    )
    # The LocalExecutor starts `parallelism` worker processes (default 32): size them to the
    # machine, as each task is a process that imports Airflow (and DuckDB admits one writer).
    env.setdefault("AIRFLOW__CORE__PARALLELISM", str(executor_parallelism()))
    return env


def executor_parallelism(cpus: int | None = None) -> int:
    """Worker processes for ``make airflow``: two per core, at least 2 and at most 16."""
    return max(2, min(16, 2 * (cpus or os.cpu_count() or 1)))


def wait_healthy(port: int, proc: subprocess.Popen[Any], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=2) as r:
                health = json.load(r)
            if all(
                (health.get(part) or {}).get("status") == "healthy"
                for part in ("metadatabase", "scheduler")
            ):
                return True
        except (OSError, ValueError):
            pass
        time.sleep(1)
    return False


def api(port: int, path: str, token: str | None = None, body: dict[str, Any] | None = None) -> Any:
    """One JSON call to the local Airflow API (POST when ``body`` is given)."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})},
        method="GET" if body is None else "POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def wait_for_dag(port: int, token: str, proc: subprocess.Popen[Any], timeout: float) -> bool:
    """Wait until the DAG processor has parsed the DAG, so it can be triggered."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            api(port, f"/api/v2/dags/{DAG_ID}", token)
            return True
        except (OSError, ValueError):
            time.sleep(1)
    return False


def admin_password(home: Path) -> str | None:
    path = home / "simple_auth_manager_passwords.json.generated"
    try:
        return json.loads(path.read_text()).get("admin")
    except (OSError, ValueError):
        return None


def run_standalone(url: str | None, port: int) -> int:
    root = repo_root()
    home = root / ".neve" / "airflow"
    home.mkdir(parents=True, exist_ok=True)
    url = engine_url(url)
    port = _free_port(port)
    if not build_envs(root, STANDALONE_ENVS):
        return 1
    env = standalone_env(home, url, root / "dags", port)
    log_path = home / "standalone.log"
    console.print(f"starting airflow standalone (log: {log_path}); it takes about a minute")
    with log_path.open("a") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "airflow", "standalone"], env=env, cwd=root,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            with console.status("waiting for the API server, the scheduler and the DAG"):
                healthy = wait_healthy(port, proc, timeout=300)
                if not healthy:
                    console.print(f"[bold red]airflow standalone did not become healthy[/]; see {log_path}")
                    return 1
                password = admin_password(home)
                token = api(port, "/auth/token", body={"username": "admin", "password": password})["access_token"]
                if not wait_for_dag(port, token, proc, timeout=300):
                    console.print(f"[bold red]{DAG_ID} did not load[/]; see {log_path}")
                    return 1
            console.rule("[bold green]Airflow is up")
            console.print(f"URL       http://127.0.0.1:{port}")
            console.print(f"login     admin / {password}")
            console.print(f"DAG       {DAG_ID} (trigger it from the UI or the REST API)")
            console.print(f"models    http://127.0.0.1:{port}/plugin/neve-models (Browse > Models)")
            console.print(f"engine    {CONN_ID} -> {_redacted(url)}")
            console.print(f"executor  {env['AIRFLOW__CORE__PARALLELISM']} worker processes "
                          f"({os.cpu_count()} cores); log {log_path}")
            console.print("[bold]stop it with Ctrl-C[/] (here; it stops the scheduler, the API server and "
                          "every worker)")
            proc.wait()
        except KeyboardInterrupt:
            console.print("Ctrl-C: stopping Airflow ...")
        finally:
            stop(proc)
    console.print("Airflow stopped.")
    return 0


def stop(proc: subprocess.Popen[Any], timeout: float = 30) -> None:
    """Stop standalone and everything it started (its own process group), waiting until
    no live process of the group is left: scheduler, API server and executor workers."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    for sig in (signal.SIGKILL, None):
        deadline = time.monotonic() + timeout
        while group_members(proc.pid) and time.monotonic() < deadline:
            proc.poll()  # reap the leader so it does not count as alive
            time.sleep(0.2)
        if not group_members(proc.pid) or sig is None:
            break
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
    proc.wait()


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of process group ``pgid``, read from /proc."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        state, group = fields[0], int(fields[2])
        if group == pgid and state != "Z":
            members.append(int(stat.parent.name))
    return members


def _redacted(url: str) -> str:
    from neve.engine import driver_for

    return driver_for(url).url.redacted()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.demo", description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs="?", default="demo", choices=["demo", "airflow", "_run"])
    parser.add_argument("--url", default=None, help="engine URL (default: $NEVE_URL, else duckdb:///./neve.duckdb)")
    parser.add_argument("--month", default=os.environ.get("MONTH") or HELD_OUT_MONTH,
                        help=f"the month to score (default {HELD_OUT_MONTH}, held out from training)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("NEVE_AIRFLOW_PORT", 8080)))
    args = parser.parse_args(argv)
    if args.command == "_run":
        return _run_dag_child()
    if args.command == "airflow":
        return run_standalone(args.url, args.port)
    return run_demo(args.url, args.month)


if __name__ == "__main__":
    sys.exit(main())
