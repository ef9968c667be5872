"""The tree keeps its shape: every messaging module's imports, those inside functions included,
form no cycle. (import-linter checks the layers in `make lint`; this shows the module graph.)"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "messaging"


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def _targets(source: str, package: str) -> list[str]:
    """Every module a source imports, at any depth of it (functions, methods, branches)."""
    targets: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets += [base] + [f"{base}.{alias.name}" for alias in node.names]
    return targets


def _graph() -> dict[str, set[str]]:
    modules = _modules()

    def resolve(dotted: str) -> str | None:
        parts = dotted.split(".")
        for end in range(len(parts), 0, -1):
            candidate = ".".join(parts[:end])
            if candidate in modules:
                return candidate
        return None

    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for target in _targets(path.read_text(), package):
            resolved = resolve(target) if target.startswith("messaging") else None
            if resolved and resolved != name:
                graph[name].add(resolved)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    trail: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        trail.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*trail[trail.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        trail.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def _in_a_fresh_interpreter(expression: str) -> object:
    # CPython 3.11.7's ast.parse can fail with "AST constructor recursion depth mismatch" after
    # other tests recursed deeply in the same process: parse in a clean one.
    code = f"import json, tests.test_architecture as t; print(json.dumps({expression}))"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


def test_it_reads_the_imports_inside_functions_too():
    source = "def f():\n    if True:\n        from messaging.services import groups\n"
    targets = _in_a_fresh_interpreter(f"t._targets({source!r}, 'messaging.services')")
    assert "messaging.services.groups" in targets
    graph = _in_a_fresh_interpreter("{k: sorted(v) for k, v in t._graph().items()}")
    assert "messaging.services.snapshots" in graph["messaging.views.middleware"]


def test_it_has_no_import_cycle_among_messaging_modules():
    assert _in_a_fresh_interpreter("t._cycle(t._graph())") is None


def test_it_finds_a_cycle_when_there_is_one():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
