"""The module map of docs/architecture.md, generated from the code's own imports.

``python -m tools.module_map`` rewrites the part of docs/architecture.md between the markers
``<!-- module-map:start -->`` and ``<!-- module-map:end -->``; ``--check`` exits 1 when the page and
the code differ (tests/test_shape.py runs the same comparison). The reader is Python's ``ast``:
nothing in the package is imported.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "movierec"
PAGE = ROOT / "docs" / "architecture.md"
START, END = "<!-- module-map:start -->", "<!-- module-map:end -->"
#: What any module may use; left out of the diagram's arrows (the table lists every import).
FOUNDATION = ("movierec._core", "movierec.exceptions", "movierec._version")
#: The diagram's groups: box prefix -> group. A box is a top-level module or package, or one model.
GROUPS = {
    "Entry points": ("movierec", "movierec.cli", "movierec.pipeline", "movierec.report", "movierec.serve",
                     "movierec.testing", "movierec.tracking"),
    "Models": ("movierec.models", "movierec.ensemble"),
    "Data and backends": ("movierec.data", "movierec.metrics", "movierec.model_card", "movierec.sagemaker",
                          "movierec.spark"),
    "The contract": ("movierec.base", "movierec.registry"),
}


def module_name(path: Path) -> str:
    """Return the dotted name of the module file ``path``."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    """Return every module of the package by dotted name."""
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(path: Path, *, load_time: bool) -> set[str]:
    """Return the movierec names ``path`` imports, never under ``if TYPE_CHECKING``.

    With ``load_time``, only the imports that run when the module loads (not inside a function:
    a deferred import runs on the call, after every module has loaded).
    """
    tree = ast.parse(path.read_text())
    skipped = {
        id(child)
        for node in ast.walk(tree)
        if (isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test))
        or (load_time and isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef))
        for stmt in node.body
        for child in ast.walk(stmt)
    }
    name = module_name(path)
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
    return {m for m in found if m == "movierec" or m.startswith("movierec.")}


def graph(*, load_time: bool = True) -> dict[str, set[str]]:
    """Return module -> the movierec modules it imports (not its own parent packages)."""
    files = modules()
    result = {}
    for name, path in files.items():
        targets = {t for t in imports(path, load_time=load_time) if t in files and t != name}
        # Importing a package's own parent (movierec.x -> movierec) loads it anyway: not an edge.
        result[name] = {t for t in targets if not name.startswith(t + ".")}
    return result


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Return the strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    result: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
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

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return result


def box(module: str) -> str | None:
    """Return the diagram box of ``module`` (None for the foundation)."""
    if module.startswith(FOUNDATION):
        return None
    parts = module.split(".")
    if len(parts) == 1:
        return module
    if parts[1] == "models" and len(parts) > 2:
        return ".".join(parts[:3])
    return ".".join(parts[:2])


def _job(path: Path) -> str:
    """Return the first paragraph of the module's docstring, on one line."""
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    return " ".join(doc.split("\n\n")[0].split()).replace("|", "\\|")


def _short(module: str) -> str:
    return module.removeprefix("movierec.") if module != "movierec" else "movierec"


def render() -> str:
    """Return the generated block: the diagram of boxes, the table of every module, the circles."""
    files = modules()
    every = graph(load_time=False)
    edges = sorted({(box(a), box(b)) for a, targets in every.items() for b in targets
                    if box(a) and box(b) and box(a) != box(b)})
    boxes = sorted({b for b in map(box, files) if b})
    lines = [START, "```mermaid", "flowchart TD"]
    for group, prefixes in GROUPS.items():
        members = [b for b in boxes if b in prefixes or b.startswith(tuple(p + "." for p in prefixes if p != "movierec"))]
        lines.append(f'  subgraph {group.split()[0].lower()} ["{group}"]')
        lines += [f'    {_id(b)}["{_short(b)}"]' for b in members]
        lines.append("  end")
    lines += [f"  {_id(a)} --> {_id(b)}" for a, b in edges]
    lines += ["```", "", "| module | job (its docstring's first paragraph) | imports (movierec modules) |",
              "| --- | --- | --- |"]
    for name, path in files.items():
        targets = ", ".join(f"`{_short(t)}`" for t in sorted(every[name])) or "—"
        lines.append(f"| `{_short(name)}` | {_job(path)} | {targets} |")
    circles = cycles(graph(load_time=True))
    lines += ["", "Import circles at load time: " + ("none." if not circles else
                                                      "; ".join(" -> ".join(c) for c in circles) + "."), END]
    return "\n".join(lines)


def _id(name: str) -> str:
    return "m_" + name.replace(".", "_")


def page_with_map(text: str) -> str:
    """Return ``text`` (the architecture page) with its module map regenerated."""
    start, end = text.index(START), text.index(END) + len(END)
    return text[:start] + render() + text[end:]


def main(argv: list[str]) -> int:
    text = PAGE.read_text()
    new = page_with_map(text)
    if "--check" in argv:
        if new != text:
            print(f"{PAGE.relative_to(ROOT)}: the module map differs from the code; run python -m tools.module_map")
            return 1
        return 0
    PAGE.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
