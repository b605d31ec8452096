"""The rooms import one way, downward: models → core/notifications → tasks → flows → deploy → sanjin, web.

Read from the source with ast (every import, at module level or inside a function), so a moved module
or a new import that points up fails here before it becomes a circle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ROOMS = ("models", "core", "notifications", "tasks", "flows", "deploy", "sanjin", "web")

# Which of our rooms each room may import (besides itself).
MAY_IMPORT: dict[str, set[str]] = {
    "models": set(),
    "core": {"models"},
    "notifications": {"models"},
    "tasks": {"models", "core", "notifications"},
    "flows": {"models", "core", "notifications", "tasks"},
    "deploy": {"models", "core", "notifications", "tasks", "flows"},
    "sanjin": {"models", "core", "notifications", "tasks", "flows", "deploy", "web"},
    "web": {"models", "core", "notifications", "tasks", "flows"},
}


def _modules() -> Iterator[tuple[str, Path]]:
    for room in ROOMS:
        for path in sorted((ROOT / room).rglob("*.py")):
            if "versions" in path.relative_to(ROOT).parts:  # Alembic revisions import nothing of ours
                continue
            parts = path.relative_to(ROOT).with_suffix("").parts
            yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts), path


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.split(".")[0] in ROOMS}


GRAPH = {name: _imports(path) for name, path in _modules()}


@pytest.mark.parametrize("room", ROOMS)
def test_a_room_imports_only_the_rooms_below_it(room: str) -> None:
    upward = sorted(f"{module} → {target}" for module, targets in GRAPH.items() if module.split(".")[0] == room
                    for target in targets if target.split(".")[0] not in MAY_IMPORT[room] | {room})
    assert not upward, "imports against the layering:\n" + "\n".join(upward)


def test_only_the_entry_points_and_the_web_import_flows() -> None:
    importers = {module.split(".")[0] for module, targets in GRAPH.items()
                 if any(t.split(".")[0] == "flows" for t in targets)} - {"flows"}
    assert importers <= {"deploy", "sanjin", "web"}


def test_no_module_imports_itself_back_through_a_circle() -> None:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(module: str) -> None:  # Tarjan's strongly connected components
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in GRAPH.get(module, ()):
            if target not in GRAPH:
                continue
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for module in GRAPH:
        if module not in index:
            visit(module)
    assert not circles, f"import circles: {circles}"


def test_tasks_has_packages_by_capability_and_only_a_few_modules_at_its_top() -> None:
    top = {p.stem for p in (ROOT / "tasks").glob("*.py")} - {"__init__"}
    assert top <= {"status", "programs", "users", "calendar"}
    for package in (p for p in (ROOT / "tasks").iterdir() if (p / "__init__.py").exists()):
        docstring = ast.get_docstring(ast.parse((package / "__init__.py").read_text(encoding="utf-8")))
        assert docstring, f"tasks/{package.name}/__init__.py should say in one line what the package owns"
