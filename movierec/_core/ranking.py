"""Top-k selection and ranked frames: how every model orders and ties its recommendations.

Ties break by item index (movieId order for models that sort ids), see docs/architecture.md.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from movierec._core.validation import ITEM, USER

__all__ = [
    "BLOCK_CELLS",
    "TOP_N_COLUMNS",
    "empty_top_n",
    "first_unseen",
    "joined_parts",
    "rank_frame",
    "top_k",
    "top_n_frame",
    "user_block",
]

TOP_N_COLUMNS = [USER, ITEM, "score", "rank"]
#: Cells (users x movies) of one block of scores: a 32 MB float64 matrix. Whatever scores every movie
#: for many users (top_n, the ensemble, batch scoring on Spark) takes its users in blocks this size.
BLOCK_CELLS = 4_000_000


def user_block(n_items: int) -> int:
    """Return how many users to score at once against ``n_items`` movies: at least one."""
    return max(1, BLOCK_CELLS // max(1, n_items))


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (row, column, score) of the ``k`` highest finite scores of each row.

    Vectorized with ``np.partition``; ordered by row, then descending score, then column (so
    ties break by column). Rows with fewer finite scores give fewer entries.
    """
    scores = np.where(np.isnan(scores), -np.inf, scores)
    n_cols = scores.shape[1]
    k = min(k, n_cols)
    if k < n_cols:
        kth = np.partition(scores, n_cols - k, axis=1)[:, n_cols - k]
        mask = scores >= kth[:, None]
    else:
        mask = np.ones_like(scores, dtype=bool)
    mask &= np.isfinite(scores)
    rows, cols = np.nonzero(mask)
    values = scores[rows, cols]
    order = np.lexsort((cols, -values, rows))
    rows, cols, values = rows[order], cols[order], values[order]
    rank = np.arange(len(rows)) - np.searchsorted(rows, rows, side="left")
    keep = rank < k
    return rows[keep], cols[keep], values[keep]


def rank_frame(frame: pd.DataFrame, n: int) -> pd.DataFrame:
    """Return the top ``n`` rows per user of a (userId, movieId, score) frame, with ``rank``.

    Sorted by userId, then descending score, ties broken by movieId.
    """
    ordered = frame.sort_values([USER, "score", ITEM], ascending=[True, False, True], kind="stable")
    rank = ordered.groupby(USER, sort=False).cumcount() + 1
    result = ordered.assign(rank=rank.to_numpy())
    result = result[result["rank"] <= n]
    return result[TOP_N_COLUMNS].reset_index(drop=True)


def top_n_frame(user_ids: np.ndarray, item_ids: np.ndarray, u: np.ndarray, i: np.ndarray, s: np.ndarray) -> pd.DataFrame:
    """Return the top-N frame of (user index, item index, score) triples grouped by user in order.

    ``user_ids`` and ``item_ids`` map indices to raw ids; ranks count from 1 within each user.
    """
    rank = np.arange(len(u)) - np.searchsorted(u, u, side="left") + 1
    frame = pd.DataFrame({USER: user_ids[u], ITEM: item_ids[i], "score": s, "rank": rank})
    return frame.astype({"rank": np.int64})


def empty_top_n() -> pd.DataFrame:
    """Return a top-N frame with no rows."""
    return pd.DataFrame({c: pd.Series(dtype=float if c == "score" else object) for c in TOP_N_COLUMNS})


def first_unseen(seen: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (row, column) of each row's first ``n`` columns not set in ``seen``, by row then column."""
    # only the first n + (most seen in a row) columns can hold a row's first n unseen ones
    width = min(seen.shape[1], n + int(np.diff(seen.indptr).max(initial=0)))
    free = ~seen[:, :width].toarray()
    rows, cols = np.nonzero(free & (np.cumsum(free, axis=1) <= n))
    return rows, cols


def joined_parts(parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the (user index, item index, score) blocks of a top-N, concatenated (empty when none)."""
    if not parts:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0)
    u, i, s = (np.concatenate(p) for p in zip(*parts))
    return u, i, s
