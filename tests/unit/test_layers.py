"""The layering of docs/architecture.md, checked on the imports the code really has.

Every ``damon_eval/**/*.py`` is parsed with :mod:`ast`; every ``import`` and
``from ... import`` counts, wherever it stands (module level, inside a
function, under ``if TYPE_CHECKING``): a lazy import of an upper layer is still
an arrow up.  Dynamic imports (``importlib.import_module``) are not seen; the
three the package has are lazy lookups within or down the layers (cli ->
commands; the ``damon`` and ``records`` packages' exports on first use, the
latter's ``GroundTruth`` from ``workloads.truth``).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[2] / "damon_eval"

# Top layer first.  A module may import its own layer and the layers below it.
LAYER_ORDER = ("entry", "work", "choice", "parts", "agent", "machines", "base")

# Package or top-level module -> layer; a module belongs to its longest entry.
LAYERS = {
    "damon_eval.cli": "entry",
    "damon_eval.__main__": "entry",
    "damon_eval.commands": "entry",
    "damon_eval.pipeline": "entry",  # workflow/scripts/*.py call it
    "damon_eval.measure": "work",
    "damon_eval.analysis": "work",
    "damon_eval.records": "work",
    "damon_eval.campaign_status": "work",
    "damon_eval.config": "choice",
    "damon_eval.machine_select": "choice",
    "damon_eval.damon": "parts",
    "damon_eval.guest": "parts",
    "damon_eval.workloads": "parts",
    "damon_eval.agent": "agent",
    "damon_eval.machines": "machines",
    "damon_eval": "base",  # __init__: the glossary and __version__
    "damon_eval.errors": "base",
    "damon_eval.fs": "base",
    "damon_eval.atomic": "base",
    "damon_eval.paths": "base",
    "damon_eval.schema": "base",
    "damon_eval.metrics": "base",
    "damon_eval.provenance": "base",
    "damon_eval.data": "base",  # scripts shipped to the guest: standard library only
}

# Cycles tolerated while a split is under way, (module, module) in either order:
# none today.  Each entry must still exist (a test fails when one disappears), so
# it is deleted here with its fix.
KNOWN_CYCLES: set[frozenset[str]] = set()


def _modules() -> dict[str, tuple[Path, bool]]:
    """Dotted name -> (file, is a package's ``__init__``)."""
    modules = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        modules[".".join(parts)] = (path, is_package)
    return modules


MODULES = _modules()


def _known(name: str) -> str | None:
    """The module ``name`` loads: itself, or the package it names an attribute of."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in MODULES:
            return candidate
        parts.pop()
    return None


def _imported(module: str, path: Path, is_package: bool) -> dict[str, int]:
    """Modules of the package ``module`` imports -> the line of the first import."""
    here = module.split(".") if is_package else module.split(".")[:-1]
    found: dict[str, int] = {}
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - (node.level - 1)]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            # `from pkg import sub` imports the submodule pkg.sub when there is one
            names = [
                f"{source}.{alias.name}" if f"{source}.{alias.name}" in MODULES else source
                for alias in node.names
            ]
        else:
            continue
        for name in names:
            target = _known(name) if name.split(".")[0] == "damon_eval" else None
            if target is not None and target != module:
                found.setdefault(target, node.lineno)
    return found


IMPORTS = {name: _imported(name, *where) for name, where in MODULES.items()}


def _entry(module: str) -> str | None:
    parts = module.split(".")
    while parts:
        if ".".join(parts) in LAYERS:
            return ".".join(parts)
        parts.pop()
    return None


def _unit(module: str) -> str:
    """``damon_eval.<package>`` or the top-level module."""
    return ".".join(module.split(".")[:2])


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(graph.get(successor, ())))))
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        components.append(sorted(component))
    return components


def _describe(component: list[str], graph: dict[str, set[str]], why) -> str:
    members = set(component)
    arrows = [
        f"  {a} -> {b} ({why(a, b)})"
        for a in component
        for b in sorted(graph.get(a, ()))
        if b in members
    ]
    return " <-> ".join(component) + ":\n" + "\n".join(arrows)


def test_every_module_has_a_layer_and_every_entry_a_module():
    assert set(LAYERS.values()) <= set(LAYER_ORDER)
    unmapped = sorted(m for m in MODULES if _entry(m) is None)
    assert not unmapped, f"add these to LAYERS in {__file__}: {', '.join(unmapped)}"
    stale = sorted(e for e in LAYERS if not any(_entry(m) == e for m in MODULES))
    assert not stale, f"LAYERS names modules that do not exist: {', '.join(stale)}"


def test_no_module_imports_a_layer_above_its_own():
    rank = {name: i for i, name in enumerate(LAYER_ORDER)}
    upward = []
    for module, imports in sorted(IMPORTS.items()):
        layer = LAYERS[_entry(module)]
        for target, line in sorted(imports.items()):
            target_layer = LAYERS[_entry(target)]
            if rank[target_layer] < rank[layer]:
                upward.append(
                    f"{module} (layer {layer}) imports {target} (layer {target_layer}) "
                    f"at line {line}"
                )
    assert not upward, "arrows up a layer:\n" + "\n".join(upward)


def _graph(keep) -> tuple[dict[str, set[str]], dict[tuple[str, str], list[str]]]:
    graph: dict[str, set[str]] = defaultdict(set)
    why: dict[tuple[str, str], list[str]] = defaultdict(list)
    for module, imports in IMPORTS.items():
        for target, line in imports.items():
            edge = keep(module, target)
            if edge is not None:
                graph[edge[0]].add(edge[1])
                why[edge].append(f"{module}:{line} imports {target}")
    return graph, why


def test_packages_and_top_level_modules_import_no_cycle():
    graph, why = _graph(lambda a, b: (_unit(a), _unit(b)) if _unit(a) != _unit(b) else None)
    cycles = _cycles(graph)
    assert not cycles, "import cycles between packages:\n" + "\n".join(
        _describe(c, graph, lambda a, b: "; ".join(why[a, b])) for c in cycles
    )


def test_modules_of_one_package_import_no_cycle():
    graph, _ = _graph(lambda a, b: (a, b) if _unit(a) == _unit(b) else None)
    cycles = _cycles(graph)
    unknown = [c for c in cycles if frozenset(c) not in KNOWN_CYCLES]
    assert not unknown, "import cycles inside a package:\n" + "\n".join(
        _describe(c, graph, lambda a, b: f"line {IMPORTS[a][b]}") for c in unknown
    )
    gone = KNOWN_CYCLES - {frozenset(c) for c in cycles}
    assert not gone, f"no longer cycles, remove them from KNOWN_CYCLES: {sorted(map(sorted, gone))}"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from . import x\n", {"damon_eval.fake.x"}),
        ("from .x import f\n", {"damon_eval.fake.x"}),
        ("from .. import errors\n", {"damon_eval.errors"}),
        ("def f():\n    import damon_eval.fake.x.y\n", {"damon_eval.fake.x"}),
        ("from damon_eval.fake.x import name\n", {"damon_eval.fake.x"}),
        ("from damon_eval import __version__, errors\n", {"damon_eval", "damon_eval.errors"}),
        ("import os\nfrom . import name\n", set()),  # an attribute of itself
    ],
)
def test_imports_are_found_and_resolved(tmp_path, monkeypatch, source, expected):
    """The parser itself: relative, function-level and attribute imports."""
    path = tmp_path / "__init__.py"
    path.write_text(source)
    fake = {"damon_eval.fake": (path, True), "damon_eval.fake.x": (tmp_path / "x.py", False)}
    monkeypatch.setitem(globals(), "MODULES", {**MODULES, **fake})
    assert set(_imported("damon_eval.fake", path, True)) == expected


def test_cycle_finder():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": {"e"}, "e": {"d"}, "f": {"a"}}
    assert sorted(_cycles(graph)) == [["a", "b", "c"], ["d", "e"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
