"""MovieLens datasets: loaders, the official ml-100k folds, checksums and the local cache.

Archives live in a data folder: the ``data_home`` argument, else the ``MOVIEREC_DATA`` environment
variable, else ``~/.cache/movierec``; dataset ``name`` is the file ``{data_home}/{name}.zip``
(``ml-10m.zip`` for ml-10m). Loaders read the members straight from the zip: the folder may be
read-only, nothing is ever extracted, and nothing is written there except by a download.

Integrity
---------
Every ml-100k member a loader reads is checked against its published SHA-256; a mismatch raises
[`ChecksumError`][movierec.exceptions.ChecksumError] naming the member and both hashes. No member hashes are
known for the other archives, so for them integrity rests on the zip format's own CRC-32, which
`zipfile` checks while a member is read to its end. A truncated or corrupt zip, a failed CRC
or a missing member raises [`DatasetError`][movierec.exceptions.DatasetError] naming the file and telling
to delete it and download it again.

Download
--------
When an archive is absent, [`load_movielens`][movierec.data.movielens.load_movielens] (``download=True``) fetches it from GroupLens,
``https://files.grouplens.org/datasets/movielens/{zipname}``, or from the base URL in the
``MOVIEREC_MIRROR`` environment variable. The file is written to a temporary file in the data folder,
verified (zip readable, member names, sizes, every CRC, the known SHA-256 hashes), then renamed into
place, so a failed or interrupted download never leaves a partial archive behind. Progress goes to a
tqdm bar when tqdm is installed and to the ``logging`` logger of this package, never to ``print``.

Bounds
------
Nothing a mirror or an archive holds can hang a download or exhaust memory or disk: a download has a
total deadline and a size cap (arguments of [`download_movielens`][movierec.data.movielens.download_movielens], by default derived from the
archive's known size), and no member may inflate beyond 1.5 times its known size (the whole archive's,
for members of unknown size). Members are hashed while they stream, never read whole first. Loaders
check what they parse: ratings must form a valid ratings frame (finite ratings, no duplicate pair),
movie and user ids must be unique; anything else raises [`DatasetError`][movierec.exceptions.DatasetError].
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from movierec._core.params import Int, Real, check_value
from movierec._core.validation import declare_scale
from movierec.data._movielens import _parsers
from movierec.data._movielens._archive import Archive
from movierec.data._movielens._download import Limits
from movierec.data._movielens._download import download as _download
from movierec.data._movielens._limits import download_cap, download_deadline
from movierec.data._movielens._registry import (
    LAYOUTS,
    ML100K_FOLDS,
    archive_path,
    archive_url,
    layout,
    resolve_home,
)
from movierec.exceptions import DatasetError, DataValidationError

__all__ = [
    "Fold",
    "MovieLens",
    "data_home",
    "download_movielens",
    "is_present",
    "known_datasets",
    "load_movielens",
    "official_folds",
]

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]


@dataclass(frozen=True, eq=False, repr=False)
class MovieLens:
    """One MovieLens dataset, as returned by [`load_movielens`][movierec.data.movielens.load_movielens].

    Attributes
    ----------
    name : str
        The dataset name, e.g. ``"ml-100k"``.
    ratings : pandas.DataFrame
        Columns ``userId, movieId`` (int64), ``rating`` (float64), ``timestamp`` (int64, Unix seconds),
        in the archive's row order.
    items : pandas.DataFrame
        ``movieId, title`` and the genres. ml-100k: ``release_date`` (datetime64, NaT where blank)
        then the 19 genre flags of ``u.genre`` as bool columns named after the genres (``Action``,
        ``Children's``, ``Sci-Fi``, ...). Other datasets: ``genres``, a string of '|'-separated genres
        as written in the archive.
    users : pandas.DataFrame or None
        ml-100k and ml-1m: ``userId, age, gender, occupation, zip`` (zip a string). ml-100k gives the
        age in years and the occupation as a word; ml-1m keeps the archive's integer codes for both.
        ``None`` for the other datasets, which have no user file.
    """

    name: str
    ratings: pd.DataFrame
    items: pd.DataFrame
    users: pd.DataFrame | None = None

    def __repr__(self) -> str:
        users = "None" if self.users is None else f"<{len(self.users)} rows>"
        return (f"MovieLens(name={self.name!r}, ratings=<{len(self.ratings)} rows>, "
                f"items=<{len(self.items)} rows>, users={users})")


@dataclass(frozen=True, eq=False, repr=False)
class Fold:
    """One official train/test split, as returned by [`official_folds`][movierec.data.movielens.official_folds].

    Attributes
    ----------
    name : str
        The fold name, e.g. ``"u1"`` or ``"ua"``.
    train, test : pandas.DataFrame
        Ratings frames with the columns and dtypes of `MovieLens.ratings`.
    """

    name: str
    train: pd.DataFrame
    test: pd.DataFrame

    def __repr__(self) -> str:
        return f"Fold(name={self.name!r}, train=<{len(self.train)} rows>, test=<{len(self.test)} rows>)"


def data_home(path: PathLike | None = None) -> Path:
    """Return the folder that holds the MovieLens archives.

    Parameters
    ----------
    path : str or os.PathLike, optional
        An explicit folder. By default ``$MOVIEREC_DATA`` if set, else ``~/.cache/movierec``.

    Returns
    -------
    pathlib.Path
        The absolute folder path; it is not created.
    """
    return resolve_home(path)


def known_datasets() -> list[str]:
    """Return the names [`load_movielens`][movierec.data.movielens.load_movielens] accepts, smallest first."""
    return list(LAYOUTS)


def is_present(name: str, data_home: PathLike | None = None) -> bool:
    """Return whether the archive of dataset ``name`` is in the data folder (without opening it).

    Raises
    ------
    DatasetError
        If ``name`` is not one of [`known_datasets`][movierec.data.movielens.known_datasets].
    """
    return archive_path(name, data_home).is_file()


def download_movielens(name: str = "ml-100k", *, data_home: PathLike | None = None,
                       url: str | None = None, force: bool = False, max_bytes: int | None = None,
                       deadline: float | None = None) -> Path:
    """Return the path of the archive of ``name``, downloading it first if it is absent.

    Parameters
    ----------
    name : str
        One of [`known_datasets`][movierec.data.movielens.known_datasets].
    data_home : str or os.PathLike, optional
        The data folder (see [`data_home`][movierec.data.movielens.data_home]); created if needed.
    url : str, optional
        Where to download from. By default ``$MOVIEREC_MIRROR/{zipname}`` if that variable is set,
        else the GroupLens URL.
    force : bool
        Download again even if the archive is already there.
    max_bytes : int, optional
        The most bytes to accept. By default 1.5 times the archive's known size; a server that
        announces or sends more is refused, so an endless stream cannot fill the disk.
    deadline : float, optional
        The most seconds the whole download may take, connecting and TLS included (a DNS lookup
        is not). By default the time the archive takes at 100 kB/s, and at least 120 s; a mirror
        that trickles bytes fails then. A silent mirror fails after one read timeout (30 s, or
        ``deadline`` if shorter).

    Returns
    -------
    pathlib.Path
        ``{data_home}/{zipname}``.

    Raises
    ------
    DatasetError
        If ``name`` is unknown, or the download fails, passes ``max_bytes`` or ``deadline``, or does
        not verify (the message says where to put a copy downloaded by hand);
        [`ChecksumError`][movierec.exceptions.ChecksumError] if an ml-100k member has the wrong SHA-256.
        Nothing is left behind on failure.
    InvalidParameterError
        If ``max_bytes`` is not a positive int or ``deadline`` not a positive number of seconds.
    """
    spec = layout(name)
    limits = Limits(
        max_bytes=download_cap(spec) if max_bytes is None else
        check_value("download_movielens", "max_bytes", max_bytes, Int(1)),
        deadline=download_deadline(spec) if deadline is None else
        check_value("download_movielens", "deadline", deadline, Real(0, None, open_low=True)),
    )
    path = archive_path(name, data_home)
    if path.is_file() and not force:
        logger.debug("%s is already at %s", name, path)
        return path
    return _download(spec, url or archive_url(name), path, limits)


def _locate(name: str, data_home: PathLike | None, download: bool) -> Path:
    path = archive_path(name, data_home)
    if path.is_file():
        return path
    if not download:
        raise DatasetError(f"the {name} archive is not at {path}. Download {archive_url(name)} and put "
                           f"it at {path}, or pass download=True")
    return download_movielens(name, data_home=data_home)


def load_movielens(name: str = "ml-100k", *, data_home: PathLike | None = None,
                   download: bool = True) -> MovieLens:
    """Return the ratings, movies and (where the archive has them) users of a MovieLens dataset.

    Parameters
    ----------
    name : {"ml-100k", "ml-1m", "ml-10m", "ml-20m", "ml-25m", "ml-32m", "ml-latest-small"}
        The dataset.
    data_home : str or os.PathLike, optional
        The data folder (see [`data_home`][movierec.data.movielens.data_home]).
    download : bool
        Download the archive when it is absent. With ``False`` an absent archive is an error.

    Returns
    -------
    MovieLens
        See [`MovieLens`][movierec.data.movielens.MovieLens] for the columns and dtypes.

    Raises
    ------
    DatasetError
        If ``name`` is unknown; the archive is absent and cannot be downloaded (the message names the
        URL and the exact path to put the file at); or it is truncated, corrupt or lacks a member.
    ChecksumError
        If an ml-100k member does not have its published SHA-256.

    Examples
    --------
    >>> ml = load_movielens("ml-100k")  # doctest: +SKIP
    >>> ml.ratings.shape  # doctest: +SKIP
    (100000, 4)
    """
    spec = layout(name)
    path = _locate(name, data_home, download)
    with Archive(path, spec) as archive:
        if spec.format == "100k":
            ratings = archive.parse(spec.ratings, _parsers.ratings_100k)
            items = archive.parse(spec.movies, _parsers.items_100k)
            users = archive.parse("u.user", _parsers.users_100k)
        elif spec.format == "dat":
            ratings = archive.parse(spec.ratings, _parsers.ratings_dat)
            items = archive.parse(spec.movies, lambda data: _parsers.movies_dat(data, spec.encoding))
            users = archive.parse(spec.users, _parsers.users_1m) if spec.users else None
        else:
            with archive.open(spec.ratings) as stream:
                ratings = _parsers.ratings_csv(stream)
            with archive.open(spec.movies) as stream:
                items = _parsers.movies_csv(stream)
            users = None
    logger.debug("loaded %s from %s: %d ratings", name, path, len(ratings))
    # The frame carries its scale, so every fit and split refuses a rating off it (a stray 6).
    try:
        ratings = declare_scale(ratings, spec.rating_scale)
    except DataValidationError as err:
        raise DatasetError(f"{path}: {spec.member(spec.ratings)}: {err}") from None
    return MovieLens(name=name, ratings=ratings, items=items, users=users)


def official_folds(name: str = "ml-100k", *, which: str | Iterable[str] = ML100K_FOLDS[:5],
                   data_home: PathLike | None = None, download: bool = True) -> list[Fold]:
    """Return the official train/test folds GroupLens ships with ml-100k.

    Parameters
    ----------
    name : str
        Must be ``"ml-100k"``, the only dataset with official folds.
    which : str or iterable of str
        Fold names among ``u1`` ... ``u5`` (the five-fold cross-validation, 80000/20000 ratings each)
        and ``ua``, ``ub`` (exactly 10 test ratings per user, 90570/9430). Default: ``u1`` to ``u5``.
    data_home : str or os.PathLike, optional
        The data folder (see [`data_home`][movierec.data.movielens.data_home]).
    download : bool
        Download the archive when it is absent.

    Returns
    -------
    list of Fold
        In the order of ``which``; ``train`` and ``test`` have the columns of ``MovieLens.ratings``.

    Raises
    ------
    DatasetError
        If ``name`` has no official folds, a fold name is unknown, or the archive is absent or damaged.
    ChecksumError
        If a fold file does not have its published SHA-256.
    """
    spec = layout(name)
    if spec.name != "ml-100k":
        raise DatasetError(f"only ml-100k has official folds, not {name!r}; use movierec.data.split instead")
    names = [which] if isinstance(which, str) else list(which)
    unknown = [fold for fold in names if fold not in ML100K_FOLDS]
    if unknown or not names:
        raise DatasetError(f"which must name folds among {list(ML100K_FOLDS)}, got {which!r}")
    path = _locate(name, data_home, download)
    with Archive(path, spec) as archive:
        return [
            Fold(name=fold,
                 train=declare_scale(archive.parse(f"{fold}.base", _parsers.ratings_100k), spec.rating_scale),
                 test=declare_scale(archive.parse(f"{fold}.test", _parsers.ratings_100k), spec.rating_scale))
            for fold in names
        ]
