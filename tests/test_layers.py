"""The package's layers: imports flow one way, with no cycles (``TYPE_CHECKING`` imports count too).

docs/architecture.md draws the same picture: ``cli`` → ``api`` → ``app`` → ``celery``/``scheduler`` →
``client``/``observability`` → ``middleware`` → ``stores`` → ``redis`` → ``core``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "taskplane"

#: Rank of each top-level part of the package: a module may import only from a lower rank or its own part.
RANKS: dict[str, int] = {
    "core": 0,
    "compat": 0,
    "redis": 1,
    "stack": 1,
    "stores": 2,
    "middleware": 3,
    "client": 4,
    "observability": 4,
    "celery": 5,
    "scheduler": 5,
    "app": 6,
    "api": 7,
    "loader": 7,
    "__init__": 7,
    "cli": 8,
    "__main__": 9,
}


def module_name(path: Path, root: Path = PACKAGE) -> str:
    """``taskplane.a.b`` for ``root/a/b.py`` (``taskplane.a`` for ``root/a/__init__.py``)."""
    parts = ["taskplane", *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def part_of(module: str) -> str:
    """The top-level part a module belongs to (``taskplane`` itself is ``__init__``)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the taskplane modules it imports, read from the source (every import statement,
    including those under ``if TYPE_CHECKING:`` and inside functions)."""
    modules = {module_name(path, root): path for path in root.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # "from package import module" imports that module; "from module import name", the module
                names = [f"{node.module}.{alias.name}" for alias in node.names]
            else:
                continue
            for target in names:
                # "from taskplane.x import y" names module taskplane.x.y or attribute y of taskplane.x
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target.startswith("taskplane") and target != name:
                    targets.add(target)
        graph[name] = targets
    return graph


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """Imports that go to a higher layer, or sideways to another part of the same layer."""
    found = []
    for source, targets in graph.items():
        for target in targets:
            source_part, target_part = part_of(source), part_of(target)
            if source_part == target_part or target == "taskplane":
                continue
            if RANKS[target_part] >= RANKS[source_part]:
                found.append(f"{source} -> {target}")
    return sorted(found)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import cycle, each as the path of modules that closes it (found by depth-first search)."""
    found: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                found.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def test_every_part_of_the_package_has_a_layer() -> None:
    parts = {part_of(name) for name in import_graph()}
    assert parts <= set(RANKS), f"give these a rank in RANKS: {sorted(parts - set(RANKS))}"


def test_no_import_goes_up_the_layers() -> None:
    assert upward_imports(import_graph()) == []


def test_no_import_cycle() -> None:
    assert cycles(import_graph()) == []


def test_the_top_level_holds_at_most_8_modules_besides_packages() -> None:
    entries = [path.name for path in PACKAGE.iterdir() if not path.is_dir() and not path.name.startswith(".")]
    assert len(entries) <= 8, entries


def test_no_module_is_over_300_lines() -> None:
    lengths = {str(path.relative_to(PACKAGE)): len(path.read_text().splitlines()) for path in PACKAGE.rglob("*.py")}
    assert {name: length for name, length in lengths.items() if length > 300} == {}


@pytest.fixture
def package_copy(tmp_path: Path) -> Path:
    """A copy of the package's sources to break on purpose."""
    root = tmp_path / "taskplane"
    for path in PACKAGE.rglob("*.py"):
        target = root / path.relative_to(PACKAGE)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(path.read_text())
    return root


def test_the_checks_catch_an_upward_import_and_a_cycle(package_copy: Path) -> None:
    # Given a store that reaches up for the app (under TYPE_CHECKING, as the old code did)
    store = package_copy / "stores" / "records.py"
    upward = "\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from taskplane.app import Taskplane\n"
    store.write_text(store.read_text() + upward)
    graph = import_graph(package_copy)
    # Then the upward import and the cycle it closes are both reported
    assert "taskplane.stores.records -> taskplane.app" in upward_imports(graph)
    assert any(cycle[0] == "taskplane.app" or "taskplane.app" in cycle for cycle in cycles(graph))
