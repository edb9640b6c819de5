"""EASE: the closed-form item-item model of Steck (2019), a strong top-N recommender in one matrix inverse."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from movierec._params import Int, Real, Seed, check_grid, check_value
from movierec._validation import USER, check_ratings
from movierec.base import ArrayRecommender, TuneResult
from movierec.exceptions import DataValidationError

__all__ = ["EASE"]

# Users per block when scoring pairs: one block's score matrix stays near 32 MB.
_BLOCK_CELLS = 4_000_000


class EASE(ArrayRecommender):
    """Embarrassingly Shallow Autoencoder: ``score(u, i) = sum_j X[u, j] B[j, i]``, with ``B`` in closed form.

    ``X`` is the binary user x movie matrix of fit (every rated movie is a positive, whatever the
    rating, as in the ranking protocol where every test movie is relevant). ``B`` minimizes
    ``||X - X B||^2 + l2 ||B||^2`` with a zero diagonal: with ``P = (X^T X + l2 I)^-1``,
    ``B = -P / diag(P)`` off the diagonal (Steck, "Embarrassingly Shallow Autoencoders for Sparse
    Data", WWW 2019).

    Cost grows with the number of movies squared: the Gram matrix and its inverse are
    ``n_movies x n_movies`` float64 (ml-100k: 1,682 movies, 23 MB; ml-25m: 59,047 movies, 28 GB
    each). Fit refuses catalogues over ``max_items``.

    Parameters
    ----------
    l2 : float, default 500.0
        The L2 penalty. Steck's choice for MovieLens-20M; on ml-100k u1 a validation split of the
        training data gives about the same (see :meth:`tune`). Larger catalogues and denser data
        want larger values.
    max_items : int, default 20000
        Largest catalogue fit accepts (20,000 movies: two 3.2 GB matrices).

    Attributes
    ----------
    B_ : ndarray of shape (n_movies, n_movies)
        The item-item weights, zero diagonal.
    """

    _parameter_constraints = {"l2": Real(0, None, open_low=True), "max_items": Int(1)}
    _array_shapes = {"B": ("items", "items")}

    def __init__(self, l2: float = 500.0, max_items: int = 20_000) -> None:
        self.l2 = l2
        self.max_items = max_items

    def _fit_indexed(self, user_idx, item_idx, ratings, frame: pd.DataFrame) -> None:
        n_items = len(self.items_)
        if n_items > self.max_items:
            raise DataValidationError(
                f"EASE needs two {n_items:,} x {n_items:,} matrices ({2 * n_items**2 * 8 / 1e9:.1f} GB) for "
                f"{n_items:,} movies, more than max_items={self.max_items:,}; raise max_items if memory allows"
            )
        X = self.seen_.astype(np.float64)
        gram = (X.T @ X).toarray()
        gram[np.diag_indices(n_items)] += float(self.l2)
        P = np.linalg.inv(gram)
        B = P / (-np.diag(P))
        B[np.diag_indices(n_items)] = 0.0
        self.B_ = B

    def _score_users(self, user_idx):
        return np.asarray(self.seen_[user_idx].astype(np.float64) @ self.B_)

    def _score_pairs(self, user_idx, item_idx):
        out = np.empty(len(user_idx))
        users, inverse = np.unique(user_idx, return_inverse=True)
        block = max(1, _BLOCK_CELLS // max(1, len(self.items_)))
        for start in range(0, len(users), block):
            scores = self._score_users(users[start : start + block])
            rows = (inverse >= start) & (inverse < start + block)
            out[rows] = scores[inverse[rows] - start, item_idx[rows]]
        return out

    def _get_arrays(self) -> dict[str, np.ndarray]:
        return {"B": self.B_}

    def _set_arrays(self, arrays: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        self.B_ = arrays["B"]

    def tune(
        self,
        ratings: pd.DataFrame,
        grid: Mapping[str, Sequence[float]] | None = None,
        *,
        metric: str = "ndcg@10",
        validation_size: float = 0.1,
        random_state: int | None = 0,
    ) -> TuneResult:
        """Choose ``l2`` on a validation split of ``ratings``, then fit on all of it; return the search.

        Each user's ratings are split with :func:`movierec.split.stratified_split`
        (``validation_size``, ``random_state``); every candidate is fitted on the rest and scored by
        ``metric`` on the held-out part (:func:`movierec.metrics.model_error`).

        Parameters
        ----------
        grid : mapping, optional
            ``{"l2": [...]}``; by default 8 values from 50 to 6400, doubling.
        """
        from movierec.metrics import model_error, parse_metric
        from movierec.split import stratified_split

        check_ratings(ratings)
        parse_metric(metric)
        owner = "EASE.tune"
        check_value(owner, "validation_size", validation_size, Real(0, 1, open_low=True, open_high=True))
        check_value(owner, "random_state", random_state, Seed())
        grid = {"l2": [50.0 * 2**i for i in range(8)]} if grid is None else grid
        values = check_grid(owner, grid, {"l2": self._parameter_constraints["l2"]})["l2"]
        train, valid = stratified_split(ratings, validation_size, random_state=random_state)
        valid = valid[valid[USER].isin(train[USER])]
        rows = []
        for value in values:
            candidate = type(self)(**{**self.get_params(), "l2": value}).fit(train)
            rows.append({"l2": value, metric: 1.0 - model_error(candidate, valid, metric)})
        results = pd.DataFrame(rows)
        best = int(results[metric].to_numpy().argmax())
        self.set_params(l2=values[best]).fit(ratings)
        return TuneResult({"l2": values[best]}, float(results[metric].iloc[best]), metric, results)
