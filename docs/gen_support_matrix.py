"""Generate docs/support-matrix.md from the test-suite: what each engine is proven to run.

The matrix is not written by hand. The script collects the tests (``pytest
--collect-only``, in this process, with a small plugin) and reads, per test,
the engines it runs on:

- a test taking the ``engine`` fixture runs on every engine of the suite
  (``tests.conftest.ALL_ENGINES``) or on those its ``@pytest.mark.engines(...)``
  marker names -- the marker is a declared gap, and its ``reason`` is printed;
- a test using the ``emulator`` fixture runs Snowflake SQL on fakesnow (a
  strict ``xfail`` there is a declared emulator gap, with its reason);
- a test without that fixture runs on the engines its marker names; without
  a marker it is DuckDB-only when it or its fixtures open DuckDB themselves
  (a ``duckdb://`` URL, say), and engine-independent otherwise (input
  validation, pandas inputs): those are counted apart.

Engines come from the markers, not from which servers this machine has, so
the output is the same everywhere. A test covers a transformer or a model when
it names the class (in its source or its parameters), a linear model likewise under
``tests/linear_model``; registry and monitoring
features are the test modules of ``tests/registry`` and ``tests/monitoring``.

    python docs/gen_support_matrix.py          # rewrite docs/support-matrix.md
    python docs/gen_support_matrix.py --check  # exit 1 if the file is out of date
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import difflib
import inspect
import io
import re
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUTPUT = REPO / "docs" / "support-matrix.md"
ENGINE_TITLES = {
    "duckdb": "DuckDB",
    "postgres": "PostgreSQL",
    "spark": "Spark (local)",
    "snowflake": "Snowflake (emulator)",
}
#: Engines that have a column even before their tests join the suite.
COLUMNS = ("duckdb", "postgres", "spark", "snowflake")
SNOWFLAKE_PENDING = "see [snowflake.md](snowflake.md)"
EMULATOR_FIXTURE = "emulator"
SNOWFLAKE_TESTS = "tests/engine/test_snowflake_sql.py"
STAGE_TESTS = "tests/engine/test_snowflake_stage.py"
DAG_ON_EMULATOR = "tests/airflow/test_taxi_on_snowflake.py"
TRAINING_ON_EMULATOR = "tests/linear_model/test_snowflake_emulator.py"
COLLECT = [
    "tests/preprocessing",
    "tests/pipeline/test_pipeline.py",
    "tests/linear_model",
    "tests/scoring",
    "tests/test_metrics.py",
    "tests/registry",
    "tests/monitoring",
    SNOWFLAKE_TESTS,
    STAGE_TESTS,
]
#: Registry test modules that prove one feature together; others are titled by their docstring.
REGISTRY_TITLES = {
    "test_registry": "Log, load, metrics, tags, aliases, browsing",
    "test_stage": "Verified stage: manifest, tamper detection, crash safety, gc",
    "test_run": "`ModelVersion.run`: logged pipeline and model scored in the engine",
    "test_drift": "Drift against the logged baseline",
    "test_cli": "`neve models` / `neve registry` CLI",
    "test_concurrency": "Concurrent writers (real processes)",
    "test_concurrency_postgres": "Concurrent writers (real processes)",
}


@dataclass(frozen=True)
class Test:
    module: str  # path relative to the repo
    name: str  # function name plus its non-engine parameters
    text: str  # source and parameters, searched for class names
    engines: tuple[str, ...]  # empty: engine-independent
    reason: str | None  # the marker's reason, when the test declares a gap
    xfail: bool = False  # expected to fail on its engine (an emulator gap)


class _Collector:
    def __init__(self) -> None:
        self.items: list = []

    def pytest_collection_finish(self, session) -> None:
        self.items = list(session.items)


def collect() -> tuple[list[Test], tuple[str, ...]]:
    import pytest

    sys.path.insert(0, str(REPO))
    collector = _Collector()
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = pytest.main(
            [
                "--collect-only",
                "-q",
                "-p",
                "no:cacheprovider",
                "-o",
                "addopts=",
                "--rootdir",
                str(REPO),
                *(str(REPO / p) for p in COLLECT),
            ],
            plugins=[collector],
        )
    if code != 0:
        raise SystemExit(f"test collection failed:\n{out.getvalue()}")
    from tests.conftest import ALL_ENGINES

    tests: dict[tuple[str, str], Test] = {}
    for item in collector.items:
        module = Path(item.path).resolve().relative_to(REPO).as_posix()
        params = dict(getattr(getattr(item, "callspec", None), "params", {}))
        params.pop("engine", None)
        # One test per function and non-engine parameters, whichever engines this machine has.
        name = item.originalname + (
            f"[{', '.join(f'{k}={v!r}' for k, v in sorted(params.items()))}]" if params else ""
        )
        marker = item.get_closest_marker("engines")
        xfail = item.get_closest_marker("xfail")
        source = _source(item.function) + _case_sources(item, params)
        if EMULATOR_FIXTURE in getattr(item, "fixturenames", ()):
            engines = ("snowflake",)
        elif "engine" in getattr(item, "fixturenames", ()):
            engines = tuple(e for e in ALL_ENGINES if marker is None or e in marker.args)
        elif marker is not None:
            engines = tuple(marker.args)
        elif "duckdb" in (source + _fixture_sources(item)).lower():
            engines = ("duckdb",)
        else:
            engines = ()
        reason = marker.kwargs.get("reason", "no reason given") if marker is not None else None
        if xfail is not None:
            reason = xfail.kwargs.get("reason", "expected to fail")
        text = f"{source}\n{name}"
        tests[(module, name)] = Test(module, name, text, engines, reason, xfail is not None)
    return sorted(tests.values(), key=lambda t: (t.module, t.name)), tuple(ALL_ENGINES)


def _source(fn) -> str:
    try:
        return inspect.getsource(fn)
    except (OSError, TypeError):
        return ""


def _case_sources(item, params: dict) -> str:
    """For a test parametrized by case names, the source of the module-level table entries
    they select (``CASES = {"robust": lambda: RobustScaler(...)}``): the class it tests."""
    texts = []
    for value in params.values():
        if not isinstance(value, str):
            continue
        for table in vars(item.module).values():
            if isinstance(table, dict) and callable(table.get(value)):
                texts.append(_source(table[value]))
    return "\n".join(texts)


def _fixture_sources(item) -> str:
    """The source of the repository's fixtures the test uses (pytest's own are skipped)."""
    texts = []
    for defs in item._fixtureinfo.name2fixturedefs.values():
        for fixturedef in defs:
            path = inspect.getsourcefile(fixturedef.func) or ""
            if path.startswith(str(REPO / "tests")):
                texts.append(_source(fixturedef.func))
    return "\n".join(texts)


def _mentions(tests: list[Test], names: list[str], under: tuple[str, ...]) -> list[Test]:
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, names)) + r")\b")
    return [t for t in tests if t.module.startswith(under) and pattern.search(t.text)]


def _cell(engine: str, tests: list[Test], suite: tuple[str, ...]) -> str:
    if engine == "snowflake" and engine not in suite:
        # Emulator tests compare Snowflake SQL with DuckDB's; they are counted on their own.
        if "snowflake" not in _EMULATED:
            return SNOWFLAKE_PENDING
        emulated = [t for t in tests if "snowflake" in t.engines]
        failing = sum(t.xfail for t in emulated)
        if not emulated:
            return "—"
        return f"emulator ({len(emulated)}" + (f", {failing} xfail)" if failing else ")")
    if engine not in suite:
        return "not in the suite"
    tests = [t for t in tests if set(t.engines) & set(suite)]
    running = [t for t in tests if engine in t.engines]
    if not tests:
        return "untested"
    if not running:
        return "**no**"
    if len(running) == len(tests):
        return f"yes ({len(running)})"
    return f"partial ({len(running)} of {len(tests)})"


_EMULATED: set[str] = set()


def _table(rows: list[tuple[str, list[Test]]], suite: tuple[str, ...], first: str) -> list[str]:
    header = [first, *(ENGINE_TITLES[e] for e in COLUMNS), "Engine-independent"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, tests in rows:
        independent = sum(1 for t in tests if not t.engines)
        cells = [label, *(_cell(e, tests, suite) for e in COLUMNS), str(independent)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _engine_list(engines: tuple[str, ...]) -> str:
    return ", ".join(ENGINE_TITLES.get(e, e) for e in engines)


def _docstring_title(module: str) -> str:
    doc = ast.get_docstring(ast.parse((REPO / module).read_text()))
    return doc.strip().splitlines()[0].rstrip(".") if doc else f"`{module}`"


def _emulated_named(tests: list[Test], word: str) -> list[Test]:
    """Emulator tests of a whole feature (the registry, a pipeline), found by their name."""
    return [t for t in tests if t.module == SNOWFLAKE_TESTS and word in t.name.split("[")[0]]


def stem_of(title: str) -> str | None:
    return next((stem for stem, t in REGISTRY_TITLES.items() if t == title), None)


def render(tests: list[Test], suite: tuple[str, ...]) -> str:
    import neve
    import neve.preprocessing
    from neve.scoring import COMPILERS

    if any("snowflake" in t.engines for t in tests):
        _EMULATED.add("snowflake")
    transformers = sorted(n for n in neve.preprocessing.__all__ if n != "BaseTransformer")
    where = ("tests/preprocessing/", SNOWFLAKE_TESTS)
    t_rows = [(f"`{n}`", _mentions(tests, [n], where)) for n in transformers]
    t_rows.append(
        (
            "`Pipeline` (fit, transform, `to_sql`)",
            [t for t in tests if t.module == "tests/pipeline/test_pipeline.py"]
            + _emulated_named(tests, "pipeline"),
        )
    )

    import neve.linear_model

    models = sorted(n for n in neve.linear_model.__all__ if n[0].isupper() and not n.endswith(("Estimator", "Warning")))
    l_rows = [(f"`{n}`", _mentions(tests, [n], ("tests/linear_model/",))) for n in models]

    by_compiler: dict[str, list[str]] = defaultdict(list)
    for estimator, compiler in COMPILERS.items():
        by_compiler[compiler.__name__].append(estimator)
    m_rows = []
    for compiler, estimators in sorted(by_compiler.items()):
        covered = _mentions(tests, estimators, ("tests/scoring/test_compile.py", SNOWFLAKE_TESTS))
        named = sorted(
            {e for e in estimators if any(re.search(rf"\b{e}\b", t.text) for t in covered)}
        )
        label = f"{compiler}: " + ", ".join(
            f"`{e}`" if e in named else e for e in sorted(estimators)
        )
        m_rows.append((label, covered))
    m_rows.append(
        (
            "Client-side fallback (no SQL translation)",
            [t for t in tests if t.module == "tests/scoring/test_fallback.py"],
        )
    )

    def grouped(folder: str, titles: dict[str, str]) -> list[tuple[str, list[Test]]]:
        groups: dict[str, list[Test]] = defaultdict(list)
        for t in tests:
            if t.module.startswith(folder):
                stem = Path(t.module).stem
                groups[titles.get(stem) or _docstring_title(t.module)].append(t)
        return sorted(groups.items())

    registry = grouped("tests/registry/", REGISTRY_TITLES)
    emulated_registry = _emulated_named(tests, "registry")
    registry = [
        (title, group + (emulated_registry if stem_of(title) == "test_registry" else []))
        for title, group in registry
    ]
    registry.append(("Snowflake internal stage `@NEVE_STAGE` (PUT/GET)",
                     [t for t in tests if t.module == STAGE_TESTS]))
    registry.append(("`neve.metrics` in SQL", _emulated_named(tests, "metrics")
                     + [t for t in tests if t.module == "tests/test_metrics.py"]))

    gaps = [t for t in tests if t.reason is not None and (t.xfail or set(suite) - set(t.engines))]
    implicit = [
        t
        for t in tests
        if t.reason is None and t.engines == ("duckdb",)
        and t.module not in (SNOWFLAKE_TESTS, STAGE_TESTS)
    ]

    lines = [
        "# Support matrix",
        "",
        "<!-- Generated by docs/gen_support_matrix.py from the test-suite; edit the tests, "
        "then run `make docs`. -->",
        "",
        "Which features the test-suite proves on each engine. A cell counts the tests that run "
        "there: *yes (n)* when every engine-aware test of the feature does, *partial (k of n)* "
        "when some declare a gap (listed below), **no** when none do. Engine-independent tests "
        "(input validation, pandas inputs) run once, on no particular engine, and are counted "
        "apart. Engines of the suite: " + ", ".join(ENGINE_TITLES[e] for e in suite) + ". "
        "The Snowflake column counts the tests that run neve's Snowflake SQL on the fakesnow "
        "emulator and compare the results with DuckDB's (*xfail*: an emulator gap, listed "
        "below; what was verified only there is in [snowflake.md](snowflake.md)).",
        "",
        "## Transformers",
        "",
        *_table(t_rows, suite, "Transformer"),
        "",
        "## Models fitted in the engine (`neve.linear_model`)",
        "",
        "Fitted from sufficient statistics in one aggregate query (logistic: one per Newton step), "
        "checked against scikit-learn's exact solvers.",
        "",
        *_table(l_rows, suite, "Model"),
        "",
        "## Models compiled to SQL (`neve.scoring`)",
        "",
        "Estimators in `code` style are named by a test; the others share their compiler's SQL.",
        "",
        *_table(m_rows, suite, "Compiler: estimators"),
        "",
        "## Registry",
        "",
        *_table(registry, suite, "Feature"),
        "",
        "## Monitoring",
        "",
        *_table(grouped("tests/monitoring/", {}), suite, "Feature"),
        "",
        "## Notes",
        "",
        "- Column names follow the engine's identifier rules. On Snowflake, as in SnowML, "
        "`input_cols=[\"age\"]` finds `AGE`, `'\"col1\"'` is a quoted, case-kept name and an "
        "unquoted `output_cols=\"OUT_foo\"` becomes `OUT_FOO`; DuckDB and PostgreSQL take names "
        "exactly as written (`age` does not find `AGE`). DuckDB binds columns case-insensitively; "
        "one-hot columns whose categories differ only in case (`X_A`, `X_a`) still stay apart "
        "through later pipeline steps, which neve writes as one SELECT over them, but not in a "
        "query written over the transformed table. See [snowml.md](snowml.md) "
        "(tests/snowml_compat/).",
        "- **Spark (local)** runs in every `make test` where Java is installed (`.ci/run` installs "
        "it): one local Spark per test process, each test in a database of its own. Spark "
        "Connect (`sc://`) and the taxi DAG on Spark are tested against a local Connect server "
        "(tests/engine/test_spark.py, tests/airflow/test_taxi_on_spark.py). See [spark.md](spark.md) "
        "for what is verified and what is not.",
        "",
        *_emulator_section(),
        "## Declared gaps",
        "",
        "Tests marked `@pytest.mark.engines(...)`, and emulator tests expected to fail there:",
        "",
        "| Test | Runs on | Reason |",
        "|---|---|---|",
        *[
            f"| `{t.module}::{t.name}` | {_engine_list(t.engines)}{' (xfail)' if t.xfail else ''}"
            f" | {t.reason} |"
            for t in gaps
        ],
        "",
        "Tests that open DuckDB themselves and take no `engine` fixture (undeclared gaps: give "
        "them the fixture, or a marker with a reason):",
        "",
        *[f"- `{t.module}::{t.name}`" for t in implicit],
        "",
    ]
    return "\n".join(lines)


def _emulator_section() -> list[str]:
    """What the fakesnow test server answers itself (tests/engine/_fakesnow.py), and the DAG."""
    from tests.engine._fakesnow import EMULATOR_ADAPTATIONS

    return [
        "## Snowflake emulator: the taxi DAG and what the test server adapts",
        "",
        f"`{DAG_ON_EMULATOR}` runs the flagship DAG (`dag.test()`) on the emulator through a "
        "`snowflake://` URL: every task succeeds and the row counts and metrics equal the DuckDB "
        f"run's. `{TRAINING_ON_EMULATOR}` does the same for `train_test_split`, a pipeline ending "
        "in `neve.linear_model.LinearRegression`, `log_model` to `@NEVE_STAGE`, `mv.run` and "
        "`mv.drift`. fakesnow 0.11 (Snowflake SQL run by DuckDB) cannot run some of what those "
        "send; the test server (`tests/engine/_fakesnow_runner.py`) answers each such statement "
        "as Snowflake does. These are gaps of the emulator, not of neve: real Snowflake runs "
        "every one of them.",
        "",
        "| Sent by | Statement | fakesnow 0.11 | Real Snowflake |",
        "|---|---|---|---|",
        *[f"| {a.where} | {a.statement} | {a.emulator} | {a.snowflake} |" for a in EMULATOR_ADAPTATIONS],
        "",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="fail if the committed file is out of date"
    )
    args = parser.parse_args(argv)
    text = render(*collect())
    if args.check:
        current = OUTPUT.read_text() if OUTPUT.exists() else ""
        if current != text:
            diff = difflib.unified_diff(
                current.splitlines(), text.splitlines(), "committed", "generated", lineterm=""
            )
            print(f"{OUTPUT.relative_to(REPO)} is out of date; run `make docs`:", *diff, sep="\n")
            return 1
        return 0
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
