"""MyFMBayes's feature rows: one matrix per part (months, users, movies) and a block name per column.

A rating's feature row is ``[month part | user part | movie part]``. The user part of user ``u`` is
one row of a per-user matrix, whatever the rating, which is what lets myfm's ``RelationBlock``
keep the sampler's cost per user and per movie instead of per rating. Columns, by block:

- user part: ``user`` (one-hot, users with ratings only), ``age``, ``gender``, ``occupation``,
  ``zip`` (side features), ``rated`` (implicit feedback: the movies the user rated, each
  ``1 / sqrt(count)``, as SVD++);
- movie part: ``movie`` (one-hot, movies with ratings only), ``genre``, ``year`` (side
  features), ``raters`` (the users who rated the movie, each ``1 / sqrt(count)``);
- month part: ``month``, one column per calendar month with training ratings.

A user or movie known from a side frame only has no one-hot column and no implicit features: it
is scored from its side features alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse

from movierec._core.ids import IdIndex
from movierec._core.validation import TIMESTAMP
from movierec.data.features import item_side_features, user_side_features
from movierec.exceptions import DataValidationError

__all__ = [
    "Design", "Part", "feature_design", "grouping", "ids_design", "item_part", "month_keys", "month_part",
    "period_index", "user_part",
]

#: Characters of the zip code kept as a feature: the first digit is the US postal region.
ZIP_PREFIX = 1
#: The month key of a missing time: later than any month, so it is scored at the latest one.
LATEST = np.iinfo(np.int64).max
_YEAR_IN_TITLE = r"\((\d{4})\)\s*$"


@dataclass(frozen=True)
class Part:
    """One part of the feature row: a matrix with a row per period, user or movie.

    Attributes
    ----------
    matrix : scipy.sparse.csr_matrix of shape (n_rows, n_columns)
    blocks : list of str
        The block each column belongs to (``"user"``, ``"age"``, ``"rated"``, ...).
    """

    matrix: sparse.csr_matrix
    blocks: list[str]


def _one_hot(rows: np.ndarray, cols: np.ndarray, n_rows: int, n_cols: int, values=None) -> sparse.csr_matrix:
    data = np.ones(len(rows)) if values is None else values
    matrix = sparse.csr_matrix((data, (rows, cols)), shape=(n_rows, n_cols))
    matrix.sort_indices()
    return matrix


def _ids_block(rated: np.ndarray, name: str) -> Part:
    """Return one column per rated row (rows without ratings get none)."""
    rows = np.flatnonzero(rated)
    return Part(_one_hot(rows, np.arange(len(rows)), len(rated), len(rows)), [name] * len(rows))


def _implicit_block(own_idx: np.ndarray, other_idx: np.ndarray, n_own: int, n_other: int, name: str) -> Part:
    """Return each row's rated counterparts (movies of a user, raters of a movie), each 1/sqrt(count)."""
    counts = np.bincount(own_idx, minlength=n_own)
    values = 1.0 / np.sqrt(counts[own_idx])
    return Part(_one_hot(own_idx, other_idx, n_own, n_other, values), [name] * n_other)


def _side_block(matrix: sparse.csr_matrix, names: list[str]) -> Part:
    """Return side features whose names read ``block=value``, grouped by ``block``."""
    return Part(matrix.tocsr(), [name.partition("=")[0] for name in names])


def _categories(values: pd.Series, name: str) -> Part:
    """Return the one-hot coding of ``values`` (one per row; missing values set nothing)."""
    codes, categories = pd.factorize(values, sort=True)
    rows = np.flatnonzero(codes >= 0)
    return Part(_one_hot(rows, codes[rows], len(values), len(categories)), [name] * len(categories))


def _aligned(frame: pd.DataFrame, id_column: str, ids: np.ndarray, column: str) -> pd.Series:
    """Return ``frame[column]`` for ``ids`` (missing where an id is absent from the frame)."""
    return frame.set_index(id_column)[column].reindex(pd.Index(ids)).reset_index(drop=True)


def _concat(n_rows: int, parts: list[Part]) -> Part:
    matrices = [p.matrix for p in parts] or [sparse.csr_matrix((n_rows, 0))]
    matrix = sparse.hstack(matrices, format="csr")
    matrix.sort_indices()
    return Part(matrix, [b for p in parts for b in p.blocks])


def user_part(
    index: IdIndex, user_idx: np.ndarray, item_idx: np.ndarray, n_items: int, users: pd.DataFrame | None,
    *, implicit: bool,
) -> Part:
    """Return the user part of ``index``'s users: one-hot, side features of ``users``, rated movies.

    ``user_idx``, ``item_idx`` are the training ratings' indices. ``users`` gives age (in bands),
    gender, occupation and, with a ``zip`` column, the zip code's first character.
    """
    n = len(index)
    blocks = [_ids_block(np.bincount(user_idx, minlength=n) > 0, "user")]
    if users is not None:
        blocks.append(_side_block(*user_side_features(users, index.ids)))
        if "zip" in users.columns:
            zips = _aligned(users, "userId", index.ids, "zip").astype("string").str.strip().str.upper()
            blocks.append(_categories(zips.str[:ZIP_PREFIX].replace("", pd.NA), "zip"))
    if implicit:
        blocks.append(_implicit_block(user_idx, item_idx, n, n_items, "rated"))
    return _concat(n, blocks)


def item_part(
    index: IdIndex, item_idx: np.ndarray, user_idx: np.ndarray, n_users: int, items: pd.DataFrame | None,
    *, implicit: bool,
) -> Part:
    """Return the movie part of ``index``'s movies: one-hot, genres and year of ``items``, raters.

    The year is ``release_date``'s when ``items`` has that column, else the ``(1995)`` that ends
    MovieLens titles; a movie without one gets no year feature.
    """
    n = len(index)
    blocks = [_ids_block(np.bincount(item_idx, minlength=n) > 0, "movie")]
    if items is not None:
        blocks.append(_side_block(*item_side_features(items, index.ids)))
        year = _release_year(items)
        if year is not None:
            blocks.append(_categories(_aligned(year, "movieId", index.ids, "year"), "year"))
    if implicit:
        blocks.append(_implicit_block(item_idx, user_idx, n, n_users, "raters"))
    return _concat(n, blocks)


def _release_year(items: pd.DataFrame) -> pd.DataFrame | None:
    if "release_date" in items.columns:
        year = pd.to_datetime(items["release_date"], errors="coerce").dt.year
    elif "title" in items.columns:
        year = pd.to_numeric(items["title"].astype(str).str.extract(_YEAR_IN_TITLE)[0], errors="coerce")
    else:
        return None
    return pd.DataFrame({"movieId": items["movieId"], "year": year.astype("Int64")})


@dataclass(frozen=True)
class Design:
    """What the sampler reads and the folding needs.

    Attributes
    ----------
    X : scipy.sparse.csr_matrix
        The columns that vary per rating, one row per rating.
    relations : list of (ndarray, scipy.sparse.csr_matrix)
        The per-user and per-movie matrices and each rating's row in them (myfm ``RelationBlock``s),
        whose columns follow ``X``'s.
    parts : list of scipy.sparse.csr_matrix
        The month, user and movie matrices, in the order of their columns.
    blocks : list of str
        The block of every column, in order.
    """

    X: sparse.csr_matrix
    relations: list[tuple[np.ndarray, sparse.csr_matrix]]
    parts: list[sparse.csr_matrix]
    blocks: list[str]


def ids_design(user_idx: np.ndarray, item_idx: np.ndarray, n_users: int, n_items: int) -> Design:
    """Return the design of one-hot users and movies: one sparse row per rating, no relation block.

    The configuration without features, as myfm's own examples build it; its fitted numbers are
    the reference the benchmarks compare with, so it keeps this exact form.
    """
    n = len(user_idx)
    rows = np.repeat(np.arange(n), 2)
    cols = np.column_stack([user_idx, n_users + item_idx]).ravel()
    X = sparse.csr_matrix((np.ones(2 * n), (rows, cols)), shape=(n, n_users + n_items))
    no_months = sparse.csr_matrix((0, 0))
    parts = [no_months, sparse.identity(n_users, format="csr"), sparse.identity(n_items, format="csr")]
    return Design(X, [], parts, ["user"] * n_users + ["movie"] * n_items)


def feature_design(months: Part, period_idx: np.ndarray | None, user: Part, user_idx: np.ndarray,
                   item: Part, item_idx: np.ndarray) -> Design:
    """Return the design of the three parts: the month per rating, users and movies as relation blocks.

    ``period_idx`` is each rating's month (None without time features).
    """
    X = sparse.csr_matrix((len(user_idx), 0)) if period_idx is None else months.matrix[period_idx]
    relations = [(user_idx, user.matrix), (item_idx, item.matrix)]
    parts = [months.matrix, user.matrix, item.matrix]
    return Design(X, relations, parts, months.blocks + user.blocks + item.blocks)


def month_part(n_periods: int) -> Part:
    """Return the month part: one column per training month, a row per month."""
    return Part(sparse.identity(n_periods, format="csr"), ["month"] * n_periods)


def month_keys(frame: pd.DataFrame, name: str) -> np.ndarray:
    """Return each row's calendar month as ``12 * year + month - 1`` (UTC), from ``frame.timestamp``.

    ``timestamp`` holds Unix seconds (MovieLens) or datetimes. A missing time (NaN, NaT) gets
    `LATEST`, which `period_index` maps to the latest training month. Raises
    `DataValidationError` if the column is absent or holds something else.
    """
    if TIMESTAMP not in frame.columns:
        raise DataValidationError(
            f"{name} needs a {TIMESTAMP!r} column for time_features=True; it has {list(frame.columns)}"
        )
    values = frame[TIMESTAMP]
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        when = pd.DatetimeIndex(pd.to_datetime(values, utc=True))
    elif pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
        seconds = values.to_numpy(dtype=float)
        if np.isinf(seconds).any():
            raise DataValidationError(f"{name}.{TIMESTAMP} has infinite values")
        when = pd.DatetimeIndex(pd.to_datetime(seconds, unit="s", utc=True))
    else:
        raise DataValidationError(
            f"{name}.{TIMESTAMP} must hold Unix seconds or datetimes, got dtype {values.dtype}"
        )
    keys = 12 * when.year.to_numpy(dtype=float) + when.month.to_numpy(dtype=float) - 1
    missing = np.isnan(keys)
    out = np.nan_to_num(keys).astype(np.int64)
    out[missing] = LATEST
    return out


def period_index(keys: np.ndarray, periods: np.ndarray) -> np.ndarray:
    """Return the index in the sorted ``periods`` of each month key: its own, else the latest before it.

    A month before the first training month maps to the first.
    """
    return np.maximum(np.searchsorted(periods, keys, side="right") - 1, 0)


def grouping(names: list[str]) -> list[int]:
    """Return a prior group per column: one group per block name, numbered in order of appearance."""
    order = {name: g for g, name in enumerate(dict.fromkeys(names))}
    return [order[name] for name in names]
