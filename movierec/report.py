"""Evaluate fitted models on a test part and write the self-contained HTML report of a run.

:func:`evaluate` gives the table the ``movierec`` command prints (RMSE, MAE and, given top-N lists,
precision@k and nDCG@k per model). :class:`ReportData` holds what one run of
``movierec recommend`` produced and :func:`write_report` renders it as one HTML file: matplotlib
PNGs embedded as base64, so the file can be mailed or archived alone.

Ranking metrics use binary relevance: a movie is relevant to a user when the user rated it in the
test part (``threshold=None``), or rated it at least ``threshold``. Needs matplotlib
(``pip install 'movierec[report]'``) for :func:`write_report` only.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from movierec._validation import ITEM, RATING, USER, check_n, check_pairs
from movierec.base import Recommender
from movierec.ensemble import WeightedEnsemble
from movierec.exceptions import DataValidationError
from movierec.metrics import mae, ranking_metrics, rmse

__all__ = ["ReportData", "evaluate", "render_report", "user_history", "write_report"]

logger = logging.getLogger(__name__)


def evaluate(
    models: Mapping[str, Recommender],
    test: pd.DataFrame,
    *,
    top: Mapping[str, pd.DataFrame] | None = None,
    k: int = 10,
    threshold: float | None = None,
) -> pd.DataFrame:
    """Return one row per model (index: its name) with its test RMSE and MAE, and ranking metrics.

    Parameters
    ----------
    models : mapping of str to Recommender
        Fitted models by name, in the row order wanted.
    test : pandas.DataFrame
        A ratings frame (``userId, movieId, rating``).
    top : mapping of str to pandas.DataFrame, optional
        Each model's ``top_n`` lists (``userId, movieId, score, rank``) with at least ``k`` ranks;
        when given, columns ``precision@k`` and ``ndcg@k`` are added for the models it names.
    k : int, default 10
        The cut-off of the ranking metrics.
    threshold : float, optional
        Minimum test rating of a relevant movie; ``None`` counts every test rating as relevant.

    Returns
    -------
    pandas.DataFrame
        Columns ``rmse``, ``mae``, ``scored`` (test pairs the model could score; the others, whose
        user or movie was unseen in fit, are left out of RMSE and MAE) and, with ``top``,
        ``precision@{k}`` and ``ndcg@{k}``.

    Raises
    ------
    DataValidationError
        If ``test`` is not a ratings frame or a model scores none of its pairs.
    """
    check_pairs(test, name="test")
    if RATING not in test.columns:
        raise DataValidationError(f"test needs a {RATING!r} column; it has {list(test.columns)}")
    k = check_n(k, "k")
    truth = test[RATING].to_numpy(dtype=float)
    rows = []
    for name, model in models.items():
        predicted = model.predict(test).to_numpy(dtype=float)
        scored = np.isfinite(predicted)
        if not scored.any():
            raise DataValidationError(f"model {name!r} scored none of the {len(test)} test pairs")
        row: dict[str, Any] = {
            "model": name,
            "rmse": rmse(truth[scored], predicted[scored]),
            "mae": mae(truth[scored], predicted[scored]),
            "scored": int(scored.sum()),
        }
        if top is not None and name in top:
            ranking = ranking_metrics(top[name], test, k, threshold=threshold)
            row |= {key: ranking[key] for key in (f"precision@{k}", f"ndcg@{k}")}
        rows.append(row)
    return pd.DataFrame(rows).set_index("model")


@dataclass
class ReportData:
    """What one run produced, as :func:`write_report` needs it.

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
        The ensemble's fitted members by name, in the ensemble's order.
    ensemble : WeightedEnsemble
        The fitted ensemble (its ``errors_``, ``weights_``, ``score_mean_``, ``score_std_``).
    metrics : pandas.DataFrame
        The table of :func:`evaluate`, members then ``"ensemble"``.
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


def render_report(data: ReportData) -> str:
    """Return the report of ``data`` as one HTML document with its images embedded."""
    from movierec._report import render

    return render(data)


def write_report(data: ReportData, path: str | Path) -> Path:
    """Write the report of ``data`` to the file ``path`` (parent folders created) and return it."""
    path = Path(path)
    document = render_report(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(document, encoding="utf-8")
    logger.info("wrote %s (%d kB)", path, len(document) // 1024)
    return path


def user_history(train: pd.DataFrame, user: Any, n: int = 5) -> pd.DataFrame:
    """Return the ``n`` movies ``user`` rated highest in ``train`` (latest first among equal ratings)."""
    rows = train[train[USER] == user]
    keys = [RATING, "timestamp"] if "timestamp" in rows.columns else [RATING]
    rows = rows.sort_values(keys + [ITEM], ascending=[False] * len(keys) + [True], kind="stable")
    return rows.head(n)
