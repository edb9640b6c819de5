"""The report's HTML pieces: escaping, tables, embedded images and the names of metrics and errors."""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

__all__ = ["Raw", "e", "error_name", "img", "metric_name", "table"]

_METRIC_NAMES = {"ndcg": "nDCG", "map": "MAP", "precision": "precision", "recall": "recall", "rmse": "RMSE",
                 "mae": "MAE", "coverage": "coverage"}


def e(value: Any) -> str:
    """Return ``value`` as HTML text, quotes escaped too."""
    return html.escape(str(value), quote=True)


def img(png: str, alt: str) -> str:
    """Return an ``<img>`` of the base64 PNG ``png``, as a data: URI."""
    return f'<img src="data:image/png;base64,{png}" alt="{e(alt)}">'


def metric_name(metric: str) -> str:
    """Return how the page writes ``metric``: ``"ndcg@10"`` as ``"nDCG@10"``, ``"rmse"`` as ``"RMSE"``."""
    name, at, k = metric.partition("@")
    return _METRIC_NAMES.get(name, name) + at + k


def error_name(metric: str) -> str:
    """Return the name of the error an ensemble weighted by ``metric`` uses: ``"RMSE"`` or ``"1 − nDCG@10"``."""
    return "RMSE" if metric == "rmse" else f"1 \N{MINUS SIGN} {metric_name(metric)}"


class Raw:
    """Already-escaped HTML for a table cell."""

    def __init__(self, markup: str) -> None:
        self.html = markup


def table(header: Sequence[str], rows: Iterable[Sequence[Any]], *, classes: Sequence[str] = ()) -> str:
    """Return an HTML table; float cells are right-aligned with 4 decimals, `Raw` cells kept as they are."""
    head = "".join(f"<th>{e(h)}</th>" for h in header)
    body = []
    for position, row in enumerate(rows):
        cells = []
        for cell in row:
            if isinstance(cell, (float, np.floating)):
                cells.append('<td class="num">' + ("" if np.isnan(cell) else f"{cell:.4f}") + "</td>")
            elif isinstance(cell, (int, np.integer)):
                cells.append(f'<td class="num">{cell}</td>')
            elif isinstance(cell, Raw):
                cells.append(f"<td>{cell.html}</td>")
            else:
                cells.append(f"<td>{e(cell)}</td>")
        css = f' class="{e(classes[position])}"' if position < len(classes) and classes[position] else ""
        body.append(f"<tr{css}>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
