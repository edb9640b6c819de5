"""Reference recipes movierec is compared with, shared by the benchmarks and the tests."""

from __future__ import annotations

from collections import defaultdict
from typing import Any


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
