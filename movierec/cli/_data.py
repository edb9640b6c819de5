"""What the commands read and check before any fitting: the data, its split, the output paths, the users shown."""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from movierec import pipeline
from movierec.exceptions import DataValidationError

__all__ = ["DEFAULT_COLUMNS", "DEFAULT_FOLDS", "REPORT_USERS", "TEST_SIZE", "Split", "check_out_dir",
           "check_out_file", "load_data", "load_folds", "load_split", "report_users", "settings_from", "side_frames",
           "typed_ids"]

logger = logging.getLogger("movierec.cli")

REPORT_USERS = 3
#: The test share of --split stratified and temporal when --test-size is not given (every splitter's default).
TEST_SIZE = 0.2
#: Folds of evaluate's per-user k-fold when the data has no official folds.
DEFAULT_FOLDS = 5
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


def typed_ids(texts: Sequence[str], known: Any) -> list[Any]:
    """Return the ids typed on the command line as the data's own: ints where the data's ids are
    integers (``7`` and ``007`` are user 7), the text itself where they are strings."""
    if not pd.api.types.is_integer_dtype(pd.Index(known)):
        return list(texts)
    return [int(text) if text.lstrip("+-").isdigit() else text for text in texts]


def report_users(args: argparse.Namespace, train: pd.DataFrame) -> list[Any]:
    """Return the report's users: ``--users`` known to ``train`` (a warning names the others), else
    the first few user ids. None known is an error, raised before any fitting."""
    known = pd.Index(train["userId"].unique())
    if not args.users:
        return sorted(known)[:REPORT_USERS]
    users = typed_ids(args.users, known)
    unknown = [user for user in users if user not in known]
    if len(unknown) == len(users):
        raise DataValidationError(f"--users: none of {_ids(unknown)} is in the training part, so the report "
                         "would show nobody; user ids there run from "
                         f"{known.min()} to {known.max()}")
    if unknown:
        logger.warning("warning: --users: %s not in the training part, left out of the report", _ids(unknown))
    return [user for user in dict.fromkeys(users) if user in known]


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


@dataclass(frozen=True)
class Split:
    """One train/test split the command measures on: its name (``u1``, ``2/5``, ``temporal``) and parts."""

    name: str
    train: pd.DataFrame
    test: pd.DataFrame


def side_frames(args: argparse.Namespace, data: Any) -> dict[str, pd.DataFrame | None]:
    """Return the ``users`` and ``items`` frames the data has, for the members that use side data.

    A MovieLens dataset has its movies (genres, release year) and, where the archive has them, its
    users; a ratings file has movies only with ``--items`` (without it they are bare ids).
    """
    items = data.items if args.ratings is None or args.items is not None else None
    return {"users": getattr(data, "users", None), "items": items}


def _check_timestamps(args: argparse.Namespace, ratings: pd.DataFrame) -> None:
    from movierec._core.validation import TIMESTAMP

    if TIMESTAMP not in ratings.columns:
        source = args.ratings or args.dataset
        raise DataValidationError(
            f"--split temporal puts each user's latest ratings in test, so it needs a {TIMESTAMP} column; "
            f"{source} has {', '.join(map(str, ratings.columns))}"
            + (" (name it with --columns timestamp=COLUMN)" if args.ratings is not None else ""))


def _per_user(args: argparse.Namespace, ratings: pd.DataFrame, kind: str) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """Return (train, test, description) of a stratified or temporal split of ``ratings``."""
    from movierec.data.split import stratified_split, temporal_split

    size = TEST_SIZE if args.test_size is None else args.test_size
    if kind == "temporal":
        _check_timestamps(args, ratings)
        train, test = temporal_split(ratings, size)
        return train, test, f"temporal: each user's latest {size:g} of ratings in test"
    train, test = stratified_split(ratings, size, random_state=args.seed)
    return train, test, f"stratified {size:g} of each user's ratings (seed {args.seed})"


def _named(args: argparse.Namespace, split: str) -> str:
    return f"{args.ratings.name}, {split}" if args.ratings is not None else split


def _check_test(split: str, test: pd.DataFrame) -> None:
    if test.empty:
        raise DataValidationError(f"{split}: no rating went to test, since no user has two or more ratings; "
                                  "the evaluation needs users with at least two")


def load_split(args: argparse.Namespace) -> tuple[Any, pd.DataFrame, pd.DataFrame, str]:
    """Return (data, train, test, description of the split) of ``recommend``.

    ml-100k without ``--split`` or ``--test-size``: an official fold (``--fold``, default u1);
    otherwise ``--split stratified`` (the default) or ``temporal`` at ``--test-size`` (default 0.2).
    """
    from movierec.data.movielens import official_folds

    start = time.perf_counter()
    data = load_data(args)
    kind = getattr(args, "split", None)
    if args.ratings is None and args.test_size is None and kind is None and args.dataset == "ml-100k":
        fold = official_folds(args.dataset, which=(args.fold or "u1",), data_home=args.data_home, download=False)[0]
        train, test, split = fold.train, fold.test, f"official fold {fold.name}"
    else:
        train, test, split = _per_user(args, data.ratings, kind or "stratified")
        split = _named(args, split)
    logger.info("loaded %s, %s: %s train / %s test ratings (%.1f s)", args.ratings or args.dataset, split,
                f"{len(train):,}", f"{len(test):,}", time.perf_counter() - start)
    _check_test(split, test)
    return data, train, test, split


def load_folds(args: argparse.Namespace) -> tuple[Any, list[Split], str]:
    """Return (data, the splits, their description) of ``evaluate``.

    ``--folds`` names official ml-100k folds (``u1-u5``, the default on ml-100k) or a count k: each
    user's ratings dealt into k parts (`movierec.data.split.user_kfold`, the default with 5 parts
    on any other data). ``--split temporal`` is one split instead: each user's latest ratings in test.
    """
    from movierec.data.movielens import official_folds
    from movierec.data.split import user_kfold

    start = time.perf_counter()
    data = load_data(args)
    folds = args.folds
    if getattr(args, "split", None) == "temporal":
        train, test, split = _per_user(args, data.ratings, "temporal")
        splits, what = [Split("temporal", train, test)], _named(args, split)
    elif isinstance(folds, list):  # official folds, checked to be ml-100k's by the parser
        kept = official_folds(args.dataset, which=tuple(folds), data_home=args.data_home)
        splits, what = [Split(f.name, f.train, f.test) for f in kept], f"official folds {','.join(folds)}"
    else:
        k = DEFAULT_FOLDS if folds is None else folds
        splits = [Split(f"{i}/{k}", train, test)
                  for i, (train, test) in enumerate(user_kfold(data.ratings, k, random_state=args.seed), start=1)]
        what = _named(args, f"per-user {k}-fold (each user's ratings dealt into {k} parts, seed {args.seed})")
    for split in splits:
        _check_test(f"{what}, {split.name}", split.test)
    logger.info("loaded %s, %s: %s ratings (%.1f s)", args.ratings or args.dataset, what,
                f"{len(data.ratings):,}", time.perf_counter() - start)
    return data, splits, what
