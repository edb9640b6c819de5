"""The self-contained HTML report of a run.

[`ReportData`][movierec.report.ReportData] holds what one run of
``movierec recommend`` produced and [`write_report`][movierec.report.write_report] renders it as one HTML file: matplotlib
PNGs embedded as base64, so the file can be mailed or archived alone.

The metrics table comes from [`movierec.metrics.evaluate`][movierec.metrics.evaluate]. Needs matplotlib
(``pip install 'movierec[report]'``) for [`write_report`][movierec.report.write_report] only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from movierec._core.output import write_text
from movierec.base import Recommender
from movierec.ensemble import WeightedEnsemble
from movierec.report._analysis import CURVE_DEPTH, metric_curves, per_user_table
from movierec.report._summary import frame_sha256, run_summary, summary_table

__all__ = ["CURVE_DEPTH", "ReportData", "frame_sha256", "metric_curves", "per_user_table", "render_report",
           "run_summary", "summary_table", "write_report"]

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
        A name for each of the ensemble's fitted members: its ``models_``, in that order (the kept
        ones, with forward selection).
    ensemble : WeightedEnsemble
        The fitted ensemble (its ``errors_``, ``weights_``, ``score_mean_``, ``score_std_``).
    metrics : pandas.DataFrame
        The table of `evaluate`, members then ``"ensemble"``.
    top : mapping of str to pandas.DataFrame
        Top-N lists by model name (``"ensemble"`` included), at least ``max(n, k)`` ranks each;
        the metric@k curves run to their depth, up to `CURVE_DEPTH` (20).
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
    n : int
        The movies shown per user (the run's ``n``).
    names : sequence of str, optional
        Every member the ensemble was given, in the order of its ``models`` (the pipeline's
        ``Result.names``); those not in ``members`` are listed as left out, with their hold-out
        error. None: every member was kept.
    fit_seconds : mapping of str to float
        Each member's fit time by name, shown in the members' table.
    per_user : pandas.DataFrame, optional
        [`per_user_table`][movierec.report.per_user_table] of ``top`` at ``k``, when already
        computed; otherwise the report computes it.
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
    n: int = 5
    names: Sequence[str] | None = None
    fit_seconds: Mapping[str, float] = field(default_factory=dict)
    per_user: pd.DataFrame | None = None

    def __post_init__(self) -> None:
        # The ensemble works on clones of the models it was given: naming those would show unfitted models.
        fitted = list(self.ensemble.models_)
        given = list(self.members.values())
        if len(given) != len(fitted) or any(a is not b for a, b in zip(given, fitted)):
            raise ValueError("ReportData.members must name the ensemble's fitted members, ensemble.models_, in order")
        if self.names is not None and len(self.names) != len(self.ensemble.models):
            raise ValueError(f"ReportData.names must name each of the ensemble's {len(self.ensemble.models)} "
                             f"members, ensemble.models, in order; got {list(self.names)!r}")


def render_report(data: ReportData) -> str:
    """Return the report of ``data`` as one HTML document with its images embedded."""
    from movierec.report._html import render

    return render(data)


def write_report(data: ReportData, path: str | Path) -> Path:
    """Write the report of ``data`` to the file ``path`` (parent folders created) and return it."""
    path = Path(path)
    start = time.perf_counter()
    document = render_report(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, document)  # whole or not at all: a failed write keeps an earlier report
    logger.info("wrote %s (%d kB, rendered in %.1f s)", path, len(document) // 1024, time.perf_counter() - start)
    return path
