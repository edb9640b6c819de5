"""The sample output of ``make run`` in README.md, taken from a real run.

``python -m tools.readme_sample`` runs ``make run``'s command (``movierec recommend --dataset ml-100k
--n 10 --out out``, a few minutes), and rewrites the fenced block between the markers
``<!-- make-run:start -->`` and ``<!-- make-run:end -->`` with what it printed: the table, then the
lines that follow it, less the ones named in `TRIMMED`. ``--from FILE`` takes a saved stdout
instead of running. tests/cli/test_readme_sample.py checks that the block still has the shape of
what the command prints today (the table's header, the number of cells, how each line begins).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
START, END = "<!-- make-run:start -->", "<!-- make-run:end -->"
#: ``make run``'s command (Makefile), as the README shows it.
COMMAND = ["recommend", "--dataset", "ml-100k", "--n", "10", "--out", "out"]
#: Lines of the run left out of the README (they repeat what the table or the next line says).
TRIMMED = ("hold-out nDCG@10 of each member",)


def sample(stdout: str) -> list[str]:
    """Return the lines of a run's stdout that the README shows: the table and what follows it."""
    lines = stdout.rstrip("\n").splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("| model"))
    return [line.rstrip() for line in lines[first:] if not line.startswith(TRIMMED)]


def block(text: str) -> list[str]:
    """Return the lines inside the fenced block between the markers of ``text`` (the README)."""
    inside = text.split(START, 1)[1].split(END, 1)[0].strip("\n").splitlines()
    if not inside or not inside[0].startswith("```") or inside[-1] != "```":
        raise ValueError(f"README.md: the lines between {START} and {END} must be one fenced block")
    return inside[1:-1]


def with_block(text: str, lines: list[str]) -> str:
    """Return ``text`` with the block between the markers replaced by ``lines``."""
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    return f"{head}{START}\n```\n" + "\n".join(lines) + f"\n```\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="source", type=Path, help="a saved stdout of make run, instead of running it")
    args = parser.parse_args(argv)
    if args.source is not None:
        stdout = args.source.read_text()
    else:
        run = subprocess.run([sys.executable, "-m", "movierec", *COMMAND], cwd=ROOT, capture_output=True, text=True,
                             check=False)
        if run.returncode != 0:
            sys.stderr.write(run.stderr)
            return run.returncode
        stdout = run.stdout
    README.write_text(with_block(README.read_text(), sample(stdout)))
    print(f"rewrote the make run block of {README.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
