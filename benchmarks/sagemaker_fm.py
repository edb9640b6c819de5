"""Benchmark SageMakerFM (local backend) on MovieLens 100K; writes benchmarks/results/sagemaker_fm.json.

Models come from the registry (``fm``, ``random_state=0``). Figures: u1 fit time (median of 3) and
test RMSE with the defaults; ua binary_classifier (num_factors=64) test accuracy at threshold 0.5,
test pairs the model cannot score counted as wrong; top_n(n=10) time for every user.

Run from the repository root::

    .venv/bin/python benchmarks/sagemaker_fm.py [--data-home ../shared/data] [--repeats 3]
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

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._common import RESULTS_DIR, build, data_home, machine, versions
from movierec import MovieRecWarning, official_folds

RESULTS = RESULTS_DIR / "sagemaker_fm.json"


def _timed(func):
    """Return (value, wall seconds, CPU seconds of this process)."""
    wall, cpu = time.perf_counter(), time.process_time()
    value = func()
    return value, time.perf_counter() - wall, time.process_time() - cpu


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-home", default=str(data_home())
    )
    parser.add_argument("--repeats", type=int, default=3, help="fits timed on u1 (median reported)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    u1, ua = official_folds("ml-100k", which=("u1", "ua"), data_home=args.data_home, download=False)

    fit_times, fit_cpu, model = [], [], None
    for _ in range(args.repeats):
        model, seconds, cpu = _timed(lambda: build("fm").fit(u1.train))  # defaults, random_state=0
        fit_times.append(seconds)
        fit_cpu.append(cpu)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MovieRecWarning)  # the 32 u1 test movies unseen in train
        u1_rmse = model.rmse(u1.test)
    u1_unscored = int(model.predict(u1.test).isna().sum())
    top, top_seconds, _ = _timed(lambda: model.top_n(n=10))

    classifier, ua_seconds, _ = _timed(
        lambda: build("fm", predictor_type="binary_classifier", num_factors=64).fit(ua.train)
    )
    probability = classifier.predict(ua.test)
    labels = ua.test["rating"] >= 4
    unscored = int(probability.isna().sum())
    ua_accuracy = float(np.mean((probability >= 0.5).to_numpy() == labels.to_numpy()))

    result = {
        "benchmark": "sagemaker_fm",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        # wall times grow with other work on the machine (its load average is in machine); CPU times much less
        "machine": machine(),
        "versions": versions(),
        "params": model.hyperparameters(),
        "figures": {
            "u1_fit_seconds_median": statistics.median(fit_times),
            "u1_fit_seconds_all": fit_times,
            "u1_fit_cpu_seconds_median": statistics.median(fit_cpu),
            "u1_test_rmse": u1_rmse,
            "u1_test_pairs_unscored": u1_unscored,
            "u1_top_n_all_users_seconds": top_seconds,
            "u1_top_n_rows": len(top),
            "ua_binary_classifier_fit_seconds": ua_seconds,
            "ua_binary_classifier_test_accuracy": ua_accuracy,
            "ua_test_pairs_unscored": unscored,
        },
        "targets": {"u1_test_rmse_max": 0.93, "u1_fit_seconds_max": 30.0, "ua_accuracy_min": 0.70},
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["figures"], indent=2))
    print(f"written to {args.output}")
    return result


if __name__ == "__main__":
    main()
