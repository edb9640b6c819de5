"""README's sample output of ``make run`` has the shape of what ``movierec recommend`` prints today.

The block itself comes from a real run (``python -m tools.readme_sample``); this test runs the same
command on a small input (the Popularity member only, on ml-100k's u1) and compares what does not
depend on the members: the table's header, the number of cells of each row, and how each line
after the table begins.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tools.readme_sample import README, block, sample

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.realdata


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def _opening(line: str) -> str:
    """Return a line's first words, up to one with a number, path or colon: ``official fold``, ``wrote``, ``done in``."""
    words = []
    for word in line.split():
        if not re.fullmatch(r"[A-Za-z-]+", word):
            break
        words.append(word)
    return " ".join(words)


@pytest.fixture(scope="module")
def printed(tmp_path_factory, data_home) -> list[str]:
    out = tmp_path_factory.mktemp("run") / "out"
    run = subprocess.run(check=False, args=[sys.executable, "-m", "movierec", "recommend", "--dataset", "ml-100k", "--n", "10",
                          "--models", "pop", "--out", str(out)], cwd=ROOT, capture_output=True, text=True,
                         timeout=600, env={**os.environ, "MOVIEREC_DATA": str(data_home)})
    assert run.returncode == 0, run.stderr
    return sample(run.stdout)


def test_the_readme_table_has_the_printed_header_and_cells(printed):
    shown = block(README.read_text())
    assert shown[0] == printed[0]  # the header, whatever the members
    assert shown[1] == re.sub(r"-+", lambda m: "-" * len(m.group()), shown[1])
    width = len(_cells(printed[0]))
    table = [line for line in shown if line.startswith("|")]
    assert all(len(_cells(line)) == width for line in table)
    assert _cells(table[2])[0] == "popularity" and _cells(table[-1])[0] == "ensemble"


def test_every_line_after_the_readme_table_begins_as_a_printed_one(printed):
    after = [line for line in block(README.read_text()) if not line.startswith("|") and line]
    printed_openings = {_opening(line) for line in printed if not line.startswith("|") and line}
    assert after, "the README shows no line after the table"
    assert {_opening(line) for line in after} <= printed_openings
