"""``movierec recommend``: the main job (`movierec.pipeline.run`) on a dataset or your own file,
its table printed, ``recommendations.csv`` and ``report.html`` written."""

from __future__ import annotations

import argparse
import logging
import time

import pandas as pd

from movierec import pipeline
from movierec._core.output import write_csv
from movierec.cli._data import check_out_dir, load_split, report_users, side_frames
from movierec.cli._output import markdown_table, metric_label, progress_bars, with_titles

__all__ = ["recommend_command"]

logger = logging.getLogger("movierec.cli")


def recommend_command(args: argparse.Namespace) -> int:
    """Run the main job and write its files; return the exit code."""
    from movierec.report import ReportData, write_report

    started = time.perf_counter()
    check_out_dir(args.out)
    settings = args.settings
    data, train, test, split = load_split(args)
    shown_users = report_users(args, train)
    with progress_bars(args.quiet) as progress:
        result = pipeline.run(train, test, settings, progress=progress, **side_frames(args, data))

    recommendations = with_titles(result.recommendations, data.items)
    csv_path = write_csv(args.out / "recommendations.csv", recommendations, float_format="%.6g")
    titles = data.items.set_index("movieId")["title"]
    candidates = result.candidates
    report = ReportData(
        dataset=data.name, split=split, train=train, test=test, titles=titles, members=result.members,
        ensemble=result.ensemble, metrics=result.metrics, top=result.top, k=settings.k, users=shown_users,
        settings={
            "task": (f"ranking: members trained for top-N, weighted by 1 - nDCG@{settings.k} on a hold-out"
                     if settings.task == "ranking" else "rating: members predict ratings, weighted by 1/RMSE"),
            "ensemble": ("every unseen movie scored by every member" if candidates is None
                         else f"candidates: each member's top {candidates}"),
            "recommendations.csv": f"{settings.recommender}'s top {settings.n}",
            "random_state": str(settings.random_state),
            "fit seconds": ", ".join(f"{k} {v:.1f}" for k, v in result.fit_seconds.items()),
        },
        seed=settings.random_state, task=settings.task)
    report_path = write_report(report, args.out / "report.html")

    print(markdown_table(_table(result)))
    _print_weights(result, split, train, test)
    n_users = recommendations["userId"].nunique()
    print(f"wrote {csv_path} ({len(recommendations):,} rows: {n_users:,} users x top {settings.n} of "
          f"{settings.recommender})")
    print(f"wrote {report_path}")
    print(f"done in {time.perf_counter() - started:.0f} s")
    return 0


def _table(result: pipeline.Result) -> pd.DataFrame:
    """Return the printed table: four decimals, fit seconds with one."""
    shown = result.metrics.assign(fit_s=pd.Series(result.fit_seconds)).rename(columns=metric_label).rename(
        columns={"fit_s": "fit s"})
    table = shown.drop(columns="scored", errors="ignore").map(lambda v: "" if pd.isna(v) else f"{v:.4f}")
    table["fit s"] = shown["fit s"].map(lambda v: "" if pd.isna(v) else f"{v:.1f}")
    table.index.name = "model"
    return table


def _print_weights(result: pipeline.Result, split: str, train: pd.DataFrame, test: pd.DataFrame) -> None:
    """Print the split's sizes and the members' hold-out figures and weights."""
    ensemble, names, k = result.ensemble, result.names, result.settings.k
    if result.settings.task == "rating":
        unscored = len(test) - int(result.metrics["scored"].min())
        print(f"\n{split}: {len(train):,} train / {len(test):,} test ratings"
              + (f"; {unscored:,} test pairs with a user or movie unseen in train are left out" if unscored else ""))
        print("ensemble weights 1/RMSE(hold-out): "
              + ", ".join(f"{name} {w:.3f}" for name, w in zip(names, ensemble.weights_)))
        return
    print(f"\n{split}: {len(train):,} train / {len(test):,} test ratings; relevant = the user's test movies")
    print(f"hold-out nDCG@{k} of each member: " + ", ".join(
        f"{name} {1 - e:.4f}" for name, e in zip(names, ensemble.candidate_errors_)))
    print(f"members chosen on the hold-out: {', '.join(result.members)}; weights 1/(1 - nDCG@{k}): "
          + ", ".join(f"{name} {w:.3f}" for name, w in zip(result.members, ensemble.weights_)))
