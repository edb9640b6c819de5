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
from movierec.cli._data import REPORT_USERS, settings_from
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


def _user_list(text: str) -> list[int]:
    try:
        return [int(u) for u in text.split(",") if u.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be comma-separated user ids, got {text!r}") from None


# -- the parser ------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """Return the ``movierec`` argument parser (subcommands recommend, evaluate, download, datasets)."""
    from movierec.data._movielens._registry import LAYOUTS, ML100K_FOLDS

    datasets = list(LAYOUTS)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--quiet", "-q", action="store_true", help="no progress bars and no info messages")
    common.add_argument("--debug", action="store_true", help="debug logging; show the traceback of a failure")
    data = argparse.ArgumentParser(add_help=False)
    data.add_argument("--data-home", metavar="DIR", type=Path,
                      help="folder holding the MovieLens archives (default: $MOVIEREC_DATA, else ~/.cache/movierec)")

    parser = argparse.ArgumentParser(
        prog="movierec",
        description="Movie recommenders from pluggable models on MovieLens.",
        epilog="Run 'movierec COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"movierec {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    models_help = (f"comma-separated models among {', '.join(registry.MODELS)} (default "
                   + " / ".join(f"{','.join(DEFAULT_MODELS[t])} for --task {t}" for t in TASKS) + "): "
                   + ", ".join(f"{name}={spec.class_name} ({'/'.join(spec.tasks)})"
                               for name, spec in registry.MODELS.items()))
    task_help = ("ranking (default): members trained for top-N lists, weighted by 1 - nDCG@k on a hold-out "
                 "and chosen there, with Popularity as the reference row; rating: members predicting ratings, "
                 "weighted by 1/RMSE on a hold-out")

    own = argparse.ArgumentParser(add_help=False)
    own.add_argument("--ratings", type=Path, metavar="FILE",
                     help="your own ratings file (CSV, TSV or Parquet) instead of --dataset; see --columns")
    own.add_argument("--items", type=Path, metavar="FILE", help="with --ratings: a file of movie titles")
    own.add_argument("--columns", metavar="MAP", type=_columns,
                     help="with --ratings: which columns hold what, e.g. user=uid,item=sku,rating=stars,"
                     "timestamp=ts (default rating=rating,timestamp=timestamp; no rating: implicit feedback)")
    own.add_argument("--rating-scale", type=_rating_scale, metavar="LO,HI",
                     help="with --ratings: the lowest and highest rating, e.g. 1,5; a rating outside is an error "
                     "(default: none declared, a few ratings off a common scale give a warning)")
    weights_help = ("rating task: inverse_error (default, the 1/RMSE weighting) or stacked (non-negative least "
                    "squares on 5-fold out-of-fold standardized scores, clipped to the rating scale)")
    members = argparse.ArgumentParser(add_help=False)  # what the ensemble is made of, for every command that fits
    members.add_argument("--task", choices=TASKS, default="ranking", help=task_help)
    members.add_argument("--models", type=_model_list, metavar="LIST", help=models_help)
    members.add_argument("--weights", choices=("inverse_error", "stacked"), default="inverse_error", help=weights_help)

    rec = commands.add_parser(
        "recommend", parents=[common, data, own, members], help="fit models and the ensemble; write recommendations and a report",
        description="Fit the chosen models and their WeightedEnsemble on a training part, print each "
        "one's RMSE and MAE on the test part, and write recommendations.csv and report.html to --out.",
    )
    rec.add_argument("--dataset", default="ml-100k", choices=datasets, help="MovieLens dataset (default ml-100k)")
    rec.add_argument("--n", type=_positive_int, default=5, help="recommendations per user (default 5)")
    split = rec.add_mutually_exclusive_group()
    split.add_argument("--fold", choices=ML100K_FOLDS, help="official ml-100k fold (default u1 on ml-100k)")
    split.add_argument("--test-size", type=_fraction, metavar="FRACTION",
                       help="share of each user's ratings held out for test (stratified_split; "
                       "default 0.2 on datasets without official folds)")
    rec.add_argument("--seed", type=_seed, default=0, help="random_state of the models, ensemble and split (default 0)")
    rec.add_argument("--ensemble", choices=("candidates", "full"),
                     help="candidates: each member proposes its own top K; full: every member scores "
                     "every unseen movie (default for --task ranking: full up to 10^9 users x movies, candidates above; "
                     "candidates for rating)")
    rec.add_argument("--candidates", type=_positive_int, default=DEFAULT_CANDIDATES, metavar="K",
                     help=f"K of --ensemble candidates (default {DEFAULT_CANDIDATES})")
    rec.add_argument("--model", type=Path, metavar="DIR",
                     help="recommend from a model kept by 'movierec fit --save DIR' instead of fitting")
    rec.add_argument("--recommender", metavar="MODEL", default=ENSEMBLE,
                     help="whose lists go to recommendations.csv: 'ensemble' (default) or one of --models")
    rec.add_argument("--k", type=_positive_int, default=10, help="cut-off of precision@k and nDCG@k (default 10)")
    rec.add_argument("--users", type=_user_list, metavar="IDS",
                     help=f"users shown in the report (default the first {REPORT_USERS} user ids)")
    rec.add_argument("--out", type=Path, default=Path("movierec-out"), metavar="DIR",
                     help="output folder, created if needed (default ./movierec-out)")
    rec.set_defaults(func=recommend_command)

    ev = commands.add_parser(
        "evaluate", parents=[common, data, own, members], help="cross-validate the models and the ensemble",
        description="Fit the models and their WeightedEnsemble on each official fold; print mean ± sd "
        "of RMSE and MAE as a Markdown table, and write it as CSV with --out.",
    )
    ev.add_argument("--dataset", default="ml-100k", choices=datasets,
                    help="MovieLens dataset (default ml-100k; only ml-100k has official folds)")
    ev.add_argument("--folds", type=_fold_list, default=_fold_list("u1-u5"), metavar="FOLDS",
                    help="official folds: a range u1-u5 and/or names such as u1,u3 or ua,ub (default u1-u5)")
    ev.add_argument("--k", type=_positive_int, default=10, help="cut-off of the ranking metrics (default 10)")
    ev.add_argument("--seed", type=_seed, default=0, help="random_state of the models and ensemble (default 0)")
    ev.add_argument("--model", type=Path, metavar="DIR",
                    help="score a model kept by 'movierec fit --save DIR' on --ratings TEST_FILE instead")
    ev.add_argument("--out", type=Path, metavar="FILE", help="also write the table as CSV to FILE")
    ev.set_defaults(func=evaluate_command)

    fit = commands.add_parser(
        "fit", parents=[common, data, own, members], help="fit the task's ensemble on all the data and keep it",
        description="Fit the models and their WeightedEnsemble on all the ratings (hold-out inside) and save "
        "the ensemble, its members and model-card.json to --save.",
    )
    fit.add_argument("--dataset", default="ml-100k", choices=datasets, help="MovieLens dataset (default ml-100k)")
    fit.add_argument("--candidates", type=_positive_int, default=DEFAULT_CANDIDATES, metavar="K",
                     help=f"rating task: each member's top K are the ensemble's candidates (default {DEFAULT_CANDIDATES})")
    fit.add_argument("--k", type=_positive_int, default=10, help="cut-off of the ranking hold-out metric (default 10)")
    fit.add_argument("--seed", type=_seed, default=0, help="random_state of the models and ensemble (default 0)")
    fit.add_argument("--save", type=Path, required=True, metavar="DIR", help="folder to keep the model in")
    fit.set_defaults(func=fit_command)

    srv = commands.add_parser(
        "serve", parents=[common], help="serve a kept model as a JSON HTTP API",
        description="Load a model kept by 'movierec fit --save DIR' once, then answer GET /users/{id}/recommendations, "
        "POST /predict, GET /health and GET /model until interrupted.",
    )
    srv.add_argument("--model", type=Path, required=True, metavar="DIR", help="the kept model's folder")
    srv.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    srv.add_argument("--port", type=_port, default=8000, help="port to listen on (default 8000)")
    srv.set_defaults(func=serve_command)

    dl = commands.add_parser("download", parents=[common, data], help="download a MovieLens archive",
                             description="Download a MovieLens archive into the data folder (verified, atomic).")
    dl.add_argument("name", choices=datasets, metavar="NAME", help=f"one of {', '.join(datasets)}")
    dl.add_argument("--force", action="store_true", help="download again even if the archive is present")
    dl.set_defaults(func=download_command)

    ds = commands.add_parser("datasets", parents=[common, data], help="list the known archives and which are present",
                             description="List the MovieLens archives movierec knows and which are in the data folder.")
    ds.set_defaults(func=datasets_command)
    return parser


def check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Check what involves several arguments and pick the command's function; failures exit 2.

    The options of the main job become ``args.settings`` (`movierec.pipeline.Settings`), so
    a bad combination is a usage error before any data is read.
    """
    if args.command in ("recommend", "evaluate", "fit"):
        if (args.items or args.columns or args.rating_scale) and args.ratings is None:
            parser.error("argument --items/--columns/--rating-scale: they go with --ratings FILE")
    if args.command == "evaluate" and (args.model is None) != (args.ratings is None):
        if args.model is not None:
            parser.error("argument --model: evaluate --model DIR needs --ratings TEST_FILE")
        parser.error("argument --ratings: evaluate cross-validates official folds; with --ratings, give --model DIR")
    if args.command in ("recommend", "evaluate") and args.model is not None:
        args.func = recommend_saved if args.command == "recommend" else evaluate_saved  # a kept model: no fit
        return
    if args.command == "recommend" and args.fold is not None and args.dataset != "ml-100k":
        parser.error(f"argument --fold: only ml-100k has official folds, not {args.dataset}; use --test-size")
    if args.command == "evaluate" and args.dataset != "ml-100k":
        parser.error(f"argument --dataset: only ml-100k has official folds, not {args.dataset}")
    if args.command in ("recommend", "evaluate", "fit"):
        try:
            args.settings = settings_from(args)
        except InvalidParameterError as err:  # its message starts with the setting's name
            field = str(err).split(maxsplit=1)[0].rstrip(":")
            option = {"random_state": "seed"}.get(field, field)
            parser.error(f"argument --{option}: {err}")
