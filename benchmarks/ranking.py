"""Top-N ranking on Microsoft Recommenders' protocol: ml-100k, per-user stratified 75/25 split
(``random_state=42``), top 10 per user excluding movies rated in training, relevant = in the test set.

Rows: the Popularity reference; EASE with ``l2`` chosen by ``EASE.tune``; the ensemble members in
their ranking configuration (SparkALS ``implicit_prefs=True``; SageMakerFM ``binary_classifier``
on every rated pair plus one sampled unrated pair per positive); the explicit rating models with
their defaults and their ensembles (they are trained for RMSE, which this protocol does not
reward); and the main job's ranking ensemble, ``WeightedEnsemble(metric="ndcg@10",
select="forward")`` of the tuned EASE, ALS and FM, in both candidate modes.

Every setting is chosen on one validation split of the training part (stratified 10 %,
``random_state=0``, by nDCG@10): EASE's l2 (``EASE.tune``), the ALS and FM grids below, and the
ensemble's member errors and forward selection use a second, independent hold-out of the training
part (``random_state=1``): measured on the split its members were tuned on, the tuned member looks
better than it is (the best of 18 ALS settings on that split) and forward selection keeps it alone.
The test part is used only to score the final fits.
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

from benchmarks._common import RANKING_ENSEMBLE, SEED, TUNED_ENSEMBLE, build, data_home, quiet
from movierec import EASE, Popularity, WeightedEnsemble, load_movielens, pipeline, stratified_split
from movierec.base import Recommender
from movierec.metrics import coverage, ranking_metrics
from movierec.pipeline import Settings

logger = logging.getLogger("benchmarks.ranking")

K = 10
METRIC = f"ndcg@{K}"
SPLIT_SEED = 42
CANDIDATES = 50  # each member proposes its top 50 in the explicit ensemble's candidates mode
MAIN_JOB_CANDIDATES = Settings.candidates  # the main job's default K
VALIDATION_SIZE = 0.1
ENSEMBLE_SEED = SEED + 1  # the ensemble's hold-out: drawn independently of the tuning split
# Grids around the registry's ranking settings; the registry's own values are among the points.
IMPLICIT_ALS_GRID = [
    {"rank": r, "reg_param": reg, "alpha": a} for r in (20, 50) for reg in (0.03, 0.1, 0.3) for a in (0.1, 0.3, 1.0)
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
            fit_part: pd.DataFrame, valid: pd.DataFrame) -> tuple[dict[str, Any], float, list[dict[str, Any]]]:
    """Return (best params, its validation nDCG, every point's score), fitting on ``fit_part`` only."""
    tried = []
    for params in grid:
        model = build(params)
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
    from movierec.spark.session import local_session_builder, quiet_pyspark_warnings

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
    # The one validation split of the training part (EASE.tune and the ensemble draw the same one).
    fit_part, valid = stratified_split(train, VALIDATION_SIZE, random_state=SEED)
    als_grid = IMPLICIT_ALS_GRID[:2] if quick else IMPLICIT_ALS_GRID
    fm_grid = BINARY_FM_GRID[:1] if quick else BINARY_FM_GRID
    results: dict[str, Any] = {}

    def measure(name: str, model: Recommender, *, fit: bool = True,
                describe: Callable[[Any], dict[str, Any]] | None = None, **info: Any) -> None:
        logger.info("%s ...", name)
        try:
            results[name] = {**evaluate(model, train, test, fit=fit), **info}
            if describe is not None:
                results[name].update(describe(model))
        except Exception as err:  # one broken model must not stop the suite
            logger.exception("%s failed", name)
            results[name] = {"error": f"{type(err).__name__}: {err}"}
            return
        finally:
            model.close()
        logger.info("%s: %s", name, {k: round(v, 4) for k, v in results[name].items() if isinstance(v, float)})

    def explicit_members() -> list[Recommender]:
        return [build("SurpriseSVD"), build("SparkALS", spark=spark), build("SageMakerFM")]

    def implicit_als(params: dict[str, Any]) -> Recommender:
        return build("als", "ranking", spark=spark, **params)

    def binary_fm(params: dict[str, Any]) -> Recommender:
        return build("fm", "ranking", **params)

    def main_job(name: str, settings: Settings) -> None:
        """The row of ``movierec.pipeline.run``: the command's own ensemble, tuning and hold-out included."""
        logger.info("%s ...", name)
        start = time.perf_counter()
        try:
            result = pipeline.run(train, test, settings)
        except Exception as err:  # one broken model must not stop the suite
            logger.exception("%s failed", name)
            results[name] = {"error": f"{type(err).__name__}: {err}"}
            return
        row = result.metrics.loc[pipeline.ENSEMBLE]
        results[name] = {"precision": row[f"precision@{K}"], "ndcg": row[f"ndcg@{K}"], "map": row[f"map@{K}"],
                         "coverage": row["coverage"], "fit_seconds": time.perf_counter() - start,
                         "top_n_seconds": result.timings["top_n"], "members": list(result.members),
                         "member_validation_ndcg": {n: 1.0 - e for n, e in
                                                    zip(result.names, result.ensemble.candidate_errors_)}}

    measure("Popularity", Popularity())

    ease = EASE()
    start = time.perf_counter()
    tuned = ease.tune(train, metric=METRIC, validation_size=VALIDATION_SIZE, random_state=SEED)
    tune_seconds = time.perf_counter() - start
    ease_info = {"params": tuned.best_params, "validation_ndcg": tuned.best_score,
                 "tried": [{"params": {"l2": row["l2"]}, "validation_ndcg": row[METRIC]}
                           for row in tuned.results.to_dict(orient="records")]}
    measure("EASE", ease, fit=False, tune_seconds=tune_seconds, **ease_info)

    als_params, als_valid, als_tried = _select("SparkALS implicit", implicit_als, als_grid, fit_part, valid)
    measure("SparkALS implicit", implicit_als(als_params), params=als_params, validation_ndcg=als_valid,
            tried=als_tried)
    fm_params, fm_valid, fm_tried = _select("SageMakerFM binary", binary_fm, fm_grid, fit_part, valid)
    measure("SageMakerFM binary (sampled negatives)", binary_fm(fm_params), params=fm_params,
            validation_ndcg=fm_valid, tried=fm_tried)

    names = ["EASE", "SparkALS implicit", "SageMakerFM binary"]
    for candidates in (None, MAIN_JOB_CANDIDATES):
        # Unfitted members: the ensemble fits clones (EASE keeps its tuned l2 through get_params).
        members = [EASE(**ease.get_params()), implicit_als(als_params), binary_fm(fm_params)]
        ensemble = WeightedEnsemble(members, metric=METRIC, select="forward", validation_size=VALIDATION_SIZE,
                                    candidates=candidates, random_state=ENSEMBLE_SEED)
        name = f"{TUNED_ENSEMBLE} ({_mode(candidates)})"
        measure(name, ensemble, describe=lambda fitted: _ensemble_info(fitted, names))
    for mode in ("full", "candidates"):
        main_job(f"{RANKING_ENSEMBLE} ({_mode(None if mode == 'full' else MAIN_JOB_CANDIDATES)})",
                 Settings(n=K, k=K, ensemble=mode, candidates=MAIN_JOB_CANDIDATES, random_state=SEED))

    measure("BiasedBaseline", build("BiasedBaseline"))
    for model in explicit_members():
        measure(type(model).__name__, model)
    for candidates in (None, CANDIDATES):
        ensemble = WeightedEnsemble(explicit_members(), candidates=candidates, random_state=SEED)
        measure(f"WeightedEnsemble explicit ({_mode(candidates)})", ensemble)

    notes = [
        (f"ml-100k, stratified_split(test_size=0.25, random_state={SPLIT_SEED}): {len(train)} training and "
        f"{len(test)} test ratings; top {K} per user, movies rated in training excluded; relevant = the "
        "user's test movies, whatever their rating; users averaged: those with a test movie."),
        (f"Settings chosen on validation data only: one stratified {VALIDATION_SIZE:.0%} split of the training "
        f"part (random_state={SEED}; {len(fit_part)} fit / {len(valid)} validation ratings), by nDCG@{K}. "
        f"EASE: l2 by EASE.tune(train, metric='{METRIC}') over its default grid (50 to 6400, doubling), then "
        f"refitted on the whole training part. SparkALS implicit over {als_grid}; SageMakerFM binary "
        f"over {fm_grid}; each point fitted on the fit part, the best refitted on the whole training part."),
        ("SageMakerFM binary = the registry's ranking configuration (positive_rating=None, "
        "negatives_per_positive=1): every rated pair a positive plus as many uniformly sampled unrated pairs; "
        "SparkALS implicit = implicit_prefs=True on the ratings as confidence."),
        (f"{RANKING_ENSEMBLE}: the main job itself, movierec.pipeline.run(train, test, Settings(...)) with its "
        "defaults (EASE tuned on a validation split, the registry's ALS and FM ranking settings, forward "
        "selection on its own hold-out), as `movierec recommend` runs it, in both ensemble modes."),
        (f"{TUNED_ENSEMBLE}: WeightedEnsemble(metric='{METRIC}', "
        "select='forward') of the tuned EASE and the grid-chosen ALS and FM settings above; its member errors "
        f"(1 - nDCG@{K}) and its forward selection use its own hold-out, drawn independently of the tuning "
        f"split (validation_size={VALIDATION_SIZE}, random_state={ENSEMBLE_SEED}). Candidate modes: every unseen movie scored "
        f"by every member, and candidates={MAIN_JOB_CANDIDATES} (the main job's default)."),
        ("Explicit models use their defaults (random_state=0): the accuracy suite's tuned values were chosen "
        "on u1-u5 training folds, which overlap this split's test set. Their ensembles are weighted by "
        f"hold-out RMSE (1/RMSE weights), candidates=None and candidates={CANDIDATES}."),
    ]
    return {"k": K, "models": results, "n_train": len(train), "n_test": len(test)}, notes


def _ensemble_info(ensemble: WeightedEnsemble, names: list[str]) -> dict[str, Any]:
    """Return what the fitted ensemble chose: members, their hold-out nDCG, the subsets it tried."""
    info: dict[str, Any] = {
        "members": [names[p] for p in ensemble.members_],
        "member_validation_ndcg": {n: 1.0 - e for n, e in zip(names, ensemble.candidate_errors_)},
    }
    if ensemble.selection_ is not None:
        info["selection"] = [
            {"members": [names[p] for p in row["members"]], "validation_ndcg": 1.0 - row["error"]}
            for row in ensemble.selection_.to_dict(orient="records")
        ]
    return info


def _mode(candidates: int | None) -> str:
    return "all unseen" if candidates is None else f"candidates={candidates}"
