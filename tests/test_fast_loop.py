"""The fast loop (``make test-fast``: ``pytest -m "not slow and not spark"``) reaches every module of movierec.

A test file counts when it holds at least one test marked neither slow nor spark (a JVM to start:
Spark runs in ``make test``); the modules it imports (at its top or inside its tests), and everything
those import when they load, are reached. Read with ``ast``, as tools/module_map.py reads the
package: nothing is run, so the check takes about a second.
A module no fast test file reaches is only tested by slow tests, or not at all.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import movierec
from tools.module_map import graph, imports, modules

TESTS = Path(__file__).resolve().parent
#: The marks ``make test-fast`` leaves out (its -m expression).
LEFT_OUT = {"slow", "spark"}
#: Modules the fast loop runs in a child process, not by importing them: ``python -m movierec``.
RUN_AS_COMMAND = {"movierec.__main__": '"-m", "movierec"'}


def _marks(decorators: list[ast.expr]) -> set[str]:
    """Return the names X of the ``pytest.mark.X`` decorators (called or not) in ``decorators``."""
    found = set()
    for decorator in decorators:
        node = decorator.func if isinstance(decorator, ast.Call) else decorator
        text = ast.unparse(node)
        if text.startswith("pytest.mark."):
            found.add(text.removeprefix("pytest.mark.").split(".")[0])
    return found


def _module_marks(tree: ast.Module) -> set[str]:
    """Return the marks a module's ``pytestmark = ...`` gives every test in it."""
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "pytestmark" for t in node.targets):
            values = node.value.elts if isinstance(node.value, ast.List | ast.Tuple) else [node.value]
            return _marks(values)
    return set()


def fast_tests(tree: ast.Module) -> list[str]:
    """Return the names of the tests of a test module that no mark of ``LEFT_OUT`` reaches."""
    module = _module_marks(tree)
    found = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test"):
            if not LEFT_OUT & (module | _marks(node.decorator_list)):
                found.append(node.name)
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            outer = module | _marks(node.decorator_list)
            found += [f"{node.name}.{item.name}" for item in node.body
                      if isinstance(item, ast.FunctionDef) and item.name.startswith("test")
                      and not LEFT_OUT & (outer | _marks(item.decorator_list))]
            if any(isinstance(base, ast.Name) and base.id == "RecommenderContract" for base in node.bases) \
                    and not LEFT_OUT & outer:
                found.append(f"{node.name} (RecommenderContract)")
    return found


def _as_module(name: str, known: dict[str, Path]) -> str | None:
    """Return the module ``name`` names: itself, a lazy model name's module, or the module a name is from."""
    if name in known:
        return name
    lazy = getattr(movierec, "_LAZY", {})
    if name.startswith("movierec.") and name.removeprefix("movierec.") in lazy:
        return lazy[name.removeprefix("movierec.")]
    parent = name.rpartition(".")[0]
    return parent if parent in known else None


def _with_parents(name: str) -> set[str]:
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts) + 1)}


@functools.cache
def reached_by_fast_tests() -> tuple[set[str], dict[str, list[str]]]:
    """Return the modules the fast test files reach, and each fast test file's fast tests."""
    known, edges = modules(), graph(load_time=True)
    fast, roots = {}, set()
    for path in sorted(TESTS.rglob("*.py")):
        tree = ast.parse(path.read_text())
        is_test_file = path.name.startswith("test_")
        if is_test_file:
            fast[str(path.relative_to(TESTS))] = fast_tests(tree)
            if not fast[str(path.relative_to(TESTS))]:
                continue
        # conftest.py and helpers (tests/serve/_serve_http.py) load for the fast tests that use them
        roots |= {m for name in imports(path, load_time=False) if (m := _as_module(name, known))}
        roots |= {module for module, marker in RUN_AS_COMMAND.items() if is_test_file and marker in path.read_text()}
    reached, todo = set(), [p for root in roots for p in _with_parents(root)]
    while todo:
        module = todo.pop()
        if module in reached or module not in known:
            continue
        reached.add(module)
        todo += [p for child in edges.get(module, ()) for p in _with_parents(child)]
    return reached, fast


def test_the_fast_test_finder_sees_slow_and_spark_marks_on_functions_classes_and_modules():
    source = (
        "import pytest\n"
        "def test_a(): pass\n"
        "@pytest.mark.slow\ndef test_b(): pass\n"
        "@pytest.mark.parametrize('x', [1])\n@pytest.mark.spark\ndef test_c(x): pass\n"
        "@pytest.mark.slow\nclass TestD:\n    def test_e(self): pass\n"
        "class TestF:\n    @pytest.mark.slow\n    def test_g(self): pass\n    def test_h(self): pass\n"
    )
    assert fast_tests(ast.parse(source)) == ["test_a", "TestF.test_h"]
    assert fast_tests(ast.parse("import pytest\npytestmark = [pytest.mark.slow]\ndef test_a(): pass\n")) == []


def test_every_module_of_movierec_is_reached_by_a_fast_test():
    reached, _ = reached_by_fast_tests()
    missing = sorted(set(modules()) - reached)
    assert missing == [], f"no test of make test-fast imports these modules (mark fewer tests slow): {missing}"


def test_every_folder_of_the_package_has_a_mirrored_test_folder_with_a_fast_test():
    _, fast = reached_by_fast_tests()
    package = Path(movierec.__file__).parent
    folders = sorted(p.name for p in package.iterdir() if (p / "__init__.py").is_file())
    without = [name for name in folders
               if not any(tests for path, tests in fast.items() if Path(path).parts[0] == name)]
    assert without == [], f"tests/<folder>/ has no test of make test-fast for these movierec folders: {without}"
