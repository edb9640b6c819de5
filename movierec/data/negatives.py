"""Sampled negatives: movies a user did not rate, drawn to train a model on seen against unseen.

A ranking model trained on ratings alone never sees what users skip. Implicit-feedback training
(Rendle's BPR, the FM ``binary_classifier`` on sampled negatives) pairs each user's positives with
movies they did not rate, drawn uniformly from the catalogue, and learns to tell them apart.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from movierec._core.params import Real, Seed, check_value
from movierec._core.validation import ITEM, RATING, USER
from movierec.exceptions import DataValidationError

__all__ = ["sample_negatives"]

_REJECTION_ROUNDS = 20  # each round draws 1.5x the shortfall; users left short then draw exactly


def sample_negatives(
    ratings: pd.DataFrame,
    *,
    per_positive: float = 1.0,
    positive_rating: float | None = None,
    random_state: int | None = None,
) -> pd.DataFrame:
    """Return (userId, movieId) pairs of movies each user did not rate, ``per_positive`` per positive.

    A user with ``p`` positives gets ``min(round(p * per_positive), unseen)`` negatives, where
    ``unseen`` is how many movies of the catalogue (every movie in ``ratings``) they did not rate.
    Negatives are uniform over the user's unseen movies, never a rated pair, never the same pair
    twice.

    Parameters
    ----------
    ratings : pandas.DataFrame
        Columns userId, movieId (and rating when ``positive_rating`` is set); one row per rated pair.
    per_positive : float, default 1.0
        Negatives per positive, > 0.
    positive_rating : float or None, default None
        Positives are the ratings ``>=`` it; None: every rated pair is a positive (implicit feedback).
        Negatives are drawn among unrated movies either way: a low rating is not a negative here.
    random_state : int or None
        Seeds the draw; the same seed on the same ratings gives the same pairs.

    Returns
    -------
    pandas.DataFrame
        Columns userId, movieId, sorted by user then movie, ids as in ``ratings``.

    Raises
    ------
    InvalidParameterError
        A bad ``per_positive``, ``positive_rating`` or ``random_state``.
    DataValidationError
        ``ratings`` lacks a needed column.

    Examples
    --------
    >>> import pandas as pd
    >>> ratings = pd.DataFrame({"userId": [1, 1, 2], "movieId": [10, 20, 10], "rating": [5.0, 2.0, 4.0]})
    >>> sample_negatives(ratings, random_state=0)
       userId  movieId
    0       2       20
    """
    per_positive = check_value("sample_negatives", "per_positive", per_positive, Real(0, open_low=True))
    positive_rating = check_value("sample_negatives", "positive_rating", positive_rating, Real(none=True))
    random_state = check_value("sample_negatives", "random_state", random_state, Seed())
    needed = [USER, ITEM] + ([] if positive_rating is None else [RATING])
    if not isinstance(ratings, pd.DataFrame) or set(needed) - set(ratings.columns):
        have = list(ratings.columns) if isinstance(ratings, pd.DataFrame) else type(ratings).__name__
        raise DataValidationError(f"sample_negatives needs a DataFrame with columns {needed}, got {have}")
    users, user_idx = np.unique(ratings[USER].to_numpy(), return_inverse=True)
    items, item_idx = np.unique(ratings[ITEM].to_numpy(), return_inverse=True)
    positive = None if positive_rating is None else ratings[RATING].to_numpy(dtype=np.float64) >= positive_rating
    rated = np.bincount(user_idx, minlength=len(users))
    positives = rated if positive is None else np.bincount(user_idx[positive], minlength=len(users))
    want = np.minimum(np.rint(positives * per_positive).astype(np.int64), len(items) - rated)
    got_u, got_i = _draw_unrated(user_idx, item_idx, want, len(items), np.random.default_rng(random_state))
    return pd.DataFrame({USER: users[got_u], ITEM: items[got_i]})


def _draw_unrated(
    user_idx: np.ndarray, item_idx: np.ndarray, want: np.ndarray, n_items: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Return (user, item) indices: ``want[u]`` distinct unrated items per user, sorted.

    Vectorized rejection: draw, drop rated and repeated pairs, draw again for the shortfall.
    """
    n_users = len(want)
    seen_codes = np.unique(user_idx.astype(np.int64) * n_items + item_idx)
    got_u, got_i = np.zeros(0, np.int64), np.zeros(0, np.int64)
    need = want.copy()
    for _ in range(_REJECTION_ROUNDS):
        active = np.flatnonzero(need > 0)
        if len(active) == 0:
            break
        u = np.repeat(active, np.ceil(need[active] * 1.5).astype(np.int64) + 1)
        i = rng.integers(0, n_items, len(u))
        fresh = ~np.isin(u * n_items + i, seen_codes)
        u, i = np.concatenate([got_u, u[fresh]]), np.concatenate([got_i, i[fresh]])
        _, first = np.unique(u * n_items + i, return_index=True)
        keep = np.sort(first)  # first occurrences, in draw order, so earlier draws are kept
        u, i = u[keep], i[keep]
        order = np.argsort(u, kind="stable")
        u, i = u[order], i[order]
        position = np.arange(len(u)) - np.searchsorted(u, u, side="left")
        inside = position < want[u]
        got_u, got_i = u[inside], i[inside]
        need = want - np.bincount(got_u, minlength=n_users)
    # Users who need most of their unseen movies are left short by rejection: draw theirs exactly.
    extra_u, extra_i = [got_u], [got_i]
    for user in np.flatnonzero(need > 0):
        taken = np.concatenate([item_idx[user_idx == user], got_i[got_u == user]])
        free = np.setdiff1d(np.arange(n_items), taken)
        pick = rng.choice(free, size=int(need[user]), replace=False)
        extra_u.append(np.full(len(pick), user))
        extra_i.append(pick)
    got_u, got_i = np.concatenate(extra_u), np.concatenate(extra_i)
    order = np.lexsort((got_i, got_u))
    return got_u[order], got_i[order]
