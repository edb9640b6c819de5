"""Reference recipes movierec is compared with, shared by the benchmarks and the tests."""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    import surprise


def surprise_fit(train: pd.DataFrame, seed: int = 0) -> surprise.SVD:
    """Return Surprise's own ``SVD`` (library defaults, ``random_state=seed``) fitted on all of ``train``.

    The rating scale is the range of ``train``'s ratings, as SurpriseSVD uses by default.
    """
    import surprise

    reader = surprise.Reader(rating_scale=(float(train.rating.min()), float(train.rating.max())))
    trainset = surprise.Dataset.load_from_df(train[["userId", "movieId", "rating"]], reader).build_full_trainset()
    return surprise.SVD(random_state=seed).fit(trainset)


def surprise_faq_top_n(algo: Any, n: int) -> dict:
    """Surprise's FAQ ``get_top_n`` recipe, verbatim in substance.

    Predict every unseen (user, movie) pair of ``algo.trainset`` (its anti-testset) with
    ``algo.test``, then sort each user's list by estimate; return ``{raw user id: [(raw movie
    id, estimate), ...]}`` with at most ``n`` pairs a user.
    """
    top_n = defaultdict(list)
    for uid, iid, _, est, _ in algo.test(algo.trainset.build_anti_testset()):
        top_n[uid].append((iid, est))
    for uid, user_ratings in top_n.items():
        user_ratings.sort(key=lambda x: x[1], reverse=True)
        top_n[uid] = user_ratings[:n]
    return top_n
