"""A visitor's history: top_n_from_history, explain, similar_items and score_history for the numpy models."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from movierec import EASE, BiasedBaseline, Popularity
from movierec._core.history import parse_history
from movierec._core.persist import atomic_folder, state_arrays, write_arrays, write_params
from movierec.exceptions import DataValidationError, MovieRecWarning
from movierec.testing import synthetic_ratings

RATINGS = synthetic_ratings(n_users=30, n_items=50, seed=4)
FITTED = {
    "ease": EASE(l2=20.0).fit(RATINGS),
    "ease_kept": EASE(l2=20.0, max_items=30).fit(RATINGS),  # B covers the 30 most-rated movies only
    "popularity": Popularity().fit(RATINGS),
}
USERS = RATINGS.userId.unique()
MOVIES = np.sort(RATINGS.movieId.unique())


def own_history(user) -> pd.DataFrame:
    return RATINGS[RATINGS.userId == user]


@pytest.mark.parametrize("name", sorted(FITTED))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(user=st.sampled_from(list(USERS)), n=st.integers(1, 60))
def test_a_fitted_users_own_history_gives_their_top_n(name, user, n):
    model = FITTED[name]
    expected = model.top_n(users=[user], n=n)
    got = model.top_n_from_history(own_history(user), n=n, user=user)
    pd.testing.assert_frame_equal(got[["userId", "movieId", "rank"]], expected[["userId", "movieId", "rank"]],
                                  check_dtype=False)
    np.testing.assert_allclose(got.score, expected.score, rtol=1e-12, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(history=st.lists(st.sampled_from(list(MOVIES)), min_size=1, max_size=15, unique=True),
       target=st.sampled_from(list(MOVIES)), kept=st.booleans())
def test_ease_contributions_sum_to_the_score_minus_the_empty_history_score(history, target, kept):
    model = FITTED["ease_kept" if kept else "ease"]
    reasons = model.explain(history, target)
    score = model.score_history(history, [target])[0]
    empty = 0.0  # EASE scores an empty history 0 everywhere: x is all zeros
    assert reasons.contribution.sum() == pytest.approx(score - empty, rel=1e-12, abs=1e-12)
    assert set(reasons.movieId) == set(history)
    if np.abs(reasons.contribution).sum() > 0:
        assert np.abs(reasons.share).sum() == pytest.approx(1.0)
    # leave-one-out, the base's default, agrees with the exact form for a linear model
    for movie, contribution in zip(reasons.movieId, reasons.contribution, strict=True):
        rest = [m for m in history if m != movie]
        without = model.score_history(rest, [target])[0] if rest else 0.0
        assert contribution == pytest.approx(score - without, rel=1e-9, abs=1e-12)


def test_ease_similar_items_is_the_list_of_a_one_movie_history():
    model = FITTED["ease"]
    for movie in MOVIES[:10]:
        similar = model.similar_items(movie, n=8)
        alone = model.top_n_from_history([movie], n=8)
        assert similar.movieId.tolist() == alone.movieId.tolist()
        np.testing.assert_allclose(similar.similarity, alone.score)
        assert movie not in set(similar.movieId) and similar["rank"].tolist() == list(range(1, 9))


@pytest.mark.parametrize("model", [Popularity(), BiasedBaseline()], ids=["Popularity", "BiasedBaseline"])
def test_models_without_item_factors_say_why_they_cannot_find_similar_movies(model):
    model.fit(RATINGS)
    with pytest.raises(NotImplementedError, match=f"{type(model).__name__} cannot find similar movies: .*bias|count"):
        model.similar_items(MOVIES[0])


def test_similar_items_of_an_unknown_movie_names_it():
    with pytest.raises(DataValidationError, match="424242"):
        FITTED["ease"].similar_items(424242)


def test_unknown_history_movies_are_ignored_with_one_warning():
    model = FITTED["ease"]
    with pytest.warns(MovieRecWarning, match="3 of 5 history movie") as record:
        top = model.top_n_from_history([MOVIES[0], -1, "x", MOVIES[1], 10**9], n=5)
    assert len(record) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pd.testing.assert_frame_equal(top, model.top_n_from_history([MOVIES[0], MOVIES[1]], n=5))


def test_string_ids_work_as_in_top_n():
    ratings = RATINGS.assign(userId="u" + RATINGS.userId.astype(str), movieId="m" + RATINGS.movieId.astype(str))
    model = EASE(l2=20.0).fit(ratings)
    user = ratings.userId.iloc[0]
    own = ratings[ratings.userId == user]
    pd.testing.assert_frame_equal(model.top_n_from_history(own, n=5, user=user)[["userId", "movieId", "rank"]],
                                  model.top_n(users=[user], n=5)[["userId", "movieId", "rank"]], check_dtype=False)
    with pytest.warns(MovieRecWarning, match="unknown to EASE"):  # the int 1 is not the string "m1"
        fallback = model.top_n_from_history([int(RATINGS.movieId.iloc[0])], n=3)
    assert fallback.movieId.str.startswith("m").all()
    assert model.similar_items(own.movieId.iloc[0], n=3).movieId.str.startswith("m").all()


def test_empty_history_gives_rating_counts_and_honours_exclude():
    counts = RATINGS.movieId.value_counts()
    order = sorted(counts.index, key=lambda movie: (-counts[movie], movie))  # ties by movieId
    for model in FITTED.values():
        top = model.top_n_from_history([], n=6, user=7)
        assert top.movieId.tolist() == order[:6]
        assert top.score.tolist() == [float(counts[m]) for m in order[:6]]
        assert (top.userId == 7).all()
        excluded = model.top_n_from_history(pd.DataFrame({"movieId": []}), n=6, exclude=order[:2])
        assert excluded.movieId.tolist() == order[2:8]


@settings(max_examples=30, deadline=None)
@given(history=st.lists(st.sampled_from(list(MOVIES)), max_size=10, unique=True),
       exclude=st.lists(st.sampled_from(list(MOVIES)) | st.integers(-5, -1), max_size=10))
def test_exclude_and_history_are_left_out_and_nothing_else(history, exclude):
    model = FITTED["ease_kept"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MovieRecWarning)
        top = model.top_n_from_history(history, n=len(MOVIES), exclude=exclude)
    assert set(top.movieId) == set(MOVIES) - set(history) - set(exclude)
    assert top["rank"].tolist() == list(range(1, len(top) + 1))


# -- parsing untrusted histories --------------------------------------------------------------
ids = st.integers(-(2**62), 2**62) | st.text(max_size=5)
bad_ids = st.none() | st.floats() | st.booleans() | st.just(b"1") | st.tuples(st.integers())


@settings(max_examples=100, deadline=None)
@given(good=st.lists(ids, max_size=8), bad=bad_ids, where=st.integers(0, 8))
def test_a_bad_id_anywhere_raises_data_validation_error_naming_its_position(good, bad, where):
    where = min(where, len(good))
    history = [*good[:where], bad, *good[where:]]
    with pytest.raises(DataValidationError, match=f"position {where}"):
        FITTED["ease"].top_n_from_history(history, n=3)


@settings(max_examples=100, deadline=None)
@given(rows=st.lists(st.tuples(st.sampled_from(list(MOVIES[:6])), st.floats(1, 5), st.integers(0, 20)), max_size=12))
def test_a_movie_listed_twice_keeps_its_latest_row(rows):
    frame = pd.DataFrame(rows, columns=["movieId", "rating", "timestamp"], dtype=object).astype(
        {"movieId": "int64", "rating": "float64", "timestamp": "int64"})
    ids, ratings = parse_history(frame)
    expected = {}
    for movie, rating, _ in sorted(rows, key=lambda row: row[2]):  # stable: equal times keep row order
        expected.pop(movie, None)
        expected[movie] = rating
    assert list(ids) == list(expected) and list(ratings) == list(expected.values())


@pytest.mark.parametrize(
    ("history", "message"),
    [
        ("1 2", "sequence of movie ids"),
        (np.ones((2, 2), dtype=int), "one-dimensional"),
        (pd.DataFrame({"movieId": [1], "rating": ["good"]}), "rating must be numeric"),
        (pd.DataFrame({"movieId": [1, 8], "timestamp": [1.0, np.nan]}), "timestamp has 1 NaN"),
        (pd.DataFrame({"movie": [1]}), "must have a 'movieId' column"),
    ],
)
def test_malformed_histories_name_the_problem(history, message):
    with pytest.raises(DataValidationError, match=message):
        FITTED["popularity"].top_n_from_history(history)


def test_bad_exclude_and_movie_raise():
    with pytest.raises(DataValidationError, match="exclude"):
        FITTED["ease"].top_n_from_history([1], exclude=5)
    with pytest.raises(DataValidationError, match="movie must be a movie id"):
        FITTED["ease"].explain([1], float("nan"))


# -- ratings, and the rule for a history without them ------------------------------------------
def test_a_history_without_ratings_counts_each_movie_liked_at_the_fits_highest_rating():
    model = BiasedBaseline().fit(RATINGS)
    assert model.highest_rating_ == RATINGS.rating.max() == 5.0
    movies = list(MOVIES[:4])
    liked = model.top_n_from_history(pd.DataFrame({"movieId": movies, "rating": 5.0}), n=5)
    pd.testing.assert_frame_equal(model.top_n_from_history(movies, n=5), liked)
    disliked = model.top_n_from_history(pd.DataFrame({"movieId": movies, "rating": 1.0}), n=5)
    assert disliked.movieId.tolist() == liked.movieId.tolist()  # biases shift every movie alike
    assert (disliked.score.to_numpy() < liked.score.to_numpy()).all()


def test_baseline_history_scores_fold_in_the_visitors_bias():
    model = BiasedBaseline().fit(RATINGS)
    history = pd.DataFrame({"movieId": MOVIES[:3], "rating": [4.0, 2.0, 5.0]})
    mu, bias = model.global_mean_, model.item_bias_
    residual = history.rating.to_numpy() - mu - bias[:3]
    expected = mu + residual.sum() / (3 + 15.0) + bias
    np.testing.assert_allclose(model.score_history(history, MOVIES), expected)


def test_highest_rating_is_saved_and_old_folders_load_with_the_default(tmp_path):
    ratings = RATINGS.assign(rating=RATINGS.rating.clip(upper=4.0))
    model = BiasedBaseline().fit(ratings)
    model.save(tmp_path / "new")
    assert BiasedBaseline.load(tmp_path / "new").highest_rating_ == 4.0
    assert model.scoring_copy().highest_rating_ == 4.0
    # a folder written the way models were saved before the highest rating was kept
    with atomic_folder(tmp_path / "old") as folder:
        arrays = state_arrays(model.users_, model.items_, model.seen_)
        arrays.update({f"model_{k}": v for k, v in model._get_arrays().items()})
        write_params(folder, model, params=model.get_params(), extra=model._get_extra())
        write_arrays(folder, arrays)
    assert "highest_rating" not in json.loads((tmp_path / "old" / "params.json").read_text())["extra"]
    old = BiasedBaseline.load(tmp_path / "old")
    assert old.highest_rating_ == 5.0
    pd.testing.assert_frame_equal(old.top_n(n=3), model.top_n(n=3))
