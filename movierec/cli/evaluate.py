"""``movierec evaluate``: the main job's ensemble, its members and the reference, cross-validated on
official folds, per-user k-fold or a temporal split of any data; one row per fold and model, then
mean ± sample sd, printed and, with ``--out``, written as CSV."""

from __future__ import annotations

import argparse
import logging
from typing import Any

import pandas as pd

from movierec import pipeline
from movierec._core.output import write_csv
from movierec.cli._data import Split, check_out_file, load_folds, side_frames
from movierec.cli._output import markdown_table, metric_label, progress_bars

__all__ = ["evaluate_command"]

logger = logging.getLogger("movierec.cli")


def evaluate_command(args: argparse.Namespace) -> int:
    """Cross-validate the task's ensemble on the splits the arguments name; return the exit code."""
    if args.out is not None:
        check_out_file(args.out)
    settings = args.settings
    data, splits, what = load_folds(args)
    side = side_frames(args, data)
    per_fold = pd.concat([_evaluate_split(args, settings, split, side) for split in splits], ignore_index=True)
    k = settings.k
    metrics = ["rmse", "mae"] if settings.task == "rating" else [f"precision@{k}", f"ndcg@{k}", f"map@{k}"]
    per_fold = per_fold[["fold", "model", *metrics]]
    summary = _summary(per_fold, metrics)

    shown = per_fold.set_index("fold").rename(columns=metric_label)
    shown[shown.columns[1:]] = shown[shown.columns[1:]].map(lambda v: "" if pd.isna(v) else f"{v:.4f}")
    print(markdown_table(shown, left=2))
    print()
    means, sds = summary[summary["fold"] == "mean"], summary[summary["fold"] == "sd"]
    table = pd.DataFrame({metric_label(m): [_pm(mean, sd) for mean, sd in zip(means[m], sds[m])] for m in metrics},
                         index=pd.Index(means["model"], name="model"))
    print(markdown_table(table))
    print(f"\n{what}, task {settings.task}: mean ± sample sd over {len(splits):,} "
          f"fold{'s' if len(splits) != 1 else ''}")
    if args.out is not None:
        write_csv(args.out, pd.concat([per_fold, summary], ignore_index=True), float_format="%.6f")
        print(f"wrote {args.out}")
    return 0


def _pm(mean: float, sd: float) -> str:
    return f"{mean:.4f}" if pd.isna(sd) else f"{mean:.4f} ± {sd:.4f}"


def _summary(per_fold: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """Return two rows per model, in the table's order: ``fold`` "mean" and "sd" (sample sd; NaN for one fold)."""
    grouped = per_fold.groupby("model", sort=False)[metrics]
    rows = []
    for model, stats in ((m, (grouped.mean().loc[m], grouped.std().loc[m])) for m in per_fold["model"].unique()):
        rows += [{"fold": "mean", "model": model, **stats[0]}, {"fold": "sd", "model": model, **stats[1]}]
    return pd.DataFrame(rows, columns=["fold", "model", *metrics])


def _evaluate_split(args: argparse.Namespace, settings: pipeline.Settings, split: Split,
                    side: dict[str, Any]) -> pd.DataFrame:
    """Return the metrics of one split: each member, the reference (ranking) and the ensemble."""
    from movierec.metrics import evaluate

    ensemble, names = pipeline.build_ensemble(split.train, settings)
    try:
        with progress_bars(args.quiet) as progress:
            pipeline.fit_ensemble(ensemble, names, split.train, **side,
                                  progress=lambda stage, *rest: progress(f"fold {split.name}", *rest))
        everyone: dict[str, Any] = pipeline.chosen_members(names, ensemble)
        if settings.task == "ranking":
            from movierec.models.popularity import Popularity

            everyone = {pipeline.REFERENCE: Popularity().fit(split.train), **everyone}
        everyone[pipeline.ENSEMBLE] = ensemble
        top = ({name: model.top_n(n=settings.k) for name, model in everyone.items()}
               if settings.task == "ranking" else None)
        table = evaluate(everyone, split.test, top=top, k=settings.k, task=settings.task)
    finally:
        pipeline.close_quietly(ensemble)
    metric = settings.metric
    logger.info("fold %s: %s", split.name, ", ".join(f"{name} {metric_label(metric)} {row[metric]:.4f}"
                                                      for name, row in table.iterrows()))
    return table.assign(fold=split.name).rename_axis("model").reset_index()
