"""What the commands print: one-line errors, Markdown tables, titled lists and progress bars."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pandas as pd

from movierec.pipeline import Progress

__all__ = ["markdown_table", "one_line", "progress_bars", "with_titles"]


def one_line(error: object) -> str:
    """Return the text of ``error`` (or a warning message) on one line."""
    return " ".join(str(error).split())


def markdown_table(frame: pd.DataFrame) -> str:
    """Return ``frame`` (index included) as an aligned Markdown table of strings."""
    header = [frame.index.name or "", *map(str, frame.columns)]
    rows = [[str(index), *map(str, row)] for index, row in zip(frame.index, frame.itertuples(index=False))]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                 for i, (c, w) in enumerate(zip(cells, widths))) + " |"

    rule = "|" + "|".join(("-" * (w + 2)) if i == 0 else ("-" * (w + 1) + ":") for i, w in enumerate(widths)) + "|"
    return "\n".join([line(header), rule, *map(line, rows)])


def with_titles(top: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    """Return ``top`` as ``userId, movieId, title, score, rank``, sorted by user then rank."""
    frame = top.merge(items[["movieId", "title"]], on="movieId", how="left", validate="many_to_one")
    return frame[["userId", "movieId", "title", "score", "rank"]].sort_values(["userId", "rank"], kind="stable")


@contextmanager
def progress_bars(quiet: bool) -> Iterator[Progress]:
    """Yield a `movierec.pipeline.Progress` that draws one tqdm bar per stage on stderr.

    Bars are hidden with ``quiet`` and when stderr is not a terminal (CI logs, pipes).
    """
    from tqdm import tqdm

    bars: dict[str, Any] = {}

    def progress(stage: str, done: int, total: int, detail: str) -> None:
        bar = bars.get(stage)
        if bar is None:
            bar = bars[stage] = tqdm(total=total, desc=stage, unit="step", disable=True if quiet else None,
                                     leave=False, file=sys.stderr, dynamic_ncols=True)
        bar.set_postfix_str(detail)
        bar.update(done - bar.n)

    try:
        yield progress
    finally:
        for bar in bars.values():
            bar.close()
