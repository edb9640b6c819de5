"""Benchmark the stacked and 1/RMSE rating ensembles on ml-100k u1-u5; writes benchmarks/results/stacked.json.

Members (``MEMBERS``, ``random_state=0``): SparkALS, SurpriseSVD, SageMakerFM and MyFMBayes with
side, time and implicit features (the configuration ``benchmarks/bfm.py`` chose on u1.base only,
``CHOSEN`` there). Two ensembles of the same four members on every fold:

- ``inverse_error``: the default weights, ``1 / RMSE`` on a 10 % hold-out of the training fold;
- ``stacked``: ``WeightedEnsemble(weights="stacked", stacking_folds=5)``: non-negative least
  squares on out-of-fold standardized scores of the whole training fold (each member fitted 5
  times on 4/5 of every user's ratings), predictions clipped to the rating scale.

Nothing is chosen on a test fold. The member settings (``SELECTION``) were chosen by the stacked
ensemble's gain over MyFMBayes on the training folds only: for each candidate set, the members'
out-of-fold scores on u1.base..u5.base, the cross-fitted RMSE of the stacked blend on them
(``stacked_error_``) against MyFMBayes's out-of-fold RMSE on the same ratings; the set with the
largest mean gain won. SVD's and FM's settings are those the accuracy suite's tuning chose on
u1.base (``benchmarks/results/accuracy.json``); ALS's are the registry's ranking settings with the
rank the selection chose. Each test fold is scored once, on the pairs whose user and movie have
training ratings (MyFMBayes's side features could score the others; the other members cannot).

Run from the repository root::

    .venv/bin/python benchmarks/stacked.py [--data-home ../shared/data] [--folds u1,u2]
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._common import RESULTS_DIR, build, data_home, machine, versions
from benchmarks.bfm import CHOSEN, FEATURES
from movierec import MovieRecWarning, WeightedEnsemble, load_movielens, official_folds
from movierec.metrics import rmse

RESULTS = RESULTS_DIR / "stacked.json"
FOLDS = ("u1", "u2", "u3", "u4", "u5")
STACKING_FOLDS = 5
#: The members' settings (registry short name -> parameters), chosen on training folds (SELECTION).
MEMBERS: dict[str, dict[str, Any]] = {
    "als": {"implicit_prefs": True, "rank": 40, "reg_param": 0.1, "alpha": 1.0},
    "svd": {"n_epochs": 60, "lr_all": 0.01, "reg_all": 0.15},
    "fm": {"num_factors": 64, "factors_wd": 0.00026491090104592167, "linear_wd": 0.0004435958687950449},
    "bfm": {**FEATURES, **CHOSEN},
}
#: How MEMBERS was chosen, and the figures it was chosen on (training folds only, 1e-4 RMSE units).
SELECTION = {
    "how": (
        "5-fold out-of-fold stacking (per-user folds, seed 0) on each of u1.base..u5.base; criterion: "
        "MyFMBayes's out-of-fold RMSE minus the cross-fitted RMSE of the clipped stacked blend, mean over "
        "the 5 training folds; the test folds were not used"
    ),
    "candidates": {
        "als": ["defaults", "rank 20 reg 0.15 (accuracy suite, u1.base)", "implicit rank 20 alpha 1 (registry)",
                "implicit rank 40", "implicit rank 80", "implicit rank 20 alpha 10"],
        "svd": ["defaults", "60 epochs lr 0.01 reg 0.15 (accuracy suite, u1.base)", "unbiased"],
        "fm": ["defaults", "tuned (accuracy suite, u1.base)", "side features", "binary classifiers at 3, 4, 5"],
        "weights": ["10 % hold-out", "5-fold out-of-fold"],
        "clip": [False, True],
    },
}
TARGETS = {"u1_rmse_max": 0.885, "mean_rmse_max": 0.878, "folds_below_best_member": 5}


def members() -> list[Any]:
    return [build(name, random_state=0, **params) for name, params in MEMBERS.items()]


def fold_figures(fold: Any, data: Any) -> dict[str, Any]:
    """Return the test RMSE of each member and both ensembles on ``fold``, and their weights."""
    test = fold.test[fold.test.userId.isin(fold.train.userId) & fold.test.movieId.isin(fold.train.movieId)]
    names = list(MEMBERS)
    row: dict[str, Any] = {"fold": fold.name, "test_pairs": len(test)}
    for weights in ("inverse_error", "stacked"):
        ensemble = WeightedEnsemble(members(), weights=weights, stacking_folds=STACKING_FOLDS, random_state=0)
        start = time.perf_counter()
        try:
            ensemble.fit(fold.train, users=data.users, items=data.items)
            row[f"{weights}_fit_seconds"] = time.perf_counter() - start
            row[weights] = rmse(test.rating, ensemble.predict(test))
            row[f"{weights}_weights"] = dict(zip(names, map(float, ensemble.weights_)))
            if weights == "inverse_error":
                row["inverse_error_holdout_errors"] = dict(zip(names, map(float, ensemble.errors_)))
                continue
            row["stacked_intercept"] = ensemble.intercept_
            row["stacked_out_of_fold_errors"] = dict(zip(names, map(float, ensemble.errors_)))
            row["stacked_cross_fitted_rmse"] = ensemble.stacked_error_
            row["stacked_member_fit_seconds"] = dict(zip(names, map(float, ensemble.fit_seconds_)))
            predictions = {name: m.predict(test).to_numpy(dtype=float) for name, m in zip(names, ensemble.models_)}
            row["members"] = {name: rmse(test.rating, p) for name, p in predictions.items()}
            # Not a target: the members clipped to the scale as the stacked blend is (SVD clips already).
            row["members_clipped"] = {name: rmse(test.rating, np.clip(p, *ensemble.rating_scale_))
                                      for name, p in predictions.items()}
        finally:
            ensemble.close()
    best = min(row["members"], key=row["members"].get)
    row["best_member"] = best
    row["stacked_below_best_member"] = row["stacked"] < row["members"][best]
    row["stacked_below_best_member_clipped"] = row["stacked"] < row["members_clipped"][best]
    return row


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-home", type=Path, default=None)
    parser.add_argument("--folds", default=",".join(FOLDS))
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    home = args.data_home or data_home()
    started = time.perf_counter()
    data = load_movielens("ml-100k", data_home=home)
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MovieRecWarning)
        for fold in official_folds("ml-100k", which=tuple(args.folds.split(",")), data_home=home):
            rows.append(fold_figures(fold, data))
            print(json.dumps(rows[-1], default=float), flush=True)
    figures = {
        key: statistics.mean(r[key] for r in rows) for key in ("inverse_error", "stacked")
    } | {
        f"member_{name}": statistics.mean(r["members"][name] for r in rows) for name in MEMBERS
    } | {
        "stacked_below_best_member_folds": sum(r["stacked_below_best_member"] for r in rows),
        "stacked_below_best_member_clipped_folds": sum(r["stacked_below_best_member_clipped"] for r in rows),
    }
    document = {
        "benchmark": "stacked",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": "python benchmarks/stacked.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "duration_seconds": time.perf_counter() - started,
        "machine": machine(),
        "versions": versions(),
        "members": MEMBERS,
        "stacking_folds": STACKING_FOLDS,
        "selection": SELECTION,
        "folds": rows,
        "mean": figures,
        "targets": TARGETS,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(document, indent=2, default=float) + "\n")
    print(json.dumps(figures, indent=2))
    return document


if __name__ == "__main__":
    main()
