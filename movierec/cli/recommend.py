"""``movierec recommend``: the main job (`movierec.pipeline.run`) on a dataset or your own file,
its table printed; ``recommendations.csv`` (and ``.parquet``), ``report.html``, ``metrics.json`` and
``per_user.csv`` written; with ``--mlflow``, the run logged to MLflow."""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Mapping
from typing import Any

import pandas as pd

from movierec import pipeline
from movierec._core.output import write_csv, write_json, write_parquet
from movierec.cli._data import check_out_dir, load_split, report_users, side_frames
from movierec.cli._output import markdown_table, metric_label, progress_bars, with_titles

__all__ = ["recommend_command"]

logger = logging.getLogger("movierec.cli")


def recommend_command(args: argparse.Namespace) -> int:
    """Run the main job and write its files; return the exit code."""
    from movierec.report import (
        CURVE_DEPTH,
        ReportData,
        metric_curves,
        per_user_table,
        run_summary,
        write_report,
    )

    started = time.perf_counter()
    check_out_dir(args.out)
    settings = args.settings
    data, train, test, split = load_split(args)
    shown_users = report_users(args, train)
    with progress_bars(args.quiet) as progress:
        result = pipeline.run(train, test, settings, progress=progress, depth=CURVE_DEPTH, **side_frames(args, data))

    recommendations = with_titles(result.recommendations, data.items)
    csv_path = write_csv(args.out / "recommendations.csv", recommendations, float_format="%.6g")
    written = {"recommendations": csv_path.name}
    if args.format == "parquet":
        written["recommendations_parquet"] = write_parquet(args.out / "recommendations.parquet", recommendations).name
    per_user = per_user_table(result.top, test, settings.k)
    per_user_path = write_csv(args.out / "per_user.csv", per_user, float_format="%.6g")
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
        },
        seed=settings.random_state, task=settings.task, n=settings.n, names=result.names,
        fit_seconds=result.fit_seconds, per_user=per_user)
    start = time.perf_counter()
    report_path = write_report(report, args.out / "report.html")
    report_seconds = time.perf_counter() - start
    summary = run_summary(result, dataset=data.name, split=split, train=train, test=test,
                          source_sha256=_source_sha256(data, split), curves=metric_curves(result.top, test),
                          files={**written, "report": report_path.name, "per_user": per_user_path.name})
    summary["timings"]["report"] = round(report_seconds, 3)
    metrics_path = write_json(args.out / "metrics.json", summary)
    run_id = None
    if args.mlflow:
        from movierec import tracking

        run_id = tracking.log_run(summary, [report_path, metrics_path, per_user_path], run_name=args.out.name)

    print(markdown_table(_table(summary)))
    _print_weights(result, split, train, test)
    n_users = recommendations["userId"].nunique()
    print(f"wrote {csv_path} ({len(recommendations):,} rows: {n_users:,} users x top {settings.n} of "
          f"{settings.recommender})")
    print(f"wrote {report_path}, {metrics_path.name} and {per_user_path.name}"
          + (", recommendations.parquet" if args.format == "parquet" else ""))
    if run_id is not None:
        print(f"logged MLflow run {run_id}")
    print(f"done in {time.perf_counter() - started:.0f} s")
    return 0


def _table(summary: Mapping[str, Any]) -> pd.DataFrame:
    """Return the printed table from the ``metrics.json`` document: four decimals, fit seconds with one."""
    from movierec.report import summary_table

    shown = summary_table(summary).rename(columns={"fit_seconds": "fit_s"}).rename(columns=metric_label).rename(
        columns={"fit_s": "fit s"})
    table = shown.drop(columns="scored", errors="ignore").map(lambda v: "" if pd.isna(v) else f"{v:.4f}")
    table["fit s"] = shown["fit s"].map(lambda v: "" if pd.isna(v) else f"{v:.1f}")
    table.index.name = "model"
    return table


def _source_sha256(data: Any, split: str) -> str | dict[str, str] | None:
    """Return the SHA-256 of what was read: your own file's, or the MovieLens members of an official fold."""
    if getattr(data, "sha256", None):
        return str(data.sha256)
    from movierec.data._movielens._registry import LAYOUTS, SHA256

    known = SHA256.get(data.name, {})
    members = [LAYOUTS[data.name].ratings] if data.name in LAYOUTS else []
    if split.startswith("official fold "):
        fold = split.rsplit(" ", 1)[-1]
        members = [f"{fold}.base", f"{fold}.test"]
    hashes = {member: known[member] for member in members if member in known}
    return hashes or None


def _print_weights(result: pipeline.Result, split: str, train: pd.DataFrame, test: pd.DataFrame) -> None:
    """Print the split's sizes and the members' hold-out figures and weights."""
    ensemble, names, k = result.ensemble, result.names, result.settings.k
    if result.settings.task == "rating":
        unscored = len(test) - int(result.metrics["scored"].min())
        print(f"\n{split}: {len(train):,} train / {len(test):,} test ratings"
              + (f"; {unscored:,} test pairs with a user or movie unseen in train are left out" if unscored else ""))
        if result.settings.weights == "stacked":
            scores = (f"{ensemble.stacking_folds}-fold out-of-fold" if ensemble.stacking_folds else "hold-out")
            print(f"ensemble weights stacked (non-negative least squares on {scores} standardized scores, intercept "
                  f"{ensemble.intercept_:.3f}): " + ", ".join(f"{name} {w:.3f}" for name, w in zip(names, ensemble.weights_)))
        else:
            print("ensemble weights 1/RMSE(hold-out): "
                  + ", ".join(f"{name} {w:.3f}" for name, w in zip(names, ensemble.weights_)))
        return
    print(f"\n{split}: {len(train):,} train / {len(test):,} test ratings; relevant = the user's test movies")
    print(f"hold-out nDCG@{k} of each member: " + ", ".join(
        f"{name} {1 - e:.4f}" for name, e in zip(names, ensemble.candidate_errors_)))
    print(f"members chosen on the hold-out: {', '.join(result.members)}; weights 1/(1 - nDCG@{k}): "
          + ", ".join(f"{name} {w:.3f}" for name, w in zip(result.members, ensemble.weights_)))
