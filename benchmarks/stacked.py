"""Benchmark the rating ensembles of issue 14 on ml-100k u1-u5; writes benchmarks/results/stacked.json.

Members: SparkALS, SurpriseSVD and SageMakerFM with their defaults (``random_state=0``), and
MyFMBayes with side, time and implicit features in the configuration ``benchmarks/bfm.py`` chose on
u1.base only (``CHOSEN`` there). Two ensembles of the same four members on every fold:

- ``inverse_error``: the seed's weights, ``1 / RMSE`` on a 10 % hold-out of the training fold;
- ``stacked``: non-negative least squares on that hold-out's standardized scores
  (``WeightedEnsemble(weights="stacked")``), its own hold-out error cross-fitted.

Nothing is chosen on a test fold: the weights come from the hold-out of each training fold. Each
test fold is scored once, on the pairs whose user and movie have training ratings (MyFMBayes's side
features could score the others; the other members cannot).

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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._common import RESULTS_DIR, build, data_home, machine, versions  # noqa: E402
from benchmarks.bfm import CHOSEN, FEATURES  # noqa: E402
from movierec import MovieRecWarning, WeightedEnsemble, load_movielens, official_folds  # noqa: E402
from movierec.metrics import rmse  # noqa: E402

RESULTS = RESULTS_DIR / "stacked.json"
FOLDS = ("u1", "u2", "u3", "u4", "u5")
MEMBERS = ("als", "svd", "fm", "bfm")
TARGETS = {"u1_rmse_max": 0.885, "mean_rmse_max": 0.878, "folds_below_best_member": 5}


def members() -> list[Any]:
    return [build(name, random_state=0, **({**FEATURES, **CHOSEN} if name == "bfm" else {})) for name in MEMBERS]


def fold_figures(fold: Any, data: Any) -> dict[str, Any]:
    """Return the test RMSE of each member and both ensembles on ``fold``, and their weights."""
    test = fold.test[fold.test.userId.isin(fold.train.userId) & fold.test.movieId.isin(fold.train.movieId)]
    row: dict[str, Any] = {"fold": fold.name, "test_pairs": len(test)}
    for weights in ("inverse_error", "stacked"):
        ensemble = WeightedEnsemble(members(), weights=weights, random_state=0)
        start = time.perf_counter()
        try:
            ensemble.fit(fold.train, users=data.users, items=data.items)
            row[f"{weights}_fit_seconds"] = time.perf_counter() - start
            row[weights] = rmse(test.rating, ensemble.predict(test))
            row[f"{weights}_weights"] = dict(zip(MEMBERS, map(float, ensemble.weights_)))
            row[f"{weights}_holdout_errors"] = dict(zip(MEMBERS, map(float, ensemble.errors_)))
            if weights == "stacked":
                row["stacked_cross_fitted_holdout_rmse"] = ensemble.stacked_error_
                row["members"] = {name: rmse(test.rating, m.predict(test)) for name, m in zip(MEMBERS, ensemble.models_)}
        finally:
            ensemble.close()
    row["best_member"] = min(row["members"], key=row["members"].get)
    row["stacked_below_best_member"] = row["stacked"] < row["members"][row["best_member"]]
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
    } | {"stacked_below_best_member_folds": sum(r["stacked_below_best_member"] for r in rows)}
    document = {
        "benchmark": "stacked",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": "python benchmarks/stacked.py " + " ".join(argv or sys.argv[1:]),
        "duration_seconds": time.perf_counter() - started,
        "machine": machine(),
        "versions": versions(),
        "members": {name: ({**FEATURES, **CHOSEN} if name == "bfm" else "defaults") for name in MEMBERS},
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
