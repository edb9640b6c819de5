"""Your own ratings file: CSV, TSV or Parquet, with your column names, explicit or implicit feedback.

[`load_ratings`][movierec.data.ratings_file.load_ratings] reads one file into a ratings frame with the contract's columns (``userId,
movieId, rating`` and optionally ``timestamp``), plus an optional items file that gives titles.
The file is untrusted input: whatever its bytes, it returns a valid frame or raises
[`DatasetError`][movierec.exceptions.DatasetError] whose message names the file, the line and the column.
"""

from __future__ import annotations

import hashlib
import math
import numbers
import os
import warnings
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from movierec._core.validation import ITEM, RATING, TIMESTAMP, USER, plain
from movierec.data._ratings_read import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_ROWS,
    header_line,
    is_parquet,
    read_bounded,
    read_table,
)
from movierec.data._ratings_rows import ids, ratings_frame, where
from movierec.exceptions import DatasetError, InvalidParameterError, MovieRecWarning

__all__ = ["DEFAULT_MAX_BYTES", "DEFAULT_MAX_ROWS", "RatingsFile", "load_ratings", "parse_columns"]

_COLUMN_KEYS = ("user", "item", "rating", "timestamp")


@dataclass(frozen=True, eq=False, repr=False)
class RatingsFile:
    """A ratings file read by [`load_ratings`][movierec.data.ratings_file.load_ratings], shaped like [`MovieLens`][movierec.data.movielens.MovieLens].

    Attributes
    ----------
    path : Path
        The ratings file.
    ratings : pandas.DataFrame
        ``userId, movieId, rating`` (float64) and ``timestamp`` (int64, Unix seconds) when mapped, in
        the file's row order. Ids are int64 when every id of the column is written as an integer,
        strings otherwise.
    items : pandas.DataFrame
        ``movieId, title`` (and the items file's ``genres`` when it has them). Without an items
        file, one row per rated movie whose title is its id as text.
    implicit : bool
        True when the file had no rating column: every row is then a positive event of rating 1.0,
        which suits the ranking task only.
    sha256 : str
        The SHA-256 of the ratings file's bytes, for the model card.
    users : None
        Always None (no user file); present so code written for MovieLens works unchanged.
    """

    path: Path
    ratings: pd.DataFrame
    items: pd.DataFrame
    implicit: bool
    sha256: str
    users: None = None

    @property
    def name(self) -> str:
        """The ratings file's name, where [`MovieLens`][movierec.data.movielens.MovieLens] has the dataset's."""
        return self.path.name

    def __repr__(self) -> str:
        return (f"RatingsFile(path={str(self.path)!r}, ratings=<{len(self.ratings)} rows>, "
                f"items=<{len(self.items)} rows>, implicit={self.implicit})")


def load_ratings(
    path: str | os.PathLike[str],
    *,
    user: str = USER,
    item: str = ITEM,
    rating: str | None = None,
    timestamp: str | None = None,
    sep: str | None = None,
    items: str | os.PathLike[str] | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_rows: int = DEFAULT_MAX_ROWS,
    if_present: Collection[str] = (),
    rating_scale: tuple[float, float] | None = None,
) -> RatingsFile:
    """Read a ratings file of your own (CSV, TSV or Parquet) into the contract's columns.

    Parameters
    ----------
    path : str or os.PathLike
        The ratings file. A file that starts with Parquet's magic bytes is read as Parquet (needs
        pyarrow: ``pip install 'movierec[spark]'``); any other as delimited text, UTF-8, with a
        header row naming the columns, each at most once. Blank lines are skipped; a quoted field
        must not span lines (line numbers in errors count one row per line). Only the mapped
        columns are decoded.
    user, item : str
        The columns holding the user and the item ids (default ``userId`` and ``movieId``).
    rating : str, optional
        The column holding the ratings. ``None`` means implicit feedback: each row says the user
        interacted with the item, and gets rating 1.0 ([`RatingsFile.implicit`][movierec.data.ratings_file.RatingsFile.implicit] is True).
    timestamp : str, optional
        The column holding the time of each rating: integers (Unix seconds) or ISO 8601 date-times
        (read as UTC, stored as Unix seconds). ``None`` leaves the timestamp out.
    sep : str, optional
        The separator of a text file. ``None`` detects it from the header: the most frequent of
        ``,``, tab, ``;`` and ``|``.
    items : str or os.PathLike, optional
        A CSV/TSV/Parquet items file with a ``title`` column and the ``item`` column (or
        ``movieId``), such as MovieLens' ``movies.csv``. Its ``genres`` column is kept when present.
    max_bytes : int
        Refuse a ratings or items file larger than this many bytes (default 2 GiB), and a Parquet
        file whose metadata says its mapped columns decode to more.
    max_rows : int
        Refuse a file of more rows than this (default 50 million; ml-32m has 32 million), counted
        before any row is decoded: a text file's lines, a Parquet file's ``num_rows``.
    if_present : collection of str
        Keys among ``"rating"`` and ``"timestamp"`` whose column may be missing from the file: it is
        then left out, as if given None (no rating column: implicit feedback). The command line's
        default (no ``--columns``) reads ``rating`` and ``timestamp`` this way.
    rating_scale : (float, float), optional
        The lowest and highest rating the data may hold, such as ``(1, 5)``: a rating outside is
        refused, and the frame declares the scale (``ratings.attrs["rating_scale"]``) for the
        models. ``None`` refuses nothing but warns when a few ratings stray from a common scale
        that holds all the others (55 and -3 among ratings of 1 to 5).

    Returns
    -------
    RatingsFile
        ``.ratings`` and ``.items`` as [`load_movielens`][movierec.data.movielens.load_movielens] gives them.

    Raises
    ------
    DatasetError
        If the file is missing, over ``max_bytes`` or ``max_rows``, empty, unreadable, has a header
        over 64 KiB or 1,000 columns, lacks a mapped column or names it twice, or a row has more
        fields than the header, a missing id, an id with a control character, an id column mixing
        integers and text, a rating that is not a finite number or off ``rating_scale``, a bad
        timestamp, or repeats a (user, item) pair; the message names the file, the line (the row,
        for Parquet) and the column.
    InvalidParameterError
        If ``rating_scale`` is not two finite numbers, lowest first.
    ImportError
        If the file is Parquet and pyarrow is not installed.

    Examples
    --------
    >>> data = load_ratings("ratings.csv", rating="rating", items="movies.csv")  # doctest: +SKIP
    >>> data = load_ratings("clicks.tsv", user="visitor", item="sku")  # implicit  # doctest: +SKIP
    """
    path = Path(path)
    mapping = {USER: user, ITEM: item, RATING: rating, TIMESTAMP: timestamp}
    wanted = {ours: theirs for ours, theirs in mapping.items() if theirs is not None}
    if len(set(wanted.values())) != len(wanted):
        raise ValueError(f"each column may be mapped once; got {wanted}")
    if isinstance(if_present, str) or not set(if_present) <= {"rating", "timestamp"}:
        raise ValueError(f"if_present takes 'rating' and 'timestamp' only; got {if_present!r}")
    optional = tuple(wanted[key] for key in (RATING, TIMESTAMP) if key in if_present and key in wanted)
    scale = _checked_scale(rating_scale)
    data = read_bounded(path, max_bytes)
    required = [column for column in wanted.values() if column not in optional]
    table, parquet, names = read_table(path, data, required, sep, optional, max_rows=max_rows, max_bytes=max_bytes)
    wanted = {ours: theirs for ours, theirs in wanted.items() if theirs in table.columns}
    rating = wanted.get(RATING)
    if rating is None and RATING in names:
        warnings.warn(f"{path} has a {RATING!r} column but rating=None: reading it as implicit feedback "
                      f"(every rating 1.0); pass rating={RATING!r} to use it", MovieRecWarning, stacklevel=2)
    ratings = ratings_frame(path, table, wanted, parquet, scale)
    catalogue = (_items_frame(Path(items), max_bytes, max_rows, item, ratings[ITEM]) if items is not None
                 else _id_titles(ratings))
    return RatingsFile(path, ratings, catalogue, implicit=rating is None, sha256=hashlib.sha256(data).hexdigest())


def _checked_scale(scale: object) -> tuple[float, float] | None:
    if scale is None:
        return None
    valid = (isinstance(scale, (tuple, list)) and len(scale) == 2
             and all(isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v) for v in scale)
             and scale[0] < scale[1])
    if not valid:
        raise InvalidParameterError(f"rating_scale must be (lowest, highest), two finite numbers with lowest < "
                                    f"highest, got {scale!r}")
    return float(scale[0]), float(scale[1])


def parse_columns(text: str) -> dict[str, str]:
    """Return the keyword arguments of [`load_ratings`][movierec.data.ratings_file.load_ratings] that ``"user=u,item=i,..."`` gives.

    The keys are ``user``, ``item``, ``rating`` and ``timestamp`` (what ``--columns`` takes).

    Raises
    ------
    ValueError
        If a part is not ``key=column``, a key is unknown or given twice, a column name is empty, or
        one column is given to two keys.
    """
    columns: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, equals, value = (s.strip() for s in part.partition("="))
        if not equals or not value:
            raise ValueError(f"{part!r} is not key=column (keys: {', '.join(_COLUMN_KEYS)})")
        if key not in _COLUMN_KEYS or key in columns:
            raise ValueError(f"{key!r} is {'given twice' if key in columns else 'not a key'}; "
                             f"keys: {', '.join(_COLUMN_KEYS)}")
        if value in columns.values():
            other = next(k for k, v in columns.items() if v == value)
            raise ValueError(f"the column {value!r} is given to both {other} and {key}; each column holds one thing")
        columns[key] = value
    return columns


# -- items ---------------------------------------------------------------------------------------
def _items_frame(path: Path, max_bytes: int, max_rows: int, item: str, rated: pd.Series) -> pd.DataFrame:
    """Return ``movieId, title`` (and ``genres``) of an items file, its ids typed like the ratings'."""
    data = read_bounded(path, max_bytes)
    id_column = item if is_parquet(data) or item in header_line(path, data) else ITEM
    table, parquet, _ = read_table(path, data, [id_column, "title"], None, optional=("genres",),
                                   max_rows=max_rows, max_bytes=max_bytes)
    if table.empty:
        raise DatasetError(f"{path}: the file has a header but no rows")
    keys = ids(path, table[id_column], id_column, parquet)
    if pd.api.types.is_integer_dtype(rated.dtype) and not pd.api.types.is_integer_dtype(keys.dtype):
        textual = ~keys.map(lambda v: str(v).lstrip("+-").isdigit()).to_numpy(dtype=bool)
        line = int(keys.index[textual][0] if textual.any() else keys.index[0])
        raise DatasetError(f"{where(path, line, id_column, parquet)}: the ratings' item ids are integers, "
                           f"this one is {keys[line]!r}")
    if not pd.api.types.is_integer_dtype(rated.dtype):
        keys = keys.astype(str).astype(object)
    repeated = keys.duplicated().to_numpy()
    if repeated.any():
        line = int(keys.index[repeated][0])
        raise DatasetError(f"{where(path, line, id_column, parquet)}: the item {plain(keys[line])!r} appears twice")
    frame = pd.DataFrame({ITEM: keys})
    for column in ("title", "genres"):
        if column in table.columns:
            frame[column] = table[column].astype(object).where(table[column].notna(), "")
    return frame.reset_index(drop=True)


def _id_titles(ratings: pd.DataFrame) -> pd.DataFrame:
    ids = np.sort(ratings[ITEM].unique()) if pd.api.types.is_integer_dtype(ratings[ITEM].dtype) else ratings[ITEM].unique()
    return pd.DataFrame({ITEM: ids, "title": [str(i) for i in ids]})
