"""The bodies of the ``movierec`` subcommands; ``movierec.cli`` parses the arguments and runs them.

Each ``*_command`` takes the parsed arguments, prints its results and returns the exit code.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from movierec import registry
from movierec._core.validation import ITEM, USER
from movierec.cli._data import (
    check_out_dir,
    check_out_file,
    check_something_to_rank,
    load_split,
    report_users,
)
from movierec.exceptions import DataValidationError, InvalidParameterError

if TYPE_CHECKING:  # pragma: no cover
    from movierec.base import Recommender
    from movierec.ensemble import FitEvent, WeightedEnsemble

__all__ = [
    "ENSEMBLE",
    "build_members",
    "chosen_members",
    "close_quietly",
    "datasets_command",
    "download_command",
    "evaluate_command",
    "fit_ensemble",
    "markdown_table",
    "new_ensemble",
    "one_line",
    "recommend_command",
    "with_titles",
]

logger = logging.getLogger("movierec.cli")

ENSEMBLE = "ensemble"
REFERENCE = "popularity"  # the ranking task's reference row


def one_line(error: object) -> str:
    """Return the text of ``error`` (or a warning message) on one line."""
    return " ".join(str(error).split())


# -- helpers ---------------------------------------------------------------------------------
def _bar(args: argparse.Namespace, total: int, desc: str) -> Any:
    from tqdm import tqdm

    # disable=None hides the bar when stderr is not a terminal (CI logs, pipes).
    return tqdm(total=total, desc=desc, unit="step", disable=True if args.quiet else None, leave=False,
                file=sys.stderr, dynamic_ncols=True)


def build_members(names: Sequence[str], seed: int, task: str = "rating") -> dict[str, Recommender]:
    """Return a new, unfitted model per registry name, configured for ``task``, seeded with ``seed``
    where it takes a random_state.

    An adapter is imported only when its name is asked for.
    """
    return {name: registry.make_model(name, task, seed=seed) for name in names}


def close_quietly(ensemble: WeightedEnsemble) -> None:
    """Release what the fitted members hold (a SparkALS's Spark session); never masks the run's own error."""
    try:
        ensemble.close()
    except Exception as err:  # noqa: BLE001
        logger.warning("warning: could not close a member of the ensemble: %s", one_line(err))


#: The ranking ensemble measures its members on the hold-out ratings of at most this many users (a
#: seeded sample): nDCG@10 over 20,000 users has a standard error near 0.002, and the cost of the
#: hold-out stage stops growing with the number of users.
HOLDOUT_USERS = 20_000
#: Up to this many users the members are refitted on all the training part after the hold-out; above,
#: the hold-out is under about 2% of the ratings and the hold-out fits are kept (one fit per member).
REFIT_USERS = 5 * HOLDOUT_USERS


def new_ensemble(
    args: argparse.Namespace, train: pd.DataFrame, candidates: int | None = None
) -> tuple[WeightedEnsemble, list[str]]:
    """Return the unfitted ensemble of the task's members and their names (those left in, in order).

    Ranking: each member's hold-out error is ``1 - nDCG@k`` over at most ``HOLDOUT_USERS`` users,
    members are chosen on that hold-out (forward selection) and refitted up to ``REFIT_USERS`` users,
    and members the registry tunes for ranking (EASE's l2) are tuned first on a validation split of
    ``train``. Rating: the seed's ensemble, weighted by 1/RMSE.
    """
    from movierec.ensemble import WeightedEnsemble

    names = list(args.models)
    if getattr(args, "default_models", False):
        left_out = [name for name in names if not registry.MODELS[name].is_default_for(args.task, len(train))]
        if left_out:
            names = [name for name in names if name not in left_out]
            logger.info("default members without %s at %s training ratings (docs/cli.md)", ",".join(left_out),
                        f"{len(train):,}")
    members = build_members(names, args.seed, args.task)
    if args.task == "rating":
        return WeightedEnsemble(list(members.values()), weights=args.weights, candidates=candidates,
                                random_state=args.seed), list(members)
    metric = f"ndcg@{args.k}"
    for name, model in members.items():
        if args.task in registry.MODELS[name].tuned_for:
            start = time.perf_counter()
            try:
                # Tuned on a split drawn apart from the ensemble's hold-out, which would favour it otherwise.
                result = model.tune(train, metric=metric, random_state=(args.seed + 1) % 2**32, refit=False)
            except DataValidationError as err:  # too few ratings per user for a validation split
                logger.warning("warning: %s kept its default settings: %s", name, one_line(err))
                continue
            logger.info("tuned %s on a validation split of the training part: %s (%s %.4f, %.1f s)", name,
                        result.best_params, metric, result.best_score, time.perf_counter() - start)
    refit = train[USER].nunique() <= REFIT_USERS
    logger.info("hold-out: at most %s users; members %s", f"{HOLDOUT_USERS:,}",
                "refitted on all after it" if refit else f"kept from it (over {REFIT_USERS:,} users)")
    return WeightedEnsemble(list(members.values()), metric=metric, select="forward", candidates=candidates,
                            holdout_users=HOLDOUT_USERS, refit=refit, random_state=args.seed), list(members)


def fit_ensemble(args: argparse.Namespace, ensemble: WeightedEnsemble, names: Sequence[str],
                  train: pd.DataFrame, desc: str) -> dict[str, float]:
    """Fit ``ensemble`` (hold-out fits, then fits on all) with a progress bar; return each member's fit seconds."""
    with _bar(args, 2 * len(names), desc) as bar:

        def progress(event: FitEvent) -> None:
            name = names[event.position]
            logger.info("fitted %s on %d ratings (%.1f s)", name, event.n_ratings, event.seconds)
            bar.set_postfix_str(f"fitted {name} on {event.n_ratings:,} ratings")
            bar.update()

        ensemble.fit(train, callback=progress)
    return dict(zip(names, (float(s) for s in ensemble.fit_seconds_)))


def chosen_members(names: Sequence[str], ensemble: WeightedEnsemble) -> dict[str, Recommender]:
    """Return the ensemble's fitted members by name (the chosen ones, with ``select="forward"``)."""
    return {names[position]: model for position, model in zip(ensemble.members_, ensemble.models_)}


def _reference(args: argparse.Namespace, train: pd.DataFrame) -> dict[str, Recommender]:
    """Return the ranking task's Popularity reference, fitted on ``train`` (nothing for the rating task)."""
    from movierec.models.popularity import Popularity

    return {REFERENCE: Popularity().fit(train)} if args.task == "ranking" else {}


def markdown_table(frame: pd.DataFrame) -> str:
    """Return ``frame`` (index included) as an aligned Markdown table of strings."""
    header = [frame.index.name or "", *map(str, frame.columns)]
    rows = [[str(index), *map(str, row)] for index, row in zip(frame.index, frame.itertuples(index=False))]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                 for i, (c, w) in enumerate(zip(cells, widths))) + " |"

    rule = "|" + "|".join(("-" * (w + 2)) if i == 0 else ("-" * (w + 1) + ":") for i, w in enumerate(widths)) + "|"
    return "\n".join([line(header), rule, *map(line, rows)])


# -- commands --------------------------------------------------------------------------------
#: Above this many users x movies the ranking ensemble defaults to candidates: scoring every unseen
#: movie with every member costs ~50 min at ml-25m's 9.6e9, and candidates=20 ranked as well on the
#: ranking suite (nDCG@10 0.4928 against 0.4927 for full; docs/benchmarks.md).
FULL_ENSEMBLE_CELLS = 1_000_000_000


def _candidates(args: argparse.Namespace, train: pd.DataFrame) -> int | None:
    """Return the ensemble's ``candidates``: None for --ensemble full, else K (at least --n and --k)."""
    mode = args.ensemble
    if mode is None:  # --task ranking without --ensemble: by size
        cells = train[USER].nunique() * train[ITEM].nunique()
        mode = "full" if cells <= FULL_ENSEMBLE_CELLS else "candidates"
        logger.info("ensemble mode %s (%s users x movies)", mode, f"{cells:,}")
    return max(args.candidates, args.n, args.k) if mode == "candidates" else None


def recommend_command(args: argparse.Namespace) -> int:
    from movierec.metrics import evaluate
    from movierec.report import ReportData, write_report

    started = time.perf_counter()
    check_out_dir(args.out)
    data, train, test, split = load_split(args)
    if args.task == "ranking":
        check_something_to_rank(train)
    shown_users = report_users(args, train)
    candidates = _candidates(args, train)
    ensemble, names = new_ensemble(args, train, candidates)
    try:
        fit_seconds = fit_ensemble(args, ensemble, names, train, "fitting")
        members = chosen_members(names, ensemble)
        if args.recommender not in (ENSEMBLE, *members):
            raise InvalidParameterError(
                f"--recommender {args.recommender}: the ensemble left it out on the hold-out (members chosen: "
                f"{', '.join(members)}); give one of those, or ensemble"
            )
        everyone: dict[str, Any] = {**_reference(args, train), **members, ENSEMBLE: ensemble}
        depth = max(args.n, args.k)
        top, proposed = {}, {}  # proposed: each member's top K, which the candidates ensemble re-ranks
        with _bar(args, len(everyone), "top-N") as bar:
            for name, model in everyone.items():
                bar.set_postfix_str(name)
                start = time.perf_counter()
                if name == ENSEMBLE and candidates is not None:  # no member ranks twice
                    top[name] = ensemble.rank_proposals([proposed[m] for m in members], n=depth)
                else:
                    ranked = model.top_n(n=max(depth, candidates or 0) if name in members else depth)
                    proposed[name], top[name] = ranked, ranked[ranked["rank"] <= depth].reset_index(drop=True)
                logger.info("top %d of %s for %d users (%.1f s)", depth, name,
                            top[name]["userId"].nunique(), time.perf_counter() - start)
                bar.update()
        metrics = evaluate(everyone, test, top=top, k=args.k, task=args.task, catalogue=train["movieId"].unique())

        args.out.mkdir(parents=True, exist_ok=True)
        chosen = top[args.recommender]
        recommendations = with_titles(chosen[chosen["rank"] <= args.n], data.items)
        csv_path = args.out / "recommendations.csv"
        recommendations.to_csv(csv_path, index=False, float_format="%.6g")

        titles = data.items.set_index("movieId")["title"]
        settings = {
            "task": (f"ranking: members trained for top-N, weighted by 1 - nDCG@{args.k} on a hold-out"
                     if args.task == "ranking" else "rating: members predict ratings, weighted by 1/RMSE"),
            "ensemble": ("every unseen movie scored by every member" if candidates is None
                         else f"candidates: each member's top {candidates}"),
            "recommendations.csv": f"{args.recommender}'s top {args.n}",
            "seed": str(args.seed),
            "fit seconds": ", ".join(f"{k} {v:.1f}" for k, v in fit_seconds.items()),
        }
        report = ReportData(dataset=data.name, split=split, train=train, test=test, titles=titles,
                            members=members, ensemble=ensemble, metrics=metrics, top=top, k=args.k,
                            users=shown_users, settings=settings, seed=args.seed, task=args.task)
        report_path = write_report(report, args.out / "report.html")
    finally:
        close_quietly(ensemble)

    shown = metrics.assign(fit_s=pd.Series(fit_seconds)).rename(
        columns={"rmse": "RMSE", "mae": "MAE", f"ndcg@{args.k}": f"nDCG@{args.k}", f"map@{args.k}": f"MAP@{args.k}",
                 "fit_s": "fit s"})
    table = shown.drop(columns="scored", errors="ignore").map(lambda v: "" if pd.isna(v) else f"{v:.4f}")
    table["fit s"] = shown["fit s"].map(lambda v: "" if pd.isna(v) else f"{v:.1f}")
    table.index.name = "model"
    print(markdown_table(table))
    if args.task == "rating":
        unscored = len(test) - int(metrics["scored"].min())
        print(f"\n{split}: {len(train):,} train / {len(test):,} test ratings"
              + (f"; {unscored} test pairs with a user or movie unseen in train are left out" if unscored else ""))
        print("ensemble weights 1/RMSE(hold-out): "
              + ", ".join(f"{name} {w:.3f}" for name, w in zip(names, ensemble.weights_)))
    else:
        print(f"\n{split}: {len(train):,} train / {len(test):,} test ratings; relevant = the user's test movies")
        print(f"hold-out nDCG@{args.k} of each member: " + ", ".join(
            f"{name} {1 - e:.4f}" for name, e in zip(names, ensemble.candidate_errors_)))
        print(f"members chosen on the hold-out: {', '.join(members)}; weights 1/(1 - nDCG@{args.k}): "
              + ", ".join(f"{name} {w:.3f}" for name, w in zip(members, ensemble.weights_)))
    n_users = recommendations["userId"].nunique()
    print(f"wrote {csv_path} ({len(recommendations):,} rows: {n_users} users x top {args.n} of {args.recommender})")
    print(f"wrote {report_path}")
    print(f"done in {time.perf_counter() - started:.0f} s")
    return 0


def with_titles(top: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    """Return ``top`` as ``userId, movieId, title, score, rank``, sorted by user then rank."""
    frame = top.merge(items[["movieId", "title"]], on="movieId", how="left", validate="many_to_one")
    return frame[["userId", "movieId", "title", "score", "rank"]].sort_values(["userId", "rank"], kind="stable")


def evaluate_command(args: argparse.Namespace) -> int:
    from movierec.data.movielens import official_folds


    if args.out is not None:
        check_out_file(args.out)
    start = time.perf_counter()
    folds = official_folds(args.dataset, which=tuple(args.folds), data_home=args.data_home)
    logger.info("loaded %s folds %s (%.1f s)", args.dataset, ",".join(args.folds), time.perf_counter() - start)
    rows = [_evaluate_fold(args, fold) for fold in folds]
    per_fold = pd.concat(rows, ignore_index=True)
    grouped = per_fold.groupby("model", sort=False)
    columns = ["rmse", "mae"] if args.task == "rating" else [f"precision@{args.k}", f"ndcg@{args.k}", f"map@{args.k}"]
    summary = pd.DataFrame(
        {f"{c}_{stat}": getattr(grouped[c], stat)() for c in columns for stat in ("mean", "std")}
        | {"folds": grouped.size()}
    ).rename(columns=lambda c: c.replace("_std", "_sd"))
    summary.index.name = "model"

    def pm(mean: float, sd: float) -> str:
        return f"{mean:.4f}" if pd.isna(sd) else f"{mean:.4f} ± {sd:.4f}"

    labels = {"rmse": "RMSE", "mae": "MAE", f"precision@{args.k}": f"precision@{args.k}",
              f"ndcg@{args.k}": f"nDCG@{args.k}", f"map@{args.k}": f"MAP@{args.k}"}
    shown = pd.DataFrame({labels[c]: [pm(m, sd) for m, sd in zip(summary[f"{c}_mean"], summary[f"{c}_sd"])]
                          for c in columns}, index=summary.index)
    print(markdown_table(shown))
    print(f"\n{args.dataset}, folds {','.join(args.folds)}, task {args.task}: mean ± sample sd over {len(folds)} folds")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        summary.to_csv(args.out, float_format="%.6f")
        print(f"wrote {args.out}")
    return 0


def _evaluate_fold(args: argparse.Namespace, fold: Any) -> pd.DataFrame:
    """Return the metrics table of one fold: each member, the reference (ranking) and the ensemble."""
    from movierec.metrics import evaluate

    ensemble, names = new_ensemble(args, fold.train)
    try:
        fit_ensemble(args, ensemble, names, fold.train, f"fold {fold.name}")
        everyone = {**_reference(args, fold.train), **chosen_members(names, ensemble), ENSEMBLE: ensemble}
        top = {name: model.top_n(n=args.k) for name, model in everyone.items()} if args.task == "ranking" else None
        table = evaluate(everyone, fold.test, top=top, k=args.k, task=args.task)
    finally:
        close_quietly(ensemble)
    metric = "rmse" if args.task == "rating" else f"ndcg@{args.k}"
    logger.info("fold %s: %s", fold.name, ", ".join(f"{name} {metric} {row[metric]:.4f}" for name, row in table.iterrows()))
    return table.assign(fold=fold.name).reset_index()


def download_command(args: argparse.Namespace) -> int:
    from movierec.data.movielens import download_movielens, is_present

    present = is_present(args.name, args.data_home)
    path = download_movielens(args.name, data_home=args.data_home, force=args.force)
    print(f"{args.name}: {path}" + (" (already present)" if present and not args.force else ""))
    return 0


def datasets_command(args: argparse.Namespace) -> int:
    from movierec.data._movielens._registry import archive_url
    from movierec.data.movielens import data_home, is_present, known_datasets

    home = data_home(args.data_home)
    rows = []
    for name in known_datasets():
        present = is_present(name, args.data_home)
        rows.append({"dataset": name, "present": "yes" if present else "no",
                     "source": "" if present else archive_url(name)})
    table = pd.DataFrame(rows).set_index("dataset")
    print(f"data folder: {home}")
    print(markdown_table(table))
    return 0
