"""Imports only point down: schemas < base < readers, steps < outputs < pipeline < publish <
flows < the `sftforge` API. Read from the source (every import, also inside functions), so a
new module that breaks the layering fails here, not in a reader's head."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FOLDERS = {
    "schemas": "sftforge.schemas",
    "tasks": "sftforge.tasks",
    "flows": "sftforge.flows",
    "sftforge": "sftforge",
}
LAYERS = [
    ("sftforge.schemas",),
    ("sftforge.tasks.base",),
    ("sftforge.tasks.readers", "sftforge.tasks.steps"),
    ("sftforge.tasks.outputs",),
    ("sftforge.tasks.pipeline",),
    ("sftforge.tasks.publish",),
    ("sftforge.flows",),
    ("sftforge",),
]


def _package(module: str) -> str:
    """The layer package a module belongs to (longest prefix)."""
    names = [p for layer in LAYERS for p in layer]
    found = [p for p in names if module == p or module.startswith(p + ".")]
    return max(found, key=len)


def _level(package: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if package in layer)


def _modules() -> dict[str, Path]:
    modules = {}
    for folder, package in FOLDERS.items():
        for path in (REPO / folder).rglob("*.py"):
            parts = list(path.relative_to(REPO / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join([package, *parts])] = path
    return modules


def _imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def test_imports_only_point_down():
    wrong = []
    for module, path in _modules().items():
        mine = _package(module)
        for line, target in _imports(path):
            if target.split(".")[0] in ("tasks", "flows", "schemas"):
                wrong.append(f"{path.relative_to(REPO)}:{line}: bare import {target}")
            if not target.startswith("sftforge"):
                continue
            theirs = _package(target)
            if theirs == mine:
                continue
            if _level(theirs) >= _level(mine):
                wrong.append(f"{path.relative_to(REPO)}:{line}: {mine} imports {target}")
    assert not wrong, "\n".join(wrong)


def test_no_module_is_over_300_lines():
    long = {
        str(p.relative_to(REPO)): n
        for p in _modules().values()
        if (n := len(p.read_text().splitlines())) > 300
    }
    assert not long, long
