"""The ``movierec`` command's arguments: the parser, its argument types, and the checks that involve
several arguments (a failure is argparse's usage line and exit 2)."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from movierec import pipeline, registry
from movierec._core.random import MAX_SEED
from movierec._version import __version__
from movierec.cli._data import REPORT_USERS, TEST_SIZE, settings_from
from movierec.cli.datasets import datasets_command, download_command
from movierec.cli.evaluate import evaluate_command
from movierec.cli.fit import evaluate_saved, fit_command, recommend_saved
from movierec.cli.recommend import recommend_command
from movierec.cli.serve import serve_command
from movierec.exceptions import InvalidParameterError
from movierec.pipeline import DEFAULT_MODELS, ENSEMBLE, TASKS

__all__ = ["build_parser", "check_args"]

DEFAULT_CANDIDATES = pipeline.Settings.candidates


# -- argument types (an ArgumentTypeError becomes argparse's usage line and exit 2) ------------
def _number(convert: Callable[[str], Any], ok: Callable[[Any], bool], what: str) -> Callable[[str], Any]:
    """Return an argument type: ``convert(text)`` if it parses and is ``ok``, else "must be ``what``"."""

    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not ok(value):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
        return value

    return parse


_positive_int = _number(int, lambda value: value > 0, "a positive integer")
_seed = _number(int, lambda value: 0 <= value <= MAX_SEED, f"an integer from 0 to {MAX_SEED}")
_port = _number(int, lambda value: 0 < value < 65536, "a port number from 1 to 65535")
_fraction = _number(float, lambda value: 0 < value < 1, "a number strictly between 0 and 1")


def _columns(text: str) -> dict[str, str]:
    """``--columns``: the keyword arguments of `load_ratings` it gives; a bad map is a usage error."""
    from movierec.data.ratings_file import parse_columns

    try:
        return parse_columns(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _rating_scale(text: str) -> tuple[float, float]:
    """``--rating-scale LO,HI``: two finite numbers, the lowest first."""
    parts = text.split(",")
    try:
        low, high = (float(part) for part in parts)
    except ValueError:
        low = high = float("nan")
    if not low < high or high - low == float("inf"):
        raise argparse.ArgumentTypeError(f"must be LO,HI, two finite numbers with LO < HI such as 1,5, got {text!r}")
    return low, high


def _model_list(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError("give at least one model, e.g. als,svd,fm")
    unknown = [name for name in names if name not in registry.MODELS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(registry.MODELS)}")
    if len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"a model is named twice in {text!r}")
    return names


def _fold_list(text: str) -> list[str]:
    """Parse ``u1-u5``, ``u1,u3`` or ``ua,ub`` into fold names."""
    from movierec.data._movielens._registry import ML100K_FOLDS

    folds: list[str] = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        match = re.fullmatch(r"u(\d)-u(\d)", part)
        if match:
            first, last = int(match.group(1)), int(match.group(2))
            if not 1 <= first <= last <= 5:
                raise argparse.ArgumentTypeError(f"fold range {part!r} must lie within u1-u5")
            folds += [f"u{i}" for i in range(first, last + 1)]
        elif part in ML100K_FOLDS:
            folds.append(part)
        else:
            raise argparse.ArgumentTypeError(
                f"unknown fold {part!r}; use names among {', '.join(ML100K_FOLDS)} or a range such as u1-u5"
            )
    if not folds:
        raise argparse.ArgumentTypeError("give at least one fold, e.g. u1-u5")
    if len(set(folds)) != len(folds):
        raise argparse.ArgumentTypeError(f"a fold is named twice in {text!r}")
    return folds


def _user_list(text: str) -> list[str]:
    """``--users``: comma-separated ids as typed; matched against the data's own ids once it is read."""
    users = [u.strip() for u in text.split(",") if u.strip()]
    if not users:
        raise argparse.ArgumentTypeError(f"must be comma-separated user ids, got {text!r}")
    return users


def _folds(text: str) -> list[str] | int:
    """``--folds``: a count k of per-user folds (2 or more), or official ml-100k fold names."""
    if text.strip().isdigit():
        k = int(text)
        if k < 2:
            raise argparse.ArgumentTypeError(f"a count of folds must be 2 or more, got {text!r}")
        return k
    return _fold_list(text)


# -- the parser ------------------------------------------------------------------------------
#: The sections of a command's --help, in order: what is read, what is fitted, what is written, a kept model.
GROUPS = {
    "data": "which ratings, and how they are split into a training and a test part",
    "ensemble": "the members and how the WeightedEnsemble combines them",
    "output": "what is printed and written",
    "kept model": "a model kept in a folder: 'movierec fit --save DIR' writes it; recommend, evaluate and serve "
                  "use it without fitting",
}


class _Groups:
    """A command's argument groups (`GROUPS`), made in the help's order as they are first used."""

    def __init__(self, parser: argparse.ArgumentParser) -> None:
        self.parser = parser
        self.made: dict[str, Any] = {}

    def __getitem__(self, title: str) -> Any:
        if title not in self.made:
            for name, description in GROUPS.items():  # the earlier sections first, so the help keeps GROUPS' order
                if name not in self.made:
                    self.made[name] = self.parser.add_argument_group(name, description)
                if name == title:
                    break
            if title not in self.made:
                self.made[title] = self.parser.add_argument_group(title)
        return self.made[title]


def _add_output(groups: _Groups) -> None:
    groups["output"].add_argument("--quiet", "-q", action="store_true", help="no progress bars and no info messages")
    groups["output"].add_argument("--debug", action="store_true", help="debug logging; show the traceback of a failure")


def _add_data_home(groups: _Groups) -> None:
    groups["data"].add_argument(
        "--data-home", metavar="DIR", type=Path,
        help="folder holding the MovieLens archives (default: $MOVIEREC_DATA, else ~/.cache/movierec)")


def _add_data(groups: _Groups, datasets: list[str], dataset_help: str = "MovieLens dataset (default ml-100k)") -> None:
    group = groups["data"]
    group.add_argument("--dataset", default="ml-100k", choices=datasets, help=dataset_help)
    group.add_argument("--ratings", type=Path, metavar="FILE",
                       help="your own ratings file (CSV, TSV or Parquet) instead of --dataset; see --columns")
    group.add_argument("--items", type=Path, metavar="FILE",
                       help="with --ratings: a file of movie titles (and genres, which the bfm model uses)")
    group.add_argument("--columns", metavar="MAP", type=_columns,
                       help="with --ratings: which columns hold what, e.g. user=uid,item=sku,rating=stars,"
                       "timestamp=ts (default rating=rating,timestamp=timestamp; no rating: implicit feedback)")
    group.add_argument("--rating-scale", type=_rating_scale, metavar="LO,HI",
                       help="with --ratings: the lowest and highest rating, e.g. 1,5; a rating outside is an error "
                       "(default: none declared, a few ratings off a common scale give a warning)")
    _add_data_home(groups)


def _add_members(groups: _Groups, seed_help: str) -> None:
    models_help = (f"comma-separated models among {', '.join(registry.MODELS)} (default "
                   + " / ".join(f"{','.join(DEFAULT_MODELS[t])} for --task {t}" for t in TASKS) + "): "
                   + ", ".join(f"{name}={spec.class_name} ({'/'.join(spec.tasks)})"
                               for name, spec in registry.MODELS.items()))
    task_help = ("ranking (default): members trained for top-N lists, weighted by 1 - nDCG@k on a hold-out "
                 "and chosen there, with Popularity as the reference row; rating: members predicting ratings, "
                 "weighted by 1/RMSE on a hold-out (or --weights stacked)")
    weights_help = ("rating task: inverse_error (default, the 1/RMSE weighting) or stacked (non-negative least "
                    "squares on 5-fold out-of-fold standardized scores, clipped to the rating scale)")
    group = groups["ensemble"]
    group.add_argument("--task", choices=TASKS, default="ranking", help=task_help)
    group.add_argument("--models", type=_model_list, metavar="LIST", help=models_help)
    group.add_argument("--weights", choices=("inverse_error", "stacked"), default="inverse_error", help=weights_help)
    group.add_argument("--seed", type=_seed, default=0, help=seed_help)


def _add_test_size(group: Any, what: str) -> None:
    group.add_argument("--test-size", type=_fraction, metavar="FRACTION",
                       help=f"share of each user's ratings held out for test by {what} (default {TEST_SIZE:g})")


def build_parser() -> argparse.ArgumentParser:
    """Return the ``movierec`` argument parser (recommend, evaluate, fit, serve, download, datasets)."""
    from movierec.data._movielens._registry import LAYOUTS, ML100K_FOLDS

    datasets = list(LAYOUTS)
    parser = argparse.ArgumentParser(
        prog="movierec",
        description="Movie recommenders from pluggable models on MovieLens.",
        epilog="Run 'movierec COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"movierec {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    rec = commands.add_parser(
        "recommend", help="fit models and the ensemble; print their test metrics, write recommendations and a report",
        description="Fit the chosen models and their WeightedEnsemble on a training part and print a table of each "
        "on the test part: with --task ranking (the default) precision@k, nDCG@k, MAP@k and coverage, with "
        "a popularity row as the reference; with --task rating RMSE, MAE, precision@k and nDCG@k. Then write "
        "recommendations.csv and report.html to --out.",
    )
    groups = _Groups(rec)
    _add_data(groups, datasets)
    groups["data"].add_argument("--fold", choices=ML100K_FOLDS, help="official ml-100k fold (default u1 on ml-100k)")
    groups["data"].add_argument(
        "--split", choices=("stratified", "temporal"),
        help="instead of an official fold: stratified (a random share of each user's ratings in test; the default "
        "on data without official folds) or temporal (each user's latest ratings in test; needs timestamps)")
    _add_test_size(groups["data"], "--split")
    _add_members(groups, "random_state of the models, ensemble and split (default 0)")
    ens = groups["ensemble"]
    ens.add_argument("--ensemble", choices=("candidates", "full"),
                     help="candidates: each member proposes its own top K; full: every member scores every unseen "
                     "movie (default for --task ranking: full up to 10^9 users x movies, candidates above; "
                     "candidates for rating)")
    ens.add_argument("--candidates", type=_positive_int, default=DEFAULT_CANDIDATES, metavar="K",
                     help=f"K of --ensemble candidates (default {DEFAULT_CANDIDATES})")
    ens.add_argument("--k", type=_positive_int, default=10,
                     help="cut-off of the ranking metrics and of the ranking hold-out (default 10)")
    out = groups["output"]
    out.add_argument("--n", type=_positive_int, default=5, help="recommendations per user (default 5)")
    out.add_argument("--recommender", metavar="MODEL", default=ENSEMBLE,
                     help="whose lists go to recommendations.csv: 'ensemble' (default) or one of --models")
    out.add_argument("--users", type=_user_list, metavar="IDS",
                     help=f"users shown in the report (default the first {REPORT_USERS} user ids)")
    out.add_argument("--out", type=Path, default=Path("movierec-out"), metavar="DIR",
                     help="output folder, created if needed (default ./movierec-out)")
    _add_output(groups)
    out.add_argument("--format", choices=("csv", "parquet"), default="csv",
                     help="parquet: write recommendations.parquet too (needs pyarrow); recommendations.csv, "
                     "report.html, metrics.json and per_user.csv are always written")
    out.add_argument("--mlflow", action="store_true",
                     help="log the run to MLflow (pip install 'movierec[mlflow]'): to $MLFLOW_TRACKING_URI when "
                     "set, else to the folder ./mlruns")
    groups["kept model"].add_argument(
        "--model", type=Path, metavar="DIR",
        help="write recommendations.csv from this kept model instead of fitting (--users, --n, --out apply)")
    rec.set_defaults(func=recommend_command)

    ev = commands.add_parser(
        "evaluate", help="cross-validate the models and the ensemble",
        description="Fit the models and their WeightedEnsemble on each split of the data: ml-100k's official folds "
        "(u1-u5 by default), per-user k-fold (--folds K; 5 folds by default on any other dataset and on "
        "--ratings FILE) or one temporal split (--split temporal). Print one row per fold and model, then "
        "mean ± sample sd: precision@k, nDCG@k and MAP@k with a popularity reference row (--task ranking, the "
        "default) or RMSE and MAE (--task rating); --out writes both as CSV.",
    )
    groups = _Groups(ev)
    _add_data(groups, datasets)
    groups["data"].add_argument(
        "--folds", type=_folds, metavar="FOLDS",
        help="a count K: each user's ratings dealt into K parts, each tested once (default 5); or official ml-100k "
        "folds: a range u1-u5 and/or names such as u1,u3 or ua,ub (the default on ml-100k)")
    groups["data"].add_argument(
        "--split", choices=("kfold", "temporal"), default="kfold",
        help="kfold (default): the folds of --folds; temporal: one split, each user's latest ratings in test "
        "(needs timestamps)")
    _add_test_size(groups["data"], "--split temporal")
    _add_members(groups, "random_state of the models, ensemble and folds (default 0)")
    groups["ensemble"].add_argument("--k", type=_positive_int, default=10,
                                    help="cut-off of the ranking metrics (default 10)")
    groups["output"].add_argument("--out", type=Path, metavar="FILE",
                                  help="also write the table as CSV to FILE: a row per fold and model, then each "
                                  "model's mean and sd")
    _add_output(groups)
    groups["kept model"].add_argument(
        "--model", type=Path, metavar="DIR",
        help="score this kept model on --ratings TEST_FILE instead of cross-validating")
    ev.set_defaults(func=evaluate_command)

    fit = commands.add_parser(
        "fit", help="fit the task's ensemble on all the data and keep it",
        description="Fit the models and their WeightedEnsemble on all the ratings (hold-out inside) and save "
        "the ensemble, its members and model-card.json to --save.",
    )
    groups = _Groups(fit)
    _add_data(groups, datasets)
    _add_members(groups, "random_state of the models and ensemble (default 0)")
    groups["ensemble"].add_argument(
        "--candidates", type=_positive_int, default=DEFAULT_CANDIDATES, metavar="K",
        help=f"rating task: each member's top K are the ensemble's candidates (default {DEFAULT_CANDIDATES})")
    groups["ensemble"].add_argument("--k", type=_positive_int, default=10,
                                    help="cut-off of the ranking hold-out metric (default 10)")
    _add_output(groups)
    groups["kept model"].add_argument("--save", type=Path, required=True, metavar="DIR",
                                      help="folder to keep the model in")
    fit.set_defaults(func=fit_command)
    groups["output"].add_argument(
        "--mlflow", action="store_true",
        help="log the run to MLflow (pip install 'movierec[mlflow]'): to $MLFLOW_TRACKING_URI when set, else to "
        "the folder ./mlruns; the kept folder too, and as an MLflow pyfunc model")

    srv = commands.add_parser(
        "serve", help="serve a kept model as a JSON HTTP API",
        description="Load a model kept by 'movierec fit --save DIR' once, then answer until interrupted: "
        "GET /users/{id}/recommendations (a known user's list), POST /recommendations (a visitor's list from "
        "a history), ?explain=true on both (each movie's reasons), GET /movies/{id}/similar, POST /predict, "
        "GET /health, GET /model and GET /openapi.json (every route described).",
    )
    groups = _Groups(srv)
    groups["kept model"].add_argument("--model", type=Path, required=True, metavar="DIR", help="the kept model's folder")
    server = groups["server"]
    server.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    server.add_argument("--port", type=_port, default=8000, help="port to listen on (default 8000)")
    _add_output(groups)
    srv.set_defaults(func=serve_command)

    dl = commands.add_parser("download", help="download a MovieLens archive",
                             description="Download a MovieLens archive into the data folder (verified, atomic).")
    groups = _Groups(dl)
    groups["data"].add_argument("name", choices=datasets, metavar="NAME", help=f"one of {', '.join(datasets)}")
    groups["data"].add_argument("--force", action="store_true", help="download again even if the archive is present")
    _add_data_home(groups)
    _add_output(groups)
    dl.set_defaults(func=download_command)

    ds = commands.add_parser("datasets", help="list the known archives and which are present",
                             description="List the MovieLens archives movierec knows and which are in the data folder.")
    groups = _Groups(ds)
    _add_data_home(groups)
    _add_output(groups)
    ds.set_defaults(func=datasets_command)
    return parser


def check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Check what involves several arguments and pick the command's function; failures exit 2.

    The options of the main job become ``args.settings`` (`movierec.pipeline.Settings`), so
    a bad combination is a usage error before any data is read.
    """
    own_options = args.command in ("recommend", "evaluate", "fit") and (args.items or args.columns or args.rating_scale)
    if own_options and args.ratings is None:
        parser.error("argument --items/--columns/--rating-scale: they go with --ratings FILE")
    if args.command == "evaluate" and args.model is not None and args.ratings is None:
        parser.error("argument --model: evaluate --model DIR needs --ratings TEST_FILE")
    if args.command in ("recommend", "evaluate") and args.model is not None:
        args.func = recommend_saved if args.command == "recommend" else evaluate_saved  # a kept model: no fit
        return
    own = f"--ratings {args.ratings}" if getattr(args, "ratings", None) is not None else None
    other_split = args.command == "recommend" and (args.dataset != "ml-100k" or own or args.split or args.test_size)
    if other_split and args.fold is not None:
        reason = ("--split and --test-size choose another split" if args.split or args.test_size
                  else f"only ml-100k has official folds, not {own or args.dataset}")
        parser.error(f"argument --fold: {reason}; use --split")
    if args.command == "evaluate":
        official = isinstance(args.folds, list)
        if args.split == "temporal" and args.folds is not None:
            parser.error("argument --folds: --split temporal is one split, not folds")
        if args.test_size is not None and args.split != "temporal":
            parser.error("argument --test-size: it goes with --split temporal (k folds test 1/k each)")
        if official and (args.dataset != "ml-100k" or own):
            parser.error(f"argument --folds: only ml-100k has official folds, not {own or args.dataset}; "
                         "give a count such as --folds 5")
        if args.folds is None and args.split == "kfold" and args.dataset == "ml-100k" and not own:
            args.folds = _fold_list("u1-u5")
    if args.command in ("recommend", "evaluate", "fit"):
        try:
            args.settings = settings_from(args)
        except InvalidParameterError as err:  # its message starts with the setting's name
            field = str(err).split(maxsplit=1)[0].rstrip(":")
            option = {"random_state": "seed"}.get(field, field)
            parser.error(f"argument --{option}: {err}")
