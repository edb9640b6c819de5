"""Vectorized pandas parsers for the three MovieLens file formats (no Python loop over rows).

The files are untrusted input: every parser returns a frame with the documented columns and dtypes
or raises ValueError (which the loaders turn into DatasetError), whatever the bytes. Ratings must
form a valid ratings frame, movie and user ids must be unique.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import IO

import numpy as np
import pandas as pd

from movierec._core.validation import ITEM, RATING, RATINGS_COLUMNS, TIMESTAMP, USER, check_ratings
from movierec.data._movielens._registry import ML100K_GENRES

BytesParser = Callable[[bytes], pd.DataFrame]
RATINGS_DTYPES = {USER: "int64", ITEM: "int64", RATING: "float64", TIMESTAMP: "int64"}
# Control characters that never occur in MovieLens text; the first one absent from a file stands in
# for its two-byte '::' separator, so pandas' C parser can read it.
_STAND_INS = (b"\x1f", b"\x1e", b"\x1d", b"\x1c", b"\t")


@contextmanager
def _numbers_in_range() -> Iterator[None]:
    """Report a number too large for its dtype as ValueError, like every other malformed field."""
    try:
        with np.errstate(invalid="ignore", over="ignore"):  # the failed cast raises below
            yield
    except OverflowError as err:
        raise ValueError(f"a number is too large for its column ({err})") from err


def _read_text(data: bytes | IO[bytes], sep: str, names: list[str], dtype: Mapping[str, str],
               encoding: str, usecols: list[str] | None = None) -> pd.DataFrame:
    """Parse headerless text with no quoting: quotes in MovieLens titles are part of the title."""
    source = io.BytesIO(data) if isinstance(data, bytes) else data
    with _numbers_in_range():
        return pd.read_csv(
            source, sep=sep, header=None, names=names, usecols=usecols, dtype=dict(dtype),
            encoding=encoding, quoting=csv.QUOTE_NONE, keep_default_na=False, engine="c",
        )


def read_double_colon(data: bytes, names: list[str], dtype: Mapping[str, str], encoding: str) -> pd.DataFrame:
    """Parse a '::'-separated ``.dat`` file (ml-1m, ml-10m)."""
    for stand_in in _STAND_INS:
        if stand_in not in data:
            return _read_text(data.replace(b"::", stand_in), stand_in.decode(), names, dtype, encoding)
    # No MovieLens file holds all the stand-ins; a hostile one may, and is refused.
    raise ValueError("the file holds every control character that could stand in for '::'")


def ratings_100k(data: bytes) -> pd.DataFrame:
    """Parse ``u.data`` or a fold file: tab-separated user, item, rating, timestamp."""
    return _valid_ratings(_read_text(data, "\t", list(RATINGS_COLUMNS), RATINGS_DTYPES, "ascii"))


def items_100k(data: bytes) -> pd.DataFrame:
    """Parse ``u.item``: movieId, title, release_date (datetime64, NaT if blank), 19 genre flags."""
    names = [ITEM, "title", "release_date", "video_release_date", "imdb_url", *ML100K_GENRES]
    dtype = {ITEM: "int64", "title": "str", "release_date": "str", **dict.fromkeys(ML100K_GENRES, "int8")}
    usecols = [ITEM, "title", "release_date", *ML100K_GENRES]
    items = _read_text(data, "|", names, dtype, "latin-1", usecols=usecols)
    flags = items[list(ML100K_GENRES)]
    if not flags.isin([0, 1]).all().all():
        raise ValueError("genre flags must be 0 or 1")
    items[list(ML100K_GENRES)] = flags.astype(bool)
    # Blank dates become NaT; "%b" month names are the English ones GroupLens wrote.
    items["release_date"] = pd.to_datetime(items["release_date"], format="%d-%b-%Y")
    return _unique(items[usecols], ITEM)


def users_100k(data: bytes) -> pd.DataFrame:
    """Parse ``u.user``: userId, age, gender, occupation (a word), zip (a string: some are Canadian)."""
    names = [USER, "age", "gender", "occupation", "zip"]
    dtype = {USER: "int64", "age": "int64", "gender": "str", "occupation": "str", "zip": "str"}
    return _unique(_read_text(data, "|", names, dtype, "latin-1"), USER)


def ratings_dat(data: bytes) -> pd.DataFrame:
    """Parse ``ratings.dat`` (ml-1m, ml-10m)."""
    return _valid_ratings(read_double_colon(data, list(RATINGS_COLUMNS), RATINGS_DTYPES, "ascii"))


def movies_dat(data: bytes, encoding: str) -> pd.DataFrame:
    """Parse ``movies.dat`` (ml-1m Latin-1, ml-10m UTF-8): movieId, title, genres ('|'-separated)."""
    dtype = {ITEM: "int64", "title": "str", "genres": "str"}
    return _unique(read_double_colon(data, [ITEM, "title", "genres"], dtype, encoding), ITEM)


def users_1m(data: bytes) -> pd.DataFrame:
    """Parse ml-1m ``users.dat``; age and occupation keep the archive's integer codes."""
    names = [USER, "gender", "age", "occupation", "zip"]
    dtype = {USER: "int64", "gender": "str", "age": "int64", "occupation": "int64", "zip": "str"}
    users = read_double_colon(data, names, dtype, "latin-1")
    return _unique(users[[USER, "age", "gender", "occupation", "zip"]], USER)


def ratings_csv(stream: IO[bytes]) -> pd.DataFrame:
    """Parse ``ratings.csv`` (ml-20m and later): header userId,movieId,rating,timestamp."""
    with _numbers_in_range():
        ratings = pd.read_csv(stream, dtype=RATINGS_DTYPES, engine="c")
    _expect_columns(ratings, list(RATINGS_COLUMNS))
    return _valid_ratings(ratings)


def movies_csv(stream: IO[bytes]) -> pd.DataFrame:
    """Parse ``movies.csv``: header movieId,title,genres; quoted titles may hold commas."""
    dtype = {ITEM: "int64", "title": "str", "genres": "str"}
    with _numbers_in_range():
        movies = pd.read_csv(stream, dtype=dtype, encoding="utf-8", keep_default_na=False, engine="c")
    _expect_columns(movies, [ITEM, "title", "genres"])
    return _unique(movies, ITEM)


def _expect_columns(frame: pd.DataFrame, columns: list[str]) -> None:
    if list(frame.columns) != columns:
        raise ValueError(f"expected columns {columns}, found {list(frame.columns)}")


def _valid_ratings(ratings: pd.DataFrame) -> pd.DataFrame:
    """Return ``ratings`` if it is a valid ratings frame (finite ratings, no duplicate pair, a row)."""
    return check_ratings(ratings, name="ratings")  # DataValidationError is a ValueError


def _unique(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """Return ``frame`` if it has rows and ``column`` (an id) holds no value twice."""
    if frame.empty:
        raise ValueError("the file holds no rows")
    repeated = frame[column].duplicated()
    if repeated.any():
        row = frame[repeated].iloc[0]
        raise ValueError(f"{column} {row[column]} appears more than once (row {row.name})")
    return frame
