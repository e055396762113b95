"""What ``make demo`` prints after the DAG runs: the tables, the model with its metrics in
units, the promotion decision, the drift verdict for the scored month, the flagship's and
the scikit-learn variant's test-split metrics side by side, sample predictions and the next
commands to try; or, for a failed run, the failed task and its error in one line (and the
drift report when drift was the failure).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from tools.demo.metadata import DAG_ID, VARIANT_DAG_ID, read_xcom, repo_root

__all__ = ["chosen_by", "failure", "metric_lines", "model_comparison", "month_problem", "promotion", "summary"]

MODEL = "trip_duration_estimator"
TABLES = ("TAXI_RAW_2019_01", "TAXI_RAW_2019_02", "TAXI_DATA", "TAXI_SCORE", "TAXI_PRED")
ALIAS = "production"
#: An exception line in a task's log: ``SomeError: message`` (module-qualified or not).
_EXCEPTION_LINE = re.compile(r"^(?:[\w.]+\.)?(\w*(?:Error|Exception|Interrupt)): (.+)$")


def month_problem(root: Path, month: str) -> str | None:
    """``None`` when ``data/nyc_taxi`` has ``month``'s sample, else the one line to print."""
    folder = root / "data" / "nyc_taxi"
    if (folder / f"yellow_tripdata_sample_{month}.csv").is_file():
        return None
    have = sorted(p.stem.rsplit("_", 1)[1] for p in folder.glob("yellow_tripdata_sample_*.csv"))
    return f"no sample for MONTH={month} in {folder}; the repository has {', '.join(have)}"


def metric_lines(metrics: dict[str, float]) -> str:
    """Metrics with their units: the target is a duration in seconds."""
    parts = []
    if "mse" in metrics:
        parts.append(f"MSE {metrics['mse']:,.0f} s²  RMSE {metrics.get('rmse', math.sqrt(metrics['mse'])):,.0f} s")
    if "mae" in metrics:
        parts.append(f"MAE {metrics['mae']:,.0f} s")
    if "r2" in metrics:
        parts.append(f"R² {metrics['r2']:.4f}")
    # The cross-validation scores are the search's, said by chosen_by, not the test split's.
    parts.extend(f"{k} {v:.6g}" for k, v in sorted(metrics.items())
                 if k not in ("mse", "rmse", "mae", "r2") and not k.startswith("cv_"))
    return "  ".join(parts)


def chosen_by(version: Any) -> str | None:
    """How cross-validation chose the version's model, in a line; None when no search did."""
    search = version.search_results()
    if search is None:
        return None
    params = ", ".join(_param(k, v) for k, v in search.best_params_.items())
    if search.refit == "neg_mean_squared_error":
        std = search.cv_results_[f"std_test_{search.refit}"][search.best_index_]
        score = f"CV MSE {-search.best_score_:,.0f} ± {std:,.0f} s²"
    else:
        score = f"CV {search.refit} {search.best_score_:.6g}"
    return (f"chosen by {search.n_splits_}-fold cross-validation among {len(search.cv_results_['params'])} "
            f"candidates: {params} ({score})")


def _param(key: str, value: Any) -> str:
    """A chosen param: a swapped-in step by its class, else ``name=value``."""
    if hasattr(value, "get_params"):
        return type(value).__name__
    name = key.rsplit("__", 1)[-1]
    return f"{name}={value:.4g}" if isinstance(value, float) else f"{name}={value}"


def promotion(db_path: Path, run_id: str, model: Any, version: Any) -> str:
    """What the run's promotion step did: its own words when it ran (``make demo`` approves
    through the DAG param ``auto_approve``), else why ``compare_to_production`` skipped it."""
    promoted = read_xcom(db_path, run_id, "promote_to_production")
    if promoted:
        return str(promoted["message"])
    current = model.aliases.get(ALIAS)
    if current is None:
        return f"{ALIAS} is unset: the promotion did not run"
    if current == version.version_name:
        return f"{version.version_name} is {ALIAS}"
    old, new = model.version(current).metrics.get("mse", math.inf), version.metrics.get("mse", math.inf)
    return f"{ALIAS} stays {current} (MSE {old:,.0f} s², {version.version_name} has {new:,.0f} s²)"


def _same_training_data(model: Any, version: Any) -> str | None:
    """The older version trained on exactly the same data (the lineage fingerprint), if any."""
    mine = (version.lineage().get("training_data") or {}).get("fingerprint")
    if mine is None:
        return None
    for other in reversed(model.versions()):
        if other.version_name != version.version_name and (
            (other.lineage().get("training_data") or {}).get("fingerprint") == mine
        ):
            return other.version_name
    return None


def next_steps(console: Console, url: str, default_url: bool) -> None:
    # `neve` lives in .venv; `uv run` would first sync the venv, so the path is the exact command.
    prefix = "" if default_url else "NEVE_URL=... "
    console.rule("[bold]next steps")
    lines = [
        (f"{prefix}.venv/bin/neve models list", "the models in the registry"),
        (f"{prefix}.venv/bin/neve models show {MODEL} {ALIAS}", "metrics, lineage, pipeline of production"),
        (f"{prefix}.venv/bin/neve models drift {MODEL} TAXI_SCORE --plot .neve/drift.png",
         "drift of the scored month, with a picture"),
        ("make demo MONTH=2020-04", "score the lockdown month: drift fails the run"),
        ("make airflow", "the same DAG in the Airflow UI"),
    ]
    for cmd, what in lines:
        console.print(f"  [dim]# {what}[/]\n  {cmd}", highlight=False, soft_wrap=True)
    if not default_url:
        console.print("  (set NEVE_URL as for make demo)", highlight=False)


def model_comparison(versions: list[Any]) -> Table:
    """The models the demo trained, one row each: metrics on the same 33% test split."""
    table = Table(title="models on the same test split (33% of TAXI_DATA)", title_justify="left")
    for col, justify in (("model", "left"), ("registered as", "left"), ("RMSE s", "right"),
                         ("MAE s", "right"), ("R²", "right")):
        table.add_column(col, justify=justify)
    for mv in versions:
        m = mv.metrics
        rmse = m.get("rmse", math.sqrt(m["mse"]) if "mse" in m else math.nan)
        kind = str(mv.tags.get("model_type") or "?").removesuffix("Regressor")  # all of them regress
        table.add_row(kind, f"{mv.model_name} {mv.version_name}", f"{rmse:,.0f}", f"{m.get('mae', math.nan):,.0f}",
                      f"{m.get('r2', math.nan):.4f}")
    return table


def summary(console: Console, url: str, db_path: Path, run_id: str, elapsed: float,
            variant_run: str | None = None) -> None:
    import neve
    from neve import Registry

    version_ref = read_xcom(db_path, run_id, "train") or {}
    predicted = read_xcom(db_path, run_id, "predict") or {}
    scored = (predicted.get("scored") or {}).get("name", "?")
    with neve.connect(url) as session:
        rows = Table(title="tables", title_justify="left")
        rows.add_column("table")
        rows.add_column("rows", justify="right")
        present = set(session.list_tables())
        for name in TABLES:
            if name in present:
                rows.add_row(name, f"{session.table(name).count().execute():,}")
        console.print(rows)

        model = Registry(session).get_model(version_ref["model"])
        mv = model.version(version_ref["version"])
        console.print(f"[bold]model[/]   {MODEL} [bold]{mv.version_name}[/] (a new version each run)  "
                      f"{metric_lines(mv.metrics)}  [dim]on the 33% test split[/]", highlight=False)
        if chosen := chosen_by(mv):
            console.print(f"        {chosen}", highlight=False)
        if same := _same_training_data(model, mv):
            console.print(f"        same training data as {same} (lineage fingerprint)", highlight=False)
        console.print(f"        {promotion(db_path, run_id, model, mv)}", highlight=False)
        drift = predicted.get("drift") or {}
        verdict = "[green]no drift[/]" if drift.get("ok") else "[bold red]DRIFT[/]"
        console.print(f"[bold]scored[/]  {scored} with {mv.version_name}: {verdict} against the training "
                      f"baseline ({predicted.get('drift_summary')})", highlight=False)
        variant_ref = read_xcom(db_path, variant_run, "train", dag_id=VARIANT_DAG_ID) if variant_run else None
        if variant_ref:
            variant = Registry(session).get_model(variant_ref["model"]).version(variant_ref["version"])
            console.print(model_comparison([mv, variant]))

        pred = session.table("TAXI_PRED")
        sample = pred.order_by("TRIP_ID").limit(5).execute()
        table = Table(title=f"sample predictions ({scored})", title_justify="left")
        for col in ("trip", "pickup", "dropoff", "hour", "miles", "actual s", "predicted s"):
            table.add_column(col, justify="right")
        for r in sample.itertuples():
            table.add_row(
                str(r.TRIP_ID), r.PICKUP_LOCATION_ID, r.DROPOFF_LOCATION_ID, r.HOUR_OF_DAY,
                f"{r.TRIP_DISTANCE:.2f}", f"{r.TRIP_DURATION_SEC:,.0f}", f"{r.PREDICTION:,.0f}",
            )
        console.print(table)
    console.print(f"[green]done[/] in {elapsed:.0f}s; Airflow log: {db_path.parent / 'demo.log'}", highlight=False)
    next_steps(console, url, default_url=_is_default(url))


def _is_default(url: str) -> str:

    return url == f"duckdb://{repo_root() / 'neve.duckdb'}"


def task_error(log_path: Path, task_id: str) -> str | None:
    """The last exception line the Airflow log shows after ``task_id`` is named."""
    try:
        lines = log_path.read_text(errors="replace").splitlines()
    except OSError:
        return None
    found, seen = None, False
    for line in lines:
        seen = seen or task_id in line
        if seen and (m := _EXCEPTION_LINE.match(line.strip())):
            found = f"{m.group(1)}: {m.group(2)}"
    return found


def failure(console: Console, url: str, db_path: Path, run_id: str | None,
            states: dict[str, tuple[str, int]], log_path: Path, dag_id: str = DAG_ID) -> None:

    failed = [t for t, (s, _) in states.items() if s == "failed"]
    skipped = [t for t, (s, _) in states.items() if s == "upstream_failed"]
    if not failed:
        lines = log_path.read_text(errors="replace").splitlines() if log_path.exists() else []
        console.print("[bold red]the DAG run failed before any task ran[/]; last lines of the log:")
        console.print("\n".join(lines[-15:]), markup=False, highlight=False)
        return
    for task in failed:
        error = task_error(log_path, task) or f"see {log_path}"
        console.print(f"[bold red]failed[/] {dag_id}.{task}: {error}", highlight=False)
    if skipped:
        console.print(f"        not run because of it: {', '.join(skipped)}", highlight=False)
    predicted = read_xcom(db_path, run_id, "predict", dag_id=dag_id) if run_id else None
    drift = (predicted or {}).get("drift") or {}
    if drift and not drift.get("ok"):
        _show_drift(console, url, predicted)
    console.print(f"Airflow log: {log_path}", highlight=False)


def _show_drift(console: Console, url: str, predicted: dict[str, Any]) -> None:
    """The drift report as a table, and drawn to ``.neve/drift-<table>.png`` (git-ignored,
    removed by ``make clean``)."""
    import neve
    from neve import Registry

    model, table = predicted["model"], predicted["scored"]["name"]
    target = repo_root() / ".neve" / f"drift-{table}.png"
    with neve.connect(url) as session:
        mv = Registry(session).get_model(model["model"]).version(model["version"])
        report = mv.drift(session.table(table))
    console.print(report.to_rich_table(title=f"{table} vs the training data of {mv.version_name}"))
    console.print(f"picture of the drifted features: {report.plot(target)}", highlight=False)
