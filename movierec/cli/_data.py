"""What the commands read and check before any fitting: the data, its split, the output paths, the users shown."""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from movierec import pipeline
from movierec.exceptions import DataValidationError

__all__ = ["DEFAULT_COLUMNS", "REPORT_USERS", "check_out_dir", "check_out_file", "load_data", "load_split",
           "report_users", "settings_from"]

logger = logging.getLogger("movierec.cli")

REPORT_USERS = 3
#: ``--ratings`` without ``--columns``: userId, movieId, and rating and timestamp when the file has them.
DEFAULT_COLUMNS: dict[str, Any] = {"rating": "rating", "timestamp": "timestamp", "if_present": ("rating", "timestamp")}


def check_out_dir(path: Path, option: str = "--out") -> None:
    """Create the output folder ``path`` if needed and check a file can be written in it.

    Run first, so that a file, a read-only folder or an impossible path fails in a second with
    ``OSError("--out PATH: ...")``, not after every model has been fitted.
    """
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"{option} {path}: is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        # os.access says yes to root and knows nothing of read-only mounts: write a file instead
        with tempfile.TemporaryFile(dir=path, prefix=".movierec-probe-"):
            pass
    except OSError as err:
        raise type(err)(f"{option} {path}: cannot write there ({err.strerror or err})") from err


def check_out_file(path: Path, option: str = "--out") -> None:
    """Check ``path`` can be written as a file: not a folder, in a folder `check_out_dir` accepts."""
    if path.is_dir():
        raise IsADirectoryError(f"{option} {path}: is a folder, give a file name such as {path / 'table.csv'}")
    check_out_dir(path.parent if str(path.parent) else Path("."), option)


#: Each field of movierec.pipeline.Settings and the option that sets it.
_SETTING_OPTIONS = {"task": "task", "models": "models", "weights": "weights", "n": "n", "k": "k",
                    "ensemble": "ensemble", "candidates": "candidates", "recommender": "recommender",
                    "random_state": "seed"}


def settings_from(args: argparse.Namespace) -> pipeline.Settings:
    """Return the main job's settings from the options the command has (the others keep their defaults).

    Raises InvalidParameterError (the CLI's parser turns it into a usage error) on a bad combination.
    """
    options = vars(args)
    given = {field: options[option] for field, option in _SETTING_OPTIONS.items() if options.get(option) is not None}
    if "models" in given:
        given["models"] = tuple(given["models"])
    return pipeline.Settings(**given)


def report_users(args: argparse.Namespace, train: pd.DataFrame) -> list[Any]:
    """Return the report's users: ``--users`` known to ``train`` (a warning names the others), else
    the first few user ids. None known is an error, raised before any fitting."""
    known = pd.Index(train["userId"].unique())
    if not args.users:
        return sorted(known)[:REPORT_USERS]
    unknown = [user for user in args.users if user not in known]
    if len(unknown) == len(args.users):
        raise DataValidationError(f"--users: none of {_ids(unknown)} is in the training part, so the report "
                         "would show nobody; user ids there run from "
                         f"{known.min()} to {known.max()}")
    if unknown:
        logger.warning("warning: --users: %s not in the training part, left out of the report", _ids(unknown))
    return [user for user in dict.fromkeys(args.users) if user in known]


def _ids(values: Sequence[Any], shown: int = 10) -> str:
    text = ", ".join(map(str, values[:shown]))
    return text + (f" and {len(values) - shown} more" if len(values) > shown else "")


def load_data(args: argparse.Namespace) -> Any:
    """Return the data the arguments name: ``--ratings FILE`` (with ``--items``, ``--columns``) or ``--dataset``."""
    if args.ratings is not None:
        from movierec.data.ratings_file import load_ratings

        # default: the rating and timestamp columns when the file has them; --columns is taken as given
        columns = args.columns or DEFAULT_COLUMNS  # parsed by the parser
        data = load_ratings(args.ratings, items=args.items, rating_scale=getattr(args, "rating_scale", None),
                            **columns)
        if data.implicit and args.task == "rating":
            raise ValueError(f"{args.ratings} has no rating column (implicit feedback): use --task ranking")
        return data
    from movierec.data.movielens import load_movielens

    return load_movielens(args.dataset, data_home=args.data_home)


def load_split(args: argparse.Namespace) -> tuple[Any, pd.DataFrame, pd.DataFrame, str]:
    """Return (MovieLens, train, test, description of the split)."""
    from movierec.data.movielens import official_folds
    from movierec.data.split import stratified_split

    start = time.perf_counter()
    data = load_data(args)
    if args.ratings is None and args.test_size is None and args.dataset == "ml-100k":
        fold = official_folds(args.dataset, which=(args.fold or "u1",), data_home=args.data_home, download=False)[0]
        train, test, split = fold.train, fold.test, f"official fold {fold.name}"
    else:
        size = 0.2 if args.test_size is None else args.test_size
        train, test = stratified_split(data.ratings, size, random_state=args.seed)
        split = f"stratified {size:g} of each user's ratings (seed {args.seed})"
        if args.ratings is not None:
            split = f"{args.ratings.name}, {split}"
    logger.info("loaded %s, %s: %d train / %d test ratings (%.1f s)", args.ratings or args.dataset, split,
                len(train), len(test), time.perf_counter() - start)
    if test.empty:
        raise DataValidationError(f"{split}: no rating went to test, since no user has two or more ratings; "
                                  "the evaluation needs users with at least two")
    return data, train, test, split
