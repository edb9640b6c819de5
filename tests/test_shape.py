"""The package's shape: no import circles, small modules, and a public surface the docs list."""

from __future__ import annotations

import ast
from pathlib import Path

import movierec

PACKAGE = Path(movierec.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, name: str) -> set[str]:
    """Return the movierec modules ``path`` imports when it is loaded: not under ``if TYPE_CHECKING``,
    not inside a function (a deferred import runs on the call, after every module has loaded)."""
    tree = ast.parse(path.read_text())
    skipped = {
        id(child)
        for node in ast.walk(tree)
        if (isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test))
        or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        for stmt in node.body
        for child in ast.walk(stmt)
    }
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}
    return {m for m in found if m.startswith("movierec")}


def _graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in files.items():
        targets = {t for t in _imports(path, name) if t in files and t != name}
        # Importing a package's own parent (movierec.x -> movierec) loads it anyway: not an edge.
        graph[name] = {t for t in targets if not name.startswith(t + ".")}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Return the strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, result, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                result.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return result


def test_the_cycle_finder_finds_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c"]]


def test_no_import_circle_inside_the_package():
    assert _cycles(_graph()) == []


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
