"""Test helpers that ship with movierec, for its own tests and for models written outside it.

[`RecommenderContract`][movierec.testing.RecommenderContract] is a pytest mixin of the ``Recommender`` contract's behavioural checks
(docs/architecture.md, section 3) and [`synthetic_ratings`][movierec.testing.synthetic_ratings] the small frame it runs on.
[`movierec.testing.spark_cluster`][movierec.testing.spark_cluster] starts a throwaway Spark standalone cluster on 127.0.0.1.
"""

from __future__ import annotations

from movierec.testing._contract import RecommenderContract, synthetic_ratings

__all__ = ["RecommenderContract", "synthetic_ratings"]
