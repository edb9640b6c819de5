"""Fold-in of a visitor's history for the factor models, on ml-100k u1: speed and agreement with the fit.

For each model: the median time of one ``top_n_from_history`` call with a 50-movie history (50
calls, after one warm-up), and how the fold-in of each fitted user's own training ratings ranks
against the fit's scores for that user (every fourth user; their training movies left out): the
mean top-10 overlap and the mean and smallest Spearman correlation over the unseen movies.

Run: ``MOVIEREC_DATA=<folder of ml-100k.zip> python -m benchmarks.fold_in`` (prints JSON lines).
"""

from __future__ import annotations

import json
import statistics
import time

import numpy as np
from scipy.stats import spearmanr

from movierec import official_folds
from movierec.registry import RANKING_ALS, RANKING_FM

HISTORY = 50
CALLS = 50


def agreement(model, train) -> dict[str, float]:
    """Return the fold-in's top-10 overlap and Spearman correlation with the fit, every fourth user."""
    groups = dict(tuple(train.groupby("userId")))
    overlaps, correlations = [], []
    for user in model.users_.ids[::4]:
        rows = groups[user]
        idx = model.items_.lookup(rows.movieId)
        folded = model._score_history(idx, rows.rating.to_numpy(np.float64))
        fitted = model._score_users(model.users_.lookup(np.array([user])))[0]
        unseen = np.ones(len(folded), bool)
        unseen[idx] = False
        top = [set(np.argsort(-np.where(unseen, s, -np.inf), kind="stable")[:10]) for s in (folded, fitted)]
        overlaps.append(len(top[0] & top[1]) / 10)
        correlations.append(spearmanr(folded[unseen], fitted[unseen]).statistic)
    return {
        "top10_overlap": round(float(np.mean(overlaps)), 3),
        "spearman_mean": round(float(np.mean(correlations)), 4),
        "spearman_min": round(float(np.min(correlations)), 4),
        "users": len(overlaps),
    }


def history_call_seconds(model, history) -> float:
    """Return the median seconds of one ``top_n_from_history(history)`` over :data:`CALLS` calls."""
    model.top_n_from_history(history, n=10)
    times = []
    for _ in range(CALLS):
        start = time.perf_counter()
        model.top_n_from_history(history, n=10)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def models():
    """Yield (name, unfitted model) of every factor model with fold-in."""
    from movierec.models.myfm_bayes import MyFMBayes
    from movierec.models.sagemaker_fm import SageMakerFM
    from movierec.models.spark_als import SparkALS
    from movierec.models.surprise_svd import SurpriseSVD

    yield "SparkALS (explicit)", SparkALS(random_state=0)
    yield "SparkALS (implicit, ranking)", SparkALS(random_state=0, **RANKING_ALS)
    yield "SurpriseSVD", SurpriseSVD(random_state=0)
    yield "SageMakerFM (regressor)", SageMakerFM(random_state=0)
    yield "SageMakerFM (binary, ranking)", SageMakerFM(random_state=0, **RANKING_FM)
    yield "MyFMBayes", MyFMBayes(random_state=0)


def main() -> None:
    fold = official_folds("ml-100k", which=("u1",))[0]
    train = fold.train
    heavy = train.userId.value_counts().index[0]
    history = train[train.userId == heavy][["movieId", "rating"]].iloc[:HISTORY]
    for name, model in models():
        start = time.perf_counter()
        model.fit(train)
        fit_seconds = time.perf_counter() - start
        row = {"model": name, "fit_s": round(fit_seconds, 1)}
        row["history_call_ms"] = round(1000 * history_call_seconds(model, history), 2)
        row.update(agreement(model, train))
        print(json.dumps(row), flush=True)
        model.close()


if __name__ == "__main__":
    main()
