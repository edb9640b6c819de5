"""Popularity: every user gets the most-rated movies they have not seen, the reference a ranking model must beat."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from movierec.base import ArrayRecommender

__all__ = ["Popularity"]


class Popularity(ArrayRecommender):
    """Scores a movie by how many users rated it in fit, the same for every user.

    The simplest top-N list anyone would try, and the reference the main job prints: a model whose
    lists are not well above it is not worth acting on. Scores are counts, not ratings, so
    :meth:`rmse` means nothing for it. Ties break by movieId.

    Examples
    --------
    >>> from movierec import Popularity, official_folds
    >>> fold = official_folds("ml-100k", which=("u1",))[0]
    >>> Popularity().fit(fold.train).top_n(users=[1], n=3)  # doctest: +SKIP
    """

    _array_shapes = {"item_count": ("items",)}

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

    def _set_arrays(self, arrays: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        self.item_count_ = arrays["item_count"]
