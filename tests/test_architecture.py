"""The package's shape holds (issue 10): rooms that import only downwards, short modules
and functions, and the run-directory contract written in one place only."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from launcher import contract

PACKAGE = Path(__file__).resolve().parents[1] / "launcher"
MODULES = sorted(PACKAGE.rglob("*.py"))
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 50
# Lower layers never import higher ones (a module may import its own layer).
LAYERS = ["contract", "errors", "schema", "files", "training", "results", "cluster", "cli"]


def layer_of(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "launcher" or len(parts) < 2 or parts[1] not in LAYERS:
        return None  # the package's entry points and its __version__
    return LAYERS.index(parts[1])


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    return ".".join(rel.parts).removesuffix(".__init__")


def imports_of(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names]
    return [name for name in found if name.startswith("launcher.")]


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_imports_point_downwards(path):
    own = layer_of(module_name(path))
    if own is None:
        return
    upward = [name for name in imports_of(path)
              if (layer := layer_of(name)) is not None and layer > own]
    assert not upward, f"{module_name(path)} ({LAYERS[own]}) imports a higher layer: {upward}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_module_is_short(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_MODULE_LINES, f"{module_name(path)} has {lines} lines"


def function_body_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines from the first statement of the body to the end (the signature, where CLI
    options are declared, is not counted; nor is the docstring)."""
    body = node.body
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None),
                                                               ast.Constant):
        body = body[1:] or body
    return node.end_lineno - body[0].lineno + 1


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_functions_are_short(path):
    tree = ast.parse(path.read_text())
    long = [f"{node.name} ({function_body_lines(node)} lines)" for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and function_body_lines(node) > MAX_FUNCTION_LINES]
    assert not long, f"{module_name(path)}: {', '.join(long)}"


# Every string of the contract, less three plain words that other code uses in their plain
# sense ("nodes" of a role, a "token" of text, the settings field "code"); their paths come
# from RunPaths all the same.
CONTRACT_STRINGS = {
    value for name, value in vars(contract).items()
    if name.isupper() and isinstance(value, str)
    and name not in ("NODES_DIR", "TOKEN_FILE", "CODE_DIR")
}


@pytest.mark.parametrize("path", [p for p in MODULES if p.name != "contract.py"],
                         ids=lambda p: module_name(p))
def test_contract_constants_are_not_written_as_literals(path):
    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef,
                                       ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)}
    found = sorted({f"{node.value!r} (line {node.lineno})" for node in ast.walk(tree)
                    if isinstance(node, ast.Constant) and id(node) not in docstrings
                    and (node.value in CONTRACT_STRINGS or node.value == contract.EXIT_INTERRUPTED
                         and not isinstance(node.value, bool))})
    assert not found, f"{module_name(path)} spells contract constants: {', '.join(found)}"


def test_the_architecture_page_names_every_room():
    page = (PACKAGE.parent / "docs" / "architecture.md").read_text()
    rooms = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    for room in rooms:
        assert f"launcher/{room}/" in page, f"docs/architecture.md does not describe {room}/"
    for module in MODULES:
        name = str(module.relative_to(PACKAGE.parent))
        if module.name != "__init__.py":
            assert module.name in page, f"docs/architecture.md does not mention {name}"
