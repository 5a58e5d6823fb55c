"""The import graph keeps the layers one-way (README "How it is built").

``ml`` and ``storage`` import no other project package; the domain (``dogbot.core``) imports only
those two; ``jobs`` imports the domain and below, never the bot or the shell; the shell beside the
domain (settings, the composition root ``dogbot.app``, backup, simulation) never imports the bot, the
web API or the CLI; ``bot`` and ``api`` (the web API) sit on top side by side, never importing each
other, and the CLI above them. Only entry points import the composition root. Every import
counts: at module level, inside functions, and under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("ml", "storage", "dogbot", "jobs", "bot", "api")

# Layer of a module, and the layers it may import (its own included).
MAY_IMPORT = {
    "ml": {"ml"},
    "storage": {"storage"},
    "core": {"core", "ml", "storage"},
    "jobs": {"jobs", "core", "ml", "storage"},
    "shell": {"shell", "jobs", "core", "ml", "storage"},
    "bot": {"bot", "shell", "jobs", "core", "ml", "storage"},
    # The web API sits beside the bot: neither imports the other.
    "api": {"api", "shell", "jobs", "core", "ml", "storage"},
    "cli": {"cli", "bot", "api", "shell", "jobs", "core", "ml", "storage"},
}
COMPOSITION_ROOT = "dogbot.app"
# Entry points: what a process starts from. Only they build the services (import the composition root).
ENTRY_POINTS = ("dogbot.cli", "dogbot.simulation_run", "bot.app", "api.app")


def layer_of(module: str) -> str:
    if module == "dogbot.cli":
        return "cli"
    if module == "dogbot.core" or module.startswith("dogbot.core."):
        return "core"
    top = module.split(".")[0]
    return "shell" if top == "dogbot" else top


def project_modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if "migrations" in parts and "versions" in parts:
                continue  # alembic revision scripts are loaded by file, never imported by the code
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path
    return modules


def import_graph() -> dict[str, set[str]]:
    """module -> project modules it imports (every ``import`` statement anywhere in the file)."""
    modules = project_modules()
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = name.split(".") if is_package else name.split(".")[:-1]
                    base = base[: len(base) - node.level + 1]
                    module = ".".join([*base, *([node.module] if node.module else [])])
                else:
                    module = node.module or ""
                targets = [module]
                # `from jobs import registry` imports the module jobs.registry
                targets += [
                    f"{module}.{alias.name}" for alias in node.names if f"{module}.{alias.name}" in modules
                ]
            for target in targets:
                while target and target not in modules:  # `import a.b.c` where c is a name
                    target = target.rpartition(".")[0]
                if target and target != name and target.split(".")[0] in PACKAGES:
                    graph[name].add(target)
    return graph


def test_the_graph_is_read() -> None:
    graph = import_graph()
    assert "storage.tables" in graph["storage.repository"]
    assert any(target.startswith("dogbot.core") for target in graph["jobs.fold"])


def test_layers_import_only_downwards() -> None:
    wrong = sorted(
        f"{module} ({layer_of(module)}) imports {target} ({layer_of(target)})"
        for module, targets in import_graph().items()
        for target in targets
        if layer_of(target) not in MAY_IMPORT[layer_of(module)]
    )
    assert wrong == []


def test_only_entry_points_import_the_composition_root() -> None:
    importers = sorted(
        module
        for module, targets in import_graph().items()
        if COMPOSITION_ROOT in targets and not module.startswith(ENTRY_POINTS)
    )
    assert importers == []


def test_no_import_cycles() -> None:
    graph = import_graph()
    cycles = [sorted(group) for group in strongly_connected(graph) if len(group) > 1]
    assert cycles == []


def strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's algorithm, iterative (the graph is small, but recursion limits are not worth a thought)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.add(member)
                    if member == node:
                        break
                groups.append(group)
    return groups


QUERY_BUILDERS = {"select", "func", "update", "delete", "insert", "text", "case", "and_", "or_"}


def test_queries_are_written_only_in_storage() -> None:
    """SQL lives behind ``storage``: above it, code calls data-access functions, never builds a query."""
    found = []
    for name, path in project_modules().items():
        if name.split(".")[0] == "storage":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in (
                "sqlalchemy",
                "sqlmodel",
            ):
                found += [f"{name}: {alias.name}" for alias in node.names if alias.name in QUERY_BUILDERS]
    assert found == []


def test_only_the_gate_asks_for_a_role() -> None:
    """One access gate (bot.context.gate) resolves the sender's role; handlers read ``context.role``."""
    callers = []
    for name, path in project_modules().items():
        if name.split(".")[0] != "bot":
            continue
        tree = ast.parse(path.read_text(), str(path))
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(function):
                asks = isinstance(node, ast.Attribute) and node.attr in ("role", "known_role")
                if asks and isinstance(node.value, ast.Attribute) and node.value.attr == "members":
                    callers.append(f"{name}.{function.name}")
    assert sorted(set(callers)) == ["bot.context.gate"]
