"""Checking the rows of a ratings file of your own: ids, ratings, their scale, timestamps, repeats.

Each check names the file, the line (the row, for Parquet), the column and the value. Per-value
work (stripping, matching, parsing) runs on each column's distinct values, not on every row, so a
column of 32 M ratings from 200 K users costs 200 K checks.

The id rule, one for every id column read from a file: a column holds integers or text, never
both. A column whose every id is an integer -- written as digits (at most 18, so they fit int64) or
as a whole decimal (``377.0``, what a spreadsheet writes), both spellings the same id -- is integers;
a Parquet column of floats holding whole numbers is integers too. A column with any other id is
text, every id of it a string (SKUs such as ``A1`` beside ``123``), where a whole decimal is written
as its integer (``377.0`` is ``"377"``, as ``377`` is) and digits stay as typed (``007`` is not
``7``). A column of numbers where one has a fraction (``3.5``) is refused: it is a column of numbers,
not of ids. Ids are stripped of surrounding spaces, and an id holding a control character (a newline
inside quotes, a tab, NUL) is refused. Frames passed to ``fit`` follow the same rule
(``check_pairs``: integer or string ids, one type per column).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from movierec._core.validation import ITEM, RATING, TIMESTAMP, USER, declare_scale, plain
from movierec.exceptions import DatasetError, MovieRecWarning

__all__ = ["ids", "ratings_frame", "where"]

_INT_ID = re.compile(r"[+-]?\d{1,18}(?:\.0*)?")
_FRACTION = re.compile(r"[+-]?(?:\d+\.\d*|\.\d+)")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_SECONDS = re.compile(r"[+-]?\d{1,18}")
# Scales ratings commonly use: without a declared scale, a few values outside the one the others
# are on (at most 1% of the rows, or 3) are reported in a warning.
_COMMON_SCALES = ((1, 5), (0.5, 5), (0, 5), (1, 10), (0, 10), (1, 100), (0, 100))


def where(path: Path, line: int, column: str, parquet: bool) -> str:
    return f"{path}, {'row' if parquet else 'line'} {line}, column {column!r}"


def ratings_frame(path: Path, table: pd.DataFrame, wanted: Mapping[str, str], parquet: bool,
                  rating_scale: tuple[float, float] | None) -> pd.DataFrame:
    """Return the contract's columns from ``table`` (indexed by line), checked row by row."""
    if table.empty:
        raise DatasetError(f"{path}: the file has a header but no rows")
    columns = {
        USER: ids(path, table[wanted[USER]], wanted[USER], parquet),
        ITEM: ids(path, table[wanted[ITEM]], wanted[ITEM], parquet),
    }
    if RATING in wanted:
        columns[RATING] = _numbers(path, table[wanted[RATING]], wanted[RATING], parquet)
        _check_scale(path, table.index, columns[RATING], wanted[RATING], parquet, rating_scale)
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
    ratings = ratings.reset_index(drop=True)
    if rating_scale is not None and RATING in wanted:
        declare_scale(ratings, rating_scale)
    return ratings


def ids(path: Path, values: pd.Series, column: str, parquet: bool) -> pd.Series:
    """Return the ids as int64 or as stripped strings by the module's id rule; none may be missing."""
    if pd.api.types.is_bool_dtype(values.dtype):
        raise DatasetError(f"{path}, column {column!r}: ids must be integers or text, not {values.dtype}")
    if pd.api.types.is_integer_dtype(values.dtype) and not values.isna().any():
        return values.astype("int64")
    codes, uniques = pd.factorize(values, use_na_sentinel=True)

    def first(mask: np.ndarray) -> int:
        return int(values.index[np.isin(codes, np.flatnonzero(mask))][0])

    if (codes < 0).any():
        raise DatasetError(f"{where(path, int(values.index[codes < 0][0]), column, parquet)}: the id is missing")
    uniques = pd.Series(np.asarray(uniques, dtype=object))
    if pd.api.types.is_float_dtype(values.dtype) or pd.api.types.is_integer_dtype(values.dtype):
        numbers = uniques.to_numpy(dtype=float)
        bad = (numbers != np.round(numbers)) | (np.abs(numbers) >= 2**63)
        if bad.any():
            line = first(bad)
            raise DatasetError(f"{where(path, line, column, parquet)}: {plain(values[line])!r} is not a whole number "
                               "(ids are integers or text)")
        return pd.Series(numbers.astype(np.int64)[codes], index=values.index)
    raw = uniques.map(str)
    control = raw.map(lambda v: _CONTROL.search(v) is not None).to_numpy(dtype=bool)
    if control.any():
        line = first(control)
        raise DatasetError(f"{where(path, line, column, parquet)}: the id {str(values[line])!r} holds a control "
                           "character (a line break, tab or NUL)")
    text = raw.str.strip()
    empty = (text == "").to_numpy()
    if empty.any():
        raise DatasetError(f"{where(path, first(empty), column, parquet)}: the id is missing")
    integer = text.map(lambda v: _INT_ID.fullmatch(v) is not None).to_numpy(dtype=bool)
    fraction = ~integer & text.map(lambda v: _FRACTION.fullmatch(v) is not None).to_numpy(dtype=bool)
    if fraction.any() and (integer | fraction).all():  # numbers, one with a fraction: not ids
        line = first(fraction)
        raise DatasetError(f"{where(path, line, column, parquet)}: {str(values[line]).strip()!r} is a number with a "
                           "fraction; ids are integers or text")
    if integer.all():
        return pd.Series(text.map(lambda v: int(v.partition(".")[0])).to_numpy(dtype=np.int64)[codes],
                         index=values.index)
    if integer.any():  # text ids, some of them digits: a whole decimal is the same id as its integer
        text = text.where(~(integer & text.str.contains(".", regex=False).to_numpy()),
                          text.str.partition(".")[0])
    return pd.Series(text.to_numpy(dtype=object)[codes], index=values.index, dtype=object)


def _numbers(path: Path, values: pd.Series, column: str, parquet: bool) -> np.ndarray:
    if pd.api.types.is_bool_dtype(values.dtype):
        raise DatasetError(f"{path}, column {column!r}: ratings must be numbers, not {values.dtype}")
    if not pd.api.types.is_numeric_dtype(values.dtype):
        values = values.astype(object).where(values.notna(), "").map(str).str.strip()
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    bad = ~np.isfinite(numbers)
    if bad.any():
        line = int(values.index[bad][0])
        raise DatasetError(f"{where(path, line, column, parquet)}: {values[line]!r} is not a finite number")
    return numbers


def _check_scale(path: Path, lines: pd.Index, ratings: np.ndarray, column: str, parquet: bool,
                 scale: tuple[float, float] | None) -> None:
    """Refuse ratings off a declared scale; without one, warn when a few stray from a common scale."""
    if scale is not None:
        outside = (ratings < scale[0]) | (ratings > scale[1])
        if outside.any():
            line = int(lines[outside][0])
            raise DatasetError(f"{where(path, line, column, parquet)}: {plain(ratings[outside][0])!r} is outside "
                               f"the rating scale {scale[0]:g} to {scale[1]:g} ({int(outside.sum()):,} such rows)")
        return
    allowed = max(3, len(ratings) // 100)
    counts = pd.Series(ratings).value_counts().sort_index()  # few distinct values, even for 32 M rows
    values, tally = counts.index.to_numpy(dtype=float), counts.to_numpy()
    fits = []
    for lo, hi in _COMMON_SCALES:
        inside = (values >= lo) & (values <= hi)
        # the scale the others are on: once the `allowed` lowest and highest are set aside, they
        # still span half of it (1-5 data with a stray 55 is not on 1-100)
        kept = np.cumsum(tally[inside])
        if not len(kept) or kept[-1] <= 2 * allowed:
            continue
        low = values[inside][np.searchsorted(kept, allowed, side="right")]
        high = values[inside][np.searchsorted(kept, kept[-1] - allowed, side="left")]
        if high - low >= (hi - lo) / 2:
            fits.append((len(ratings) - int(kept[-1]), hi - lo, lo, hi))
    stray, _, lo, hi = min(fits, default=(0, 0, 0, 0))
    if 0 < stray <= max(3, len(ratings) // 100):
        outside = (ratings < lo) | (ratings > hi)
        line = int(lines[outside][0])
        examples = ", ".join(f"{v:g}" for v in pd.unique(ratings[outside])[:5])
        warnings.warn(f"{path}: {stray:,} rating(s) in column {column!r} lie outside {lo:g} to {hi:g}, where all the "
                      f"others are ({examples}; first on {'row' if parquet else 'line'} {line}); declare the scale "
                      "(rating_scale=(lo, hi), --rating-scale lo,hi) to refuse them, or ignore this if they are right",
                      MovieRecWarning, stacklevel=4)


def _seconds(path: Path, values: pd.Series, column: str, parquet: bool) -> np.ndarray:
    """Return Unix seconds from integers or ISO 8601 date-times (UTC when no zone is written).

    The first row decides which: after a Unix-seconds value, the first value that is not one is
    the one reported (not a good value that fails as a date-time).
    """
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        times = pd.to_datetime(values, utc=True)
    elif pd.api.types.is_integer_dtype(values.dtype) and not values.isna().any():
        return values.to_numpy(dtype=np.int64)
    else:
        text = values.astype(object).where(values.notna(), "").map(str).str.strip()
        integer = text.str.fullmatch(_SECONDS.pattern).to_numpy(dtype=bool)
        if integer[0]:
            if not integer.all():
                line = int(values.index[~integer][0])
                raise DatasetError(f"{where(path, line, column, parquet)}: {values[line]!r} is not Unix seconds "
                                   f"(an integer, as on {'row' if parquet else 'line'} {int(values.index[0])})")
            return text.astype("int64").to_numpy()
        times = pd.to_datetime(text, errors="coerce", utc=True, format="ISO8601")
    bad = times.isna().to_numpy()
    if bad.any():
        line = int(values.index[bad][0])
        raise DatasetError(f"{where(path, line, column, parquet)}: {values[line]!r} is neither Unix seconds "
                           "nor an ISO 8601 date-time")
    epoch = pd.Timestamp(0, tz="UTC")
    return ((times - epoch) // pd.Timedelta(seconds=1)).to_numpy(dtype=np.int64)
