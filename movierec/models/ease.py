"""EASE: the closed-form item-item model of Steck (2019), a strong top-N recommender in one matrix inverse."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy import sparse

from movierec._core.ids import index_ratings, resolve_users
from movierec._core.params import Bool, Constraint, Int, Real, Seed, check_grid, check_value
from movierec._core.ranking import first_unseen, joined_parts, top_k, user_block
from movierec._core.validation import USER, check_n, check_ratings
from movierec.base import ArrayRecommender, TuneResult
from movierec.exceptions import DataValidationError

__all__ = ["EASE"]

logger = logging.getLogger(__name__)

# Cells of one column block of the Gram matrix while it is built from sparse products (~120 MB).
_GRAM_BLOCK_CELLS = 10_000_000
# Most l2 values the default grid of tune tries when it goes on doubling past 6400.
_MAX_GRID = 12


class EASE(ArrayRecommender):
    """Embarrassingly Shallow Autoencoder: ``score(u, i) = sum_j X[u, j] B[j, i]``, with ``B`` in closed form.

    ``X`` is the binary user x movie matrix of fit (every rated movie is a positive, whatever the
    rating, as in the ranking protocol where every test movie is relevant). ``B`` minimizes
    ``||X - X B||^2 + l2 ||B||^2`` with a zero diagonal: with ``P = (X^T X + l2 I)^-1``,
    ``B = -P / diag(P)`` off the diagonal (Steck, "Embarrassingly Shallow Autoencoders for Sparse
    Data", WWW 2019).

    Cost grows with the number of movies squared: the Gram matrix ``X^T X`` and its inverse are
    dense ``n x n`` (ml-100k: 1,682 movies, 23 MB in float64; ml-25m: 59,047 movies, 28 GB each
    in float64), and the inversion takes ``n^3`` operations. So when the catalogue has more than
    ``max_items`` movies, ``B`` is fitted on the ``max_items`` most-rated ones only (ties broken by
    movie index, i.e. movieId order), and every other movie gets score 0 for every user: ``B`` is
    zero outside the kept block, which is what EASE's formula gives a movie with no weights, so
    such a movie neither receives a score nor adds to another's. ``kept_`` records which movies
    ``B_`` covers.

    Memory and time: fit holds one dense ``n_kept x n_kept`` matrix (the Gram matrix, built a
    block of columns at a time, Cholesky-inverted in place, then scaled into ``B_``) next to the
    sparse ratings; with ``n_kept`` at least `float32_items` it is float32. At 20,000 kept
    movies that matrix is 1.6 GB (3.2 GB in float64): on a 2-core machine, fit added 1.8 GB to the
    process's peak and took about 3 minutes (synthetic ratings over ml-25m's 59,046 movies); ``B_`` keeps
    the 1.6 GB. Scoring multiplies only the kept columns (``X[:, kept] @ B_``), in blocks of users,
    so its memory does not grow with the number of users; [`top_n`][movierec.EASE.top_n] also ranks only the kept
    columns (3.6 ms per user at 20,000 kept movies on that machine).

    Parameters
    ----------
    l2 : float, default 500.0
        The L2 penalty. Steck's choice for MovieLens-20M; on ml-100k u1 a validation split of the
        training data gives about the same (see [`tune`][movierec.EASE.tune]). Larger catalogues and denser data
        want larger values.
    max_items : int, default 20000
        Most movies ``B`` covers: a larger catalogue is fitted on its ``max_items`` most-rated
        movies (see above). Memory grows with its square and fit time with its cube: 20,000
        keeps fit near 2 GB and 3 minutes on 2 cores; raise it if memory and time allow.

    Attributes
    ----------
    B_ : ndarray of shape (n_kept, n_kept)
        The item-item weights among the kept movies, zero diagonal; float64, or float32 from
        `float32_items` kept movies.
    kept_ : ndarray of int64, shape (n_kept,)
        The item indices ``B_`` covers, ascending (all of them when the catalogue fits
        ``max_items``); their movie ids are ``items_.ids[kept_]``.
    float32_items : int
        Class attribute: from this many kept movies the Gram matrix, its inverse and ``B_`` are
        float32 (half the memory, about twice as fast); below it float64. Forced to float32 on
        ml-100k u1, EASE gives the same nDCG@10 and the same top-10 lists.
    """

    #: From this many kept movies, fit and B_ use float32 (ml-100k's 1,682 stay float64).
    float32_items: ClassVar[int] = 5_000
    _parameter_constraints: ClassVar[Mapping[str, Constraint]] = {"l2": Real(0, None, open_low=True), "max_items": Int(1)}
    _array_shapes: ClassVar[Mapping[str, tuple[int | str, ...]]] = {"B": ("kept", "kept")}

    def __init__(self, l2: float = 500.0, max_items: int = 20_000) -> None:
        self.l2 = l2
        self.max_items = max_items

    def _fit_indexed(self, user_idx, item_idx, ratings, frame: pd.DataFrame) -> None:
        kept = self._kept_items(item_idx)
        self._solve(self._gram_of(kept), kept)

    def _kept_items(self, item_idx: np.ndarray) -> np.ndarray:
        """Return the indices of the (at most ``max_items``) most-rated movies, ascending."""
        n_items = len(self.items_)
        if n_items <= self.max_items:
            return np.arange(n_items, dtype=np.int64)
        counts = np.bincount(item_idx, minlength=n_items)
        # most-rated first; a stable sort keeps ties in index (movieId) order
        return np.sort(np.argsort(-counts, kind="stable")[: self.max_items]).astype(np.int64)

    def _gram_of(self, kept: np.ndarray) -> np.ndarray:
        """Return the Gram matrix of the fitted ratings over the ``kept`` movies (float32 from ``float32_items``)."""
        dtype = np.float32 if len(kept) >= self.float32_items else np.float64
        return _gram((self.seen_ if len(kept) == len(self.items_) else self.seen_[:, kept]).astype(dtype).tocsc())

    def _solve(self, gram: np.ndarray, kept: np.ndarray) -> None:
        """Set ``B_`` from ``gram`` (overwritten) and ``l2``: the closed form of Steck (2019)."""
        gram[np.diag_indices_from(gram)] += float(self.l2)
        P = _inverse_in_place(gram)  # symmetric, C-contiguous, the Gram matrix's memory
        diagonal = np.diag(P).copy()
        P /= -diagonal  # B_ij = -P_ij / P_jj: scales each column
        P[np.diag_indices_from(P)] = 0.0
        self.B_, self.kept_ = P, kept

    def _score_users(self, user_idx):
        return self._score_rows(self.seen_[user_idx])

    def _score_rows(self, X: sparse.csr_matrix) -> np.ndarray:
        """Return ``X @ B`` over the whole catalogue for 0/1 rows ``X`` (zero outside ``kept_``)."""
        if len(self.kept_) == len(self.items_):
            return X.astype(self.B_.dtype) @ self.B_
        out = np.zeros((X.shape[0], len(self.items_)), dtype=self.B_.dtype)
        out[:, self.kept_] = X[:, self.kept_].astype(self.B_.dtype) @ self.B_
        return out

    # -- a visitor's history (docs/architecture.md, section 3) ---------------------------------------
    def _score_history(self, item_idx: np.ndarray, ratings: np.ndarray | None) -> np.ndarray:
        """Return ``x @ B`` for the history's 0/1 row ``x``: every history movie is a positive, as in fit.

        Ratings are not used (fit does not use them either). The row is built as a fitted user's row
        of ``seen_`` is, so a fitted user's own history scores exactly as [`top_n`][movierec.EASE.top_n] scores them.
        """
        return self._score_rows(self._history_row(item_idx))[0]

    def _history_row(self, item_idx: np.ndarray) -> sparse.csr_matrix:
        columns = np.unique(np.asarray(item_idx, dtype=np.int64))
        data = np.ones(len(columns), dtype=bool)
        return sparse.csr_matrix((data, columns, np.array([0, len(columns)])), shape=(1, len(self.items_)))

    def _history_contributions(
        self, item_idx: np.ndarray, ratings: np.ndarray | None, target_idx: np.ndarray
    ) -> np.ndarray:
        """Return ``x_j B[j, i]`` for each history movie ``j`` and target ``i``: exact, as the score is linear in ``x``.

        They sum to the target's score for the history minus its score for an empty one (0). Movies
        outside ``kept_`` have no weights, so they contribute and receive 0.
        """
        rows, in_rows = self._kept_positions(item_idx)
        cols, in_cols = self._kept_positions(target_idx)
        out = np.zeros((len(item_idx), len(target_idx)))
        out[np.ix_(in_rows, in_cols)] = self.B_[np.ix_(rows[in_rows], cols[in_cols])]
        return out

    def _similar_items(self, item: int) -> np.ndarray:
        """Return row ``item`` of ``B`` over the catalogue: what ``item`` in a history adds to each movie's score.

        ``B`` is not symmetric (``B_ij = -P_ij / P_jj``); its row, not its column, is the list a visitor
        who rated only ``item`` gets (``top_n_from_history([item])`` ranks the same movies in the same
        order), the "because you watched" reading. A movie outside ``kept_`` has no weights: all 0.
        """
        out = np.zeros(len(self.items_))
        (row,), (inside,) = self._kept_positions(np.array([item]))
        if inside:
            out[self.kept_] = self.B_[row]
        return out

    def _kept_positions(self, item_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return the position of each item index in ``kept_`` and whether it is there."""
        item_idx = np.asarray(item_idx, dtype=np.int64)
        positions = np.minimum(np.searchsorted(self.kept_, item_idx), len(self.kept_) - 1)
        return positions, self.kept_[positions] == item_idx

    def top_n(
        self, users: Iterable[Any] | None = None, n: int = 5, *, exclude_seen: bool = True
    ) -> pd.DataFrame:
        """Return the ``n`` highest-scored movies per user, ties broken by movieId (see the base class).

        Over ``max_items``, the same lists without scoring the movies outside ``kept_`` one by one:
        they all score 0, so the only ones that can make a list are each user's first ``n`` unseen
        ones in index order; they are merged with the kept movies' top ``n``. Ranking works on
        ``n_kept`` columns instead of the whole catalogue, in blocks of users.
        """
        self._check_fitted()
        if len(self.kept_) == len(self.items_):
            return super().top_n(users, n, exclude_seen=exclude_seen)
        n = check_n(n)
        exclude_seen = check_value(type(self).__name__, "exclude_seen", exclude_seen, Bool())
        user_idx = resolve_users(users, self.users_)
        others = np.setdiff1d(np.arange(len(self.items_)), self.kept_)
        block = user_block(len(self.kept_))
        parts = []
        for start in range(0, len(user_idx), block):
            chunk = user_idx[start : start + block]
            seen = self.seen_[chunk]
            seen_kept = seen[:, self.kept_]
            scores = np.array(self._finite(seen_kept.astype(self.B_.dtype) @ self.B_), dtype=np.float64)
            if exclude_seen:
                mask = seen_kept.tocoo()
                scores[mask.row, mask.col] = -np.inf
            rows, cols, values = top_k(scores, n)
            seen_others = seen[:, others] if exclude_seen else sparse.csr_matrix((len(chunk), len(others)), dtype=bool)
            zero_rows, zero_cols = first_unseen(seen_others, n)
            rows = np.concatenate([rows, zero_rows])
            cols = np.concatenate([self.kept_[cols], others[zero_cols]])
            values = np.concatenate([values, np.zeros(len(zero_rows))])
            order = np.lexsort((cols, -values, rows))
            rows, cols, values = rows[order], cols[order], values[order]
            keep = np.arange(len(rows)) - np.searchsorted(rows, rows, side="left") < n
            parts.append((chunk[rows[keep]], cols[keep], values[keep]))
        return self._top_n_frame(*joined_parts(parts))

    def _score_pairs(self, user_idx, item_idx):
        out = np.empty(len(user_idx))
        users, inverse = np.unique(user_idx, return_inverse=True)
        block = user_block(len(self.items_))
        for start in range(0, len(users), block):
            scores = self._score_users(users[start : start + block])
            rows = (inverse >= start) & (inverse < start + block)
            out[rows] = scores[inverse[rows] - start, item_idx[rows]]
        return out

    def _get_arrays(self) -> dict[str, np.ndarray]:
        return {"B": self.B_, "kept": self.kept_}

    def _set_arrays(self, arrays: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        B = arrays["B"]
        # files written before kept_ existed cover the whole catalogue
        kept = arrays.get("kept", np.arange(len(self.items_)))
        if kept.ndim != 1 or kept.dtype.kind not in "iu" or len(kept) != len(B):
            raise ValueError(f"kept must be {len(B)} integer item indices, got {kept.dtype} {kept.shape}")
        if len(kept) and (kept[0] < 0 or kept[-1] >= len(self.items_) or (np.diff(kept) <= 0).any()):
            raise ValueError(f"kept must be ascending item indices within 0..{len(self.items_) - 1}")
        self.B_, self.kept_ = np.ascontiguousarray(B), kept.astype(np.int64)

    def tune(
        self,
        ratings: pd.DataFrame,
        grid: Mapping[str, Sequence[float]] | None = None,
        *,
        metric: str = "ndcg@10",
        validation_size: float = 0.1,
        random_state: int | None = 0,
        max_users: int | None = 20_000,
        max_items: int | None = 5_000,
        refit: bool = True,
    ) -> TuneResult:
        """Choose ``l2`` on a validation split of ``ratings``, then fit on all of it; return the search.

        Each user's ratings are split with [`movierec.data.split.stratified_split`][movierec.data.split.stratified_split]
        (``validation_size``, ``random_state``); every candidate is fitted on the rest and scored by
        ``metric`` on the held-out part ([`movierec.metrics.model_error`][movierec.metrics.model_error]).

        Size-aware: on large data the candidates are compared on a smaller problem, since each costs
        an ``n^3`` inversion and a ranking of every validation user. The validation users are a
        sample of at most ``max_users`` ([`movierec.data.split.sample_users`][movierec.data.split.sample_users]), and the candidates keep
        at most ``max_items`` movies, the most-rated (as ``max_items`` of the model does). The chosen
        ``l2`` is then fitted with the model's own ``max_items`` on all of ``ratings``. Data with
        fewer users and movies than these (ml-100k, ml-1m) are searched exactly as given.

        Parameters
        ----------
        grid : mapping, optional
            ``{"l2": [...]}``; by default 8 values from 50 to 6400, doubling, and doubling on
            while the largest value tried is the best (up to 12 values: 102,400).
        max_users : int or None, default 20000
            Most validation users ranked per candidate; None ranks them all.
        max_items : int or None, default 5000
            Most movies a candidate keeps (never more than the model's ``max_items``); None keeps
            the model's.
        refit : bool, default True
            Fit the chosen ``l2`` on all of ``ratings``; False only sets it (for a caller that fits
            clones anyway, as the ensemble does).
        """
        from movierec.data.split import sample_users, stratified_split
        from movierec.metrics import model_error, parse_metric

        check_ratings(ratings)
        parse_metric(metric)
        owner = "EASE.tune"
        check_value(owner, "validation_size", validation_size, Real(0, 1, open_low=True, open_high=True))
        check_value(owner, "random_state", random_state, Seed())
        check_value(owner, "max_users", max_users, Int(1, none=True))
        check_value(owner, "max_items", max_items, Int(1, none=True))
        check_value(owner, "refit", refit, Bool())
        self._validate_params()
        default_grid = grid is None
        grid = {"l2": [50.0 * 2**i for i in range(8)]} if grid is None else grid
        values = check_grid(owner, grid, {"l2": self._parameter_constraints["l2"]})["l2"]
        train, valid = stratified_split(ratings, validation_size, random_state=random_state)
        valid = valid[valid[USER].isin(train[USER])]
        if valid.empty:
            raise DataValidationError(f"{owner}: no user has two or more ratings, so the validation split is "
                                      "empty; tune needs users with at least two ratings")
        valid = sample_users(valid, max_users, random_state)
        kept = self.max_items if max_items is None else min(self.max_items, max_items)
        candidate = type(self)(**{**self.get_params(), "max_items": kept})
        # indexed as fit does; l2 only changes the Gram matrix's diagonal, so it is built once
        candidate.users_, candidate.items_, _, item_idx, candidate.seen_ = index_ratings(train)
        kept = candidate._kept_items(item_idx)
        gram = candidate._gram_of(kept)
        rows = []
        values = list(values)
        for value in values:
            start = time.perf_counter()
            candidate.l2 = value
            candidate._solve(gram.copy(), kept)
            rows.append({"l2": value, metric: 1.0 - model_error(candidate, valid, metric)})
            # each candidate costs an inversion and a ranking (seconds on ml-100k): the log shows the search move
            logger.info("EASE.tune: l2 %g, validation %s %.4f (%d of %d, %.1f s)", value, metric, rows[-1][metric],
                        len(rows), len(values), time.perf_counter() - start)
            best_is_last = max(rows, key=lambda row: row[metric]) is rows[-1]
            if default_grid and value == values[-1] and best_is_last and len(values) < _MAX_GRID:
                values.append(2.0 * value)  # the best l2 grows with the data: go on doubling past the grid
        results = pd.DataFrame(rows)
        best = int(results[metric].to_numpy().argmax())
        self.set_params(l2=values[best])
        if refit:
            self.fit(ratings)
        return TuneResult({"l2": values[best]}, float(results[metric].iloc[best]), metric, results)


def _gram(X: sparse.csc_matrix) -> np.ndarray:
    """Return ``X^T X`` as a dense Fortran-ordered array of X's dtype, built a block of columns at a time.

    ``(X.T @ X).toarray()`` would hold the sparse product (up to ``n^2`` entries of value and
    index) next to the dense copy; here only one block of columns is sparse at a time.
    """
    n = X.shape[1]
    gram = np.zeros((n, n), dtype=X.dtype, order="F")
    rows = X.T.tocsr()
    width = max(1, _GRAM_BLOCK_CELLS // max(1, n))
    for start in range(0, n, width):
        stop = min(n, start + width)
        (rows @ X[:, start:stop]).toarray(out=gram[:, start:stop])
    return gram


def _inverse_in_place(matrix: np.ndarray) -> np.ndarray:
    """Return the inverse of the symmetric positive definite Fortran-ordered ``matrix``, in its memory.

    Cholesky (LAPACK ``potrf`` then ``potri``, half the work of ``np.linalg.inv``'s LU) overwrites
    ``matrix``; ``np.linalg.inv`` would need two more ``n x n`` arrays. The result is symmetric,
    returned as a C-ordered view so that sparse products read its rows contiguously.
    """
    from scipy.linalg import lapack

    potrf, potri = lapack.get_lapack_funcs(("potrf", "potri"), (matrix,))
    factor, info = potrf(matrix, lower=False, overwrite_a=True, clean=False)
    if info == 0:
        inverse, info = potri(factor, lower=False, overwrite_c=True)
    if info != 0:
        raise np.linalg.LinAlgError(f"the regularized Gram matrix could not be inverted (LAPACK info {info})")
    # potri fills the upper triangle: mirror it into the lower one, a block of columns at a time
    n = len(inverse)
    width = max(1, _GRAM_BLOCK_CELLS // max(1, n))
    for start in range(0, n, width):
        stop = min(n, start + width)
        block = inverse[start:stop, start:stop]
        lower = np.tril_indices(stop - start, -1)
        block[lower] = block.T[lower]
        inverse[stop:, start:stop] = inverse[start:stop, stop:].T
    return inverse.T
