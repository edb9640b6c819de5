"""Speed on ml-100k's u1 training fold: fit time, top-10 for every user, and peak memory per model.

Each model runs in its own fresh process (so its peak resident memory is its own): it is fitted
``REPEATS`` times and ranks the top 10 unseen movies of all 943 users ``REPEATS`` times; medians are
reported. In the same process the reference recipes run against the same fitted model:

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
    SEED,
    build,
    current_rss_mb,
    data_home,
    jvm_peak_rss_mb,
    peak_rss_mb,
    run_isolated,
    timed,
)
from benchmarks._reference import surprise_faq_top_n, surprise_fit

logger = logging.getLogger("benchmarks.speed")

N = 10
REPEATS = 3
# Registry class names, and the ensemble of the three seed models.
MODELS = ("BiasedBaseline", "SurpriseSVD", "SparkALS", "SageMakerFM", "MyFMBayes", "WeightedEnsemble")
ENSEMBLE_MEMBERS = ("SurpriseSVD", "SparkALS", "SageMakerFM")


def _build(name: str) -> Any:
    if name == "WeightedEnsemble":
        from movierec import WeightedEnsemble

        return WeightedEnsemble([build(member) for member in ENSEMBLE_MEMBERS], random_state=SEED)
    return build(name)


def measure(name: str, repeats: int = REPEATS) -> dict[str, Any]:
    """Child-process job: time fit and top_n of ``name`` on u1 (and its reference recipe)."""
    from movierec import official_folds

    train = official_folds("ml-100k", which=("u1",), data_home=data_home(), download=False)[0].train
    out: dict[str, Any] = {"rss_after_load_mb": current_rss_mb()}
    model = None

    def fit():
        nonlocal model
        if model is not None:
            model.close()
        model = _build(name)
        return model.fit(train)

    try:
        out["fit_seconds"], out["fit_seconds_all"], _ = timed(fit, repeats)
        out["top_n_seconds"], out["top_n_seconds_all"], top = timed(lambda: model.top_n(n=N), repeats)
        out["top_n_rows"], out["users"] = len(top), int(top["userId"].nunique())
        out["peak_rss_mb"] = peak_rss_mb()
        if name == "SparkALS":
            spark_model = model.model_

            def recipe():
                return spark_model.recommendForAllUsers(N).collect()

            out["recipe"] = "Spark ALSModel.recommendForAllUsers(10).collect()"
            out["recipe_seconds"], out["recipe_seconds_all"], _ = timed(recipe, repeats)
        if name in ("SparkALS", "WeightedEnsemble"):
            out["jvm_peak_rss_mb"] = jvm_peak_rss_mb()
        if name == "SurpriseSVD":
            algo = surprise_fit(train, seed=SEED)
            out["recipe"] = "Surprise FAQ get_top_n (algo.test(build_anti_testset()) + sort per user)"
            out["recipe_seconds"], out["recipe_seconds_all"], reference = timed(lambda: surprise_faq_top_n(algo, N), repeats)
            ours = top.groupby("userId")["movieId"].apply(frozenset).to_dict()
            same = sum(ours.get(uid) == frozenset(i for i, _ in items) for uid, items in reference.items())
            out["recipe_set_agreement"] = same / len(reference)
            out["recipe_peak_rss_mb"] = peak_rss_mb()
        if "recipe_seconds" in out:
            out["speedup_vs_recipe"] = out["recipe_seconds"] / out["top_n_seconds"]
    finally:
        if model is not None:
            model.close()
    return out


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
    notes = [
        (f"ml-100k u1.base (80,000 ratings, 943 users, 1,650 movies); fit and top-{N} for all users, median of "
        f"{repeats}; each model in a fresh spawned process, peak RSS = that process's VmHWM (data "
        "loading included; rss_after_load_mb is the baseline)."),
        ("Default hyperparameters (random_state=0). WeightedEnsemble = SurpriseSVD + SparkALS + SageMakerFM "
        "(its fit fits each member twice: on 90 % to measure errors, then on all)."),
        ("Spark's driver JVM is another process: its peak RSS (VmHWM from /proc) is jvm_peak_rss_mb, not in "
        "peak_rss_mb. recommendForAllUsers keeps seen movies (does less work than top_n)."),
    ]
    return {"n": N, "repeats": repeats, "models": results}, notes
