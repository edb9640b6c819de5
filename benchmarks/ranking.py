"""Top-N ranking on Microsoft Recommenders' protocol: ml-100k, per-user stratified 75/25 split
(``random_state=42``), top 10 per user excluding movies rated in training, relevant = in the test set.

Models: a popularity baseline (most-rated movies), the explicit rating models with their defaults
(they are tuned for RMSE, which this protocol does not reward), the implicit variants (SparkALS
with ``implicit_prefs=True`` on the ratings as confidence; SageMakerFM ``binary_classifier`` on
seen = 1 against as many sampled unseen = 0), and ensembles of each family in both candidate modes.

The implicit models' few settings are chosen on a validation split of the training part only
(stratified 10 %, nDCG@10); the implicit ensemble's member errors are ``1 - nDCG@10`` on that same
validation split (given as ``errors=``, since an RMSE against star ratings means nothing for
preference scores). Nothing is chosen on the test set.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks._common import close, data_home, quiet
from movierec import BiasedBaseline, WeightedEnsemble, load_movielens, stratified_split
from movierec.base import ArrayRecommender, Recommender
from movierec.metrics import coverage, ranking_metrics

logger = logging.getLogger("benchmarks.ranking")

K = 10
SPLIT_SEED = 42
SEED = 0
CANDIDATES = 50  # each member proposes its top 50 in the ensembles' candidates mode
VALIDATION_SIZE = 0.1
IMPLICIT_ALS_GRID = [
    {"rank": r, "reg_param": reg, "alpha": a} for r in (20, 50) for reg in (0.01, 0.1) for a in (1.0, 5.0)
]
BINARY_FM_GRID = [{"num_factors": 64}, {"num_factors": 64, "epochs": 40}, {"num_factors": 32, "factors_wd": 3e-4}]


class Popularity(ArrayRecommender):
    """Scores every movie by its number of ratings in fit: the same list for everyone, minus the seen."""

    def __init__(self) -> None:
        pass

    def _fit_indexed(self, user_idx, item_idx, ratings, frame) -> None:
        self.counts_ = np.bincount(item_idx, minlength=len(self.items_)).astype(np.float64)

    def _score_pairs(self, user_idx, item_idx):
        return self.counts_[item_idx]

    def _score_users(self, user_idx):
        return np.broadcast_to(self.counts_, (len(user_idx), len(self.counts_)))

    def _get_arrays(self):
        return {"counts": self.counts_}

    def _set_arrays(self, arrays, extra) -> None:
        self.counts_ = arrays["counts"]


def sample_negatives(ratings: pd.DataFrame, *, per_positive: float = 1.0, seed: int = 0) -> pd.DataFrame:
    """Return (userId, movieId) pairs of movies each user did not rate, ``per_positive`` per rated one.

    Uniform over the user's unseen movies of the catalogue of ``ratings``; no pair twice; a user
    gets at most as many as they have unseen movies. Vectorized: draw, reject seen and repeated
    pairs, draw again for the shortfall.
    """
    rng = np.random.default_rng(seed)
    users, user_idx = np.unique(ratings["userId"].to_numpy(), return_inverse=True)
    items, item_idx = np.unique(ratings["movieId"].to_numpy(), return_inverse=True)
    n_items = len(items)
    seen_codes = np.unique(user_idx.astype(np.int64) * n_items + item_idx)
    rated = np.bincount(user_idx, minlength=len(users))
    want = np.minimum(np.rint(rated * per_positive).astype(np.int64), n_items - rated)
    got_u, got_i = np.zeros(0, np.int64), np.zeros(0, np.int64)
    need = want.copy()
    for _ in range(20):
        active = np.flatnonzero(need > 0)
        if len(active) == 0:
            break
        u = np.repeat(active, np.ceil(need[active] * 1.5).astype(np.int64) + 1)
        i = rng.integers(0, n_items, len(u))
        code = u * n_items + i
        fresh = ~np.isin(code, seen_codes)
        u, i = np.concatenate([got_u, u[fresh]]), np.concatenate([got_i, i[fresh]])
        _, first = np.unique(u * n_items + i, return_index=True)
        keep = np.sort(first)
        u, i = u[keep], i[keep]
        order = np.argsort(u, kind="stable")
        u, i = u[order], i[order]
        position = np.arange(len(u)) - np.searchsorted(u, u, side="left")
        inside = position < want[u]
        got_u, got_i = u[inside], i[inside]
        need = want - np.bincount(got_u, minlength=len(users))
    # Users who need most of their unseen movies are left short by rejection: draw theirs exactly.
    extra_u, extra_i = [got_u], [got_i]
    for user in np.flatnonzero(need > 0):
        taken = np.concatenate([item_idx[user_idx == user], got_i[got_u == user]])
        free = np.setdiff1d(np.arange(n_items), taken)
        pick = rng.choice(free, size=int(need[user]), replace=False)
        extra_u.append(np.full(len(pick), user))
        extra_i.append(pick)
    got_u, got_i = np.concatenate(extra_u), np.concatenate(extra_i)
    order = np.lexsort((got_i, got_u))
    got_u, got_i = got_u[order], got_i[order]
    return pd.DataFrame({"userId": users[got_u], "movieId": items[got_i]})


class NegativeSampled(ArrayRecommender):
    """Trains ``model`` on seen = ``positive`` plus sampled unseen = ``negative`` ratings.

    The wrapped model (here SageMakerFM with ``predictor_type="binary_classifier"``, whose label is
    ``rating >= 4``) learns seen against unseen. This wrapper keeps its own record of the movies
    really rated, so ``top_n`` leaves out only those, not the sampled negatives (which may well be
    relevant test movies). Negatives are drawn afresh, seeded, at every ``fit``.
    """

    def __init__(self, model: Recommender, per_positive: float = 1.0, positive: float = 5.0,
                 negative: float = 1.0, random_state: int = 0) -> None:
        self.model = model
        self.per_positive = per_positive
        self.positive = positive
        self.negative = negative
        self.random_state = random_state

    def _fit_indexed(self, user_idx, item_idx, ratings, frame) -> None:
        negatives = sample_negatives(frame, per_positive=self.per_positive, seed=self.random_state)
        positives = frame[["userId", "movieId"]].assign(rating=float(self.positive))
        training = pd.concat([positives, negatives.assign(rating=float(self.negative))], ignore_index=True)
        self.model.fit(training)
        self.n_negatives_ = len(negatives)

    def _score_pairs(self, user_idx, item_idx):
        pairs = pd.DataFrame({"userId": self.users_.ids[user_idx], "movieId": self.items_.ids[item_idx]})
        return self.model.predict(pairs).to_numpy(dtype=float)

    def _score_users(self, user_idx):
        n_items = len(self.items_)
        scores = self._score_pairs(np.repeat(user_idx, n_items), np.tile(np.arange(n_items), len(user_idx)))
        return scores.reshape(len(user_idx), n_items)

    def _get_arrays(self):
        raise NotImplementedError("NegativeSampled is a benchmark helper and is not saved")

    def _set_arrays(self, arrays, extra) -> None:
        raise NotImplementedError("NegativeSampled is a benchmark helper and is not saved")


def evaluate(model: Recommender, train: pd.DataFrame, test: pd.DataFrame, *, fit: bool = True) -> dict[str, Any]:
    """Fit on ``train`` (unless already fitted), rank the top K for every user, score against ``test``."""
    start = time.perf_counter()
    if fit:
        model.fit(train)
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    top = model.top_n(n=K)
    top_seconds = time.perf_counter() - start
    metrics = ranking_metrics(top, test, k=K)
    return {
        **{name.replace(f"@{K}", ""): value for name, value in metrics.items()},
        "coverage": coverage(top, train),
        "fit_seconds": fit_seconds,
        "top_n_seconds": top_seconds,
    }


def _select(name: str, build: Callable[[dict[str, Any]], Recommender], grid: Iterable[dict[str, Any]],
            train: pd.DataFrame, closers: list[Any]) -> tuple[dict[str, Any], float, list[dict[str, Any]]]:
    """Return (best params, its validation nDCG, every point's score) on a validation split of ``train``."""
    fit_part, valid = stratified_split(train, VALIDATION_SIZE, random_state=SEED)
    tried = []
    for params in grid:
        model = build(params)
        closers.append(model)
        try:
            score = evaluate(model, fit_part, valid)["ndcg"]
        finally:
            close(model)
        tried.append({"params": params, "validation_ndcg": score})
        logger.info("%s %s: validation nDCG@%d %.4f", name, params, K, score)
    best = max(tried, key=lambda t: t["validation_ndcg"])
    return best["params"], best["validation_ndcg"], tried


def run(*, quick: bool = False) -> tuple[dict[str, Any], list[str]]:
    """Run the suite; return (results, notes)."""
    quiet()
    from movierec.adapters._spark_session import local_session_builder, quiet_pyspark_warnings
    from movierec.adapters.sagemaker_fm import SageMakerFM
    from movierec.adapters.spark_als import SparkALS
    from movierec.adapters.surprise_svd import SurpriseSVD

    # One Spark session for the whole suite (each SparkALS would otherwise start and stop its own).
    workdir = Path(tempfile.mkdtemp(prefix="movierec-bench-ranking-"))
    with quiet_pyspark_warnings():
        spark = local_session_builder(workdir).appName("movierec-bench-ranking").getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    spark.sparkContext.setCheckpointDir(str(workdir / "checkpoints"))
    try:
        return _run(quick, spark, SparkALS, SurpriseSVD, SageMakerFM)
    finally:
        spark.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def _run(quick: bool, spark: Any, SparkALS: Any, SurpriseSVD: Any, SageMakerFM: Any) -> tuple[dict[str, Any], list[str]]:
    ratings = load_movielens("ml-100k", data_home=data_home(), download=False).ratings
    if quick:
        ratings = ratings[ratings["userId"] <= 120]
    train, test = stratified_split(ratings, 0.25, random_state=SPLIT_SEED)
    als_grid = IMPLICIT_ALS_GRID[:2] if quick else IMPLICIT_ALS_GRID
    fm_grid = BINARY_FM_GRID[:1] if quick else BINARY_FM_GRID
    closers: list[Any] = []
    results: dict[str, Any] = {}

    def measure(name: str, model: Recommender, **info: Any) -> None:
        logger.info("%s ...", name)
        closers.append(model)
        try:
            results[name] = {**evaluate(model, train, test), **info}
        except Exception as err:  # one broken model must not stop the suite
            logger.exception("%s failed", name)
            results[name] = {"error": f"{type(err).__name__}: {err}"}
            return
        logger.info("%s: %s", name, {k: round(v, 4) for k, v in results[name].items() if isinstance(v, float)})

    def explicit_members() -> list[Recommender]:
        return [SurpriseSVD(random_state=SEED), SparkALS(random_state=SEED, spark=spark), SageMakerFM(random_state=SEED)]

    try:
        measure("Popularity", Popularity())
        measure("BiasedBaseline", BiasedBaseline())
        for model in explicit_members():
            measure(type(model).__name__, model)
            close(model)
        for candidates in (None, CANDIDATES):
            ensemble = WeightedEnsemble(explicit_members(), candidates=candidates, random_state=SEED)
            measure(f"WeightedEnsemble explicit ({_mode(candidates)})", ensemble)
            close(ensemble)

        def implicit_als(params: dict[str, Any]) -> Recommender:
            return SparkALS(implicit_prefs=True, random_state=SEED, spark=spark, **params)

        def binary_fm(params: dict[str, Any]) -> Recommender:
            return NegativeSampled(
                SageMakerFM(predictor_type="binary_classifier", random_state=SEED, **params), random_state=SEED
            )

        als_params, als_valid, als_tried = _select("SparkALS implicit", implicit_als, als_grid, train, closers)
        fm_params, fm_valid, fm_tried = _select("SageMakerFM binary", binary_fm, fm_grid, train, closers)
        model = implicit_als(als_params)
        measure("SparkALS implicit", model, params=als_params, validation_ndcg=als_valid, tried=als_tried)
        close(model)
        model = binary_fm(fm_params)
        measure("SageMakerFM binary (sampled negatives)", model, params=fm_params, validation_ndcg=fm_valid,
                tried=fm_tried)
        errors = [1.0 - als_valid, 1.0 - fm_valid]
        for candidates in (None, CANDIDATES):
            ensemble = WeightedEnsemble([implicit_als(als_params), binary_fm(fm_params)], errors=errors,
                                        candidates=candidates, random_state=SEED)
            measure(f"WeightedEnsemble implicit ({_mode(candidates)})", ensemble, errors=errors)
            close(ensemble)
    finally:
        for model in closers:
            close(model)

    notes = [
        (f"ml-100k, stratified_split(test_size=0.25, random_state={SPLIT_SEED}): {len(train)} training and "
        f"{len(test)} test ratings; top {K} per user, movies rated in training excluded; relevant = the "
        "user's test movies, whatever their rating; users averaged: those with a test movie."),
        ("Explicit models use their defaults (random_state=0): the accuracy suite's tuned values were chosen "
        "on u1-u5 training folds, which overlap this split's test set."),
        (f"Implicit settings chosen on a stratified {VALIDATION_SIZE:.0%} validation split of the training part "
        f"by nDCG@{K}: SparkALS implicit over {als_grid}; SageMakerFM binary over {fm_grid}."),
        ("SageMakerFM binary trains on seen (rating 5.0, label 1) plus as many uniformly sampled unseen "
        "movies per user (rating 1.0, label 0); its top-N leaves out only really rated movies."),
        (f"Ensembles: candidates=None (every unseen movie scored by every member) and candidates={CANDIDATES} "
        "(each member proposes its own top 50). Explicit ensemble errors: holdout RMSE (default); implicit "
        "ensemble errors: 1 - validation nDCG@10 of each member, given as errors=."),
    ]
    return {"k": K, "models": results, "n_train": len(train), "n_test": len(test)}, notes


def _mode(candidates: int | None) -> str:
    return "all unseen" if candidates is None else f"candidates={candidates}"
