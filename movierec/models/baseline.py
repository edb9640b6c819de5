"""BiasedBaseline: global mean plus damped user and movie biases, in numpy."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from movierec._core.params import Constraint, Int, Real
from movierec.base import ArrayRecommender

__all__ = ["BiasedBaseline"]

_NON_NEGATIVE = Real(0)


@dataclass(frozen=True)
class _Dampings(Constraint):
    """A float >= 0 for both dampings, or a (users, movies) pair of them.

    A list passes as well as a tuple: a saved model's params.json gives the pair back as a list.
    """

    def accepts(self, value: Any) -> bool:
        if isinstance(value, (tuple, list)):
            return len(value) == 2 and all(_NON_NEGATIVE.accepts(v) for v in value)
        return _NON_NEGATIVE.accepts(value)

    def convert(self, value: Any) -> tuple[float, float]:
        if isinstance(value, (tuple, list)):
            return float(value[0]), float(value[1])
        return float(value), float(value)

    def describe(self) -> str:
        return "a float >= 0 or a (users, movies) pair of them"


class BiasedBaseline(ArrayRecommender):
    """Predicts ``mu + b_u + b_i``: the reference model every other model should beat.

    The biases minimise the squared error with L2 penalties (the damping) by alternating least
    squares, as Surprise's ``BaselineOnly`` with ``method="als"`` does.

    Parameters
    ----------
    damping : float or (float, float), default (15.0, 10.0)
        Penalty on user biases and on movie biases (one float sets both). Larger values pull the
        biases of users and movies with few ratings towards 0. The default matches Surprise's
        ``reg_u=15, reg_i=10``.
    n_iter : int, default 10
        Alternating sweeps (user biases, then movie biases).

    Raises
    ------
    InvalidParameterError
        From ``fit``, which checks both parameters first, naming a bad one.

    Attributes
    ----------
    global_mean_ : float
    user_bias_, item_bias_ : ndarray
        Biases by internal index; ``users_`` and ``items_`` map raw ids to those indices.

    Examples
    --------
    >>> from movierec import BiasedBaseline, official_folds
    >>> fold = official_folds("ml-100k", which=("u1",))[0]
    >>> BiasedBaseline().fit(fold.train).rmse(fold.test)  # doctest: +SKIP
    0.9595
    """

    _array_shapes: ClassVar[Mapping[str, tuple[int | str, ...]]] = {"user_bias": ("users",), "item_bias": ("items",)}
    _parameter_constraints: ClassVar[Mapping[str, Constraint]] = {"damping": _Dampings(), "n_iter": Int(1)}

    def __init__(self, damping: float | tuple[float, float] = (15.0, 10.0), n_iter: int = 10) -> None:
        self.damping = damping
        self.n_iter = n_iter

    def _fit_indexed(self, user_idx, item_idx, ratings, frame: pd.DataFrame) -> None:
        # fit has checked the parameters; convert only turns them into plain floats.
        user_damping, item_damping = self._parameter_constraints["damping"].convert(self.damping)
        n_iter = int(self.n_iter)
        n_users, n_items = len(self.users_), len(self.items_)
        mu = float(ratings.mean())
        user_count = np.bincount(user_idx, minlength=n_users)
        item_count = np.bincount(item_idx, minlength=n_items)
        user_bias, item_bias = np.zeros(n_users), np.zeros(n_items)
        for _ in range(n_iter):
            residual = ratings - mu - item_bias[item_idx]
            user_bias = np.bincount(user_idx, residual, n_users) / (user_count + user_damping)
            residual = ratings - mu - user_bias[user_idx]
            item_bias = np.bincount(item_idx, residual, n_items) / (item_count + item_damping)
        self.global_mean_, self.user_bias_, self.item_bias_ = mu, user_bias, item_bias

    def _score_pairs(self, user_idx, item_idx):
        return self.global_mean_ + self.user_bias_[user_idx] + self.item_bias_[item_idx]

    def _score_users(self, user_idx):
        return self.global_mean_ + self.user_bias_[user_idx][:, None] + self.item_bias_[None, :]

    def _get_arrays(self) -> dict[str, np.ndarray]:
        return {"user_bias": self.user_bias_, "item_bias": self.item_bias_}

    # -- a visitor's history (docs/architecture.md, section 3) ---------------------------------------
    def _score_history(self, item_idx: np.ndarray, ratings: np.ndarray | None) -> np.ndarray:
        """Return ``mu + b_v + b_i``: the movie biases, plus the visitor's bias folded in from the history.

        ``b_v`` is one step of the user sweep of fit with the movie biases fixed:
        ``sum_j (r_j - mu - b_j) / (n + user damping)``; without ratings each movie counts as liked
        (`_history_ratings`). It shifts every movie alike, so the list ranks by movie bias; it
        makes the scores read as `predict` reads them.
        """
        user_damping, _ = self._parameter_constraints["damping"].convert(self.damping)
        residual = self._history_ratings(ratings, len(item_idx)) - self.global_mean_ - self.item_bias_[item_idx]
        visitor_bias = float(residual.sum()) / (len(item_idx) + user_damping) if len(item_idx) else 0.0
        return self.global_mean_ + visitor_bias + self.item_bias_

    def _similar_items(self, item: int) -> np.ndarray:
        raise NotImplementedError(
            "BiasedBaseline cannot find similar movies: it learns one bias per movie and no item factors or "
            "item-item weights, so nothing in it relates one movie to another"
        )

    def _get_extra(self) -> dict[str, Any]:
        return {"global_mean": self.global_mean_}

    def _set_arrays(self, arrays, extra) -> None:
        self.user_bias_, self.item_bias_ = arrays["user_bias"], arrays["item_bias"]
        self.global_mean_ = float(extra["global_mean"])
