"""Benchmark MyFMBayes with features on ml-100k u1-u5; writes benchmarks/results/bfm.json.

The model comes from the registry (``bfm``, ``random_state=0``) with side features (``users`` and
``items`` of ``load_movielens("ml-100k")``), the rating's month and implicit-feedback groups. Its
remaining settings are chosen on the training data only: each candidate is fitted on 80 % of
u1.base (``random_split``, seeds 1 and 2) and scored on the other 20 %; the best mean validation
RMSE wins. The test folds are used once each, to measure the chosen configuration.

Figures per fold: fit seconds (wall and CPU), test RMSE over every pair the model scores (side
features score movies without training ratings), and test RMSE over the pairs whose user and
movie both have training ratings (the pairs the accuracy suite scores for every model).

Run from the repository root::

    .venv/bin/python benchmarks/bfm.py [--data-home ../shared/data] [--folds u1,u2] [--no-select]
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
from movierec import MovieRecWarning, load_movielens, official_folds
from movierec.data.split import random_split
from movierec.metrics import rmse

RESULTS = RESULTS_DIR / "bfm.json"
FOLDS = ("u1", "u2", "u3", "u4", "u5")
FEATURES = {"side_features": True, "time_features": True, "implicit": True}
#: Candidates of the selection; n_iter stays at the default 200 (the fit-time budget is 60 s).
CANDIDATES = [{"rank": rank, "grouped": grouped} for grouped in (True, False) for rank in (10, 16)]
#: What the selection chose when this file was written (used by --no-select).
CHOSEN = {"rank": 16, "grouped": False}
SPLIT_SEEDS = (1, 2)
TARGETS = {"u1_rmse_max": 0.890, "mean_rmse_max": 0.883, "fit_seconds_max": 60.0}


def _fit(params: dict[str, Any], train, data) -> tuple[Any, float, float]:
    """Return (fitted model, wall seconds, CPU seconds of this process)."""
    model = build("bfm", **FEATURES, **params)
    wall, cpu = time.perf_counter(), time.process_time()
    model.fit(train, users=data.users, items=data.items)
    return model, time.perf_counter() - wall, time.process_time() - cpu


def select(train, data) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Return the candidate with the lowest mean validation RMSE on splits of ``train``, and every score."""
    splits = [random_split(train, 0.2, random_state=seed) for seed in SPLIT_SEEDS]
    rows = []
    for params in CANDIDATES:
        scores = []
        for seed, (fit_part, valid) in zip(SPLIT_SEEDS, splits):
            model, seconds, _ = _fit(params, fit_part, data)
            scores.append(model.rmse(valid))
            rows.append({**params, "split_seed": seed, "valid_rmse": scores[-1], "fit_seconds": seconds})
        print(f"select {params}: validation RMSE {statistics.fmean(scores):.4f}", flush=True)
        rows.append({**params, "split_seed": "mean", "valid_rmse": statistics.fmean(scores)})
    means = [r for r in rows if r["split_seed"] == "mean"]
    best = min(means, key=lambda r: r["valid_rmse"])
    return {k: best[k] for k in CANDIDATES[0]}, rows


def measure(params: dict[str, Any], folds, data) -> dict[str, Any]:
    """Return the per-fold fit times and test RMSEs of ``params``."""
    per_fold = {}
    for fold in folds:
        model, seconds, cpu = _fit(params, fold.train, data)
        predicted = model.predict(fold.test).to_numpy(dtype=float)
        truth = fold.test["rating"].to_numpy(dtype=float)
        scored = np.isfinite(predicted)
        test, train = fold.test, fold.train
        rated = (test["userId"].isin(train["userId"]) & test["movieId"].isin(train["movieId"])).to_numpy()
        per_fold[fold.name] = {
            "fit_seconds": seconds,
            "fit_cpu_seconds": cpu,
            "rmse": rmse(truth[scored], predicted[scored]),
            "scored_pairs": int(scored.sum()),
            "unscored_pairs": int((~scored).sum()),
            "rmse_rated_ids": rmse(truth[rated], predicted[rated]),
            "rated_id_pairs": int(rated.sum()),
        }
        print(f"{fold.name}: RMSE {per_fold[fold.name]['rmse']:.4f} "
              f"(rated ids {per_fold[fold.name]['rmse_rated_ids']:.4f}), fit {seconds:.1f} s", flush=True)
    return per_fold


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-home", default=str(data_home()))
    parser.add_argument("--folds", default=",".join(FOLDS), help="comma-separated among u1..u5")
    parser.add_argument("--no-select", action="store_true", help=f"skip the selection; use {CHOSEN}")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", MovieRecWarning)  # pairs of unseen ids, counted in the figures

    started = time.perf_counter()
    names = tuple(f.strip() for f in args.folds.split(",") if f.strip())
    data = load_movielens("ml-100k", data_home=args.data_home, download=False)
    folds = official_folds("ml-100k", which=names, data_home=args.data_home, download=False)
    u1_train = folds[0].train if names[0] == "u1" else official_folds(
        "ml-100k", which=("u1",), data_home=args.data_home, download=False)[0].train
    chosen, selection = (dict(CHOSEN), []) if args.no_select else select(u1_train, data)
    per_fold = measure(chosen, folds, data)

    rmses = [f["rmse"] for f in per_fold.values()]
    result = {
        "benchmark": "bfm",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python benchmarks/bfm.py", *(sys.argv[1:] if argv is None else argv)]),
        "duration_seconds": round(time.perf_counter() - started, 1),
        # wall times grow with other work on the machine (its load average is in machine); CPU times much less
        "machine": machine(),
        "versions": versions(),
        "params": {**build("bfm", **FEATURES, **chosen).get_params()},
        "selection": {
            "how": f"fit on 80 % of u1.base (random_split seeds {list(SPLIT_SEEDS)}), RMSE on the other 20 %",
            "candidates": selection,
            "chosen": chosen,
        },
        "folds": per_fold,
        "figures": {
            "mean_rmse": statistics.fmean(rmses),
            "mean_rmse_rated_ids": statistics.fmean(f["rmse_rated_ids"] for f in per_fold.values()),
            "max_fit_seconds": max(f["fit_seconds"] for f in per_fold.values()),
        },
        "targets": TARGETS,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["figures"], indent=2))
    print(f"written to {args.output}")
    return result


if __name__ == "__main__":
    main()
