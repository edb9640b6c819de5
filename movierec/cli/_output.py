"""What the commands print: one-line errors, Markdown tables, metric names, titled lists and progress bars."""

from __future__ import annotations

import re
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pandas as pd

from movierec.pipeline import Progress

__all__ = ["TICK_SECONDS", "markdown_table", "metric_label", "one_line", "printed_metrics", "progress_bars",
           "with_titles"]

#: How often the bars are redrawn while nothing reports progress (a member's fit, EASE's tuning),
#: so that their elapsed time keeps moving.
TICK_SECONDS = 1.0

#: Printed names of the metrics: data files keep the lower-case keys of movierec.metrics.
_LABELS = {"rmse": "RMSE", "mae": "MAE", "ndcg": "nDCG", "map": "MAP"}


def one_line(error: object) -> str:
    """Return the text of ``error`` (or a warning message) on one line."""
    return " ".join(str(error).split())


def metric_label(key: str) -> str:
    """Return the printed name of a metric key: ``ndcg@10`` -> ``nDCG@10``, ``rmse`` -> ``RMSE``; others unchanged."""
    match = re.fullmatch(r"([a-z_]+)(@\d+)?", key)
    if match is None:
        return key
    return _LABELS.get(match.group(1), match.group(1)) + (match.group(2) or "")


def printed_metrics(frame: pd.DataFrame) -> pd.DataFrame:
    """Return ``frame`` with its metric columns under their printed names (`metric_label`)."""
    return frame.rename(columns=metric_label)


def markdown_table(frame: pd.DataFrame, left: int = 1) -> str:
    """Return ``frame`` (index included) as an aligned Markdown table of strings.

    The first ``left`` columns (the index is the first) are aligned left, as names; the others right.
    """
    header = [frame.index.name or "", *map(str, frame.columns)]
    rows = [[str(index), *map(str, row)] for index, row in zip(frame.index, frame.itertuples(index=False))]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) if i < left else c.rjust(w)
                                 for i, (c, w) in enumerate(zip(cells, widths))) + " |"

    rule = "|" + "|".join(("-" * (w + 2)) if i < left else ("-" * (w + 1) + ":") for i, w in enumerate(widths)) + "|"
    return "\n".join([line(header), rule, *map(line, rows)])


def with_titles(top: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    """Return ``top`` as ``userId, movieId, title, score, rank``, sorted by user then rank."""
    frame = top.merge(items[["movieId", "title"]], on="movieId", how="left", validate="many_to_one")
    return frame[["userId", "movieId", "title", "score", "rank"]].sort_values(["userId", "rank"], kind="stable")


@contextmanager
def progress_bars(quiet: bool, tick: float = TICK_SECONDS) -> Iterator[Progress]:
    """Yield a `movierec.pipeline.Progress` that draws one tqdm bar per stage on stderr.

    Until the first stage reports, a ``preparing`` bar stands for the work before it (tuning EASE);
    a thread redraws the open bars every ``tick`` seconds, so the elapsed time of the current stage
    moves during a long step that reports nothing (one member's fit), while the log lines of the
    stages print above the bars. Bars are hidden with ``quiet`` and when stderr is not a terminal
    (CI logs, pipes).
    """
    from tqdm import tqdm

    bars: dict[str, Any] = {}
    lock = threading.Lock()
    stop = threading.Event()

    def open_bar(stage: str, total: int | None, **options: Any) -> Any:
        return tqdm(total=total, desc=stage, unit="step", disable=True if quiet else None, leave=False,
                    file=sys.stderr, dynamic_ncols=True, **options)

    preparing = open_bar("preparing", None, bar_format="{desc} [{elapsed}]")

    def progress(stage: str, done: int, total: int, detail: str) -> None:
        with lock:
            preparing.close()  # the first stage has begun (closing twice does nothing)
            bar = bars.get(stage)
            if bar is None:
                bar = bars[stage] = open_bar(stage, total)
            bar.set_postfix_str(detail, refresh=False)
            bar.update(done - bar.n)

    def redraw() -> None:
        while not stop.wait(tick):
            with lock:
                for bar in (preparing, *bars.values()):
                    if not bar.disable:  # tqdm disables a bar it closes
                        bar.refresh()

    ticker = None
    if not preparing.disable:
        ticker = threading.Thread(target=redraw, name="movierec-progress", daemon=True)
        ticker.start()
    try:
        yield progress
    finally:
        stop.set()
        if ticker is not None:
            ticker.join(max(1.0, 2 * tick))
        with lock:
            for bar in (preparing, *bars.values()):
                bar.close()
