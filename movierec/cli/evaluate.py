"""``movierec evaluate``: the main job's ensemble, its members and the reference, cross-validated on
official folds; mean ± sample sd printed and, with ``--out``, written as CSV."""

from __future__ import annotations

import argparse
import logging
import time
from typing import Any

import pandas as pd

from movierec import pipeline
from movierec._core.output import write_csv
from movierec.cli._data import check_out_file
from movierec.cli._output import markdown_table, progress_bars

__all__ = ["evaluate_command"]

logger = logging.getLogger("movierec.cli")


def evaluate_command(args: argparse.Namespace) -> int:
    """Cross-validate on the official folds; return the exit code."""
    from movierec.data.movielens import official_folds

    if args.out is not None:
        check_out_file(args.out)
    settings = args.settings
    start = time.perf_counter()
    folds = official_folds(args.dataset, which=tuple(args.folds), data_home=args.data_home)
    logger.info("loaded %s folds %s (%.1f s)", args.dataset, ",".join(args.folds), time.perf_counter() - start)
    per_fold = pd.concat([_evaluate_fold(args, settings, fold) for fold in folds], ignore_index=True)
    grouped = per_fold.groupby("model", sort=False)
    k = settings.k
    columns = ["rmse", "mae"] if settings.task == "rating" else [f"precision@{k}", f"ndcg@{k}", f"map@{k}"]
    summary = pd.DataFrame(
        {f"{c}_{stat}": getattr(grouped[c], stat)() for c in columns for stat in ("mean", "std")}
        | {"folds": grouped.size()}
    ).rename(columns=lambda c: c.replace("_std", "_sd"))
    summary.index.name = "model"

    def pm(mean: float, sd: float) -> str:
        return f"{mean:.4f}" if pd.isna(sd) else f"{mean:.4f} ± {sd:.4f}"

    labels = {"rmse": "RMSE", "mae": "MAE", f"precision@{k}": f"precision@{k}", f"ndcg@{k}": f"nDCG@{k}",
              f"map@{k}": f"MAP@{k}"}
    shown = pd.DataFrame({labels[c]: [pm(m, sd) for m, sd in zip(summary[f"{c}_mean"], summary[f"{c}_sd"])]
                          for c in columns}, index=summary.index)
    print(markdown_table(shown))
    print(f"\n{args.dataset}, folds {','.join(args.folds)}, task {settings.task}: mean ± sample sd over "
          f"{len(folds)} folds")
    if args.out is not None:
        write_csv(args.out, summary, index=True, float_format="%.6f")
        print(f"wrote {args.out}")
    return 0


def _evaluate_fold(args: argparse.Namespace, settings: pipeline.Settings, fold: Any) -> pd.DataFrame:
    """Return the metrics table of one fold: each member, the reference (ranking) and the ensemble."""
    from movierec.metrics import evaluate

    ensemble, names = pipeline.build_ensemble(fold.train, settings)
    try:
        with progress_bars(args.quiet) as progress:
            pipeline.fit_ensemble(ensemble, names, fold.train,
                                  progress=lambda stage, *rest: progress(f"fold {fold.name}", *rest))
        everyone: dict[str, Any] = pipeline.chosen_members(names, ensemble)
        if settings.task == "ranking":
            from movierec.models.popularity import Popularity

            everyone = {pipeline.REFERENCE: Popularity().fit(fold.train), **everyone}
        everyone[pipeline.ENSEMBLE] = ensemble
        top = ({name: model.top_n(n=settings.k) for name, model in everyone.items()}
               if settings.task == "ranking" else None)
        table = evaluate(everyone, fold.test, top=top, k=settings.k, task=settings.task)
    finally:
        pipeline.close_quietly(ensemble)
    metric = settings.metric
    logger.info("fold %s: %s", fold.name, ", ".join(f"{name} {metric} {row[metric]:.4f}"
                                                     for name, row in table.iterrows()))
    return table.assign(fold=fold.name).reset_index()
