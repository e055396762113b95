"""Ridge and LogisticRegression: neve's fit from statistics beside scikit-learn's solvers.

    uv run --no-sync python benchmarks/fit_solvers.py              # 1M rows
    uv run --no-sync python benchmarks/fit_solvers.py --quick      # 20k rows (make bench-quick)

The taxi pipeline of benchmarks/fit_taxi.py (one-hot on pickup zone, dropoff zone and
hour, MaxAbs on distance) ending in Ridge, a binary LogisticRegression (trips longer
than 15 minutes) and a multinomial one (under 10, 10-20, over 20 minutes), on the
same replicated taxi rows. Each model is fitted three ways:

* neve: the Pipeline ending in ``neve.linear_model.<Model>``, fitted on the DuckDB
  table (Ridge: one query; logistic: one query per Newton step, plus one for the classes);
* scikit-learn with its default solver, on the sparse one-hot matrix;
* scikit-learn with its exact solver (logistic ``newton-cholesky`` at ``tol=1e-10``), the
  reference optimum. scikit-learn's Ridge ``cholesky`` refuses sparse X with an intercept,
  so the Ridge reference is its formula on the sparse matrix (:class:`SparseCholeskyRidge`).

Distance is the largest absolute coefficient difference from the exact solver's fit.
scikit-learn's times include the extract (Arrow fetch + ``to_pandas``), measured once
and added to each.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import _common as C
from benchmarks.fit_taxi import CATEGORICAL, NUMERIC, TARGET, generate, neve_pipeline, sklearn_pipeline

TITLE = "Ridge and LogisticRegression solvers"
LONG, CLASS = "LONG_TRIP", "TRIP_CLASS"


def long_trip(seconds: Any) -> Any:
    return (seconds > 900).astype("int64")


def trip_class(seconds: Any) -> Any:
    return (seconds >= 600).astype("int64") + (seconds >= 1200).astype("int64")


def flat(model: Any, names: Any) -> dict[str, float]:
    """Coefficients and intercepts by name (``class:feature`` for a multinomial model)."""
    coef = model.coef_.reshape(-1, len(names))
    intercept = [model.intercept_] if coef.shape[0] == 1 and model.coef_.ndim == 1 else list(model.intercept_)
    out = {}
    for k, (row, b) in enumerate(zip(coef, intercept, strict=True)):
        out.update({f"{k}:{n}": float(c) for n, c in zip(names, row, strict=True)})
        out[f"{k}:intercept"] = float(b)
    return out


def distance(a: dict[str, float], exact: dict[str, float]) -> float:
    assert a.keys() == exact.keys(), sorted(set(a) ^ set(exact))[:5]
    return max(abs(a[k] - exact[k]) for k in exact)


class SparseCholeskyRidge:
    """scikit-learn's ``Ridge(solver="cholesky")`` for sparse X with an intercept, which
    scikit-learn refuses (and a dense 1M x 424 float64 matrix is 3.4 GB): the same centred
    normal equations, ``(XᵀX - n·x̄x̄ᵀ + αI) β = Xᵀy - n·x̄ȳ``, solved by Cholesky."""

    solver = "cholesky"

    def __init__(self, alpha: float) -> None:
        self.alpha = alpha

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {"alpha": self.alpha}

    def fit(self, X: Any, y: Any) -> SparseCholeskyRidge:
        import numpy as np
        import scipy.linalg

        y = np.asarray(y, dtype=float)
        n = X.shape[0]
        mean_x, mean_y = np.asarray(X.mean(axis=0)).ravel(), y.mean()
        gram = (X.T @ X).toarray() - n * np.outer(mean_x, mean_x) + self.alpha * np.eye(X.shape[1])
        self.coef_ = scipy.linalg.solve(gram, X.T @ y - n * mean_x * mean_y, assume_a="pos")
        self.intercept_ = float(mean_y - mean_x @ self.coef_)
        return self


def cases() -> list[tuple[str, str, Any, Any, Any, Any]]:
    """(row name, label column, label rule, neve estimator, sklearn default, sklearn exact)."""
    from sklearn import linear_model as skl

    from neve.linear_model import LogisticRegression, Ridge

    return [
        ("Ridge (alpha=1)", TARGET, None, Ridge(alpha=1.0, label_cols=TARGET),
         skl.Ridge(alpha=1.0), SparseCholeskyRidge(alpha=1.0)),
        ("LogisticRegression, binary (C=1)", LONG, long_trip, LogisticRegression(label_cols=LONG),
         skl.LogisticRegression(), skl.LogisticRegression(solver="newton-cholesky", tol=1e-10, max_iter=1000)),
        ("LogisticRegression, 3 classes (C=1)", CLASS, trip_class, LogisticRegression(label_cols=CLASS),
         skl.LogisticRegression(), skl.LogisticRegression(solver="newton-cholesky", tol=1e-10, max_iter=1000)),
    ]


def run(rows: int, keep: int, log=print) -> tuple[list[list[str]], float]:
    from sklearn.exceptions import ConvergenceWarning

    import neve

    session = neve.connect("duckdb://")
    con = session.engine.con
    generate(con, rows)
    features = ", ".join([*CATEGORICAL, NUMERIC])
    # One view per label, holding the features and that label only (the estimators' inputs
    # are every other column).
    con.execute(f"CREATE VIEW TRIPS_{LONG} AS SELECT {features}, ({TARGET} > 900)::BIGINT AS {LONG} FROM TRIPS")
    con.execute(f"CREATE VIEW TRIPS_{CLASS} AS SELECT {features}, "
                f"({TARGET} >= 600)::BIGINT + ({TARGET} >= 1200)::BIGINT AS {CLASS} FROM TRIPS")
    start = time.perf_counter()
    frame = con.execute(f"SELECT {', '.join([*CATEGORICAL, NUMERIC, TARGET])} FROM TRIPS").to_arrow_table().to_pandas()
    extract = time.perf_counter() - start
    X = frame[[*CATEGORICAL, NUMERIC]]
    body = []
    for name, label_col, rule, ours, default, exact in cases()[:keep]:
        y = frame[TARGET] if rule is None else rule(frame[TARGET])
        fitted = {}
        for side, estimator in (("exact", exact), ("default", default)):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", ConvergenceWarning)
                t0 = time.perf_counter()
                pipe = sklearn_pipeline(estimator).fit(X, y)
                seconds = time.perf_counter() - t0 + extract
            converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
            fitted[side] = (seconds, flat(pipe[-1], pipe[0].get_feature_names_out()), converged, pipe[-1])
        t0 = time.perf_counter()
        with neve.capture_queries() as queries:
            pipe = neve_pipeline(ours).fit(session.table("TRIPS" if rule is None else f"TRIPS_{label_col}"))
        seconds = time.perf_counter() - t0
        model = pipe.steps[-1][1]
        mine = flat(model, model.feature_names_in_)
        reference = fitted["exact"][1]
        d_seconds, d_coef, d_converged, d_model = fitted["default"]
        e_seconds = fitted["exact"][0]
        solver = getattr(d_model, "solver_", None) or getattr(d_model, "solver", "?")
        body.append([
            name,
            f"{C.fmt_seconds(seconds)} ({len(queries)} queries, {queries.bytes_fetched / 2**20:.1f} MiB)",
            f"{distance(mine, reference):.1e}",
            f"{C.fmt_seconds(d_seconds)} (`{solver}`{'' if d_converged else ', not converged'})",
            f"{distance(d_coef, reference):.1e}",
            C.fmt_seconds(e_seconds),
            C.fmt_ratio(d_seconds / seconds),
            C.fmt_ratio(e_seconds / seconds),
        ])
        log(f"[fit_solvers] {body[-1]}")
    session.close()
    return body, extract


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="20k rows, no multinomial model (make bench-quick)")
    parser.add_argument("--output", type=Path, default=C.BENCHMARKS_MD)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    rows = 20_000 if args.quick else args.rows
    load = os.getloadavg()[0]
    body, extract = run(rows, 2 if args.quick else 3)
    command = "python benchmarks/fit_solvers.py" + (" --quick" if args.quick else "")
    text = "\n".join([
        C.run_header(["neve", "duckdb", "scikit-learn", "pandas"], command), "",
        f"{rows:,} replicated taxi rows (see Taxi pipeline fit); pipeline: one-hot on pickup zone, dropoff "
        "zone and hour, MaxAbs on distance, then the model. *Distance*: max |Δ| over coefficients and "
        "intercepts from the exact solution (Ridge: scikit-learn's `cholesky` formula, the centred normal "
        "equations, on the sparse matrix, since scikit-learn's own refuses sparse X with an intercept; logistic: "
        "scikit-learn's `newton-cholesky` at `tol=1e-10`). scikit-learn's times include the extract "
        f"({C.fmt_seconds(extract)}: Arrow fetch + `to_pandas`); neve's fit runs in DuckDB on the table, "
        "with the queries and bytes `neve.capture_queries` saw. Ratios: scikit-learn time / neve time.\n",
        C.markdown_table(["model", "neve", "neve distance", "scikit-learn default", "default distance",
                          "scikit-learn exact", "default / neve", "exact / neve"], body),
        f"\nMethod. `benchmarks/fit_solvers.py` ({' '.join(argv) or 'defaults'}); one run of each fit, "
        f"in one process, on an in-memory DuckDB. Load average when it started: {load:.1f}.\n",
    ])
    C.publish(TITLE, text, dry_run=args.no_write, path=args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
