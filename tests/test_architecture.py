"""The layout promises of the package, checked on its source: no import cycles, modules of at most
~400 lines, an engine that imports nothing else of loomnet, a training loop that never imports
its runners, and library code that names no command-line flags."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "loomnet"
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def _imports(name: str, path: Path) -> set[str]:
    """Modules of loomnet that ``name`` imports, at module level or in functions (not for type checking)."""
    tree = ast.parse(path.read_text())
    skip = _type_checking_lines(tree)
    is_package = path.name == "__init__.py"
    here = name.split(".") if is_package else name.split(".")[:-1]
    targets = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names if alias.name.startswith("loomnet"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.startswith("loomnet"):
                module = node.module
            else:
                continue
            for alias in node.names:
                sub = f"{module}.{alias.name}"
                targets.add(sub if sub in MODULES else module)
    return {t for t in targets if t in MODULES and t != name}


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _reaches(start: str, goal: str) -> list[str] | None:
    """A path of imports from ``start`` to ``goal``, if there is one."""
    stack, seen = [(start, [start])], set()
    while stack:
        node, path = stack.pop()
        for nxt in GRAPH[node]:
            if nxt == goal:
                return path + [nxt]
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, path + [nxt]))
    return None


def _is_package_of(a: str, b: str) -> bool:
    return b.startswith(a + ".")


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_import_cycle_goes_through(name):
    for nxt in GRAPH[name]:
        back = _reaches(nxt, name)
        # a package importing its own submodules (re-exports) is not a cycle of code
        if back is not None and not any(_is_package_of(x, y) or _is_package_of(y, x)
                                        for x, y in zip([name] + back, back, strict=False)):
            pytest.fail(f"import cycle: {' -> '.join([name] + back)}")


@pytest.mark.parametrize("name", sorted(MODULES))
def test_modules_are_short(name):
    lines = len(MODULES[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines (at most {MAX_LINES})"


def test_the_engine_imports_nothing_else_of_loomnet():
    for name, targets in GRAPH.items():
        if name.startswith("loomnet.engine"):
            outside = {t for t in targets if not t.startswith("loomnet.engine")}
            assert not outside, f"{name} imports {outside}"


def test_the_training_loop_never_imports_its_runners():
    for name, targets in GRAPH.items():
        if name.startswith("loomnet.training"):
            runners = {t for t in targets if t.split(".")[1] in ("parallel", "distributed", "search", "cli", "sklearn")}
            assert not runners, f"{name} imports {runners}"


FLAG = re.compile(r"(?<![\w-])--[a-z][a-z-]+")


@pytest.mark.parametrize("name", sorted(n for n in MODULES if not n.startswith("loomnet.cli")))
def test_library_code_names_no_command_line_flags(name):
    tree = ast.parse(MODULES[name].read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            assert not FLAG.search(node.value), f"{name} line {node.lineno}: {node.value!r}"
