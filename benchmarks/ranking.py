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

import pandas as pd

from benchmarks._common import SEED, build, data_home, quiet
from movierec import Popularity, WeightedEnsemble, load_movielens, stratified_split
from movierec.base import Recommender
from movierec.metrics import coverage, ranking_metrics

logger = logging.getLogger("benchmarks.ranking")

K = 10
SPLIT_SEED = 42
CANDIDATES = 50  # each member proposes its top 50 in the ensembles' candidates mode
VALIDATION_SIZE = 0.1
IMPLICIT_ALS_GRID = [
    {"rank": r, "reg_param": reg, "alpha": a} for r in (20, 50) for reg in (0.01, 0.1) for a in (1.0, 5.0)
]
BINARY_FM_GRID = [{"num_factors": 64}, {"num_factors": 64, "epochs": 40}, {"num_factors": 32, "factors_wd": 3e-4}]


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
            model.close()
        tried.append({"params": params, "validation_ndcg": score})
        logger.info("%s %s: validation nDCG@%d %.4f", name, params, K, score)
    best = max(tried, key=lambda t: t["validation_ndcg"])
    return best["params"], best["validation_ndcg"], tried


def run(*, quick: bool = False) -> tuple[dict[str, Any], list[str]]:
    """Run the suite; return (results, notes)."""
    quiet()
    from movierec.adapters.spark._session import local_session_builder, quiet_pyspark_warnings

    # One Spark session for the whole suite (each SparkALS would otherwise start and stop its own).
    workdir = Path(tempfile.mkdtemp(prefix="movierec-bench-ranking-"))
    with quiet_pyspark_warnings():
        spark = local_session_builder(workdir).appName("movierec-bench-ranking").getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    spark.sparkContext.setCheckpointDir(str(workdir / "checkpoints"))
    try:
        return _run(quick, spark)
    finally:
        spark.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def _run(quick: bool, spark: Any) -> tuple[dict[str, Any], list[str]]:
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
        return [build("SurpriseSVD"), build("SparkALS", spark=spark), build("SageMakerFM")]

    try:
        measure("Popularity", Popularity())
        measure("BiasedBaseline", build("BiasedBaseline"))
        for model in explicit_members():
            measure(type(model).__name__, model)
            model.close()
        for candidates in (None, CANDIDATES):
            ensemble = WeightedEnsemble(explicit_members(), candidates=candidates, random_state=SEED)
            measure(f"WeightedEnsemble explicit ({_mode(candidates)})", ensemble)
            ensemble.close()

        def implicit_als(params: dict[str, Any]) -> Recommender:
            return build("SparkALS", implicit_prefs=True, spark=spark, **params)

        def binary_fm(params: dict[str, Any]) -> Recommender:
            return build("SageMakerFM", predictor_type="binary_classifier", positive_rating=None,
                         negatives_per_positive=1.0, **params)

        als_params, als_valid, als_tried = _select("SparkALS implicit", implicit_als, als_grid, train, closers)
        fm_params, fm_valid, fm_tried = _select("SageMakerFM binary", binary_fm, fm_grid, train, closers)
        model = implicit_als(als_params)
        measure("SparkALS implicit", model, params=als_params, validation_ndcg=als_valid, tried=als_tried)
        model.close()
        model = binary_fm(fm_params)
        measure("SageMakerFM binary (sampled negatives)", model, params=fm_params, validation_ndcg=fm_valid,
                tried=fm_tried)
        errors = [1.0 - als_valid, 1.0 - fm_valid]
        for candidates in (None, CANDIDATES):
            ensemble = WeightedEnsemble([implicit_als(als_params), binary_fm(fm_params)], errors=errors,
                                        candidates=candidates, random_state=SEED)
            measure(f"WeightedEnsemble implicit ({_mode(candidates)})", ensemble, errors=errors)
            ensemble.close()
    finally:
        for model in closers:
            model.close()

    notes = [
        (f"ml-100k, stratified_split(test_size=0.25, random_state={SPLIT_SEED}): {len(train)} training and "
        f"{len(test)} test ratings; top {K} per user, movies rated in training excluded; relevant = the "
        "user's test movies, whatever their rating; users averaged: those with a test movie."),
        ("Explicit models use their defaults (random_state=0): the accuracy suite's tuned values were chosen "
        "on u1-u5 training folds, which overlap this split's test set."),
        (f"Implicit settings chosen on a stratified {VALIDATION_SIZE:.0%} validation split of the training part "
        f"by nDCG@{K}: SparkALS implicit over {als_grid}; SageMakerFM binary over {fm_grid}."),
        ("SageMakerFM binary (positive_rating=None, negatives_per_positive=1) trains on seen (label 1) plus "
        "as many uniformly sampled unseen movies per user (label 0); its top-N leaves out only really rated "
        "movies."),
        (f"Ensembles: candidates=None (every unseen movie scored by every member) and candidates={CANDIDATES} "
        "(each member proposes its own top 50). Explicit ensemble errors: holdout RMSE (default); implicit "
        "ensemble errors: 1 - validation nDCG@10 of each member, given as errors=."),
    ]
    return {"k": K, "models": results, "n_train": len(train), "n_test": len(test)}, notes


def _mode(candidates: int | None) -> str:
    return "all unseen" if candidates is None else f"candidates={candidates}"
