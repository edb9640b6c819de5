"""The ``movierec`` subcommands that keep a model and use it: ``fit --save``, ``recommend --model``
and ``evaluate --model``; ``movierec.cli`` parses their arguments.

A kept model is a folder written by ``WeightedEnsemble.save`` with ``model-card.json`` inside it,
under the folder's manifest (movierec.model_card.save_with_card).
"""

from __future__ import annotations

import argparse
import logging
import time
from typing import Any

import pandas as pd

from movierec import pipeline
from movierec._core.output import write_csv
from movierec._core.persist import check_save_target
from movierec.cli._data import check_out_dir, load_data, typed_ids
from movierec.cli._output import markdown_table, metric_label, progress_bars, with_titles
from movierec.pipeline import ENSEMBLE

__all__ = ["evaluate_saved", "fit_command", "recommend_saved"]

logger = logging.getLogger("movierec.cli")


def fit_command(args: argparse.Namespace) -> int:
    """Fit the task's ensemble on all the data and keep it, with its model card, in ``--save``."""
    from movierec.model_card import build_card, save_with_card

    started = time.perf_counter()
    check_save_target(args.save)  # a symlink, a file or a folder of other files: refused before the fit
    check_out_dir(args.save, "--save")
    settings = args.settings
    data = load_data(args)
    ratings = data.ratings
    candidates = settings.candidates if settings.task == "rating" else None
    ensemble, names = pipeline.build_ensemble(ratings, settings, candidates)
    try:
        with progress_bars(args.quiet) as progress:
            pipeline.fit_ensemble(ensemble, names, ratings, progress=progress)
        chosen = list(pipeline.chosen_members(names, ensemble))
        holdout = {name: float(e) for name, e in zip(names, ensemble.candidate_errors_)}
        metrics = {"metric": ensemble.metric, "holdout_errors": holdout, "chosen": chosen,
                   "weights": dict(zip(chosen, map(float, ensemble.weights_)))}
        card = build_card(ensemble, args.ratings, ratings, metrics,
                          sha256=getattr(data, "sha256", None), implicit=getattr(data, "implicit", None),
                          extra={"task": settings.task, "source": str(args.ratings or args.dataset)})
        save_with_card(ensemble, args.save, card, data.items if args.items or args.ratings is None else None)
    finally:
        pipeline.close_quietly(ensemble)
    print(f"fitted {', '.join(chosen)} on {len(ratings):,} ratings ({args.task} task); hold-out "
          + ("RMSE" if ensemble.metric == "rmse" else f"1 - {metric_label(ensemble.metric)}") + ": "
          + ", ".join(f"{name} {e:.4f}" for name, e in holdout.items()))
    print(f"wrote {args.save} (model and model-card.json) in {time.perf_counter() - started:.0f} s")
    if args.mlflow:
        from movierec.tracking import log_kept_model

        print(f"logged MLflow run {log_kept_model(args.save, card, run_name=args.save.name)}")
    return 0


def _load_kept(args: argparse.Namespace) -> Any:
    from movierec import load_model

    start = time.perf_counter()
    model = load_model(args.model)
    logger.info("loaded %s from %s (%.1f s)", type(model).__name__, args.model, time.perf_counter() - start)
    return model


def recommend_saved(args: argparse.Namespace) -> int:
    """Write ``recommendations.csv`` (with titles) from a kept model, without refitting."""
    check_out_dir(args.out)
    model = _load_kept(args)
    users = None if args.users is None else typed_ids(args.users, model.users_.ids)
    try:
        known = model.top_n(users=users, n=args.n)
    finally:
        model.close()
    if users is not None and known.empty:
        raise ValueError(f"none of the --users {args.users[:10]} is known to the model in {args.model}")
    items = _titles(args)
    if items is None:  # no titles known: the id stands in
        items = pd.DataFrame({"movieId": known["movieId"].unique(), "title": ""})
    recommendations = with_titles(known, items)
    path = args.out / "recommendations.csv"
    write_csv(path, recommendations, float_format="%.6g")
    print(f"wrote {path} ({len(recommendations):,} rows: {recommendations['userId'].nunique()} users x top {args.n} "
          f"of the model in {args.model})")
    return 0


def _titles(args: argparse.Namespace) -> pd.DataFrame | None:
    """Return ``movieId, title``: from ``--items`` when given, else kept in the model folder (``fit
    --items``, or a MovieLens dataset's), else from ``--ratings``, else from the dataset the card names."""
    if args.ratings is not None and args.items is not None:
        return load_data(args).items
    from movierec.data.movielens import known_datasets, load_movielens
    from movierec.model_card import read_kept

    card, kept = read_kept(args.model)
    if kept is not None:
        return kept
    if args.ratings is not None:
        return load_data(args).items
    source = ((card or {}).get("extra") or {}).get("source")
    if source in known_datasets():
        return load_movielens(source, data_home=args.data_home).items
    return None


def evaluate_saved(args: argparse.Namespace) -> int:
    """Score a kept model on new data (``--ratings TEST_FILE``): ranking metrics, and RMSE for rating models."""
    from movierec.metrics import evaluate

    test = load_data(args).ratings
    model = _load_kept(args)
    try:
        task = "rating" if getattr(model, "metric", "rmse") == "rmse" else "ranking"
        top = {ENSEMBLE: model.top_n(users=pd.unique(test["userId"]), n=args.k)}
        table = evaluate({ENSEMBLE: model}, test, top=top, k=args.k, task=task)
    finally:
        model.close()
    print(markdown_table(table.drop(columns="scored", errors="ignore").map(lambda v: f"{v:.4f}")))
    print(f"\n{args.model} on {args.ratings}: {len(test):,} ratings, {task} task")
    return 0
