"""The documentation site renders: no Sphinx role printed literally, every extra in the install table.

The built site is read from ``site/`` when it is newer than every page, docstring and mkdocs.yml
(CI runs ``make docs`` before ``make test``); otherwise the site is built into a temporary folder
with ``mkdocs build --strict``, which needs the ``docs`` extra.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "movierec"
#: A Sphinx role as a docstring writes it; in HTML, Markdown has turned its backticks into <code>.
ROLE = re.compile(r":(?:py:)?(?:meth|class|func|attr|mod|data|exc|obj):(?:`|<code>)")


def _sources() -> list[Path]:
    return [ROOT / "mkdocs.yml", *(ROOT / "docs").rglob("*.md"), *PACKAGE.rglob("*.py")]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """Return a built site that reflects the current pages and docstrings."""
    built = ROOT / "site"
    index = built / "index.html"
    if index.is_file() and index.stat().st_mtime >= max(p.stat().st_mtime for p in _sources()):
        return built
    mkdocs = Path(sys.executable).with_name("mkdocs")
    if not mkdocs.is_file():
        pytest.skip("site/ is absent or older than the docs, and mkdocs is not installed: run make docs")
    out = tmp_path_factory.mktemp("site")
    run = subprocess.run(check=False, args=[str(mkdocs), "build", "--strict", "--quiet", "-d", str(out)], cwd=ROOT,
                         capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"}, timeout=600)
    assert run.returncode == 0, f"mkdocs build --strict failed:\n{run.stderr[-4000:]}"
    return out


def _raw_roles(text: str) -> list[str]:
    return [text[max(0, m.start() - 40):m.end() + 30] for m in ROLE.finditer(text)]


def test_the_role_pattern_finds_a_role_in_a_docstring_and_in_html():
    assert _raw_roles("see :meth:`fit` and :class:`~movierec.EASE`")
    assert _raw_roles("<p>see :meth:<code>fit</code> and :py:func:<code>run</code></p>")
    assert not _raw_roles("see [`fit`][movierec.Recommender.fit] and `run`, at 10:30")


def test_no_docstring_uses_a_sphinx_role():
    """mkdocstrings prints ``:meth:`fit``` as it is: docstrings link with [`fit`][movierec.Recommender.fit]."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                hits = _raw_roles(node.value.value)
                if hits:
                    found[f"{path.relative_to(ROOT)}:{node.lineno}"] = hits
    assert found == {}


@pytest.mark.slow
def test_no_page_of_the_built_site_shows_a_raw_role(site):
    pages = sorted(site.rglob("*.html"))
    assert len(pages) > 20, f"{site} holds only {len(pages)} pages"
    found = {str(page.relative_to(site)): hits for page in pages if (hits := _raw_roles(page.read_text()))}
    assert found == {}


@pytest.mark.slow
def test_the_api_pages_link_their_cross_references(site):
    """A converted reference became a link to the object's heading, not plain text."""
    text = (site / "reference" / "models" / "index.html").read_text()
    assert re.search(r'<a[^>]+href="[^"]*#movierec\.Recommender\.predict"', text)


@pytest.mark.slow
def test_the_core_models_have_a_page_in_the_site(site):
    text = (site / "models" / "core-models" / "index.html").read_text()
    for name in ("EASE", "Popularity", "BiasedBaseline"):
        assert f"<h2 id=\"{name.lower()}\"" in text, name


def test_every_extra_is_in_the_install_table():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    table = (ROOT / "docs" / "index.md").read_text()
    assert {name for name in extras if f"| `{name}` |" not in table} == set()
