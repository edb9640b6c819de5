import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from movierec.data.negatives import sample_negatives
from movierec.exceptions import DataValidationError, InvalidParameterError


@st.composite
def rating_frames(draw):
    """Small ratings frames, dense or sparse, with int or string ids (never a pair twice)."""
    n_users, n_items = draw(st.integers(1, 8)), draw(st.integers(1, 12))
    cells = draw(st.sets(st.integers(0, n_users * n_items - 1), min_size=1, max_size=n_users * n_items))
    cells = np.array(sorted(cells))
    stars = draw(st.lists(st.integers(1, 5), min_size=len(cells), max_size=len(cells)))
    users, items = cells // n_items, cells % n_items
    if draw(st.booleans()):
        user_ids, item_ids = [f"u{u}" for u in users], [f"m{i}" for i in items]
    else:
        user_ids, item_ids = 10 * users + 3, 7 * items + 1
    return pd.DataFrame({"userId": user_ids, "movieId": item_ids, "rating": np.array(stars, dtype=float)})


def _codes(frame):
    return set(zip(frame.userId.tolist(), frame.movieId.tolist()))


PER_POSITIVE = st.sampled_from([0.3, 0.5, 1.0, 2.0, 4.0, 100.0])
POSITIVE_RATING = st.sampled_from([None, 3.0, 4.0])
SEED = st.integers(0, 2**32 - 1)


@settings(max_examples=150, deadline=None)
@given(rating_frames(), PER_POSITIVE, POSITIVE_RATING, SEED)
def test_negatives_are_unrated_distinct_and_as_many_as_asked(ratings, per_positive, positive_rating, seed):
    negatives = sample_negatives(
        ratings, per_positive=per_positive, positive_rating=positive_rating, random_state=seed
    )
    assert list(negatives.columns) == ["userId", "movieId"]
    assert not _codes(negatives) & _codes(ratings)  # no sampled pair is rated
    assert not negatives.duplicated().any()
    assert set(negatives.movieId) <= set(ratings.movieId)  # the catalogue of ratings
    n_items = ratings.movieId.nunique()
    rated = ratings.groupby("userId").size()
    positive = ratings if positive_rating is None else ratings[ratings.rating >= positive_rating]
    positives = positive.groupby("userId").size().reindex(rated.index, fill_value=0)
    expected = np.minimum(np.rint(positives * per_positive), n_items - rated).astype(int)
    counts = negatives.groupby("userId").size().reindex(rated.index, fill_value=0)
    pd.testing.assert_series_equal(counts, expected, check_names=False)


@settings(max_examples=60, deadline=None)
@given(rating_frames(), PER_POSITIVE, SEED)
def test_same_seed_same_sample_and_ids_keep_their_type(ratings, per_positive, seed):
    a = sample_negatives(ratings, per_positive=per_positive, random_state=seed)
    b = sample_negatives(ratings, per_positive=per_positive, random_state=seed)
    pd.testing.assert_frame_equal(a, b)
    assert a.userId.map(type).isin({type(x) for x in ratings.userId}).all()
    assert a.movieId.map(type).isin({type(x) for x in ratings.movieId}).all()
    assert set(a.userId) <= set(ratings.userId)


def test_uniform_over_the_unseen_movies():
    # one user rated 2 of 12 movies and draws 1 negative: each of the 10 others ~ 1 / 10 of the time
    ratings = pd.DataFrame({"userId": [1, 1, 2] + [2] * 11, "movieId": [0, 1] + list(range(12)), "rating": 3.0})
    ratings = ratings.drop_duplicates(["userId", "movieId"])
    first = [sample_negatives(ratings, per_positive=0.5, random_state=s).movieId.iloc[0] for s in range(2000)]
    counts = np.bincount(first, minlength=12)
    assert counts[:2].sum() == 0
    assert counts[2:].min() > 140 and counts[2:].max() < 260  # 200 expected, about 4 sigma either way


def test_other_seed_other_sample():
    rng = np.random.default_rng(0)
    ratings = pd.DataFrame({"userId": rng.integers(0, 30, 300), "movieId": rng.integers(0, 200, 300), "rating": 4.0})
    ratings = ratings.drop_duplicates(["userId", "movieId"])
    a = sample_negatives(ratings, random_state=1)
    b = sample_negatives(ratings, random_state=2)
    assert len(a) == len(b) == len(ratings)
    assert not a.equals(b)


@pytest.mark.parametrize(
    "options, name",
    [
        ({"per_positive": 0}, "per_positive"),
        ({"per_positive": -1.0}, "per_positive"),
        ({"per_positive": float("inf")}, "per_positive"),
        ({"positive_rating": "4"}, "positive_rating"),
        ({"random_state": -1}, "random_state"),
        ({"random_state": np.random.default_rng(0)}, "random_state"),
    ],
)
def test_bad_options_raise_invalid_parameter(options, name):
    ratings = pd.DataFrame({"userId": [1, 2], "movieId": [1, 2], "rating": [4.0, 5.0]})
    with pytest.raises(InvalidParameterError, match=name):
        sample_negatives(ratings, **options)


def test_bad_frames_raise_data_validation():
    with pytest.raises(DataValidationError, match="movieId"):
        sample_negatives(pd.DataFrame({"userId": [1]}))
    with pytest.raises(DataValidationError, match="rating"):  # positive_rating needs the ratings
        sample_negatives(pd.DataFrame({"userId": [1], "movieId": [2]}), positive_rating=4.0)
    assert sample_negatives(pd.DataFrame({"userId": [1, 2], "movieId": [1, 2]})).shape == (2, 2)
