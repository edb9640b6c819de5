"""The package's shape: no import circles, small modules, and a public surface the docs list."""

from __future__ import annotations

import ast
from pathlib import Path

import movierec
from tools.module_map import cycles as _cycles
from tools.module_map import graph as _graph
from tools.module_map import page_with_map

PACKAGE = Path(movierec.__file__).parent
#: The top level: the public API, the contract and the main job; everything else lives in a folder per job.
MAX_TOP_LEVEL = 12


def test_the_cycle_finder_finds_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c"]]


def test_no_import_circle_inside_the_package():
    assert _cycles(_graph()) == []


def test_the_top_level_holds_few_modules_and_no_private_one_but_the_version():
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL, top
    assert [name for name in top if name.startswith("_") and name not in ("__init__.py", "__main__.py")] == [
        "_version.py"]


def test_every_folder_of_the_package_is_a_package_with_a_docstring():
    import ast

    for folder in (p for p in PACKAGE.rglob("*") if p.is_dir() and p.name != "__pycache__"):
        init = folder / "__init__.py"
        assert init.is_file(), f"{folder} has no __init__.py"
        assert ast.get_docstring(ast.parse(init.read_text())), f"{init} says nothing of its job"


def test_the_module_map_of_the_architecture_page_is_the_code_s():
    page = PACKAGE.parent / "docs" / "architecture.md"
    text = page.read_text()
    assert text == page_with_map(text), "docs/architecture.md's module map is stale: run python -m tools.module_map"


def test_no_module_is_over_450_lines():
    sizes = {str(p.relative_to(PACKAGE)): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}
    assert {k: v for k, v in sizes.items() if v > 450} == {}


def _uncollected_tests(tree: ast.Module) -> list[str]:
    """Return the tests pytest would never run: defined inside a function, or shadowed by a later one."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            found += [f"{sub.name} inside {node.name}" for sub in ast.walk(node)
                      if sub is not node and isinstance(sub, ast.FunctionDef | ast.AsyncFunctionDef)
                      and sub.name.startswith("test")]
    for body in [tree.body] + [node.body for node in ast.walk(tree) if isinstance(node, ast.ClassDef)]:
        names = [node.name for node in body if isinstance(node, ast.FunctionDef | ast.ClassDef)]
        found += [f"{name} defined twice" for name in sorted(set(names))
                  if names.count(name) > 1 and name.lower().startswith("test")]
    return found


def test_the_uncollected_test_finder_finds_nested_and_shadowed_tests():
    tree = ast.parse("def test_a():\n    def test_b(): pass\ndef test_c(): pass\ndef test_c(): pass\n")
    assert _uncollected_tests(tree) == ["test_b inside test_a", "test_c defined twice"]


def test_every_test_is_collected():
    tests = Path(__file__).parent
    found = {str(path.relative_to(tests)): _uncollected_tests(ast.parse(path.read_text()))
             for path in sorted(tests.rglob("*.py"))}
    assert not {path: names for path, names in found.items() if names}
