"""Rating accuracy on ml-100k's official folds u1-u5: RMSE and MAE per model, tuned on the training fold.

For each fold, every tunable model runs its own ``tune()`` on the training fold only (which ends by
refitting on the whole training fold with the best values) and is then measured once on the test
fold. The ensembles take the tuned members' parameters and measure their members' errors on a
held-out 10 % of the training fold (``WeightedEnsemble``'s default): the test fold is never used
to choose anything. Test pairs whose user or movie is absent from the training fold cannot be
scored by any model and are left out for all of them alike (their count is recorded).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from benchmarks._common import ENSEMBLE3, ENSEMBLE4, SEED, available, build, data_home, mean_sd, quiet, timed
from movierec import TuneResult, WeightedEnsemble, official_folds
from movierec.metrics import mae, rmse

logger = logging.getLogger("benchmarks.accuracy")

FOLDS = ("u1", "u2", "u3", "u4", "u5")
# A first run with n_epochs [20, 40], lr_all [0.005, 0.01], reg_all [0.05, 0.1] and ALS reg_param
# [0.05, 0.1, 0.15] chose the largest values on every training fold's CV: the grids moved outwards.
SVD_GRID = {"n_epochs": [40, 60], "lr_all": [0.01, 0.015], "reg_all": [0.1, 0.15]}
ALS_GRID = {"rank": [10, 20, 40], "reg_param": [0.1, 0.15, 0.2]}
FM_RANGES = {"factors_wd": (1e-4, 1e-3), "linear_wd": (1e-5, 1e-3), "num_factors": [32, 64]}
FM_JOBS = 6
TUNE_FOLDS = 3
# SparkALS's 9-point grid x 3 folds is the slowest search; it runs on u1's training fold and its
# best point is reused for u2-u5 (say so in the output). Set to True to search on every fold.
ALS_TUNE_EVERY_FOLD = True

QUICK_GRIDS = {
    "svd": {"lr_all": [0.005, 0.01]},
    "als": {"reg_param": [0.1, 0.15]},
    "fm": {"factors_wd": (1e-4, 1e-3)},
    "fm_jobs": 2,
}

MEMBERS = ("SurpriseSVD", "SparkALS", "SageMakerFM")


def _scores(model: Any, test: pd.DataFrame) -> dict[str, float]:
    predicted = model.predict(test).to_numpy(dtype=float)
    known = np.isfinite(predicted)
    truth = test["rating"].to_numpy(dtype=float)
    return {
        "rmse": rmse(truth[known], predicted[known]),
        "mae": mae(truth[known], predicted[known]),
        "scored_pairs": int(known.sum()),
        "unscored_pairs": int((~known).sum()),
    }


def _tuned(result: TuneResult) -> dict[str, Any]:
    """Return what the result file keeps of a tune(): the chosen values, their score and every candidate."""
    return {"params": result.best_params, "metric": result.metric, "score": result.best_score,
            "results": result.results}


def run(*, quick: bool = False) -> tuple[dict[str, Any], list[str]]:
    """Run the suite; return (results, notes)."""
    quiet()
    adapters = available(["SurpriseSVD", "SparkALS", "SageMakerFM", "MyFMBayes"])
    folds = official_folds("ml-100k", which=FOLDS[:1] if quick else FOLDS, data_home=data_home(), download=False)
    svd_grid = QUICK_GRIDS["svd"] if quick else SVD_GRID
    als_grid = QUICK_GRIDS["als"] if quick else ALS_GRID
    fm_ranges = QUICK_GRIDS["fm"] if quick else FM_RANGES
    fm_jobs = QUICK_GRIDS["fm_jobs"] if quick else FM_JOBS
    myfm_iter = 30 if quick else 200
    notes = [
        (f"Each model's tune() ran on the training fold only: SurpriseSVD GridSearchCV over {svd_grid} "
        f"({TUNE_FOLDS}-fold CV); SparkALS CrossValidator over {als_grid} ({TUNE_FOLDS}-fold CV); "
        f"SageMakerFM random search over {fm_ranges}, {fm_jobs} jobs on a 20 % validation split."),
        ("BiasedBaseline has no tune(): its defaults (damping 15/10, as Surprise's BaselineOnly) are used. "
        "MyFMBayes has nothing to tune: its regularization is sampled (hyperpriors); rank 10, "
        f"{myfm_iter} Gibbs sweeps."),
        ("Ensembles: members with the tuned parameters; member errors measured on a held-out 10 % of the "
        "training fold (WeightedEnsemble's default, random_state=0); the test fold is never used to "
        "choose anything."),
    ]
    if not quick:
        notes.append("The grids were moved outwards after a first run (SVD n_epochs [20, 40], lr_all [0.005, 0.01], "
                     "reg_all [0.05, 0.1]; ALS reg_param [0.05, 0.1, 0.15]) whose cross-validation on every training "
                     "fold chose the largest value of each.")
    if not ALS_TUNE_EVERY_FOLD and len(folds) > 1:
        notes.append("SparkALS was tuned on u1's training fold only; its best point was reused for u2-u5.")
    runner = _FoldRunner(adapters, svd_grid=svd_grid, als_grid=als_grid, fm_ranges=fm_ranges, fm_jobs=fm_jobs,
                         myfm_iter=myfm_iter)
    per_fold: dict[str, dict[str, Any]] = {}
    try:
        for fold in folds:
            per_fold[fold.name] = runner.run_fold(fold)
    finally:
        runner.close()
    return {"folds": per_fold, "summary": summarize(per_fold)}, notes


class _FoldRunner:
    """Tunes, fits and scores every model on one fold after another; keeps what folds share."""

    def __init__(self, adapters: dict[str, Any], *, svd_grid, als_grid, fm_ranges, fm_jobs: int,
                 myfm_iter: int) -> None:
        self.adapters = adapters
        self.svd_grid, self.als_grid, self.fm_ranges, self.fm_jobs = svd_grid, als_grid, fm_ranges, fm_jobs
        self.myfm_iter = myfm_iter
        self.als_best: dict[str, Any] | None = None
        self.als_tuned_on: str | None = None
        self.open_models: list[Any] = []  # closed after each fold

    def close(self) -> None:
        """Stop the Spark sessions the fold's SparkALS models (alone or in an ensemble) started."""
        for model in self.open_models:
            model.close()
        self.open_models.clear()

    def run_fold(self, fold: Any) -> dict[str, Any]:
        """Return {model name: scores on the test fold, seconds, what tune() chose} for ``fold``."""
        row: dict[str, Any] = {}
        tuned: dict[str, dict[str, Any]] = {}
        train = fold.train

        def record(name: str, build: Callable[[], tuple[Any, dict[str, Any] | None]]) -> None:
            logger.info("%s: %s ...", fold.name, name)
            try:
                seconds, _, (model, found) = timed(build)
            except Exception as err:  # one broken adapter must not stop the suite
                logger.exception("%s on %s failed", name, fold.name)
                row[name] = {"error": f"{type(err).__name__}: {err}"}
                return
            entry = {**_scores(model, fold.test), "seconds": seconds}
            if found is not None:
                entry["tuned"] = found
            row[name] = entry
            logger.info("%s: %s RMSE %.4f MAE %.4f (%.0f s)", fold.name, name, entry["rmse"], entry["mae"], seconds)

        record("BiasedBaseline", lambda: (build("BiasedBaseline").fit(train), None))
        if "SurpriseSVD" in self.adapters:
            record("SurpriseSVD", lambda: self._svd(train, tuned))
        if "SparkALS" in self.adapters:
            record("SparkALS", lambda: self._als(train, tuned, fold.name))
        if "SageMakerFM" in self.adapters:
            record("SageMakerFM", lambda: self._fm(train, tuned))
        if "MyFMBayes" in self.adapters:
            record("MyFMBayes", lambda: (self._myfm().fit(train), None))
        members = [name for name in MEMBERS if name in tuned]
        if len(members) >= 2:
            record(ENSEMBLE3, lambda: self._ensemble(members, train, tuned))
            if "MyFMBayes" in self.adapters:
                record(ENSEMBLE4, lambda: self._ensemble([*members, "MyFMBayes"], train, tuned))
        self.close()
        return row

    def _svd(self, train, tuned):
        model = build("SurpriseSVD")
        found = _tuned(model.tune(train, self.svd_grid, folds=TUNE_FOLDS))
        tuned["SurpriseSVD"] = found["params"]
        return model, found

    def _als(self, train, tuned, fold_name: str):
        model = build("SparkALS")
        self.open_models.append(model)
        if self.als_best is None or ALS_TUNE_EVERY_FOLD:
            found = _tuned(model.tune(train, self.als_grid, folds=TUNE_FOLDS))
            self.als_best, self.als_tuned_on = found["params"], fold_name
        else:
            model.set_params(**self.als_best).fit(train)
            found = {"params": self.als_best, "reused_from": self.als_tuned_on}
        tuned["SparkALS"] = self.als_best
        return model, found

    def _fm(self, train, tuned):
        model = build("SageMakerFM")
        found = _tuned(model.tune(train, self.fm_ranges, max_jobs=self.fm_jobs))
        tuned["SageMakerFM"] = found["params"]
        return model, found

    def _myfm(self):
        return build("MyFMBayes", rank=10, n_iter=self.myfm_iter)

    def _ensemble(self, names: list[str], train, tuned):
        members = [self._myfm() if name == "MyFMBayes" else build(name, **tuned[name]) for name in names]
        model = WeightedEnsemble(members, random_state=SEED).fit(train)
        # The fitted clones hold the Spark session; closed with the fold's other models.
        self.open_models.append(model)
        return model, {"member_errors": dict(zip(names, (float(e) for e in model.errors_)))}


def summarize(per_fold: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Return per model: mean and sd over folds, u1 alone, and whether each ensemble beat its best member."""
    names = sorted({name for row in per_fold.values() for name in row}, key=_order)
    summary: dict[str, Any] = {}
    for name in names:
        rows = [row[name] for row in per_fold.values() if name in row and "rmse" in row[name]]
        if not rows:
            continue
        summary[name] = {
            "rmse": mean_sd([r["rmse"] for r in rows]),
            "mae": mean_sd([r["mae"] for r in rows]),
            "u1_rmse": per_fold.get("u1", {}).get(name, {}).get("rmse"),
            "u1_mae": per_fold.get("u1", {}).get(name, {}).get("mae"),
        }
    for ensemble, members in ((ENSEMBLE3, MEMBERS), (ENSEMBLE4, (*MEMBERS, "MyFMBayes"))):
        beats = {}
        for fold, row in per_fold.items():
            if "rmse" not in row.get(ensemble, {}):
                continue
            best = min((row[m]["rmse"], m) for m in members if "rmse" in row.get(m, {}))
            beats[fold] = {"ensemble": row[ensemble]["rmse"], "best_member": best[1], "best_member_rmse": best[0],
                           "margin": best[0] - row[ensemble]["rmse"]}
        if beats and ensemble in summary:
            summary[ensemble]["vs_best_member"] = beats
    return summary


def _order(name: str) -> tuple[int, str]:
    ranking = ["BiasedBaseline", *MEMBERS, "MyFMBayes", ENSEMBLE3, ENSEMBLE4]
    return (ranking.index(name) if name in ranking else len(ranking), name)
