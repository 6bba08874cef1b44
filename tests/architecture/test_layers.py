"""The imports read top-down: no module imports from a layer above its own, and no module takes part in an import
cycle, counting imports inside functions too (DESIGN.md, docs/architecture.md)."""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

from hub.standards import PROJECT_ROOT as ROOT

#: Floors from the ground up; a module may import its own floor and those below. Names are module prefixes, or
#: exactly one module with a leading ``=`` (the ``hub`` package itself, without all that is below it).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("hub.errors", "hub.namespaces", "hub.xmlsafe", "hub.jsonsafe", "hub.xmlpath", "hub.standards", "hub.config", "hub.report",
     "hub.scope", "hub.codelists", "hub.zones", "hub.tls_peer", "hub.connector", "hub.redaction", "hub.stages", "hub.eventloop",
     "hub.allocator"),
    ("hub.records",),
    ("hub.mapping",),
    ("hub.validation",),
    ("hub.signing",),
    ("hub.families",),
    ("hub.routing",),
    ("hub.store",),
    ("hub.acks",),
    ("hub.cites",),
    ("hub.intake",),
    ("hub.delivery",),
    ("hub.notify",),
    ("hub.customs",),
    ("connectors",),
    ("hub.broker",),
    ("hub.facsimile",),
    ("hub.api",),
    ("hub.web",),
    ("hub.cli", "hub.__main__", "=hub"),
)


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted([*ROOT.glob("hub/**/*.py"), *ROOT.glob("connectors/**/*.py")]):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else [])) if node.level else node.module
            submodules = [f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in modules]
            # ``from package import module`` depends on the module; the package is initialised anyway.
            candidates = submodules if len(submodules) == len(node.names) else [base, *submodules]
        else:
            continue
        for candidate in candidates:
            while candidate and candidate not in modules:
                candidate = candidate.rpartition(".")[0]
            if candidate and candidate != name:
                targets.add(candidate)
    return targets


def _floor(name: str) -> int:
    best = None
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if prefix.startswith("="):
                if name == prefix[1:]:
                    best = (index, len(prefix))
                continue
            if name == prefix or name.startswith(prefix + "."):
                if best is None or len(prefix) > best[1]:
                    best = (index, len(prefix))
    assert best is not None, f"{name} is on no floor of LAYERS: place it"
    return best[0]


@functools.cache
def _graph() -> dict[str, set[str]]:
    """Every module of hub/ and connectors/ with the modules it imports, read once, when a test first asks."""
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def test_every_module_is_on_a_floor():
    for name in _graph():
        _floor(name)


def test_no_import_runs_back_up():
    graph = _graph()
    upward = sorted(f"{a} → {b}" for a, targets in graph.items() for b in targets if _floor(b) > _floor(a))
    assert not upward, "imports running back up the layers:\n" + "\n".join(upward)


def test_no_import_cycle():
    # Tarjan's strongly connected components over the module graph (package __init__ re-exports included).
    graph = _graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for name in sorted(graph):
        if name not in index:
            visit(name)
    assert not cycles, "import cycles:\n" + "\n".join(" ↔ ".join(c) for c in cycles)


@pytest.mark.parametrize("package", ["hub", "connectors"])
def test_no_module_passes_600_lines(package):
    long = sorted(f"{p.relative_to(ROOT)} ({n} lines)" for p in ROOT.glob(f"{package}/**/*.py") if (n := len(p.read_text(encoding='utf-8').splitlines())) > 600 and "migrations" not in p.parts)
    assert not long, "modules to split (house style: split past ~600 lines):\n" + "\n".join(long)
