"""The report's figures: matplotlib (Agg backend) drawn into base64 PNG strings."""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from movierec._core.extras import require

__all__ = ["grouped_bars", "score_histograms", "weight_bars"]

_DPI = 96


def _pyplot() -> Any:
    matplotlib = require("matplotlib", "report", purpose="the HTML report")
    # Agg draws to memory only: no display, no GUI toolkit, same output everywhere.
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _png(figure: Any) -> str:
    """Return ``figure`` as a base64 PNG and close it."""
    plt = _pyplot()
    buffer = io.BytesIO()
    try:
        figure.tight_layout()
        figure.savefig(buffer, format="png", dpi=_DPI)
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


def weight_bars(names: Sequence[str], weights: np.ndarray, errors: np.ndarray) -> str:
    """Return a PNG of each member's weight ``1 / e_m``, labelled with its share and error."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(7.5, 3.0))
    shares = weights / weights.sum()
    bars = axis.barh(list(names), weights, color="tab:green")
    axis.bar_label(
        bars, labels=[f"{w:.3f}  ({s:.0%}; RMSE {e:.4f})" for w, s, e in zip(weights, shares, errors)],
        fontsize=8, padding=3,
    )
    axis.invert_yaxis()
    axis.set_xlabel("weight 1 / RMSE on the hold-out")
    axis.set_title("ensemble weights")
    axis.margins(x=0.45)
    axis.spines[["top", "right"]].set_visible(False)
    return _png(figure)
