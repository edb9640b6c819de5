"""Your own ratings file: CSV, TSV or Parquet, with your column names, explicit or implicit feedback.

[`load_ratings`][movierec.data.ratings_file.load_ratings] reads one file into a ratings frame with the contract's columns (``userId,
movieId, rating`` and optionally ``timestamp``), plus an optional items file that gives titles.
The file is untrusted input: whatever its bytes, it returns a valid frame or raises
[`DatasetError`][movierec.exceptions.DatasetError] whose message names the file, the line and the column.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import warnings
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from movierec._core.extras import require
from movierec._core.validation import ITEM, RATING, TIMESTAMP, USER, plain
from movierec.exceptions import DatasetError, MovieRecWarning

__all__ = ["DEFAULT_MAX_BYTES", "RatingsFile", "load_ratings", "parse_columns"]

# Files larger than this are refused unless the caller raises the cap: ml-32m's ratings.csv is 0.9 GB.
DEFAULT_MAX_BYTES = 2 << 30
# The separators a text file's header is searched for, in order of preference on a tie.
_SEPARATORS = (",", "\t", ";", "|")
_PARQUET_MAGIC = b"PAR1"
# Ids written as integers (at most 18 digits, so they fit int64) are read as integers.
_INT_ID = r"[+-]?\d{1,18}"
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
    if_present: Collection[str] = (),
) -> RatingsFile:
    """Read a ratings file of your own (CSV, TSV or Parquet) into the contract's columns.

    Parameters
    ----------
    path : str or os.PathLike
        The ratings file. A file that starts with Parquet's magic bytes is read as Parquet (needs
        pyarrow: ``pip install 'movierec[spark]'``); any other as delimited text, UTF-8, with a
        header row naming the columns. Blank lines are skipped; a quoted field must not span lines
        (line numbers in errors count one row per line).
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
        Refuse a ratings or items file larger than this many bytes (default 2 GiB).
    if_present : collection of str
        Keys among ``"rating"`` and ``"timestamp"`` whose column may be missing from the file: it is
        then left out, as if given None (no rating column: implicit feedback). The command line's
        default (no ``--columns``) reads ``rating`` and ``timestamp`` this way.

    Returns
    -------
    RatingsFile
        ``.ratings`` and ``.items`` as [`load_movielens`][movierec.data.movielens.load_movielens] gives them.

    Raises
    ------
    DatasetError
        If the file is missing, over ``max_bytes``, empty, unreadable, lacks a mapped column, or a row
        has a missing id, a rating that is not a finite number, a bad timestamp, or repeats a
        (user, item) pair; the message names the file, the line (the row, for Parquet) and the column.
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
    data = _read_bounded(path, max_bytes)
    required = [column for column in wanted.values() if column not in optional]
    table, parquet, names = _read_table(path, data, required, sep, optional)
    wanted = {ours: theirs for ours, theirs in wanted.items() if theirs in table.columns}
    rating = wanted.get(RATING)
    if rating is None and RATING in names:
        warnings.warn(f"{path} has a {RATING!r} column but rating=None: reading it as implicit feedback "
                      f"(every rating 1.0); pass rating={RATING!r} to use it", MovieRecWarning, stacklevel=2)
    ratings = _ratings_frame(path, table, wanted, parquet)
    catalogue = _items_frame(Path(items), max_bytes, item, ratings[ITEM]) if items is not None else _id_titles(ratings)
    return RatingsFile(path, ratings, catalogue, implicit=rating is None, sha256=hashlib.sha256(data).hexdigest())


def parse_columns(text: str) -> dict[str, str]:
    """Return the keyword arguments of [`load_ratings`][movierec.data.ratings_file.load_ratings] that ``"user=u,item=i,..."`` gives.

    The keys are ``user``, ``item``, ``rating`` and ``timestamp`` (what ``--columns`` takes).

    Raises
    ------
    ValueError
        If a part is not ``key=column``, a key is unknown or given twice, or a column name is empty.
    """
    columns: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, equals, value = (s.strip() for s in part.partition("="))
        if not equals or not value:
            raise ValueError(f"{part!r} is not key=column (keys: {', '.join(_COLUMN_KEYS)})")
        if key not in _COLUMN_KEYS or key in columns:
            raise ValueError(f"{key!r} is {'given twice' if key in columns else 'not a key'}; "
                             f"keys: {', '.join(_COLUMN_KEYS)}")
        columns[key] = value
    return columns


# -- reading -------------------------------------------------------------------------------------
def _read_bounded(path: Path, max_bytes: int) -> bytes:
    """Return the bytes of ``path``, reading at most ``max_bytes + 1`` whatever its size claims."""
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > max_bytes:
                raise DatasetError(f"{path}: {size:,} bytes, over the cap of {max_bytes:,} (raise max_bytes to read it)")
            data = handle.read(max_bytes + 1)  # a file that grows, or a pipe, is bounded too
    except OSError as err:
        raise DatasetError(f"{path}: cannot be read ({err.strerror or err})") from None
    if len(data) > max_bytes:
        raise DatasetError(f"{path}: over the cap of {max_bytes:,} bytes (raise max_bytes to read it)")
    if not data.strip():
        raise DatasetError(f"{path}: the file is empty")
    return data


def _read_table(path: Path, data: bytes, required: list[str], sep: str | None,
                optional: tuple[str, ...] = ()) -> tuple[pd.DataFrame, bool, list[str]]:
    """Return the ``required`` and present ``optional`` columns of the file, indexed by line (by row
    for Parquet), whether it is Parquet, and every column name it has."""
    if data.startswith(_PARQUET_MAGIC):
        table, names = _read_parquet(path, data, required, optional)
        return table, True, names
    header = data.split(b"\n", 1)[0].decode("utf-8", errors="replace")
    sep = _detect_separator(header) if sep is None else sep
    try:
        # Every field as text (keep_default_na=False keeps "" and "NA" as written): the checks
        # below then name the exact bad line instead of pandas' guess at a type.
        table = pd.read_csv(io.BytesIO(data), sep=sep if len(sep) == 1 else re.escape(sep), dtype=str,
                            keep_default_na=False, na_values=[], skip_blank_lines=False, encoding="utf-8",
                            engine="c" if len(sep) == 1 else "python")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError, csv.Error) as err:
        raise DatasetError(f"{path}: not a readable {_sep_name(sep)}-separated file ({' '.join(str(err).split())})") from None
    names = [str(c) for c in table.columns]
    _expect_columns(path, names, required, "line 1 (the header)")
    table = table[required + [c for c in optional if c in names]]
    blank = (table.fillna("") == "").all(axis=1).to_numpy()
    table.index = np.arange(2, len(table) + 2)  # line numbers: the header is line 1
    return table[~blank], False, names


def _read_parquet(path: Path, data: bytes, required: list[str], optional: tuple[str, ...]) -> tuple[pd.DataFrame, list[str]]:
    parquet = require("pyarrow.parquet", "spark", purpose="reading Parquet files")
    try:
        names = list(parquet.read_schema(io.BytesIO(data)).names)
        _expect_columns(path, names, required, "the schema")
        columns = required + [c for c in optional if c in names]
        table = parquet.read_table(io.BytesIO(data), columns=columns).to_pandas()
    except DatasetError:
        raise
    except Exception as err:  # noqa: BLE001 - pyarrow raises many kinds; any is a malformed file
        raise DatasetError(f"{path}: not a readable Parquet file ({type(err).__name__}: {err})") from None
    table.index = np.arange(1, len(table) + 1)  # Parquet has no lines: rows count from 1
    return table, names


def _detect_separator(header: str) -> str:
    counts = [(header.count(s), -rank, s) for rank, s in enumerate(_SEPARATORS)]
    best = max(counts)
    return best[2] if best[0] else ","  # one column: the mapped columns will be reported missing


def _sep_name(sep: str) -> str:
    return {"\t": "tab", ",": "comma", ";": "semicolon", "|": "pipe"}.get(sep, repr(sep))


def _expect_columns(path: Path, names: list[str], columns: list[str], where: str) -> None:
    missing = [c for c in columns if c not in names]
    if missing:
        found = ", ".join(names[:20])
        raise DatasetError(f"{path}, {where}: no column {missing[0]!r}; the columns are: {found}")


# -- checking rows -------------------------------------------------------------------------------
def _where(path: Path, line: int, column: str, parquet: bool) -> str:
    return f"{path}, {'row' if parquet else 'line'} {line}, column {column!r}"


def _ratings_frame(path: Path, table: pd.DataFrame, wanted: Mapping[str, str], parquet: bool) -> pd.DataFrame:
    if table.empty:
        raise DatasetError(f"{path}: the file has a header but no rows")
    columns = {
        USER: _ids(path, table[wanted[USER]], wanted[USER], parquet),
        ITEM: _ids(path, table[wanted[ITEM]], wanted[ITEM], parquet),
    }
    if RATING in wanted:
        columns[RATING] = _numbers(path, table[wanted[RATING]], wanted[RATING], parquet)
    else:
        columns[RATING] = np.ones(len(table))
    if TIMESTAMP in wanted:
        columns[TIMESTAMP] = _seconds(path, table[wanted[TIMESTAMP]], wanted[TIMESTAMP], parquet)
    ratings = pd.DataFrame(columns, index=table.index)
    repeated = ratings.duplicated([USER, ITEM], keep="first")
    if repeated.any():
        line = int(ratings.index[repeated.to_numpy()][0])
        u, i = (plain(ratings.at[line, c]) for c in (USER, ITEM))
        earlier = int(ratings.index[((ratings[USER] == u) & (ratings[ITEM] == i)).to_numpy()][0])
        unit = "row" if parquet else "line"
        raise DatasetError(f"{path}, {unit} {line}, columns {wanted[USER]!r} and {wanted[ITEM]!r}: repeats the pair "
                           f"(user {u!r}, item {i!r}) of {unit} {earlier}")
    return ratings.reset_index(drop=True)


def _ids(path: Path, values: pd.Series, column: str, parquet: bool) -> pd.Series:
    """Return the ids as int64 when all are integers, else as stripped strings; none may be missing."""
    if pd.api.types.is_bool_dtype(values.dtype) or pd.api.types.is_float_dtype(values.dtype):
        raise DatasetError(f"{path}, column {column!r}: ids must be integers or text, not {values.dtype}")
    if pd.api.types.is_integer_dtype(values.dtype) and not values.isna().any():
        return values.astype("int64")
    absent = values.isna().to_numpy()
    text = values.astype(object).where(~absent, "").map(str).str.strip()
    missing = absent | (text == "").to_numpy()
    if missing.any():
        raise DatasetError(f"{_where(path, int(values.index[missing][0]), column, parquet)}: the id is missing")
    if text.str.fullmatch(_INT_ID).all():
        return text.astype("int64")
    return text


def _numbers(path: Path, values: pd.Series, column: str, parquet: bool) -> np.ndarray:
    if pd.api.types.is_bool_dtype(values.dtype):
        raise DatasetError(f"{path}, column {column!r}: ratings must be numbers, not {values.dtype}")
    if not pd.api.types.is_numeric_dtype(values.dtype):
        values = values.astype(object).where(values.notna(), "").map(str).str.strip()
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    bad = ~np.isfinite(numbers)
    if bad.any():
        line = int(values.index[bad][0])
        raise DatasetError(f"{_where(path, line, column, parquet)}: {values[line]!r} is not a finite number")
    return numbers


def _seconds(path: Path, values: pd.Series, column: str, parquet: bool) -> np.ndarray:
    """Return Unix seconds from integers or ISO 8601 date-times (UTC when no zone is written)."""
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        times = pd.to_datetime(values, utc=True)
    elif pd.api.types.is_integer_dtype(values.dtype) and not values.isna().any():
        return values.to_numpy(dtype=np.int64)
    else:
        text = values.astype(object).where(values.notna(), "").map(str).str.strip()
        if text.str.fullmatch(_INT_ID).all():
            return text.astype("int64").to_numpy()
        times = pd.to_datetime(text, errors="coerce", utc=True, format="ISO8601")
    bad = times.isna().to_numpy()
    if bad.any():
        line = int(values.index[bad][0])
        raise DatasetError(f"{_where(path, line, column, parquet)}: {values[line]!r} is neither Unix seconds "
                           "nor an ISO 8601 date-time")
    epoch = pd.Timestamp(0, tz="UTC")
    return ((times - epoch) // pd.Timedelta(seconds=1)).to_numpy(dtype=np.int64)


# -- items ---------------------------------------------------------------------------------------
def _items_frame(path: Path, max_bytes: int, item: str, rated: pd.Series) -> pd.DataFrame:
    """Return ``movieId, title`` (and ``genres``) of an items file, its ids typed like the ratings'."""
    data = _read_bounded(path, max_bytes)
    header = data.split(b"\n", 1)[0].decode("utf-8", errors="replace")
    id_column = item if data.startswith(_PARQUET_MAGIC) or item in header else ITEM
    table, parquet, _ = _read_table(path, data, [id_column, "title"], None, optional=("genres",))
    if table.empty:
        raise DatasetError(f"{path}: the file has a header but no rows")
    ids = _ids(path, table[id_column], id_column, parquet)
    if pd.api.types.is_integer_dtype(rated.dtype) and not pd.api.types.is_integer_dtype(ids.dtype):
        line = int(ids.index[~ids.str.fullmatch(_INT_ID).to_numpy()][0])
        raise DatasetError(f"{_where(path, line, id_column, parquet)}: the ratings' item ids are integers, "
                           f"this one is {ids[line]!r}")
    if not pd.api.types.is_integer_dtype(rated.dtype):
        ids = ids.astype(str).astype(object)
    repeated = ids.duplicated().to_numpy()
    if repeated.any():
        line = int(ids.index[repeated][0])
        raise DatasetError(f"{_where(path, line, id_column, parquet)}: the item {plain(ids[line])!r} appears twice")
    frame = pd.DataFrame({ITEM: ids})
    for column in ("title", "genres"):
        if column in table.columns:
            frame[column] = table[column].astype(object).where(table[column].notna(), "")
    return frame.reset_index(drop=True)


def _id_titles(ratings: pd.DataFrame) -> pd.DataFrame:
    ids = np.sort(ratings[ITEM].unique()) if pd.api.types.is_integer_dtype(ratings[ITEM].dtype) else ratings[ITEM].unique()
    return pd.DataFrame({ITEM: ids, "title": [str(i) for i in ids]})
