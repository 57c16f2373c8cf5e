"""The layout of the packages: no import cycles between the modules of pinnopt and cosmology,
and argparse only in the command line (``pinnopt/cli/``).

The import graph is read with ``ast`` from every import statement of every module, those
inside functions included: a cycle closed by an import deferred into a function is still a
cycle (it only moves the failure from import time to call time, and hides the dependency).
A module is a node; ``import a.b`` and ``from a.b import c`` are edges to the deepest module
they name (``a.b.c`` when that is a module, else ``a.b``), relative imports resolved.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pinnopt", "cosmology")
CLI = "pinnopt.cli"
# Cycles that exist in modules this layout does not own, each listed with its exact set of
# modules (a cycle that gains a module is a new one). Remove an entry with its cycle: the
# test fails on an entry whose cycle is gone, so that the list only ever shrinks.
KNOWN_CYCLES: set = set()  # none left; a cycle that must stay is listed here with its reason


def module_files() -> dict[str, Path]:
    """Every module of ``PACKAGES``: dotted name -> file (a package is its ``__init__.py``)."""
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def imports_of(name: str, path: Path) -> list[tuple[str, int]]:
    """(dotted name, line) of everything ``path`` imports, at any depth of the syntax tree."""
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = name if is_package else name.rpartition(".")[0]
                for _ in range(node.level - 1):
                    package = package.rpartition(".")[0]
                base = package + ("." + node.module if node.module else "")
            else:
                base = node.module or ""
            found += [(f"{base}.{alias.name}", node.lineno) for alias in node.names]
    return found


def resolve(dotted: str, modules) -> str | None:
    """The deepest of ``modules`` that ``dotted`` names or lies in (None: outside the packages)."""
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return None


def import_graph() -> dict[str, dict[str, int]]:
    """module -> {imported module: line of the first such import}."""
    files = module_files()
    graph: dict[str, dict[str, int]] = {}
    for name, path in files.items():
        edges = graph.setdefault(name, {})
        for dotted, line in imports_of(name, path):
            target = resolve(dotted, files)
            if target is not None and target != name:
                edges.setdefault(target, line)
    return graph


def strongly_connected(graph) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one module (each a set of cycles)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, {}):
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
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def a_cycle(graph, component: list[str]) -> list[str]:
    """One shortest cycle through the first module of ``component`` (breadth-first, inside it)."""
    start, members = component[0], set(component)
    parent, frontier = {start: None}, [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v]):
                if w == start:
                    path = [v]  # back from v to the start, then reversed
                    while parent[path[-1]] is not None:
                        path.append(parent[path[-1]])
                    return path[::-1] + [start]
                if w in members and w not in parent:
                    parent[w] = v
                    nxt.append(w)
        frontier = nxt
    return component


def describe(graph, cycle: list[str]) -> str:
    return " -> ".join(f"{a} (line {graph[a][b]})" for a, b in zip(cycle, cycle[1:])) + f" -> {cycle[-1]}"


def test_the_graph_sees_imports_inside_functions_and_relative_ones():
    graph = import_graph()
    assert "pinnopt.cli.solve" in graph and "cosmology.problem" in graph
    assert "pinnopt.training" in graph["pinnopt.cli.solve"]
    assert "cosmology.plots" in graph["cosmology.problem"]  # imported inside Problem.plot
    assert "cosmology.hubble_plots" in graph["cosmology.plots"]


def test_no_import_cycles():
    graph = import_graph()
    components = strongly_connected(graph)
    cycles = [describe(graph, a_cycle(graph, c)) for c in components if frozenset(c) not in KNOWN_CYCLES]
    assert not cycles, "import cycles (module-level or inside functions):\n" + "\n".join(cycles)
    gone = KNOWN_CYCLES - {frozenset(c) for c in components}
    assert not gone, f"known cycles no longer there, remove them from KNOWN_CYCLES: {[sorted(c) for c in gone]}"


def test_cycle_finder_on_a_made_up_graph():
    graph = {"a": {"b": 1}, "b": {"c": 2, "d": 3}, "c": {"a": 4}, "d": {}, "e": {"e2": 5}, "e2": {"e": 6}}
    components = strongly_connected(graph)
    assert components == [["a", "b", "c"], ["e", "e2"]]
    assert describe(graph, a_cycle(graph, components[0])) == "a (line 1) -> b (line 2) -> c (line 4) -> a"


def test_argparse_only_in_the_cli():
    files = module_files()
    offenders = [f"{path.relative_to(ROOT)}:{line}" for name, path in files.items()
                 if not (name == CLI or name.startswith(CLI + "."))
                 for dotted, line in imports_of(name, path) if dotted.split(".")[0] == "argparse"]
    assert not offenders, "argparse imported outside pinnopt/cli/: " + ", ".join(offenders)
