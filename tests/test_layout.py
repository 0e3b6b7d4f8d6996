"""The package's shape: no import cycle, pure subsystems stay pure, private names stay private."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
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


# "SPEC §5", or ids in parentheses: "(S1)", "(S3a, B4)"
SPEC_ID = re.compile(r"\bSPEC\b|§|\((?:[SB]\d{1,2}[ab]?(?:, )?)+\)")


def test_no_specification_ids_in_code_messages_or_pages():
    files = [
        p
        for p in PACKAGE.rglob("*")
        if p.suffix in (".py", ".html", ".js", ".po", ".css") and "migrations" not in p.parts
    ]
    assert len(files) > 40
    found = [
        f"{p.relative_to(PACKAGE)}:{n}: {line.strip()}"
        for p in files
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if SPEC_ID.search(line)
    ]
    assert found == []


def test_the_specification_id_check_sees_one():
    for text in ("the viewing switch (S1)", "as SPEC §5 says", "paged (S3a, B4)"):
        assert SPEC_ID.search(text), text
    for text in ("an S3-compatible store (AWS S3)", "policy.SPECS", "(S310: only http)"):
        assert not SPEC_ID.search(text), text


SPEECH_LIBRARIES = ("faster_whisper", "ctranslate2", "onnxruntime", "torch", "librosa", "sklearn")


def test_the_web_layer_and_the_cli_import_no_speech_library():
    """Serving pages and running commands that process no audio pay for no speech library:
    they are imported when a job (or a worker's warm-up) needs them."""
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, callscope.cli, callscope.web.app; "
            f"print(*[m for m in {SPEECH_LIBRARIES!r} if m in sys.modules])",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert loaded == []


ROLE_TEST = re.compile(r"\b[uU]ser\.role\s*(==|!=|in\b|not in\b)|\(Role\.SUPERVISOR, Role\.ADMIN\)")


def test_only_governance_decides_what_a_role_may_do():
    """Templates receive flags (`can.evaluate`); routes and domain code ask access.may."""
    files = [p for p in PACKAGE.rglob("*") if p.suffix in (".py", ".html")]
    found = [
        f"{p.relative_to(PACKAGE)}:{n}: {line.strip()}"
        for p in files
        if p.parent.name != "governance" and "migrations" not in p.parts
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if ROLE_TEST.search(line)
    ]
    assert found == []


def test_the_role_check_sees_one():
    for text in (
        "{% if user.role == 'admin' %}",
        "if user.role not in (Role.SUPERVISOR, Role.ADMIN):",
    ):
        assert ROLE_TEST.search(text), text
    assert not ROLE_TEST.search("{{ user.role | t }}")


# the root holds the foundations only; every other module lives in the folder of its layer
ROOT_MODULES = {
    "__main__",
    "cli",
    "config",
    "context",
    "errors",
    "jobqueue",
    "logs",
    "store",
    "telemetry",
    "vocabulary",
}
# the layers, top down: a module imports from its own layer or those below it
LAYERS = (
    ("callscope.web", "callscope.cli", "callscope.__main__", "callscope.demo"),
    ("callscope.ops",),
    ("callscope.processing",),
    ("callscope.review",),
    ("callscope.governance",),
    ("callscope",),  # foundations: the root's modules, db/, i18n/ — and speech/, measures/ beside
)


def layer(module: str) -> int:
    for rank, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return rank
    raise AssertionError(module)


def test_the_root_holds_only_the_foundations():
    root = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    assert root == ROOT_MODULES
    assert len(ROOT_MODULES) <= 10


def test_each_layer_imports_only_its_own_or_those_below():
    edges = graph()
    upward = sorted(
        f"{name} → {target}"
        for name, targets in edges.items()
        for target in targets
        if layer(target) < layer(name)
    )
    assert upward == []
    assert layer("callscope.review.refresh") > layer("callscope.processing.results")


def test_tests_and_benchmarks_import_in_one_direction():
    """Benchmarks may reuse the tests' measuring kits; tests never import a benchmark."""
    tests = Path(__file__).parent
    found = [
        f"{p.relative_to(tests.parent)}:{n}"
        for p in tests.rglob("*.py")
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if re.match(r"\s*(from|import) benchmarks\b", line)
    ]
    assert found == []
