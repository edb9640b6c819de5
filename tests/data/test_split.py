"""Tests of movierec.data.split: the split invariants (hypothesis) and the per-user count rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from movierec.data.split import random_split, sample_users, stratified_split, temporal_split, user_kfold
from movierec.exceptions import DataValidationError, InvalidParameterError

# database=None: no .hypothesis folder written into the repository.
PROPERTY = settings(max_examples=60, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


def expected_count(n: int, test_size: float) -> int:
    """The documented rule: round(test_size * n) clipped to [1, n - 1]; 0 when n == 1."""
    return 0 if n < 2 else min(max(round(test_size * n), 1), n - 1)


@st.composite
def ratings_frames(draw: st.DrawFn) -> pd.DataFrame:
    """Ratings frames with 1..12 users, 1..15 ratings each, tied timestamps and shuffled labels."""
    counts = draw(st.lists(st.integers(1, 15), min_size=1, max_size=12))
    users = np.repeat(np.arange(len(counts)) * 7 + 3, counts)
    movies = np.concatenate([np.arange(c) for c in counts])
    n = len(users)
    timestamps = draw(st.lists(st.integers(0, 5), min_size=n, max_size=n))
    ratings = draw(st.lists(st.sampled_from([0.5, 1.0, 3.5, 5.0]), min_size=n, max_size=n))
    frame = pd.DataFrame({"userId": users, "movieId": movies, "rating": ratings, "timestamp": timestamps})
    # Rows in any order, with index labels that are neither sorted nor 0..n-1.
    rows = draw(st.permutations(range(n)))
    frame = frame.iloc[list(rows)]
    frame.index = pd.Index(np.asarray(draw(st.permutations(range(n)))) * 10 + 5)
    if draw(st.booleans()):
        frame["userId"] = "u" + frame["userId"].astype(str)
    return frame


test_sizes = st.floats(0.05, 0.95)


def assert_partition(ratings: pd.DataFrame, train: pd.DataFrame, test: pd.DataFrame) -> None:
    assert list(train.columns) == list(ratings.columns) == list(test.columns)
    assert train.index.is_monotonic_increasing and test.index.is_monotonic_increasing
    assert not set(train.index) & set(test.index)
    pd.testing.assert_frame_equal(pd.concat([train, test]).sort_index(), ratings.sort_index())


def assert_per_user_rule(ratings: pd.DataFrame, test: pd.DataFrame, test_size: float) -> None:
    n = ratings.groupby("userId").size()
    got = test.groupby("userId").size().reindex(n.index, fill_value=0)
    want = n.map(lambda count: expected_count(int(count), test_size))
    pd.testing.assert_series_equal(got, want, check_names=False, check_dtype=False)


# --- properties ------------------------------------------------------------------------------------


@PROPERTY
@given(ratings_frames(), test_sizes, st.integers(0, 2**32 - 1))
def test_random_split_partitions(ratings: pd.DataFrame, test_size: float, seed: int) -> None:
    train, test = random_split(ratings, test_size=test_size, random_state=seed)
    assert_partition(ratings, train, test)
    assert len(test) == expected_count(len(ratings), test_size)


@PROPERTY
@given(ratings_frames(), test_sizes, st.integers(0, 2**32 - 1))
def test_stratified_split_partitions_per_user(ratings: pd.DataFrame, test_size: float, seed: int) -> None:
    train, test = stratified_split(ratings, test_size=test_size, random_state=seed)
    assert_partition(ratings, train, test)
    assert_per_user_rule(ratings, test, test_size)
    assert set(train["userId"]) == set(ratings["userId"])  # every user keeps a training rating


@PROPERTY
@given(ratings_frames(), test_sizes)
def test_temporal_split_per_user_takes_each_users_latest(ratings: pd.DataFrame, test_size: float) -> None:
    train, test = temporal_split(ratings, test_size=test_size)
    assert_partition(ratings, train, test)
    assert_per_user_rule(ratings, test, test_size)
    # Reference: per user, a stable sort by timestamp (ties in input order), the last k go to test.
    want: set[int] = set()
    for _, group in ratings.groupby("userId", sort=False):
        ordered = group.sort_values("timestamp", kind="stable")
        k = expected_count(len(group), test_size)
        want |= set(ordered.index[len(group) - k:])
    assert set(test.index) == want


@PROPERTY
@given(ratings_frames(), test_sizes)
def test_temporal_split_global_takes_latest_rows(ratings: pd.DataFrame, test_size: float) -> None:
    train, test = temporal_split(ratings, test_size=test_size, per_user=False)
    assert_partition(ratings, train, test)
    k = expected_count(len(ratings), test_size)
    ordered = ratings.sort_values("timestamp", kind="stable")
    assert set(test.index) == set(ordered.index[len(ratings) - k:])
    if len(train) and len(test):
        assert train["timestamp"].max() <= test["timestamp"].min()


@PROPERTY
@given(ratings_frames(), st.integers(2, 7), st.integers(0, 2**32 - 1))
def test_user_kfold_tests_every_rating_once_and_deals_each_user_evenly(
        ratings: pd.DataFrame, folds: int, seed: int) -> None:
    pairs = list(user_kfold(ratings, folds=folds, random_state=seed))
    assert len(pairs) == folds
    tested = pd.concat([test for _, test in pairs])
    counts = ratings.groupby("userId").size()
    # every rating of a user with 2 or more ratings is tested exactly once; a single rating never
    assert not tested.index.duplicated().any()
    assert set(tested.index) == set(ratings.index[ratings["userId"].map(counts) >= 2])
    for train, test in pairs:
        assert_partition(ratings, train, test)
        got = test.groupby("userId").size().reindex(counts.index, fill_value=0)
        low = np.where(counts >= 2, counts // folds, 0)
        assert ((got >= low) & (got <= np.ceil(counts / folds))).all()  # dealt evenly
        assert set(train["userId"]) == set(ratings["userId"])  # every user keeps a training rating
    again = [test.index for _, test in user_kfold(ratings, folds=folds, random_state=seed)]
    assert all(a.equals(b) for a, b in zip(again, [test.index for _, test in pairs]))


# --- examples --------------------------------------------------------------------------------------


@pytest.fixture
def ratings() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    n_users, per_user = 50, 12
    return pd.DataFrame({
        "userId": np.repeat(np.arange(n_users), per_user),
        "movieId": np.tile(np.arange(per_user), n_users),
        "rating": rng.integers(1, 6, n_users * per_user).astype(float),
        "timestamp": rng.integers(0, 10**9, n_users * per_user),
    })


@pytest.mark.parametrize("split", [random_split, stratified_split])
def test_int_seed_is_repeatable_and_generator_accepted(split, ratings: pd.DataFrame) -> None:
    a_train, a_test = split(ratings, random_state=3)
    b_train, b_test = split(ratings, random_state=3)
    pd.testing.assert_frame_equal(a_test, b_test)
    pd.testing.assert_frame_equal(a_train, b_train)
    _, g_test = split(ratings, random_state=np.random.default_rng(3))
    pd.testing.assert_frame_equal(g_test, a_test)
    _, other = split(ratings, random_state=4)
    assert not other.index.equals(a_test.index)


@pytest.mark.parametrize("split", [random_split, stratified_split])
def test_global_numpy_rng_is_untouched(split, ratings: pd.DataFrame) -> None:
    np.random.seed(0)
    before = np.random.get_state()[1].copy()
    split(ratings)
    split(ratings, random_state=1)
    np.testing.assert_array_equal(np.random.get_state()[1], before)


@pytest.mark.parametrize("split", [random_split, stratified_split, temporal_split])
def test_input_is_not_modified(split, ratings: pd.DataFrame) -> None:
    copy = ratings.copy()
    split(ratings, test_size=0.3)
    pd.testing.assert_frame_equal(ratings, copy)


def test_every_splitter_defaults_to_a_fifth_in_test(ratings: pd.DataFrame) -> None:
    # 50 users x 12 ratings: round(0.2 * 12) = 2 per user; 0.25 would give 3
    assert len(random_split(ratings, random_state=0)[1]) == 120
    assert stratified_split(ratings, random_state=0)[1].groupby("userId").size().eq(2).all()
    assert temporal_split(ratings)[1].groupby("userId").size().eq(2).all()


def test_user_kfold_checks_its_arguments_at_the_call(ratings: pd.DataFrame) -> None:
    for bad in (1, 0, 2.5, True, "5"):
        with pytest.raises(InvalidParameterError, match="folds"):
            user_kfold(ratings, folds=bad)
    with pytest.raises(InvalidParameterError, match="random_state"):
        user_kfold(ratings, random_state=-1)
    with pytest.raises(DataValidationError):
        user_kfold(ratings.drop(columns="userId"))


def test_user_kfold_spreads_users_with_few_ratings_over_the_folds() -> None:
    # 300 users with 2 ratings and 5 folds: a fixed start would test them all in folds 0 and 1
    frame = pd.DataFrame({"userId": np.repeat(np.arange(300), 2), "movieId": np.tile([1, 2], 300), "rating": 3.0})
    sizes = [len(test) for _, test in user_kfold(frame, folds=5, random_state=0)]
    assert sum(sizes) == 600 and min(sizes) > 80


def test_stratified_sizes_on_known_counts() -> None:
    # Users with 1, 2, 4, 10 ratings at test_size=0.25: 0 (single), 1 (0.5 -> 0 -> clip 1), 1, 2 (2.5 -> 2).
    counts = {1: 1, 2: 2, 3: 4, 4: 10}
    frame = pd.DataFrame({
        "userId": np.repeat(list(counts), list(counts.values())),
        "movieId": np.concatenate([np.arange(c) for c in counts.values()]),
        "rating": 3.0,
    })
    _, test = stratified_split(frame, test_size=0.25, random_state=0)
    assert test.groupby("userId").size().to_dict() == {2: 1, 3: 1, 4: 2}


def test_temporal_ties_break_by_row_order() -> None:
    frame = pd.DataFrame({"userId": [1, 1, 1, 1], "movieId": [10, 11, 12, 13], "rating": 4.0,
                          "timestamp": [5, 9, 9, 1]}, index=[40, 30, 20, 10])
    train, test = temporal_split(frame, test_size=0.25)
    assert list(test.index) == [20]  # tied at 9: the row further down is later
    assert list(train.index) == [10, 30, 40]


def test_temporal_split_accepts_datetimes() -> None:
    frame = pd.DataFrame({"userId": [1, 1, 2, 2], "movieId": [1, 2, 1, 2], "rating": 3.0,
                          "timestamp": pd.to_datetime(["2020-01-02", "2020-01-01",
                                                       "2019-01-01", "2021-01-01"])})
    _, test = temporal_split(frame, test_size=0.5)
    assert sorted(test.index) == [0, 3]


def test_large_frame_is_fast() -> None:
    rng = np.random.default_rng(0)
    n = 200_000
    users = rng.integers(0, 5_000, n)
    frame = pd.DataFrame({"userId": users, "movieId": np.arange(n), "rating": 3.0,
                          "timestamp": rng.integers(0, 10**9, n)})
    for split in (stratified_split, temporal_split):
        train, test = split(frame, test_size=0.2)
        assert len(train) + len(test) == n


@pytest.mark.parametrize("test_size", [0, 1, 1.5, -0.1, True, "0.2", None])
@pytest.mark.parametrize("split", [random_split, stratified_split, temporal_split])
def test_bad_test_size(split, test_size, ratings: pd.DataFrame) -> None:
    with pytest.raises(DataValidationError, match="test_size"):
        split(ratings, test_size=test_size)


@pytest.mark.parametrize(
    "random_state", ["seed", 1.5, -1, 2**32, True, np.random.RandomState(0), np.random.SeedSequence(0)]
)
@pytest.mark.parametrize("split", [random_split, stratified_split])
def test_bad_random_state(split, random_state, ratings: pd.DataFrame) -> None:
    with pytest.raises(InvalidParameterError) as caught:
        split(ratings, random_state=random_state)
    assert str(caught.value) == (
        f"{split.__name__}: random_state must be None or an int in [0, 4294967295], got {random_state!r}"
    )


@pytest.mark.parametrize("split", [random_split, stratified_split])
def test_largest_seed_is_accepted(split, ratings: pd.DataFrame) -> None:
    _, test = split(ratings, random_state=2**32 - 1)
    _, same = split(ratings, random_state=np.random.default_rng(2**32 - 1))
    pd.testing.assert_frame_equal(test, same)


def test_temporal_split_requires_timestamp(ratings: pd.DataFrame) -> None:
    with pytest.raises(DataValidationError, match="timestamp"):
        temporal_split(ratings.drop(columns="timestamp"))


@pytest.mark.parametrize("split", [random_split, stratified_split, temporal_split])
def test_invalid_ratings_are_rejected(split, ratings: pd.DataFrame) -> None:
    with pytest.raises(DataValidationError, match="movieId"):
        split(ratings.drop(columns="movieId"))
    with pytest.raises(DataValidationError, match="empty"):
        split(ratings.iloc[:0])
    with pytest.raises(DataValidationError, match="duplicate"):
        split(pd.concat([ratings, ratings.iloc[:1]], ignore_index=True))
    with pytest.raises(DataValidationError):
        split(ratings.to_numpy())


def test_single_row_frame_goes_to_train() -> None:
    frame = pd.DataFrame({"userId": [1], "movieId": [2], "rating": [3.0], "timestamp": [4]})
    for train, test in (random_split(frame, random_state=0), stratified_split(frame, random_state=0),
                        temporal_split(frame), temporal_split(frame, per_user=False)):
        assert len(train) == 1 and len(test) == 0
        assert list(test.columns) == list(frame.columns)


@PROPERTY
@given(ratings_frames(), st.integers(1, 14), st.integers(0, 2**32 - 1))
def test_sample_users_keeps_whole_users(ratings: pd.DataFrame, max_users: int, seed: int) -> None:
    sample = sample_users(ratings, max_users, random_state=seed)
    users = ratings["userId"].nunique()
    assert sample["userId"].nunique() == min(users, max_users)
    # every rating of a chosen user, nothing else, rows in their input order
    pd.testing.assert_frame_equal(sample, ratings[ratings["userId"].isin(sample["userId"])])
    pd.testing.assert_frame_equal(sample, sample_users(ratings, max_users, random_state=seed))
    if users <= max_users:
        assert sample is ratings


def test_sample_users_draws_uniformly_and_checks_arguments() -> None:
    ratings = pd.DataFrame({"userId": np.repeat(np.arange(100), 2), "movieId": np.tile([1, 2], 100), "rating": 4.0})
    drawn = np.zeros(100)
    for seed in range(400):
        drawn[pd.unique(sample_users(ratings, 10, random_state=seed)["userId"])] += 1
    assert drawn.min() > 10 and drawn.max() < 80  # expected 40 each; a fixed subset would give 0 and 400
    assert sample_users(ratings, None) is ratings
    with pytest.raises(InvalidParameterError, match="max_users"):
        sample_users(ratings, 0)
    with pytest.raises(InvalidParameterError, match="random_state"):
        sample_users(ratings, 5, random_state=-1)
