"""The self-contained HTML report of a run.

[`ReportData`][movierec.report.ReportData] holds what one run of
``movierec recommend`` produced and [`write_report`][movierec.report.write_report] renders it as one HTML file: matplotlib
PNGs embedded as base64, so the file can be mailed or archived alone.

The metrics table comes from [`movierec.metrics.evaluate`][movierec.metrics.evaluate]. Needs matplotlib
(``pip install 'movierec[report]'``) for [`write_report`][movierec.report.write_report] only.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from movierec._core.output import write_text
from movierec.base import Recommender
from movierec.ensemble import WeightedEnsemble

__all__ = ["ReportData", "render_report", "write_report"]

logger = logging.getLogger(__name__)


@dataclass
class ReportData:
    """What one run produced, as [`write_report`][movierec.report.write_report] needs it.

    Attributes
    ----------
    dataset : str
        The dataset name, e.g. ``"ml-100k"``.
    split : str
        How train and test were made, e.g. ``"official fold u1"``.
    train, test : pandas.DataFrame
        The ratings frames the models were fitted and evaluated on.
    titles : pandas.Series
        Movie titles indexed by movieId.
    members : mapping of str to Recommender
        A name for each of the ensemble's fitted members: its ``models_``, in that order.
    ensemble : WeightedEnsemble
        The fitted ensemble (its ``errors_``, ``weights_``, ``score_mean_``, ``score_std_``).
    metrics : pandas.DataFrame
        The table of `evaluate`, members then ``"ensemble"``.
    top : mapping of str to pandas.DataFrame
        Top-N lists by model name (``"ensemble"`` included), at least 5 ranks each.
    k : int
        The cut-off used for the ranking metrics in ``metrics``.
    users : sequence
        The users whose lists the report shows.
    settings : mapping of str to str
        Free-form run settings shown in the report's header (ensemble mode, seed, timings...).
    seed : int
        Seeds the sample of (user, movie) pairs of the score distributions.
    task : {"rating", "ranking"}
        What the run was for: the metrics section shows rating errors and ranking, or ranking only.
    """

    dataset: str
    split: str
    train: pd.DataFrame
    test: pd.DataFrame
    titles: pd.Series
    members: Mapping[str, Recommender]
    ensemble: WeightedEnsemble
    metrics: pd.DataFrame
    top: Mapping[str, pd.DataFrame]
    k: int = 10
    users: Sequence[Any] = (1, 2, 3)
    settings: Mapping[str, str] = field(default_factory=dict)
    seed: int = 0
    task: str = "rating"

    def __post_init__(self) -> None:
        # The ensemble works on clones of the models it was given: naming those would show unfitted models.
        fitted = list(self.ensemble.models_)
        given = list(self.members.values())
        if len(given) != len(fitted) or any(a is not b for a, b in zip(given, fitted)):
            raise ValueError("ReportData.members must name the ensemble's fitted members, ensemble.models_, in order")


def render_report(data: ReportData) -> str:
    """Return the report of ``data`` as one HTML document with its images embedded."""
    from movierec.report._html import render

    return render(data)


def write_report(data: ReportData, path: str | Path) -> Path:
    """Write the report of ``data`` to the file ``path`` (parent folders created) and return it."""
    path = Path(path)
    document = render_report(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, document)  # whole or not at all: a failed write keeps an earlier report
    logger.info("wrote %s (%d kB)", path, len(document) // 1024)
    return path
