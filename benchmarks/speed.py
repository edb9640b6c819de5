"""Speed on ml-100k's u1 training fold: fit time, top-10 for every user, and peak memory per model.

Each measurement runs in its own fresh process (so its peak resident memory is its own): a model
is fitted (``REPEATS`` times for single models, once for an ensemble) and ranks the top 10 unseen
movies of all 943 users ``REPEATS`` times; medians are reported. The models are the main job's:
its rating members (SparkALS, SurpriseSVD, SageMakerFM with their defaults), its ranking members
(EASE with l2 from ``EASE.tune``, SparkALS and SageMakerFM in the registry's ranking
configuration), Popularity, BiasedBaseline, MyFMBayes, and its two ensembles, both scoring every
unseen movie (``candidates=None``):

* rating: ``WeightedEnsemble`` of SparkALS, SurpriseSVD, SageMakerFM weighted by hold-out RMSE;
* ranking: ``WeightedEnsemble(metric="ndcg@10", select="forward")`` of the tuned EASE, ALS, FM.

An ensemble's top_n is compared with the sum of its (chosen) members' top_n times, each member
measured in its own process, and with the same members' top_n timed inside the ensemble's process
right after (same load at the same moment); its process's peak RSS with its largest member's.
Targets: time <= 3x the members' sum, peak RSS <= 2x the largest member's.

In the same processes the reference recipes run against the same fitted model:

* Surprise's FAQ ``get_top_n`` (predict the whole anti-testset with ``algo.test``, sort per user)
  on Surprise's own ``SVD`` with the same seed and data, for SurpriseSVD;
* Spark's ``ALSModel.recommendForAllUsers(10)`` collected to the driver, for SparkALS (it does not
  leave out seen movies, so it does less than ``top_n``).

Ratios are taken between numbers of one run. Spark's driver JVM is a separate process: its peak
RSS (VmHWM) is read from /proc before the session stops and reported apart.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from benchmarks._common import (
    RANKING_ENSEMBLE,
    SEED,
    build,
    current_rss_mb,
    data_home,
    jvm_peak_rss_mb,
    peak_rss_mb,
    reset_peak_rss,
    run_isolated,
    timed,
)
from benchmarks._reference import surprise_faq_top_n, surprise_fit

logger = logging.getLogger("benchmarks.speed")

N = 10
REPEATS = 3
METRIC = "ndcg@10"
TIME_RATIO_MAX = 3.0
RSS_RATIO_MAX = 2.0
# Single models: row name -> (registry name, task whose parameters it takes).
SINGLE = {
    "BiasedBaseline": ("baseline", "rating"),
    "Popularity": ("pop", "ranking"),
    "SurpriseSVD": ("svd", "rating"),
    "SparkALS": ("als", "rating"),
    "SageMakerFM": ("fm", "rating"),
    "MyFMBayes": ("bfm", "rating"),
    "EASE (tuned)": ("ease", "ranking"),
    "SparkALS implicit": ("als", "ranking"),
    "SageMakerFM binary": ("fm", "ranking"),
}
# The main job's ensembles: row name -> (task, member rows in the main job's order).
ENSEMBLES = {
    "WeightedEnsemble rating (ALS+SVD+FM)": ("rating", ("SparkALS", "SurpriseSVD", "SageMakerFM")),
    RANKING_ENSEMBLE: ("ranking", ("EASE (tuned)", "SparkALS implicit", "SageMakerFM binary")),
}
MODELS = (*SINGLE, *ENSEMBLES)


def _new(name: str, train: Any) -> Any:
    """Return the fitted model of row ``name``, built as the main job builds it."""
    if name in ENSEMBLES:
        from movierec import WeightedEnsemble

        task, members = ENSEMBLES[name]
        models = [_member(member, train) for member in members]
        if task == "rating":
            return WeightedEnsemble(models, random_state=SEED).fit(train)
        return WeightedEnsemble(models, metric=METRIC, select="forward", random_state=SEED).fit(train)
    model = _member(name, train)
    return model if name == "EASE (tuned)" else model.fit(train)


def _member(name: str, train: Any) -> Any:
    """Return the model of row ``name``, unfitted, except EASE, which the main job tunes (and so fits) first."""
    registry_name, task = SINGLE[name]
    model = build(registry_name, task)
    if name == "EASE (tuned)":
        model.tune(train, metric=METRIC, random_state=SEED)
    return model


def measure(name: str, repeats: int = REPEATS) -> dict[str, Any]:
    """Child-process job: time fit and top_n of row ``name`` on u1 (and its reference recipe)."""
    from movierec import official_folds

    train = official_folds("ml-100k", which=("u1",), data_home=data_home(), download=False)[0].train
    out: dict[str, Any] = {"rss_after_load_mb": current_rss_mb()}
    model = None

    def fit():
        nonlocal model
        if model is not None:
            model.close()
        model = _new(name, train)
        return model

    try:
        out["fit_seconds"], out["fit_seconds_all"], _ = timed(fit, 1 if name in ENSEMBLES else repeats)
        out["fit_peak_rss_mb"] = peak_rss_mb()
        out["rss_before_top_n_mb"] = current_rss_mb()
        phase_peak = reset_peak_rss()
        out["top_n_seconds"], out["top_n_seconds_all"], top = timed(lambda: model.top_n(n=N), repeats)
        if phase_peak:
            out["top_n_peak_rss_mb"] = peak_rss_mb()
        out["peak_rss_mb"] = max(out["fit_peak_rss_mb"], out.get("top_n_peak_rss_mb", 0.0))
        out["top_n_rows"], out["users"] = len(top), int(top["userId"].nunique())
        if name in ENSEMBLES:
            out.update(_members_in_process(name, model, repeats))
        if name == "SparkALS":
            spark_model = model.model_

            def recipe():
                return spark_model.recommendForAllUsers(N).collect()

            out["recipe"] = "Spark ALSModel.recommendForAllUsers(10).collect()"
            out["recipe_seconds"], out["recipe_seconds_all"], _ = timed(recipe, repeats)
        if name.startswith("SparkALS") or name in ENSEMBLES:
            out["jvm_peak_rss_mb"] = jvm_peak_rss_mb()
        if name == "SurpriseSVD":
            algo = surprise_fit(train, seed=SEED)
            out["recipe"] = "Surprise FAQ get_top_n (algo.test(build_anti_testset()) + sort per user)"
            out["recipe_seconds"], out["recipe_seconds_all"], reference = timed(lambda: surprise_faq_top_n(algo, N), repeats)
            ours = top.groupby("userId")["movieId"].apply(frozenset).to_dict()
            same = sum(ours.get(uid) == frozenset(i for i, _ in items) for uid, items in reference.items())
            out["recipe_set_agreement"] = same / len(reference)
            out["recipe_peak_rss_mb"] = max(out["peak_rss_mb"], peak_rss_mb())
        if "recipe_seconds" in out:
            out["speedup_vs_recipe"] = out["recipe_seconds"] / out["top_n_seconds"]
    finally:
        if model is not None:
            model.close()
    return out


def _members_in_process(name: str, ensemble: Any, repeats: int) -> dict[str, Any]:
    """Return the chosen members' names and their top_n medians, timed in the ensemble's own process."""
    _, rows = ENSEMBLES[name]
    members = [rows[position] for position in ensemble.members_]
    seconds = {}
    for row, member in zip(members, ensemble.models_):
        seconds[row] = timed(lambda member=member: member.top_n(n=N), repeats)[0]
    return {"members": members, "members_top_n_seconds_in_process": seconds}


def compare(results: dict[str, Any]) -> None:
    """Add to each ensemble entry its ratios against its members' entries (all from this run)."""
    for name in ENSEMBLES:
        entry = results.get(name, {})
        if "top_n_seconds" not in entry:
            continue
        members = entry.get("members", list(ENSEMBLES[name][1]))
        measured = [results.get(m, {}) for m in members]
        if any("top_n_seconds" not in m for m in measured):
            entry["comparison_error"] = "a member's own measurement failed"
            continue
        alone = sum(m["top_n_seconds"] for m in measured)
        largest = max(measured, key=lambda m: m["peak_rss_mb"])
        entry["members_top_n_seconds_sum"] = alone
        entry["time_ratio"] = entry["top_n_seconds"] / alone
        in_process = entry.get("members_top_n_seconds_in_process")
        if in_process:
            entry["time_ratio_in_process"] = entry["top_n_seconds"] / sum(in_process.values())
        entry["largest_member"] = members[measured.index(largest)]
        entry["largest_member_peak_rss_mb"] = largest["peak_rss_mb"]
        entry["rss_ratio"] = entry["peak_rss_mb"] / largest["peak_rss_mb"]
        entry["time_target_met"] = entry["time_ratio"] <= TIME_RATIO_MAX
        entry["rss_target_met"] = entry["rss_ratio"] <= RSS_RATIO_MAX


def run(*, quick: bool = False) -> tuple[dict[str, Any], list[str]]:
    """Run every model in its own process; return (results, notes)."""
    repeats = 1 if quick else REPEATS
    results: dict[str, Any] = {}
    for name in MODELS:
        logger.info("speed: %s ...", name)
        started = time.perf_counter()
        results[name] = run_isolated("benchmarks.speed:measure", timeout=3600, name=name, repeats=repeats)
        logger.info("speed: %s done in %.0f s: %s", name, time.perf_counter() - started,
                    {k: v for k, v in results[name].items() if not isinstance(v, (list, dict))})
    reference = results.get("SurpriseSVD", {}).get("recipe_seconds")
    if reference:
        for name, entry in results.items():
            if "top_n_seconds" in entry:
                entry["speedup_vs_surprise_recipe"] = reference / entry["top_n_seconds"]
    compare(results)
    notes = [
        (f"ml-100k u1.base (80,000 ratings, 943 users, 1,650 movies); top-{N} for all users, median of "
        f"{repeats}; fit median of {repeats} for single models, one fit for an ensemble. Each row in a fresh "
        "spawned process; peak RSS = that process's VmHWM (data loading and fit included; rss_after_load_mb "
        "is the baseline); top_n_peak_rss_mb = VmHWM over the top_n runs alone (reset through "
        "/proc/self/clear_refs)."),
        ("Models as the main job builds them (random_state=0): rating members with their defaults, ranking "
        "members with the registry's ranking parameters, EASE's l2 by EASE.tune on a 10% validation split of "
        "the training fold (its tuning is in its fit time). Ensembles score every unseen movie "
        "(candidates=None); their fit fits each member twice (90 % to measure its error, then all), and the "
        "ranking ensemble keeps the members its forward selection chose."),
        (f"Ensemble targets: top_n <= {TIME_RATIO_MAX:g}x the sum of its members' top_n medians "
        f"(each member measured in its own process); peak RSS <= {RSS_RATIO_MAX:g}x its largest member's "
        "process peak. Also shown: the ratio against the same members timed inside the ensemble's process."),
        ("Spark's driver JVM is another process: its peak RSS (VmHWM from /proc) is jvm_peak_rss_mb, not in "
        "peak_rss_mb. recommendForAllUsers keeps seen movies (does less work than top_n)."),
    ]
    return {"n": N, "repeats": repeats, "models": results}, notes
