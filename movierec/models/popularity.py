"""Popularity: every user gets the most-rated movies they have not seen, the reference a ranking model must beat."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy import sparse

from movierec._core.ids import resolve_users
from movierec._core.params import Bool, check_value
from movierec._core.ranking import first_unseen, joined_parts
from movierec._core.validation import check_n
from movierec.base import ArrayRecommender

__all__ = ["Popularity"]

# Users per block of top_n: the block's seen movies are read in popularity order.
_USER_BLOCK = 2048


class Popularity(ArrayRecommender):
    """Scores a movie by how many users rated it in fit, the same for every user.

    The simplest top-N list anyone would try, and the reference the main job prints: a model whose
    lists are not well above it is not worth acting on. Scores are counts, not ratings, so
    `rmse` means nothing for it. Ties break by movieId.

    Examples
    --------
    >>> from movierec import Popularity, official_folds
    >>> fold = official_folds("ml-100k", which=("u1",))[0]
    >>> Popularity().fit(fold.train).top_n(users=[1], n=3)  # doctest: +SKIP
    """

    _array_shapes: ClassVar[Mapping[str, tuple[int | str, ...]]] = {"item_count": ("items",)}

    def __init__(self) -> None:
        pass

    def _fit_indexed(self, user_idx, item_idx, ratings, frame: pd.DataFrame) -> None:
        self.item_count_ = np.bincount(item_idx, minlength=len(self.items_)).astype(np.float64)

    def _score_pairs(self, user_idx, item_idx):
        return self.item_count_[item_idx]

    def _score_users(self, user_idx):
        return np.broadcast_to(self.item_count_, (len(user_idx), len(self.item_count_)))

    def _get_arrays(self) -> dict[str, np.ndarray]:
        return {"item_count": self.item_count_}

    # -- a visitor's history (docs/architecture.md, section 3) ---------------------------------------
    def _score_history(self, item_idx: np.ndarray, ratings: np.ndarray | None) -> np.ndarray:
        """Return the rating counts: every visitor gets the same scores, the history only excludes its movies."""
        return self.item_count_.copy()

    def _history_contributions(
        self, item_idx: np.ndarray, ratings: np.ndarray | None, target_idx: np.ndarray
    ) -> np.ndarray:
        """Return zeros: no history movie changes any score."""
        return np.zeros((len(item_idx), len(target_idx)))

    def _similar_items(self, item: int) -> np.ndarray:
        raise NotImplementedError(
            "Popularity cannot find similar movies: it scores each movie by its rating count alone, the same "
            "for everyone, so nothing in it relates one movie to another"
        )

    def _set_arrays(self, arrays: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        self.item_count_ = arrays["item_count"]

    def top_n(
        self, users: Iterable[Any] | None = None, n: int = 5, *, exclude_seen: bool = True
    ) -> pd.DataFrame:
        """Return each user's ``n`` most-rated unseen movies, ties broken by movieId (see the base class).

        The same lists as scoring the whole catalogue for every user, without doing it: the movies
        are put in popularity order once, and each user takes the first ``n`` of them not rated.
        """
        self._check_fitted()
        n = check_n(n)
        exclude_seen = check_value(type(self).__name__, "exclude_seen", exclude_seen, Bool())
        user_idx = resolve_users(users, self.users_)
        order = np.lexsort((np.arange(len(self.item_count_)), -self.item_count_))
        parts = []
        for start in range(0, len(user_idx), _USER_BLOCK):
            chunk = user_idx[start : start + _USER_BLOCK]
            seen = self.seen_[chunk] if exclude_seen else sparse.csr_matrix((len(chunk), len(order)), dtype=bool)
            rows, cols = first_unseen(seen[:, order].tocsr(), n)
            items = order[cols]
            parts.append((chunk[rows], items, self.item_count_[items]))
        return self._top_n_frame(*joined_parts(parts))
