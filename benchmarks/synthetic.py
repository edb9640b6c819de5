"""Synthetic ratings with MovieLens' shape, for the scale suite (1M, 10M and 25M ratings).

The shape copied from MovieLens:

* users and movies of the MovieLens release of that size (:func:`default_shape`): interpolated
  on a log-log scale between ml-100k, ml-1m, ml-10m, ml-20m and ml-25m, so 1M ratings give
  ml-1m's 6,040 users x 3,706 movies, 10M give ml-10m's 69,878 x 10,677 and 25M give ml-25m's
  162,541 x 59,047 (the catalogue grows much faster than the ratings past 10M, as it did);
* movie popularity follows a power law (Zipf-like, exponent ~1 on the rank, flattened at the
  head), so a few percent of the movies take a large share of the ratings and most of a large
  catalogue is rarely rated;
* who rates what carries taste: users fall into 16 groups, each drawing movies from the common
  popularity times its own log-normal factor per movie, so top-N models can beat popularity;
* every user has at least 20 ratings (MovieLens' inclusion rule); activity beyond that is
  heavy-tailed (log-normal), capped at half the catalogue;
* ratings are whole stars 1..5 from ``mu + b_u + b_i + <p_u, q_i> + noise``, rounded and clipped,
  with popular movies rated a little higher, as in MovieLens (mean near 3.5, mostly 3s and 4s);
* no (user, movie) pair twice; ids 1..n_users and 1..n_movies, movie ids shuffled so that id
  order says nothing about popularity.

Everything is vectorized: 10M ratings take well under a minute. Memory stays a few times the
output: the (user, movie) pairs are drawn as int64 and checked for repeats a round at a time.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["MOVIELENS_SHAPES", "default_shape", "generate"]

MIN_PER_USER = 20


# (ratings, users, movies) of the MovieLens releases (GroupLens' README files).
MOVIELENS_SHAPES = (
    (100_000, 943, 1_682),  # ml-100k
    (1_000_209, 6_040, 3_706),  # ml-1m
    (10_000_054, 69_878, 10_677),  # ml-10m
    (20_000_263, 138_493, 26_744),  # ml-20m
    (25_000_095, 162_541, 59_047),  # ml-25m
)


def default_shape(n_ratings: int) -> tuple[int, int]:
    """Return (n_users, n_movies) of the MovieLens release with ``n_ratings`` ratings.

    Interpolated linearly in log(ratings) against log(users) and log(movies) between the releases
    of :data:`MOVIELENS_SHAPES` (ml-1m ~ 6.0k x 3.7k, ml-10m ~ 70k x 10.7k, ml-25m ~ 163k x 59k);
    outside them, extended along the line from ml-100k to ml-1m below and from ml-100k to ml-25m
    above. At least 20 ratings per user and 40 movies are kept, so every size can be generated.
    """
    anchors = np.log(np.array(MOVIELENS_SHAPES, dtype=np.float64))
    x = np.log(max(1, int(n_ratings)))
    shape = []
    for column in (1, 2):
        y = anchors[:, column]
        if x < anchors[0, 0]:
            (x0, y0), (x1, y1) = (anchors[0, 0], y[0]), (anchors[1, 0], y[1])
        elif x > anchors[-1, 0]:
            (x0, y0), (x1, y1) = (anchors[0, 0], y[0]), (anchors[-1, 0], y[-1])
        else:
            shape.append(round(float(np.exp(np.interp(x, anchors[:, 0], y)))))
            continue
        shape.append(round(float(np.exp(y1 + (x - x1) * (y1 - y0) / (x1 - x0)))))
    n_users = max(1, min(shape[0], int(n_ratings) // MIN_PER_USER))
    n_items = max(MIN_PER_USER * 2, shape[1])
    return n_users, n_items


def _user_counts(rng: np.random.Generator, n_ratings: int, n_users: int, n_items: int) -> np.ndarray:
    """Return ratings per user: >= 20 each, log-normal tail, at most n_items // 2, summing to n_ratings."""
    cap = max(MIN_PER_USER, n_items // 2)
    if n_users * MIN_PER_USER > n_ratings:
        raise ValueError(f"{n_users} users need at least {n_users * MIN_PER_USER} ratings, got n_ratings={n_ratings}")
    if n_users * cap < n_ratings:
        raise ValueError(f"{n_users} users rating at most {cap} of {n_items} movies cannot give {n_ratings} ratings")
    extra = rng.lognormal(mean=0.0, sigma=1.2, size=n_users)
    spare = n_ratings - n_users * MIN_PER_USER
    counts = MIN_PER_USER + np.floor(extra / extra.sum() * spare).astype(np.int64)
    counts = np.minimum(counts, cap)
    # Hand out what flooring and capping left, one rating at a time to users below the cap.
    missing = n_ratings - int(counts.sum())
    while missing > 0:
        room = np.flatnonzero(counts < cap)
        take = rng.choice(room, size=min(missing, len(room)), replace=False)
        counts[take] += 1
        missing -= len(take)
    return counts


def _draw_items(
    rng: np.random.Generator, counts: np.ndarray, popularity: np.ndarray, group: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Return (user, item) pairs: counts[u] distinct items per user, drawn by ``popularity[group[u]]``.

    Draws with replacement from the user's group's popularity distribution (one row of
    ``popularity`` per group), drops repeated pairs and draws again for the shortfall of the
    users still short, oversampling more each round (heavy users must reach far into the tail),
    until every user has exactly their count.
    """
    n_groups, n_items = popularity.shape
    cdf = np.cumsum(popularity, axis=1)
    cdf /= cdf[:, -1:]
    # one sorted array: group g's CDF shifted by g, so one searchsorted of g + U(0, 1) draws from it
    stacked = (cdf + np.arange(n_groups)[:, None]).ravel()
    done_users, done_items = [], []
    active = np.arange(len(counts))
    users = np.zeros(0, dtype=np.int64)  # pairs of the active users so far
    items = np.zeros(0, dtype=np.int64)
    need = counts.astype(np.int64).copy()
    factor = 1.1
    for _ in range(500):
        ask = np.ceil(need[active] * factor).astype(np.int64)
        new_users = np.repeat(active, ask)
        shift = group[new_users]
        drawn = np.searchsorted(stacked, shift + rng.random(len(new_users)), side="right") - shift * n_items
        new_items = np.clip(drawn, 0, n_items - 1)
        del shift, drawn
        users = np.concatenate([users, new_users])
        items = np.concatenate([items, new_items])
        # unique keeps the first copy of each pair, so pairs from earlier rounds stay
        _, first = np.unique(users * n_items + items, return_index=True)
        keep = np.sort(first)
        users, items = users[keep], items[keep]
        order = np.argsort(users, kind="stable")
        users, items = users[order], items[order]
        start = np.searchsorted(users, users, side="left")
        inside = (np.arange(len(users)) - start) < counts[users]  # drop each user's surplus
        users, items = users[inside], items[inside]
        need[active] = counts[active] - np.bincount(users, minlength=len(counts))[active]
        complete = need[users] == 0
        done_users.append(users[complete])
        done_items.append(items[complete])
        users, items = users[~complete], items[~complete]
        active = active[need[active] > 0]
        if len(active) == 0:
            break
        factor = min(factor * 1.5, 64.0)
    else:  # pragma: no cover - needs a pathological popularity curve
        raise RuntimeError("could not draw distinct movies for every user")
    users, items = np.concatenate(done_users), np.concatenate(done_items)
    order = np.argsort(users, kind="stable")
    return users[order], items[order]


def generate(
    n_ratings: int,
    *,
    n_users: int | None = None,
    n_items: int | None = None,
    rank: int = 5,
    zipf_exponent: float = 1.0,
    taste_groups: int = 16,
    taste_sd: float = 1.0,
    seed: int = 0,
) -> pd.DataFrame:
    """Return a MovieLens-shaped ratings frame of exactly ``n_ratings`` rows.

    Parameters
    ----------
    n_ratings : int
        Rows to generate.
    n_users, n_items : int, optional
        Defaults from :func:`default_shape` (MovieLens' users and movies for that many ratings).
    rank : int, default 5
        Rank of the user-movie interaction term.
    zipf_exponent : float, default 1.0
        Popularity of the movie of popularity rank ``r`` is proportional to ``1 / (r + 10) ** exponent``.
    taste_groups : int, default 16
        Users fall into this many groups of taste at random; which movies a user rates is drawn
        from the group's popularity, the common one times a log-normal factor per (group, movie).
        So who rated what carries a personal signal beyond popularity, as in MovieLens, and
        top-N models (EASE, implicit ALS) can beat the most-popular list.
    taste_sd : float, default 1.0
        Standard deviation of the log of that factor (0: everybody draws from the common popularity).
    seed : int, default 0
        Seeds everything: the same arguments give the same frame.

    Returns
    -------
    pandas.DataFrame
        Columns ``userId`` (int64, 1..n_users), ``movieId`` (int64, 1..n_items), ``rating``
        (float64 in {1, ..., 5}); sorted by userId; no duplicate pairs; >= 20 ratings per user.
    """
    default_users, default_items = default_shape(n_ratings)
    n_users = default_users if n_users is None else int(n_users)
    n_items = default_items if n_items is None else int(n_items)
    rng = np.random.default_rng(seed)

    ranks = np.arange(n_items)
    popularity = 1.0 / (ranks + 10.0) ** zipf_exponent
    counts = _user_counts(rng, int(n_ratings), n_users, n_items)
    group = rng.integers(0, max(1, int(taste_groups)), n_users)
    taste = np.exp(rng.normal(0.0, float(taste_sd), (max(1, int(taste_groups)), n_items)))
    users, items = _draw_items(rng, counts, popularity * taste, group)

    # Effects: popular movies are liked a little more (ml-100k: corr(log count, mean rating) ~ 0.4).
    log_pop = np.log(popularity)
    item_effect = 0.25 * (log_pop - log_pop.mean()) / log_pop.std() + rng.normal(0.0, 0.35, n_items)
    # centred on the ratings (not on the movies), so the mean rating stays near MovieLens' 3.5
    item_effect -= np.bincount(items, minlength=n_items) @ item_effect / len(items)
    user_effect = rng.normal(0.0, 0.45, n_users)
    user_factors = rng.normal(0.0, 1.0, (n_users, rank)) / np.sqrt(rank)
    item_factors = rng.normal(0.0, 1.0, (n_items, rank)) / np.sqrt(rank)
    interaction = 0.7 * np.einsum("ij,ij->i", user_factors[users], item_factors[items])
    raw = 3.5 + user_effect[users] + item_effect[items] + interaction + rng.normal(0.0, 0.9, len(users))
    stars = np.clip(np.rint(raw), 1, 5)

    movie_ids = rng.permutation(n_items) + 1  # popularity rank -> movie id
    return pd.DataFrame(
        {
            "userId": users + 1,
            "movieId": movie_ids[items].astype(np.int64),
            "rating": stars.astype(np.float64),
        }
    )
