"""Lists from a visitor's history (strong generalization, Liang et al. 2018), beside the same users' in-fit lists.

Protocol: 10 % of the users are left out of the fit (drawn with ``numpy.random.default_rng(0)``);
each left-out user's ratings are split per user into 80 % history and 20 % relevant
(``stratified_split(test_size=0.2, random_state=0)``). Every model is fitted on all ratings of the
other 90 % of users, and each left-out user gets ``top_n_from_history(history, n=10)``; nDCG@10 (and
precision, recall, MAP) against their 20 %. Beside it, the in-fit figure for the same users: the
model fitted on the 90 % plus the left-out users' histories, then ``top_n`` for them, the same 20 %
relevant. A model that cannot score a history (``NotImplementedError``) shows the reason instead.

Settings are chosen on training ratings only: EASE's ``l2`` by ``EASE.tune`` on the 90 % users'
ratings (the same value for both figures); the other models take the registry's settings for their
task; the ensemble is the main job's (``movierec.pipeline.build_ensemble``: EASE tuned on a
validation split of its training part, members chosen by forward selection on its own hold-out),
built and fitted separately for each figure on that figure's training ratings. The 20 % relevant
ratings are used only to score the lists.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from benchmarks._common import build, data_home, quiet
from movierec import EASE, Popularity, load_movielens, pipeline, stratified_split
from movierec.base import Recommender
from movierec.exceptions import MovieRecWarning
from movierec.metrics import ranking_metrics

logger = logging.getLogger("benchmarks.history")

K = 10
METRIC = f"ndcg@{K}"
LEFT_OUT = 0.1  # share of users left out of the fit
RELEVANT = 0.2  # share of each left-out user's ratings held back as relevant
SEED = 0
DEFAULT_DATASET = "ml-100k"
ENSEMBLE = "ensemble"
# Targets on ml-100k: the ensemble's history lists against its in-fit lists and against popularity's.
IN_FIT_RATIO_MIN = 0.97
POPULARITY_RATIO_MIN = 1.8
#: Rows in order: name, what the row is, and how to build its unfitted model (for the history and in-fit figures).
ROWS: list[tuple[str, str]] = [
    ("popularity", "Popularity: the fit's most-rated unseen movies"),
    ("EASE", "EASE, l2 by EASE.tune on the 90 % users' ratings"),
    ("SparkALS implicit", "the registry's ranking SparkALS (implicit_prefs=True), fold-in of the visitor's factors"),
    ("SurpriseSVD", "the registry's SurpriseSVD (rating task), fold-in of the visitor's factors and bias"),
    ("SageMakerFM ranking", "the registry's ranking SageMakerFM (sampled negatives), fold-in of the visitor's weights"),
    (ENSEMBLE, "the main job's ranking ensemble (pipeline.build_ensemble: EASE+ALS+FM, forward selection)"),
]


def split(ratings: pd.DataFrame, *, quick: bool = False) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Return ``(train, history, relevant)``: the 90 % users' ratings, and the left-out users' 80 % / 20 %."""
    users = np.sort(ratings["userId"].unique())
    left_out = np.random.default_rng(SEED).choice(users, size=max(1, round(LEFT_OUT * len(users))), replace=False)
    if quick:
        left_out = left_out[:20]
    outside = ratings["userId"].isin(left_out)
    history, relevant = stratified_split(ratings[outside], RELEVANT, random_state=SEED)
    return ratings[~outside], history, relevant


def _metrics(top: pd.DataFrame, relevant: pd.DataFrame) -> dict[str, float]:
    return {name.replace(f"@{K}", ""): value for name, value in ranking_metrics(top, relevant, k=K).items()}


def history_lists(model: Recommender, history: pd.DataFrame) -> tuple[pd.DataFrame, float]:
    """Return every left-out user's ``top_n_from_history`` (their own history only) and the median seconds per call."""
    parts, seconds = [], []
    for user, own in history.groupby("userId", sort=True):
        start = time.perf_counter()
        parts.append(model.top_n_from_history(own[["movieId", "rating", "timestamp"]], n=K, user=user))
        seconds.append(time.perf_counter() - start)
    return pd.concat(parts, ignore_index=True), float(np.median(seconds))


def run(*, quick: bool = False, dataset: str = DEFAULT_DATASET) -> tuple[dict[str, Any], list[str]]:
    """Run the suite on ``dataset`` (any MovieLens archive the loader knows); return (results, notes)."""
    quiet()
    ratings = load_movielens(dataset, data_home=data_home(), download=False).ratings
    if quick:
        ratings = ratings[ratings["userId"].isin(np.sort(ratings["userId"].unique())[:150])]
    train, history, relevant = split(ratings, quick=quick)
    in_fit_train = pd.concat([train, history]).sort_index()
    left_out = np.sort(history["userId"].unique())
    logger.info("%s: %d training users, %d left out (%d history / %d relevant ratings)", dataset,
                train["userId"].nunique(), len(left_out), len(history), len(relevant))

    start = time.perf_counter()
    tuned = EASE().tune(train, metric=METRIC, random_state=SEED, refit=False)
    ease_l2 = tuned.best_params["l2"]
    logger.info("EASE l2 %g (validation %s %.4f, %.0f s)", ease_l2, METRIC, tuned.best_score, time.perf_counter() - start)

    def make(name: str, fit_ratings: pd.DataFrame) -> tuple[Recommender, list[str]]:
        if name == "popularity":
            return Popularity(), []
        if name == "EASE":
            return EASE(l2=ease_l2), []
        if name == "SparkALS implicit":
            return build("als", "ranking"), []
        if name == "SurpriseSVD":
            return build("svd", "rating"), []
        if name == "SageMakerFM ranking":
            return build("fm", "ranking"), []
        ensemble, names = pipeline.build_ensemble(fit_ratings, pipeline.Settings(n=K, k=K, random_state=SEED))
        return ensemble, names

    results: dict[str, Any] = {}
    for name, what in ROWS:
        row: dict[str, Any] = {"model": what}
        for figure, fit_ratings in (("history", train), ("in_fit", in_fit_train)):
            row.update(_figure(name, figure, fit_ratings, make, history, relevant, left_out))
        if row.get("history_ndcg") is not None and row.get("in_fit_ndcg"):
            row["history_over_in_fit"] = row["history_ndcg"] / row["in_fit_ndcg"]
        results[name] = row
        logger.info("%s: %s", name, {k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()
                                     if k != "model"})
    popularity = results["popularity"].get("history_ndcg")
    for row in results.values():
        if row.get("history_ndcg") is not None and popularity:
            row["history_over_popularity"] = row["history_ndcg"] / popularity
    figures = {"dataset": dataset, "ease_l2": ease_l2, "left_out_users": len(left_out),
               "training_users": int(train["userId"].nunique()), "training_ratings": len(train),
               "history_ratings": len(history), "relevant_ratings": len(relevant),
               "targets": {"in_fit_ratio_min": IN_FIT_RATIO_MIN, "popularity_ratio_min": POPULARITY_RATIO_MIN}}
    notes = [
        (f"{dataset}: {len(left_out)} of {ratings['userId'].nunique()} users left out of the fit "
         f"(numpy.random.default_rng({SEED}).choice, {LEFT_OUT:.0%}); their ratings split per user into "
         f"{1 - RELEVANT:.0%} history / {RELEVANT:.0%} relevant (stratified_split(test_size={RELEVANT}, "
         f"random_state={SEED})): {len(history)} history and {len(relevant)} relevant ratings. Fit: the other "
         f"{train['userId'].nunique()} users' {len(train)} ratings."),
        (f"history = nDCG@{K} of top_n_from_history(the user's history, n={K}), history movies excluded, every "
         f"relevant movie counts whatever its rating; in fit = the same users' top_n(n={K}) from a fit on the "
         "training users plus the left-out users' histories (their history movies excluded as seen)."),
        (f"Settings on training ratings only: EASE l2={ease_l2:g} by EASE.tune(metric='{METRIC}') on the "
         "training users' ratings; SparkALS, SurpriseSVD and SageMakerFM take the registry's settings for their "
         "task; the ensemble is movierec.pipeline.build_ensemble's (its own tuning and hold-out), fitted "
         "separately for each figure. '—' marks a model that cannot score a history (the reason is given)."),
    ]
    return {"figures": figures, "models": results}, notes


def _figure(name: str, figure: str, fit_ratings: pd.DataFrame,
            make: Callable[[str, pd.DataFrame], tuple[Recommender, list[str]]],
            history: pd.DataFrame, relevant: pd.DataFrame, left_out: np.ndarray) -> dict[str, Any]:
    """Fit ``name`` on ``fit_ratings`` and return its ``figure`` (history or in-fit) metrics, prefixed."""
    logger.info("%s, %s ...", name, figure)
    out: dict[str, Any] = {}
    model = None
    try:
        model, names = make(name, fit_ratings)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MovieRecWarning)  # constant members, unknown movies: counted below
            if names:
                pipeline.fit_ensemble(model, names, fit_ratings)
                out[f"{figure}_members"] = [names[p] for p in model.members_]
            else:
                model.fit(fit_ratings)
            out[f"{figure}_fit_seconds"] = time.perf_counter() - start
            if figure == "in_fit":
                start = time.perf_counter()
                top = model.top_n(users=list(left_out), n=K)
                out["in_fit_seconds_per_user"] = (time.perf_counter() - start) / len(left_out)
            else:
                top, out["history_seconds_per_call"] = history_lists(model, history)
        out.update({f"{figure}_{k}": v for k, v in _metrics(top, relevant).items()})
    except NotImplementedError as err:
        out[f"{figure}_unavailable"] = str(err)
        logger.info("%s cannot give %s lists: %s", name, figure, err)
    except Exception as err:  # one broken model must not stop the suite
        logger.exception("%s, %s failed", name, figure)
        out[f"{figure}_error"] = f"{type(err).__name__}: {err}"
    finally:
        if model is not None:
            model.close()
    return out
