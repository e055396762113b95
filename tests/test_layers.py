"""The package's layers, enforced: each module imports only modules of its own layer or below,
and no two modules import each other, directly or round a circle.

Every import counts, including those inside functions (a call-time import is a dependency
all the same); only imports under ``if TYPE_CHECKING:`` are left out, as they never run.
``from pkg import name`` counts as importing ``pkg.name`` when that is a module, else ``pkg``.
The layers are DESIGN.md's, bottom first; a module belongs to the first layer (scanning
from the top) one of whose prefixes names it or a package holding it.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("foundation", ("neve", "neve.errors", "neve._lazy_exports", "neve._json", "neve._sql_templates",
                    "neve._sql_literals", "neve.engine")),
    ("tables", ("neve._table", "neve._columns", "neve.metrics", "neve.model_selection._split")),
    ("preprocessing", ("neve.preprocessing",)),
    ("scoring", ("neve.scoring",)),
    ("linear_model", ("neve.linear_model",)),
    ("pipeline", ("neve.pipeline",)),
    ("model_selection", ("neve.model_selection",)),
    ("monitoring, registry, datasets, envs", ("neve.monitoring", "neve.registry", "neve.datasets", "neve.envs")),
    # The command groups live beside what they command, but are the CLI's.
    ("airflow, cli", ("neve.airflow", "neve.cli", "neve.registry._cli", "neve.envs._cli")),
]


def _modules(src: Path) -> dict[str, tuple[Path, bool]]:
    found = {}
    for path in sorted(src.rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        found[".".join(parts)] = (path, is_package)
    return found


def _type_checking_only(tree: ast.AST) -> set[int]:
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return skipped


def import_graph(src: Path = SRC) -> dict[str, set[str]]:
    """``{module: {neve modules it imports}}`` for every module under ``src/neve``."""
    modules = _modules(src)

    def known(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = defaultdict(set)
    for module, (path, is_package) in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        skipped = _type_checking_only(tree)
        package = module if is_package else module.rpartition(".")[0]
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join([*anchor, *([base] if base else [])])
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    targets.append(full if full in modules else base)
            for target in targets:
                if target == "neve" or target.startswith("neve."):
                    resolved = known(target)
                    if resolved and resolved != module:
                        graph[module].add(resolved)
        graph.setdefault(module, set())
    return dict(graph)


def layer_of(module: str) -> int:
    # The longest listed prefix wins, so a module placed apart from its package (the split
    # helpers below the rest of model_selection) is judged by its own entry.
    matches = [(len(prefix), index) for index, (_, prefixes) in enumerate(LAYERS) for prefix in prefixes
               if module == prefix or module.startswith(prefix + ".")]
    if not matches:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS in tests/test_layers.py")
    return max(matches)[1]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{module} ({LAYERS[layer_of(module)][0]}) imports {target} ({LAYERS[layer_of(target)][0]})"
        for module, targets in graph.items()
        for target in targets
        if layer_of(target) > layer_of(module)
    )


def test_every_module_has_a_layer() -> None:
    for module in import_graph():
        layer_of(module)


def test_no_module_imports_a_higher_layer() -> None:
    assert upward_imports(import_graph()) == []


def test_no_import_circles() -> None:
    assert cycles(import_graph()) == []


def test_nothing_below_airflow_imports_airflow() -> None:
    offenders = []
    for module, (path, _) in _modules(SRC).items():
        if module.startswith("neve.airflow"):
            continue
        tree = ast.parse(path.read_text())
        skipped = _type_checking_only(tree)
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            offenders += [f"{module} imports {n}" for n in names if n == "airflow" or n.startswith("airflow.")]
    assert offenders == []


def test_envs_import_neither_airflow_nor_the_registry() -> None:
    graph = import_graph()
    reached = {t for m, ts in graph.items() if m.startswith("neve.envs") for t in ts}
    assert not {t for t in reached if t.startswith(("neve.registry", "neve.airflow"))}


def test_the_package_ships_no_demo_tooling() -> None:
    assert not [m for m in _modules(SRC) if "demo" in m.rsplit(".", 1)[-1]]


# --- the checker itself: each would let a real layering bug through if it were wrong ---------


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / "neve" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_the_checker_sees_an_import_inside_a_function(tmp_path: Path) -> None:
    src = _tree(tmp_path, {
        "__init__.py": "",
        "errors.py": "def f():\n    from neve.registry import x\n",
        "registry/__init__.py": "x = 1\n",
    })
    graph = import_graph(src)
    assert graph["neve.errors"] == {"neve.registry"}
    assert upward_imports(graph) == [
        "neve.errors (foundation) imports neve.registry (monitoring, registry, datasets, envs)"
    ]


def test_the_checker_skips_type_checking_imports_and_resolves_relative_ones(tmp_path: Path) -> None:
    src = _tree(tmp_path, {
        "__init__.py": "",
        "preprocessing/__init__.py": "from ._base import B\n",
        "preprocessing/_base.py": (
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from neve.pipeline import P\nB = 1\n"
        ),
        "pipeline/__init__.py": "from neve.preprocessing import _base\nP = 1\n",
    })
    graph = import_graph(src)
    assert graph["neve.preprocessing"] == {"neve.preprocessing._base"}
    assert graph["neve.preprocessing._base"] == set()
    assert graph["neve.pipeline"] == {"neve.preprocessing._base"}


@pytest.mark.parametrize("edges, expected", [
    ({"a": {"b"}, "b": {"a"}}, [["a", "b"]]),
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
    ({"a": {"b"}, "b": set()}, []),
])
def test_the_checker_finds_circles(edges: dict[str, set[str]], expected: list[list[str]]) -> None:
    assert cycles(edges) == expected


def test_a_module_listed_apart_from_its_package_is_judged_by_its_own_layer():
    assert LAYERS[layer_of("neve.model_selection._split")][0] == "tables"
    assert LAYERS[layer_of("neve.model_selection._search")][0] == "model_selection"
    assert LAYERS[layer_of("neve.registry._cli")][0] == "airflow, cli"
