"""Benchmark SurpriseSVD against Surprise itself on the official ml-100k folds.

Measures, in one run on one machine:

* fit time of ``SurpriseSVD(random_state=0)`` on u1.base;
* top-5 for all 943 users: movierec's vectorized ``top_n`` versus Surprise's FAQ ``get_top_n``
  recipe (``build_anti_testset`` + ``algo.test`` + a sort per user), median of 3 runs each, their
  ratio and the share of users whose top-5 *sets* agree;
* RMSE on u1..u5 of movierec's model and of Surprise's own ``SVD`` with the same seed, and means.

Run from the repository root::

    MOVIEREC_DATA=../shared/data python benchmarks/surprise_topn.py

Writes ``benchmarks/results/surprise_svd.json``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from surprise import accuracy

from benchmarks._common import RESULTS_DIR, data_home, machine, timed, versions
from benchmarks._reference import surprise_faq_top_n, surprise_fit
from movierec import SurpriseSVD, official_folds

logger = logging.getLogger("benchmarks.surprise_topn")

SEED, N, REPEATS = 0, 5, 3
RESULTS = RESULTS_DIR / "surprise_svd.json"


def main() -> dict:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    folds = official_folds("ml-100k", which=("u1", "u2", "u3", "u4", "u5"), data_home=data_home(), download=False)
    u1 = folds[0]

    start = time.perf_counter()
    model = SurpriseSVD(random_state=SEED).fit(u1.train)
    fit_seconds = time.perf_counter() - start
    algo = surprise_fit(u1.train, seed=SEED)

    ours_seconds, _, ours = timed(lambda: model.top_n(n=N), REPEATS)
    recipe_seconds, _, recipe = timed(lambda: surprise_faq_top_n(algo, N), REPEATS)
    ours_sets = ours.groupby("userId")["movieId"].apply(frozenset).to_dict()
    agree = sum(ours_sets.get(uid) == frozenset(i for i, _ in items) for uid, items in recipe.items())
    agreement = agree / len(recipe)

    rmse = {}
    for fold in folds:
        ours_model = model if fold is u1 else SurpriseSVD(random_state=SEED).fit(fold.train)
        reference = algo if fold is u1 else surprise_fit(fold.train, seed=SEED)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ours_rmse = ours_model.rmse(fold.test)
        scorable = ours_model.predict(fold.test).notna().to_numpy()
        test = fold.test[["userId", "movieId", "rating"]]
        predictions = reference.test(list(test.itertuples(index=False)))
        rmse[fold.name] = {
            "movierec": ours_rmse,
            # on the same pairs movierec scores (Surprise's fallback pairs left out)
            "surprise": accuracy.rmse([p for p, ok in zip(predictions, scorable) if ok], verbose=False),
            # every test pair, with Surprise's global-mean fallback for unseen users or movies
            "surprise_all_pairs": accuracy.rmse(predictions, verbose=False),
            "cold_start_pairs": int((~scorable).sum()),
            "warnings": [str(w.message) for w in caught],
        }
    means = {key: float(np.mean([r[key] for r in rmse.values()])) for key in ("movierec", "surprise", "surprise_all_pairs")}

    result = {
        "benchmark": "SurpriseSVD top-N and RMSE vs Surprise's SVD and FAQ get_top_n recipe",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        # other work on the machine slows both sides; the ratio is measured in the same run
        "machine": machine(),
        "versions": versions(),
        "params": {**model.get_params(), "n": N, "repeats": REPEATS, "dataset": "ml-100k u1..u5"},
        "fit_seconds_u1": fit_seconds,
        "top_n": {
            "users": len(recipe),
            "movierec_seconds_median": ours_seconds,
            "faq_recipe_seconds_median": recipe_seconds,
            "speedup": recipe_seconds / ours_seconds,
            "top5_set_agreement": agreement,
        },
        "rmse": rmse,
        "rmse_mean_u1_u5": means,
    }

    logger.info("fit on u1 (SurpriseSVD, random_state=0): %.2f s", fit_seconds)
    logger.info(
        "top-%d for %d users: movierec %.4f s, FAQ recipe %.3f s (median of %d) -> %.0fx faster",
        N, len(recipe), ours_seconds, recipe_seconds, REPEATS, recipe_seconds / ours_seconds,
    )
    logger.info("top-%d sets agreeing with the recipe: %d / %d users (%.2f %%)", N, agree, len(recipe), 100 * agreement)
    for name, r in rmse.items():
        logger.info(
            "%s RMSE: movierec %.5f  surprise %.5f  (surprise on all pairs %.5f, %d cold-start pairs)",
            name, r["movierec"], r["surprise"], r["surprise_all_pairs"], r["cold_start_pairs"],
        )
    logger.info(
        "mean RMSE u1-u5: movierec %.5f  surprise %.5f  (surprise on all pairs %.5f)",
        means["movierec"], means["surprise"], means["surprise_all_pairs"],
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2, default=float) + "\n")
    logger.info("wrote %s", RESULTS.relative_to(ROOT))
    return result


if __name__ == "__main__":
    main()
