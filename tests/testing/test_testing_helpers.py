"""movierec.testing's synthetic ratings, the frame every model's RecommenderContract tests run on.

Its standalone cluster is started once per test session by tests/conftest.py's ``spark_cluster``
and used by the Spark tests (tests/models/test_spark_als.py, tests/spark/test_spark_batch.py).
"""

from __future__ import annotations

import numpy as np

from movierec._core.validation import check_ratings
from movierec.testing import synthetic_ratings


def test_synthetic_ratings_are_a_valid_frame_with_gapped_ids_and_room_to_recommend():
    ratings = synthetic_ratings(n_users=12, n_items=9, seed=3)
    check_ratings(ratings)
    assert set(ratings.userId) == {10 * u + 3 for u in range(12)}  # every user rated something
    assert set(ratings.movieId) == {7 * i + 1 for i in range(9)}  # every movie was rated
    assert set(ratings.rating) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    first = ratings[ratings.userId == 3].movieId
    assert set(first) == {7 * i + 1 for i in range(4)}  # user 0 rated all but the last 5 movies
    assert ratings.timestamp.is_unique
    again = synthetic_ratings(n_users=12, n_items=9, seed=3)
    assert ratings.equals(again) and not ratings.equals(synthetic_ratings(n_users=12, n_items=9, seed=4))
    assert np.isclose(len(synthetic_ratings()) / (40 * 60), 0.5, atol=0.05)

