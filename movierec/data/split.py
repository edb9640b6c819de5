"""Train/test splits of a ratings frame: random, stratified per user, temporal, per-user k-fold; and user samples.

Every splitter returns ``(train, test)`` (`user_kfold` one such pair per fold): two frames with the
input's columns and index labels, each sorted by index, disjoint, and together holding exactly the
input's rows. Nothing is dropped.

The per-user functions with a ``test_size`` follow one count rule: a user with ``n >= 2`` ratings puts
``round(test_size * n)`` of them in test, clipped to ``[1, n - 1]`` so that every such user keeps at
least one rating on each side; a user with a single rating stays in train. ``round`` is Python's
(halves go to the even number), so ``test_size=0.25`` puts 2 of 10 ratings in test, 2 of 6.
Every splitter's ``test_size`` defaults to 0.2.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

from movierec._core.params import Int, check_value
from movierec._core.random import RandomState, check_random_state, rng
from movierec._core.validation import TIMESTAMP, USER, check_fraction, check_ratings
from movierec.exceptions import DataValidationError

__all__ = ["random_split", "sample_users", "stratified_split", "temporal_split", "user_kfold"]


def _rng(random_state: RandomState, owner: str) -> np.random.Generator:
    """Return a Generator for ``random_state`` under movierec's one rule (`movierec._core.random`).

    A Generator passes through unchanged (SageMakerFM's tuning splits with one drawn from its seed).
    """
    return rng(check_random_state(random_state, owner, generator=True))


def _test_counts(n: np.ndarray | int, test_size: float) -> np.ndarray:
    """Return how many of ``n`` ratings go to test: round(test_size * n) clipped to [1, n - 1]."""
    k = np.rint(test_size * n).astype(np.int64)  # rint rounds halves to even, as Python's round
    return np.where(n >= 2, np.clip(k, 1, n - 1), 0)


def _split(ratings: pd.DataFrame, in_test: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    train = ratings.iloc[np.flatnonzero(~in_test)]
    test = ratings.iloc[np.flatnonzero(in_test)]
    return train.sort_index(kind="stable"), test.sort_index(kind="stable")


def _per_user_test(users: pd.Series, order: np.ndarray, test_size: float) -> np.ndarray:
    """Mark as test the last k_u rows of each user, "last" meaning latest in ``order``.

    ``order`` is a permutation of the row positions; rows are grouped by user with a stable sort, so
    within a user they keep the order ``order`` gives them.
    """
    codes, _ = pd.factorize(users, sort=False)
    counts = np.bincount(codes)
    grouped = order[np.argsort(codes[order], kind="stable")]
    ends = np.cumsum(counts)  # one past each user's last row in ``grouped``
    from_end = ends[codes[grouped]] - 1 - np.arange(len(grouped))  # 0 for each user's last row
    in_test = np.zeros(len(users), dtype=bool)
    in_test[grouped] = from_end < _test_counts(counts, test_size)[codes[grouped]]
    return in_test


def random_split(ratings: pd.DataFrame, test_size: float = 0.2,
                 random_state: RandomState = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return ``(train, test)`` with a uniformly random ``test_size`` fraction of the rows in test.

    Parameters
    ----------
    ratings : pandas.DataFrame
        A ratings frame (``userId, movieId, rating`` and optionally ``timestamp``).
    test_size : float, default 0.2
        Fraction of rows in test, strictly between 0 and 1. The test set has
        ``round(test_size * n)`` rows clipped to ``[1, n - 1]`` (none if the frame has one row).
    random_state : int, numpy.random.Generator or None
        Seed (an int in ``[0, 2**32 - 1]``) or generator; an int gives the same split every time. The
        global numpy RNG is never used.

    Returns
    -------
    train, test : pandas.DataFrame
        Disjoint frames whose union is ``ratings``, each sorted by index.

    Raises
    ------
    DataValidationError
        If ``ratings`` is not a valid ratings frame or ``test_size`` is not in (0, 1).
    InvalidParameterError
        If ``random_state`` is neither None, a seed in ``[0, 2**32 - 1]`` nor a Generator.

    Examples
    --------
    >>> train, test = random_split(ratings, test_size=0.2, random_state=0)  # doctest: +SKIP
    """
    check_ratings(ratings)
    test_size = check_fraction(test_size, "test_size")
    rng = _rng(random_state, "random_split")
    n = len(ratings)
    in_test = np.zeros(n, dtype=bool)
    in_test[rng.permutation(n)[: int(_test_counts(n, test_size))]] = True
    return _split(ratings, in_test)


def stratified_split(ratings: pd.DataFrame, test_size: float = 0.2,
                     random_state: RandomState = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return ``(train, test)`` with a random ``test_size`` share of each user's ratings in test.

    Parameters
    ----------
    ratings : pandas.DataFrame
        A ratings frame (``userId, movieId, rating`` and optionally ``timestamp``).
    test_size : float, default 0.2
        Share of each user's ratings in test, strictly between 0 and 1. A user with ``n >= 2`` ratings
        puts ``round(test_size * n)`` of them, clipped to ``[1, n - 1]``, in test; a user with one
        rating stays in train. Every user is therefore in train. The default was 0.25 before 0.2
        became every splitter's default: pass ``test_size=0.25`` for the earlier splits.
    random_state : int, numpy.random.Generator or None
        Seed (an int in ``[0, 2**32 - 1]``) or generator; an int gives the same split every time. The
        global numpy RNG is never used.

    Returns
    -------
    train, test : pandas.DataFrame
        Disjoint frames whose union is ``ratings``, each sorted by index.

    Raises
    ------
    DataValidationError
        If ``ratings`` is not a valid ratings frame or ``test_size`` is not in (0, 1).
    InvalidParameterError
        If ``random_state`` is neither None, a seed in ``[0, 2**32 - 1]`` nor a Generator.
    """
    check_ratings(ratings)
    test_size = check_fraction(test_size, "test_size")
    order = _rng(random_state, "stratified_split").permutation(len(ratings))
    return _split(ratings, _per_user_test(ratings[USER], order, test_size))


def temporal_split(ratings: pd.DataFrame, test_size: float = 0.2,
                   per_user: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return ``(train, test)`` with the latest ratings, by ``timestamp``, in test.

    Parameters
    ----------
    ratings : pandas.DataFrame
        A ratings frame with a ``timestamp`` column (numbers or datetimes).
    test_size : float, default 0.2
        Strictly between 0 and 1. With ``per_user=True``, each user with ``n >= 2`` ratings puts their
        latest ``round(test_size * n)``, clipped to ``[1, n - 1]``, in test, and a user with one rating
        stays in train. With ``per_user=False``, the globally latest ``round(test_size * n)`` rows,
        clipped the same way, go to test.
    per_user : bool
        Split each user's history (leave-latest-out) or the whole frame at one point in time.

    Returns
    -------
    train, test : pandas.DataFrame
        Disjoint frames whose union is ``ratings``, each sorted by index. Equal timestamps are ordered
        by row position: of two tied rows, the one further down the input counts as later.

    Raises
    ------
    DataValidationError
        If ``ratings`` is not a valid ratings frame, has no ``timestamp`` column, or ``test_size`` is
        not in (0, 1).
    """
    check_ratings(ratings)
    test_size = check_fraction(test_size, "test_size")
    if TIMESTAMP not in ratings.columns:
        raise DataValidationError(
            f"temporal_split needs a {TIMESTAMP!r} column; ratings has {list(ratings.columns)}"
        )
    by_time = np.argsort(ratings[TIMESTAMP].to_numpy(), kind="stable")
    if per_user:
        return _split(ratings, _per_user_test(ratings[USER], by_time, test_size))
    n = len(ratings)
    in_test = np.zeros(n, dtype=bool)
    in_test[by_time[n - int(_test_counts(n, test_size)):]] = True
    return _split(ratings, in_test)


def user_kfold(ratings: pd.DataFrame, folds: int = 5,
               random_state: RandomState = None) -> Iterator[tuple[pd.DataFrame, pd.DataFrame]]:
    """Return an iterator of ``folds`` pairs ``(train, test)``: each user's ratings dealt into ``folds`` parts.

    Each user's ratings are shuffled and dealt in turn into the ``folds`` parts, starting at a
    random part, so every user has ``n // folds`` or ``n // folds + 1`` ratings in each part and a
    user with fewer ratings than folds is spread over different parts than the next such user. Fold
    ``f`` tests part ``f`` and trains on the others, so every rating is tested exactly once. A user
    with one rating is never tested: that rating is in every fold's train. Since a part never holds
    all of a user's ``n >= 2`` ratings, every tested user keeps a rating in train.

    Parameters
    ----------
    ratings : pandas.DataFrame
        A ratings frame (``userId, movieId, rating`` and optionally ``timestamp``).
    folds : int, default 5
        Number of folds, at least 2.
    random_state : int, numpy.random.Generator or None
        Seed (an int in ``[0, 2**32 - 1]``) or generator; an int gives the same folds every time.

    Returns
    -------
    iterator of (train, test)
        One pair per fold, as the other splitters return it: disjoint frames whose union is
        ``ratings``, each sorted by index. The arguments are checked at the call, before the first pair.

    Raises
    ------
    DataValidationError
        If ``ratings`` is not a valid ratings frame.
    InvalidParameterError
        If ``folds`` is not an int of at least 2, or ``random_state`` is not a valid seed.

    Examples
    --------
    >>> for train, test in user_kfold(ratings, folds=5, random_state=0):  # doctest: +SKIP
    ...     print(len(train), len(test))
    """
    check_ratings(ratings)
    owner = "user_kfold"
    check_value(owner, "folds", folds, Int(2))
    generator = _rng(random_state, owner)
    codes, _ = pd.factorize(ratings[USER], sort=False)
    counts = np.bincount(codes)
    order = generator.permutation(len(ratings))
    grouped = order[np.argsort(codes[order], kind="stable")]  # each user's rows together, shuffled
    starts = np.cumsum(counts) - counts
    position = np.empty(len(ratings), dtype=np.int64)
    position[grouped] = np.arange(len(ratings)) - starts[codes[grouped]]  # rank within the user
    offset = generator.integers(0, folds, size=len(counts))
    part = (position + offset[codes]) % folds
    part[counts[codes] < 2] = -1  # a single rating stays in train

    def pairs() -> Iterator[tuple[pd.DataFrame, pd.DataFrame]]:
        for fold in range(int(folds)):
            yield _split(ratings, part == fold)

    return pairs()


def sample_users(ratings: pd.DataFrame, max_users: int | None, random_state: RandomState = None) -> pd.DataFrame:
    """Return every rating of at most ``max_users`` users drawn uniformly without replacement.

    The size-aware step of hold-outs and tuning on large data: a validation metric averaged over
    20,000 users is as precise as anyone needs, while fitting and ranking for 160,000 costs eight
    times more. With ``max_users=None`` or no more users than that, ``ratings`` itself is returned
    (the same object), so small data are untouched; otherwise the chosen users' rows, in their order.
    """
    check_ratings(ratings)
    owner = "sample_users"
    check_value(owner, "max_users", max_users, Int(1, none=True))
    rng = _rng(random_state, owner)
    users = pd.unique(ratings[USER])
    if max_users is None or len(users) <= max_users:
        return ratings
    chosen = rng.choice(len(users), size=max_users, replace=False)
    return ratings[ratings[USER].isin(users[chosen])]
