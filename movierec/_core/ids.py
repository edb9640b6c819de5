"""Raw ids to contiguous indices and back, the seen-items matrix, and which users a call asks for."""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from movierec._core.validation import ITEM, USER, plain
from movierec.exceptions import DataValidationError, MovieRecWarning

__all__ = ["IdIndex", "index_ratings", "rated_rows", "resolve_users", "sample_pairs"]


class IdIndex:
    """Maps raw ids (any hashable scalars) to contiguous indices ``0..n-1`` and back.

    Ids are sorted when they are mutually comparable, so index order is id order (ties in
    rankings then break by id); otherwise they keep their order of first appearance. Strings
    mixed with other ids (``1`` and ``"1"``) raise `DataValidationError`. Integer ids are
    stored as int64 whether they came as Python or numpy integers, so an index holds one id type.
    """

    def __init__(self, ids: Iterable[Any], *, sort: bool = True) -> None:
        values = pd.unique(pd.Series(list(ids) if not hasattr(ids, "__array__") else ids))
        values = np.asarray(values)
        if values.dtype == object and len({str in type(v).__mro__ for v in values}) > 1:
            # 1 and "1" would be two ids that look alike in every report and cannot be saved
            raise DataValidationError(f"ids mix strings and other types, e.g. {values[:5].tolist()}")
        if values.dtype == object and len(values) and all(_is_int(v) for v in values):
            # one type per index: Python ints and numpy ints in one object column become int64
            values = values.astype(np.int64)
        if sort:
            try:
                values = np.sort(values, kind="stable")
            except TypeError:
                pass
        self.ids: np.ndarray = values
        self._index = pd.Index(values)
        if not self._index.is_unique:
            raise DataValidationError("ids must be unique")

    def __len__(self) -> int:
        return len(self.ids)

    def lookup(self, values: Any) -> np.ndarray:
        """Return the index of each value, ``-1`` where the value is unknown."""
        return np.asarray(self._index.get_indexer(pd.Index(np.asarray(values))), dtype=np.int64)

    def to_array(self) -> np.ndarray:
        """Return the ids as a non-object array that ``np.savez`` stores without pickle."""
        if self.ids.dtype != object:
            return self.ids
        if all(isinstance(v, str) for v in self.ids):
            return self.ids.astype(str)
        if all(isinstance(v, (int, np.integer)) for v in self.ids):
            return self.ids.astype(np.int64)
        raise DataValidationError("ids must be all integers or all strings to be saved")

    @classmethod
    def from_array(cls, ids: np.ndarray) -> IdIndex:
        """Rebuild an index saved with `to_array`, keeping its order."""
        values = ids.astype(object) if ids.dtype.kind == "U" else ids
        return cls(values, sort=False)


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)) and -(2**63) <= value < 2**63


def sample_pairs(users: IdIndex, items: IdIndex, size: int, seed: Any) -> pd.DataFrame:
    """Return ``size`` (userId, movieId) pairs drawn uniformly with replacement, at most users x items."""
    rng = np.random.default_rng(seed)
    size = min(size, len(users) * len(items))
    return pd.DataFrame(
        {USER: users.ids[rng.integers(len(users), size=size)], ITEM: items.ids[rng.integers(len(items), size=size)]}
    )


def resolve_users(users: Iterable[Any] | None, index: IdIndex) -> np.ndarray:
    """Return the sorted indices of ``users`` known to ``index`` (all when None), warning once on unknowns."""
    if users is None:
        return np.arange(len(index))
    if isinstance(users, (str, bytes)) or not isinstance(users, Iterable):
        users = [users]
    wanted = pd.unique(pd.Series(list(users), dtype=object))
    idx = index.lookup(wanted)
    unknown = wanted[idx < 0]
    if len(unknown):
        warnings.warn(
            f"{len(unknown)} user(s) were not seen in fit and get no recommendations, "
            f"e.g. {[plain(value) for value in unknown[:5]]}",
            MovieRecWarning,
            stacklevel=3,
        )
    return np.sort(idx[idx >= 0])


def index_ratings(
    ratings: pd.DataFrame, user_ids: Any = None, item_ids: Any = None, *, sort_items: bool = True
) -> tuple[IdIndex, IdIndex, np.ndarray, np.ndarray, Any]:
    """Return ``(users, items, user_idx, item_idx, seen)`` for a validated ratings frame.

    ``users``/``items`` index ``user_ids``/``item_ids`` (the frame's own ids by default; pass more to
    cover ids with no rating), ``user_idx``/``item_idx`` are the rows' indices and ``seen`` is a
    boolean CSR matrix marking the rated (user, item) pairs.
    """
    from scipy import sparse  # imported here so that `import movierec` stays fast

    users = IdIndex(ratings[USER] if user_ids is None else user_ids)
    items = IdIndex(ratings[ITEM] if item_ids is None else item_ids, sort=sort_items)
    user_idx, item_idx = users.lookup(ratings[USER]), items.lookup(ratings[ITEM])
    data = np.ones(len(user_idx), dtype=bool)
    seen = sparse.csr_matrix((data, (user_idx, item_idx)), shape=(len(users), len(items)), dtype=bool)
    seen.sort_indices()
    return users, items, user_idx, item_idx, seen


def rated_rows(frame: pd.DataFrame, users: IdIndex, items: IdIndex, seen: Any) -> np.ndarray:
    """Return a boolean mask of ``frame``'s (user, movie) rows that ``seen`` marks as rated."""
    u, i = users.lookup(frame[USER].to_numpy()), items.lookup(frame[ITEM].to_numpy())
    known = (u >= 0) & (i >= 0)
    rated = np.zeros(len(frame), dtype=bool)
    rated[known] = np.asarray(seen[u[known], i[known]]).ravel()
    return rated
