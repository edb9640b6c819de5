"""Boundary checks of data: ratings and pairs frames, and the arguments of methods (``n``, ``k``).

Every check raises a `DataValidationError` whose message names the column and shows one bad
row (or names the argument and the value), and none of them modifies or drops the caller's data.
Hyperparameters (constructor arguments, tune options) are checked by `movierec._core.params`.

Rating scales: a frame may declare its scale in ``frame.attrs["rating_scale"]`` (the MovieLens
loaders do, see `declare_scale`); pandas keeps ``attrs`` through slicing, splits and copies.
`check_ratings` then refuses ratings outside it, so one stray 6 in a 1-5 frame is an error,
not a wider scale. A frame without a declared scale is on its own range by definition.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import numpy as np
import pandas as pd

from movierec.exceptions import DataValidationError

USER, ITEM, RATING, TIMESTAMP = "userId", "movieId", "rating", "timestamp"
RATINGS_COLUMNS = (USER, ITEM, RATING, TIMESTAMP)
#: the key of ``DataFrame.attrs`` under which a ratings frame declares its (lowest, highest) rating
SCALE_ATTR = "rating_scale"
# Frames checked by a fit that is still running, or rows of one: id -> (frame, its shape and columns).
_TRUSTED: ContextVar[Mapping[int, tuple[pd.DataFrame, tuple]] | None] = ContextVar("movierec_checked_frames", default=None)


def _example(frame: pd.DataFrame, mask: np.ndarray | pd.Series) -> str:
    mask = np.asarray(mask, dtype=bool)
    count = int(mask.sum())
    position = int(np.flatnonzero(mask)[0])
    label = plain(frame.index[position])
    row = {column: plain(frame[column].iloc[position]) for column in frame.columns}  # each column's own type
    return f"{count} row(s), e.g. row {label!r}: {row}"


def plain(value: object) -> object:
    """Return a numpy scalar as the Python value it holds, so messages read 11, not np.int64(11)."""
    return value.item() if isinstance(value, np.generic) else value


def _check_frame(frame: Any, name: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise DataValidationError(f"{name} must be a pandas DataFrame, got {type(frame).__name__}")
    if frame.empty:
        raise DataValidationError(f"{name} is empty: it needs at least one row")


def _check_ids(frame: pd.DataFrame, column: str, name: str) -> None:
    values = frame[column]
    if values.isna().any():
        raise DataValidationError(f"{name}.{column} has missing ids in {_example(frame, values.isna())}")
    dtype = values.dtype
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_float_dtype(dtype):
        raise DataValidationError(
            f"{name}.{column} must hold integer or string ids, got dtype {dtype} "
            f"in {_example(frame, np.ones(len(frame), dtype=bool))}"
        )
    if pd.api.types.is_integer_dtype(dtype) or (pd.api.types.is_string_dtype(dtype) and dtype != object):
        return
    if not isinstance(dtype, np.dtype) or dtype != object:  # categorical, datetime, interval...
        raise DataValidationError(
            f"{name}.{column} must hold integer or string ids, got dtype {dtype} "
            f"in {_example(frame, np.ones(len(frame), dtype=bool))}"
        )
    kinds = np.array([_id_kind(v) for v in values.to_numpy()], dtype=object)
    bad = kinds == ""
    if bad.any():
        raise DataValidationError(
            f"{name}.{column} must hold integer or string ids; bad values in {_example(frame, bad)}"
        )
    # 1 and "1" would index as two users that no lookup can tell apart, and fail only at save
    if (kinds != kinds[0]).any():
        raise DataValidationError(
            f"{name}.{column} mixes integer and string ids (one type per column); "
            f"first is a {kinds[0]}, then {_example(frame, kinds != kinds[0])}"
        )


def _id_kind(value: Any) -> str:
    """Return "int" or "str" for a valid id, "" for anything else (bools and floats included)."""
    if isinstance(value, (bool, np.bool_)):
        return ""
    if isinstance(value, numbers.Integral):
        return "int"
    return "str" if isinstance(value, str) else ""


def _check_numeric(frame: pd.DataFrame, column: str, name: str) -> None:
    values = frame[column]
    if pd.api.types.is_bool_dtype(values.dtype) or not pd.api.types.is_numeric_dtype(values.dtype):
        raise DataValidationError(
            f"{name}.{column} must be numeric, got dtype {values.dtype} "
            f"in {_example(frame, np.ones(len(frame), dtype=bool))}"
        )
    bad = ~np.isfinite(values.to_numpy(dtype=float))
    if bad.any():
        raise DataValidationError(f"{name}.{column} has NaN or infinite values in {_example(frame, bad)}")


def _shape_of(frame: pd.DataFrame) -> tuple:
    return frame.shape, tuple(frame.columns), tuple(str(t) for t in frame.dtypes)


@contextmanager
def trusted_ratings(*frames: pd.DataFrame) -> Iterator[None]:
    """Let `check_ratings` pass ``frames`` unchecked inside the block: they were checked already.

    For a fit that checked its ratings and hands them, or rows of them, to inner fits (an ensemble's
    members, its hold-out split): one check per public fit, not one per inner fit (a check takes
    seconds at 10M ratings). The trust is the block's, not the frame's: nothing a caller puts in a
    frame (``attrs``, a subclass) earns it, it ends with the block, and a frame whose shape, columns
    or dtypes changed since is checked again. Empty frames are never trusted (their error stays).
    """
    trusted = dict(_TRUSTED.get() or {})
    trusted.update({id(f): (f, _shape_of(f)) for f in frames if isinstance(f, pd.DataFrame) and len(f)})
    token = _TRUSTED.set(trusted)
    try:
        yield
    finally:
        _TRUSTED.reset(token)


def _is_trusted(frame: Any) -> bool:
    entry = (_TRUSTED.get() or {}).get(id(frame))
    return entry is not None and entry[0] is frame and entry[1] == _shape_of(frame)


def check_ratings(
    ratings: Any, *, name: str = "ratings", rating_scale: tuple[float, float] | None = None
) -> pd.DataFrame:
    """Return ``ratings`` unchanged after checking it is a valid ratings frame.

    Columns must be ``userId, movieId, rating`` and optionally ``timestamp``; ids all integers or
    all strings in each column; ratings finite numbers, within ``rating_scale`` (default: the
    scale the frame declares in ``attrs``, else any); no duplicate (userId, movieId) pair; at
    least one row. A frame a running fit already checked (`trusted_ratings`) is only
    checked against ``rating_scale``, when one is given.
    """
    if _is_trusted(ratings):
        if rating_scale is not None:
            check_scale(ratings, rating_scale, name=name)
        return ratings
    return _validate_ratings(ratings, name, rating_scale)


def _validate_ratings(ratings: Any, name: str, rating_scale: tuple[float, float] | None) -> pd.DataFrame:
    """Check every row of ``ratings`` (`check_ratings` without the trust of a running fit)."""
    _check_frame(ratings, name)
    missing = [c for c in (USER, ITEM, RATING) if c not in ratings.columns]
    if missing:
        raise DataValidationError(
            f"{name} is missing column(s) {missing}; it has {list(ratings.columns)} "
            f"(expected {list(RATINGS_COLUMNS[:3])} and optionally 'timestamp')"
        )
    extra = [c for c in ratings.columns if c not in RATINGS_COLUMNS]
    if extra:
        raise DataValidationError(
            f"{name} has unexpected column(s) {extra}; allowed are {list(RATINGS_COLUMNS)}"
        )
    _check_ids(ratings, USER, name)
    _check_ids(ratings, ITEM, name)
    _check_numeric(ratings, RATING, name)
    check_scale(ratings, rating_scale, name=name)
    if TIMESTAMP in ratings.columns and ratings[TIMESTAMP].isna().any():
        raise DataValidationError(
            f"{name}.{TIMESTAMP} has missing values in {_example(ratings, ratings[TIMESTAMP].isna())}"
        )
    dup = ratings.duplicated([USER, ITEM], keep="first")
    if dup.any():
        raise DataValidationError(f"{name} has duplicate (userId, movieId) pairs in {_example(ratings, dup)}")
    return ratings


def declared_scale(ratings: pd.DataFrame) -> tuple[float, float] | None:
    """Return the (lowest, highest) rating ``ratings`` declares in its ``attrs``, or None."""
    scale = ratings.attrs.get(SCALE_ATTR)
    if scale is None:
        return None
    if not _is_scale(scale):
        raise DataValidationError(
            f"ratings.attrs[{SCALE_ATTR!r}] must be a (lowest, highest) pair of finite numbers "
            f"with lowest < highest, got {scale!r}"
        )
    return float(scale[0]), float(scale[1])


def declare_scale(ratings: pd.DataFrame, rating_scale: tuple[float, float]) -> pd.DataFrame:
    """Return ``ratings`` after recording ``rating_scale`` in its ``attrs`` (in place) and checking it."""
    if not _is_scale(rating_scale):
        raise DataValidationError(
            f"rating_scale must be a (lowest, highest) pair of finite numbers with lowest < highest, "
            f"got {rating_scale!r}"
        )
    ratings.attrs[SCALE_ATTR] = (float(rating_scale[0]), float(rating_scale[1]))
    check_scale(ratings)
    return ratings


def check_scale(
    ratings: pd.DataFrame, rating_scale: tuple[float, float] | None = None, *, name: str = "ratings"
) -> tuple[float, float] | None:
    """Return the scale ``ratings`` must lie on (``rating_scale``, else the declared one, else None).

    Raises `DataValidationError` showing an example row when a rating lies outside it.
    """
    scale = declared_scale(ratings) if rating_scale is None else rating_scale
    if scale is None:
        return None
    low, high = float(scale[0]), float(scale[1])
    values = ratings[RATING].to_numpy(dtype=float)
    outside = (values < low) | (values > high)
    if outside.any():
        where = "rating_scale" if rating_scale is not None else f"the frame's declared attrs[{SCALE_ATTR!r}]"
        raise DataValidationError(
            f"{name}.{RATING} has values outside {where} ({low:g}, {high:g}) in {_example(ratings, outside)}"
        )
    return low, high


def _is_scale(value: Any) -> bool:
    def finite(v: Any) -> bool:
        return isinstance(v, numbers.Real) and not isinstance(v, bool) and bool(np.isfinite(v))

    return isinstance(value, (tuple, list)) and len(value) == 2 and all(map(finite, value)) and value[0] < value[1]


def check_pairs(pairs: Any, *, name: str = "pairs") -> pd.DataFrame:
    """Return ``pairs`` unchanged after checking it has valid ``userId`` and ``movieId`` columns.

    Other columns (a ``rating`` to compare against, say) are allowed and ignored.
    """
    _check_frame(pairs, name)
    missing = [c for c in (USER, ITEM) if c not in pairs.columns]
    if missing:
        raise DataValidationError(
            f"{name} is missing column(s) {missing}; it has {list(pairs.columns)}"
        )
    _check_ids(pairs, USER, name)
    _check_ids(pairs, ITEM, name)
    return pairs


def check_n(n: Any, name: str = "n") -> int:
    """Return ``n`` after checking it is a positive int."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n <= 0:
        raise DataValidationError(f"{name} must be a positive int, got {n!r}")
    return int(n)


def check_fraction(value: Any, name: str) -> float:
    """Return ``value`` after checking it lies strictly between 0 and 1."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < value < 1:
        raise DataValidationError(f"{name} must be a float strictly between 0 and 1, got {value!r}")
    return float(value)


def check_choice(value: Any, name: str, choices: Iterable[Any]) -> Any:
    """Return ``value`` after checking it is one of ``choices``."""
    choices = tuple(choices)
    if value not in choices:
        raise DataValidationError(f"{name} must be one of {choices}, got {value!r}")
    return value
