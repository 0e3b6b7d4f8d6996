"""The package's shape: no import cycle, pure subsystems stay pure, private names stay private."""

from __future__ import annotations

import ast
from pathlib import Path

import callscope

PACKAGE = Path(callscope.__file__).parent
PURE = ("callscope.speech", "callscope.measures")
FORBIDDEN_IN_PURE = ("callscope.db", "callscope.web", "callscope.context", "callscope.processing")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, ast.Module]:
    return {
        module_name(p): ast.parse(p.read_text(encoding="utf-8"))
        for p in PACKAGE.rglob("*.py")
        if "migrations" not in p.parts
    }


def imports(name: str, tree: ast.Module, known: set[str]) -> list[tuple[str, str | None]]:
    """(module, imported name) for every callscope import anywhere in TREE, functions included."""
    found: list[tuple[str, str | None]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, None) for a in node.names if a.name.startswith("callscope")]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = name.split(".")
                is_package = (PACKAGE.parent / Path(*package) / "__init__.py").exists()
                package = package if is_package else package[:-1]
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            if not base.startswith("callscope"):
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.append((sub, None) if sub in known else (base, alias.name))
    return found


def graph() -> dict[str, set[str]]:
    trees = modules()
    known = set(trees)
    edges: dict[str, set[str]] = {}
    for name, tree in trees.items():
        edges[name] = {m for m, _ in imports(name, tree, known) if m in known and m != name}
    return edges


def reachable(edges: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for nxt in edges[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_the_import_graph_has_no_cycle():
    edges = graph()
    cycles = sorted(m for m in edges if m in reachable(edges, m) and m != "callscope")
    assert cycles == [], f"modules that import themselves through others: {cycles}"


def test_speech_and_measures_reach_neither_the_database_nor_the_web():
    edges = graph()
    pure = [m for m in edges if m.startswith(PURE)]
    assert len(pure) >= 8
    for name in pure:
        bad = sorted(m for m in reachable(edges, name) if m.startswith(FORBIDDEN_IN_PURE))
        assert bad == [], f"{name} reaches {bad}"


def test_the_layout_check_sees_an_impure_import(tmp_path):
    tree = ast.parse("from callscope.db.models import Conversation\nfrom callscope import web\n")
    found = imports("callscope.speech.media", tree, {"callscope.web", "callscope.db.models"})
    assert ("callscope.db.models", "Conversation") in found and ("callscope.web", None) in found


def test_no_module_imports_another_modules_private_name():
    trees = modules()
    known = set(trees)
    private = [
        f"{name} imports {module}.{what}"
        for name, tree in trees.items()
        for module, what in imports(name, tree, known)
        if what and what.startswith("_") and not what.endswith("__") and module != name
    ]
    assert private == []
