"""The report's figures: matplotlib (Agg backend) drawn into base64 PNG strings.

Every text a figure shows (titles, axis labels, tick and bar labels, legends) is also written into
its PNG as the ``Description`` text chunk, so a figure's words can be searched and tested like the
page's own.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from movierec._core.extras import require

__all__ = ["activity_bars", "figure_text", "grouped_bars", "long_tail_lines", "metric_curves", "overlap_matrix",
           "score_histograms", "weight_bars"]

_DPI = 96


def _pyplot() -> Any:
    matplotlib = require("matplotlib", "report", purpose="the HTML report")
    # Agg draws to memory only: no display, no GUI toolkit, same output everywhere.
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def figure_text(figure: Any) -> str:
    """Return every non-empty text ``figure`` shows, one per line (after ``tight_layout``, which sets
    the tick labels' text as a draw would)."""
    from matplotlib.text import Text

    texts = (artist.get_text() for artist in figure.findobj(Text) if artist.get_visible())
    return "\n".join(dict.fromkeys(text for text in texts if text.strip()))


def _png(figure: Any) -> str:
    """Return ``figure`` as a base64 PNG, its words in the ``Description`` chunk, and close it."""
    plt = _pyplot()
    buffer = io.BytesIO()
    try:
        figure.tight_layout()
        figure.savefig(buffer, format="png", dpi=_DPI, metadata={"Description": figure_text(figure)})
    finally:
        plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def grouped_bars(table: pd.DataFrame, columns: Sequence[str], labels: Sequence[str], title: str) -> str:
    """Return a PNG of ``table[columns]`` as bars grouped by model (the table's index)."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(7.5, 3.4))
    models = [str(name) for name in table.index]
    x = np.arange(len(models))
    width = 0.8 / len(columns)
    for position, (column, label) in enumerate(zip(columns, labels)):
        values = table[column].to_numpy(dtype=float)
        bars = axis.bar(x + (position - (len(columns) - 1) / 2) * width, values, width, label=label)
        axis.bar_label(bars, fmt="%.3f", fontsize=8, padding=2)
    axis.set_xticks(x, models)
    axis.set_title(title)
    axis.margins(y=0.15)
    axis.legend(loc="lower right", fontsize=8)
    axis.spines[["top", "right"]].set_visible(False)
    return _png(figure)


def score_histograms(raw: Mapping[str, np.ndarray], standardized: Mapping[str, np.ndarray]) -> str:
    """Return a PNG of two panels: each member's raw scores, then the same scores standardized."""
    plt = _pyplot()
    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
    for name, values in raw.items():
        left.hist(values[np.isfinite(values)], bins=60, histtype="step", linewidth=1.4, label=name)
    for name, values in standardized.items():
        right.hist(values[np.isfinite(values)], bins=60, histtype="step", linewidth=1.4, label=name)
    left.set_title("before: raw scores $s_m$")
    left.set_xlabel("score")
    right.set_title(r"after: $z_m = (s_m - \mu_m) / \sigma_m$")
    right.set_xlabel("standardized score")
    for axis in (left, right):
        axis.set_ylabel("pairs")
        axis.legend(fontsize=8)
        axis.spines[["top", "right"]].set_visible(False)
    return _png(figure)


def weight_bars(names: Sequence[str], weights: np.ndarray, errors: np.ndarray, error: str, weighting: str) -> str:
    """Return a PNG of each member's weight, labelled with its share and its hold-out ``error``.

    ``error`` names the error, e.g. ``"RMSE"`` or ``"1 − nDCG@10"``; ``weighting`` the weight, e.g.
    ``"weight 1 / (1 − nDCG@10) on the hold-out"``.
    """
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(7.5, 0.6 + 0.55 * len(names)))
    shares = weights / weights.sum()
    bars = axis.barh(list(names), weights, color="tab:green")
    axis.bar_label(
        bars, labels=[f"{w:.3f}  ({s:.0%}; {error} {e:.4f})" for w, s, e in zip(weights, shares, errors)],
        fontsize=8, padding=3,
    )
    axis.invert_yaxis()
    axis.set_xlabel(weighting)
    axis.set_title("ensemble weights")
    axis.margins(x=0.6)
    axis.spines[["top", "right"]].set_visible(False)
    return _png(figure)


def metric_curves(curves: pd.DataFrame) -> str:
    """Return a PNG of two panels, nDCG@k and precision@k against k, one line per model."""
    plt = _pyplot()
    figure, axes = plt.subplots(1, 2, figsize=(9, 3.4), sharex=True)
    for (column, label), axis in zip((("ndcg", "nDCG@k"), ("precision", "precision@k")), axes):
        for name, rows in curves.groupby("model", sort=False):
            axis.plot(rows["k"], rows[column], marker="o", markersize=3, linewidth=1.5, label=str(name))
        axis.set_title(label)
        axis.set_xlabel("k (length of the list)")
        axis.set_xticks(range(0, int(curves["k"].max()) + 1, 5))
        axis.grid(alpha=0.3)
        axis.spines[["top", "right"]].set_visible(False)
    axes[0].legend(fontsize=8)
    return _png(figure)


def activity_bars(table: pd.DataFrame, models: Sequence[str], metric: str) -> str:
    """Return a PNG of ``metric`` per model in bins of users by their training ratings (`by_activity`)."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(9, 3.4))
    x = np.arange(len(table))
    width = 0.8 / max(len(models), 1)
    for position, name in enumerate(models):
        axis.bar(x + (position - (len(models) - 1) / 2) * width, table[name].to_numpy(dtype=float), width,
                 label=str(name))
    axis.set_xticks(x, [f"{b}\n({u:,} users)" for b, u in zip(table["bin"], table["users"])], fontsize=8)
    axis.set_xlabel("ratings in the training part")
    axis.set_ylabel(f"mean {metric}")
    axis.set_title(f"{metric} per user, by how many movies the user rated")
    top = np.nanmax(table[list(models)].to_numpy(dtype=float)) if len(models) else 1.0
    axis.set_ylim(0, (top if np.isfinite(top) and top > 0 else 1.0) * 1.3)
    axis.legend(fontsize=8, ncol=min(len(models), 5), loc="upper left")
    axis.spines[["top", "right"]].set_visible(False)
    return _png(figure)


def long_tail_lines(table: pd.DataFrame, k: int) -> str:
    """Return a PNG of the share of each model's top ``k`` per popularity decile, against the catalogue and test."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(9, 3.4))
    deciles = table.index.to_numpy()
    axis.bar(deciles, table["catalogue"], color="#d9dde5", label="catalogue (movies)")
    axis.plot(deciles, table["test part"], color="black", linestyle="--", marker="s", markersize=4,
              label="test part (ratings)")
    for name in (c for c in table.columns if c not in ("catalogue", "test part")):
        axis.plot(deciles, table[name], marker="o", markersize=3, linewidth=1.5, label=f"{name} (top {k})")
    axis.set_xticks(deciles, [f"{d}" for d in deciles])
    axis.set_xlabel("popularity decile of the catalogue (1 = the 10% most-rated movies)")
    axis.set_ylabel("share")
    axis.yaxis.set_major_formatter(lambda value, _: f"{value:.0%}")
    axis.set_title("where the recommended movies come from")
    axis.legend(fontsize=8)
    axis.spines[["top", "right"]].set_visible(False)
    return _png(figure)


def overlap_matrix(matrix: pd.DataFrame, k: int) -> str:
    """Return a PNG of the models' mean Jaccard overlap of top-``k`` lists, as an annotated heat map."""
    plt = _pyplot()
    size = 1.4 + 0.6 * len(matrix)
    figure, axis = plt.subplots(figsize=(size + 1.0, size))
    image = axis.imshow(matrix.to_numpy(dtype=float), vmin=0, vmax=1, cmap="Blues")
    names = [str(name) for name in matrix.index]
    axis.set_xticks(range(len(names)), names, rotation=30, ha="right")
    axis.set_yticks(range(len(names)), names)
    for i in range(len(names)):
        for j in range(len(names)):
            value = float(matrix.iloc[i, j])
            axis.text(j, i, "" if np.isnan(value) else f"{value:.2f}", ha="center", va="center", fontsize=9,
                      color="white" if value > 0.6 else "black")
    axis.set_title(f"overlap of top-{k} lists (mean Jaccard)")
    figure.colorbar(image, ax=axis, fraction=0.046, pad=0.04)
    return _png(figure)
