"""Ids of one type per column (docs/architecture.md, section 2): 1 and "1" together are refused at
fit and by IdIndex; Python and numpy integers are one type, integers, stored as int64."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from movierec import BiasedBaseline, Popularity, WeightedEnsemble
from movierec._core.ids import IdIndex
from movierec._core.validation import check_pairs
from movierec.exceptions import DataValidationError


def small_ratings() -> pd.DataFrame:
    """Return 3 users x 4 movies, every pair rated."""
    users, movies = np.meshgrid([1, 2, 3], [10, 20, 30, 40], indexing="ij")
    rating = np.array([5, 4, 1, 2, 3, 3.5, 2, 5, 1, 1, 4, 5], dtype=float)
    return pd.DataFrame({"userId": users.ravel(), "movieId": movies.ravel(), "rating": rating})


@pytest.mark.parametrize("column", ["userId", "movieId"])
def test_ids_mixing_1_and_the_string_1_are_refused_at_fit(column):
    ratings = small_ratings().astype({column: object})
    ratings.loc[3, column] = str(ratings.loc[3, column])
    for fit in (BiasedBaseline().fit, Popularity().fit, WeightedEnsemble([BiasedBaseline()]).fit):
        with pytest.raises(DataValidationError, match=rf"{column} mixes integer and string ids.*row 3"):
            fit(ratings)
    with pytest.raises(DataValidationError, match="mixes"):
        check_pairs(ratings)


def test_id_index_refuses_mixed_ids_and_stores_numpy_and_python_ints_as_one_int64_type():
    with pytest.raises(DataValidationError, match="mix strings"):
        IdIndex([1, "1"])
    index = IdIndex(np.array([np.int64(2), 1], dtype=object))
    assert index.ids.dtype == np.int64 and index.ids.tolist() == [1, 2]
    assert index.lookup([1, np.int64(2), 3]).tolist() == [0, 1, -1]
    users = BiasedBaseline().fit(small_ratings().astype({"userId": object})).users_.ids
    assert users.dtype == np.int64 and users.tolist() == [1, 2, 3]
