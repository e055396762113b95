"""Planted bugs, one at a time: does the test-suite catch each of them?

``make mutate`` copies the tracked sources into a scratch folder, plants one bug there
(a literal text substitution that must match exactly once), runs the test files that
guard that code, and reports the mutant *caught* when they fail and *survived* when they
pass. The checkout is never modified. Each bug here is one a careless edit could make and
a user would notice: a wrong statistic, a skipped check, a leaked secret.

    python tools/mutate.py              # every mutant
    python tools/mutate.py psi tree     # the mutants whose id contains one of these words
    python tools/mutate.py --list

Exit status: 0 when every mutant was caught, 1 when one survived, 2 when a mutant no
longer applies (its code moved: update its ``old`` text; tests/test_mutants.py checks that).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutant:
    id: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]
    # Engines the guarding tests must run on: some bugs only show on a server engine.
    engines: str = "duckdb"
    extra: dict[str, str] = field(default_factory=dict)


MUTANTS: tuple[Mutant, ...] = (
    Mutant(
        "scaler-sample-variance",
        "src/neve/preprocessing/_scalers.py",
        '{c: _nonnegative(_float(s["sq"][c]) - _float(s["mean"][c]) ** 2) for c in cols}',
        '{c: _nonnegative(_float(s["sq"][c]) - _float(s["mean"][c]) ** 2) * s["n"][c] / max(s["n"][c] - 1, 1)'
        " for c in cols}",
        ("tests/preprocessing/test_scalers.py",),
    ),
    Mutant(
        "maxabs-ignores-negatives",
        "src/neve/preprocessing/_scalers.py",
        'self.max_abs_ = {c: max(abs(_float(s["min"][c])), abs(_float(s["max"][c]))) for c in cols}',
        'self.max_abs_ = {c: abs(_float(s["max"][c])) for c in cols}',
        ("tests/preprocessing/test_scalers.py",),
    ),
    Mutant(
        "tree-split-strict",
        "src/neve/scoring/_trees.py",
        'parts.append(f"CASE WHEN {col} <= {literal(t)} THEN ")',
        'parts.append(f"CASE WHEN {col} < {literal(t)} THEN ")',
        ("tests/scoring/test_compile.py",),
    ),
    Mutant(
        "linear-intercept-dropped",
        "src/neve/scoring/_linear.py",
        "return total([double(intercept), *[t for t in terms if t is not None]])",
        "return total([*[t for t in terms if t is not None]])",
        ("tests/scoring/test_compile.py", "tests/scoring/test_fuse.py"),
    ),
    Mutant(
        "proba-columns-swapped",
        "src/neve/scoring/_compile.py",
        'return [f"{base}_{c.item() if isinstance(c, np.generic) else c}" for c in model.classes_]',
        'return [f"{base}_{c.item() if isinstance(c, np.generic) else c}" for c in model.classes_[::-1]]',
        ("tests/registry/test_run.py",),
    ),
    Mutant(
        "psi-off-by-10x",
        "src/neve/monitoring/_drift.py",
        "total += (a - e) * math.log(a / e)",
        "total += (a - e) * math.log(a / e) / 10",
        ("tests/monitoring/test_drift.py", "tests/registry/test_drift.py"),
    ),
    Mutant(
        "drift-threshold-inclusive-reversed",
        "src/neve/monitoring/_drift.py",
        "if t.psi is not None and f.psi > t.psi:",
        "if t.psi is not None and f.psi > 10 * t.psi:",
        ("tests/monitoring/test_drift.py", "tests/registry/test_drift.py"),
    ),
    Mutant(
        "psi-one-sided-kl",
        "src/neve/monitoring/_drift.py",
        "total += (a - e) * math.log(a / e)",
        "total += a * math.log(a / e)",
        ("tests/monitoring/test_drift.py",),
    ),
    Mutant(
        "categorical-null-change-not-relative",
        "src/neve/monitoring/_drift.py",
        '(n - count) / n - profile["null_fraction"], unseen, labels, expected, actual,',
        "(n - count) / n, unseen, labels, expected, actual,",
        ("tests/monitoring/test_drift.py",),
    ),
    Mutant(
        "unseen-share-counts-nulls",
        "src/neve/monitoring/_drift.py",
        "unseen = unseen_rows / count if count else 0.0",
        "unseen = unseen_rows / n if count else 0.0",
        ("tests/monitoring/test_drift.py",),
    ),
    Mutant(
        "baseline-population-std",
        "src/neve/monitoring/_baseline.py",
        'f"{key}_std": col.std(how="sample"),',
        'f"{key}_std": col.std(how="pop"),',
        ("tests/monitoring/test_baseline.py",),
    ),
    Mutant(
        "manifest-hash-unchecked",
        "src/neve/registry/_package.py",
        "    if sha256(raw) != expected_sha:",
        "    if False:",
        ("tests/registry/test_stage.py", "tests/registry/test_registry.py"),
    ),
    Mutant(
        "file-hash-unchecked",
        "src/neve/registry/_package.py",
        "    if sha256(data) != expected:",
        "    if False:",
        ("tests/registry/test_stage.py", "tests/registry/test_registry.py"),
    ),
    Mutant(
        "version-number-retry-dropped",
        "src/neve/registry/_registry.py",
        "                    _backoff(attempt)\n        raise NeveInputError(f\"could not allocate",
        "                    raise\n        raise NeveInputError(f\"could not allocate",
        ("tests/registry/test_concurrency_postgres.py",),
        engines="duckdb,postgres",
    ),
    Mutant(
        "env-hash-ignores-lock",
        "src/neve/envs/_lock.py",
        "for part in (_HASH_FORMAT, interp.tag, lock_body(lock_text)):",
        "for part in (_HASH_FORMAT, interp.tag):",
        ("tests/envs/test_build.py", "tests/envs/test_project.py"),
    ),
    Mutant(
        "mse-not-squared",
        "src/neve/metrics.py",
        "row = _regression(table, y_true, y_pred, v=lambda t, e: (e * e).mean())",
        "row = _regression(table, y_true, y_pred, v=lambda t, e: e.abs().mean())",
        ("tests/test_metrics.py",),
    ),
    Mutant(
        "r2-constant-target",
        "src/neve/metrics.py",
        "    return 1.0 - res / tot",
        "    return 1.0 - res / (tot + 1e-9 * res)",
        ("tests/test_metrics.py",),
    ),
    Mutant(
        "url-password-shown",
        "src/neve/engine/_url.py",
        'auth += f":{MASK}"',
        'auth += f":{self.password}"',
        ("tests/engine/test_url.py", "tests/engine/test_session.py"),
    ),
    Mutant(
        "postgres-error-unscrubbed",
        "src/neve/engine/_dbapi.py",
        "reason = (url.scrub(str(exc)).strip().splitlines() or [type(exc).__name__])[0]",
        "reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]",
        ("tests/engine/test_secrets.py",),
        engines="duckdb,postgres",
    ),
    Mutant(
        "skops-trusts-any-sklearn-name",
        "src/neve/registry/_trust.py",
        "if name in beyond_default and (module, cls) not in ALLOWED | ALLOWED_FUNCTIONS and name not in trusted:",
        "if name in beyond_default and not module.startswith(\"sklearn.\") and name not in trusted:",
        ("tests/registry/test_trust.py",),
    ),
    Mutant(
        "fallback-empty-result-loses-outputs",
        "src/neve/scoring/_fallback.py",
        "empty = extract.select(*kept, *outputs).limit(0)",
        "empty = extract.select(*kept).limit(0)",
        ("tests/scoring/test_fallback.py",),
    ),
)


def applies(mutant: Mutant, root: Path = REPO) -> bool:
    return (root / mutant.path).read_text().count(mutant.old) == 1


def _scratch_copy(dest: Path) -> None:
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    for name in filter(None, files.decode().split("\0")):
        src = REPO / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)


def run(mutant: Mutant, scratch: Path) -> tuple[bool, float]:
    """Plant ``mutant`` in ``scratch``, run its tests; True when they fail (caught)."""
    target = scratch / mutant.path
    original = target.read_text()
    target.write_text(original.replace(mutant.old, mutant.new, 1))
    # The scratch copy's src/ comes before the editable install of the checkout.
    # Without CI mode (tests/_skips.py): the narrowed engines skip tests on purpose here, and a skip
    # turned failure would count as a catch.
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env.update(PYTHONPATH=str(scratch / "src"), NEVE_TEST_ENGINES=mutant.engines, **mutant.extra)
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "--no-header", *mutant.tests],
            cwd=scratch, env=env, capture_output=True, text=True,
        )
    finally:
        target.write_text(original)
    return proc.returncode != 0, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("only", nargs="*", help="run the mutants whose id contains one of these words")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    args = parser.parse_args(argv)
    chosen = [m for m in MUTANTS if not args.only or any(w in m.id for w in args.only)]
    if args.list:
        for m in chosen:
            print(f"{m.id:36} {m.path}")
        return 0
    stale = [m.id for m in chosen if not applies(m)]
    if stale:
        print(f"mutants whose code moved (update their `old` text): {', '.join(stale)}")
        return 2
    caught = 0
    with tempfile.TemporaryDirectory(prefix="neve-mutate-") as tmp:
        scratch = Path(tmp)
        _scratch_copy(scratch)
        for i, mutant in enumerate(chosen, 1):
            hit, seconds = run(mutant, scratch)
            caught += hit
            verdict = "caught" if hit else "SURVIVED"
            print(f"[{i:2}/{len(chosen)}] {verdict:8} {mutant.id:36} {seconds:5.1f} s  ({', '.join(mutant.tests)})",
                  flush=True)
    print(f"\ncatch rate: {caught}/{len(chosen)} ({100 * caught / max(len(chosen), 1):.0f}%)")
    return 0 if caught == len(chosen) else 1


if __name__ == "__main__":
    sys.exit(main())
