"""WeightedEnsemble and a visitor's history: its members' answers blended as top_n blends their scores."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from movierec import EASE, BiasedBaseline, Popularity, WeightedEnsemble
from movierec.ensemble._blend import weighted_z
from movierec.exceptions import DataValidationError, MovieRecWarning
from movierec.testing import synthetic_ratings

RATINGS = synthetic_ratings(n_users=30, n_items=50, seed=5)
USERS = RATINGS.userId.unique()
MOVIES = np.sort(RATINGS.movieId.unique())


def _fit(members, **params) -> WeightedEnsemble:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MovieRecWarning)
        return WeightedEnsemble(members, metric="ndcg@10", random_state=0, **params).fit(RATINGS)


RANKING = _fit([EASE(l2=20.0), Popularity()])
FORWARD = _fit([EASE(l2=20.0), Popularity()], select="forward")


@pytest.mark.parametrize("ensemble", [RANKING, FORWARD], ids=["all", "forward"])
@settings(max_examples=20, deadline=None)
@given(user=st.sampled_from(list(USERS)), n=st.integers(1, 50))
def test_a_fitted_users_own_history_gives_the_ensembles_top_n(ensemble, user, n):
    expected = ensemble.top_n(users=[user], n=n)
    got = ensemble.top_n_from_history(RATINGS[RATINGS.userId == user], n=n, user=user)
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)  # movies, order and scores, exactly


def _blend_of(ensemble, scores_of) -> np.ndarray:
    """Return sum_m w_m z_m of each member's raw scores ``scores_of(member)``: top_n's formula."""
    return sum(weighted_z(scores_of(m), ensemble.score_mean_[p], ensemble.score_std_[p], ensemble.weights_[p])
               for p, m in enumerate(ensemble.models_))


@settings(max_examples=30, deadline=None)
@given(history=st.lists(st.sampled_from(list(MOVIES)), min_size=1, max_size=12, unique=True),
       target=st.sampled_from(list(MOVIES)))
def test_explain_sums_to_the_blended_score_minus_the_blend_of_empty_history_scores(history, target):
    reasons = RANKING.explain(history, target)
    full = RANKING.score_history(history, [target])[0]
    # EASE scores an empty history 0, Popularity its counts whatever the history
    empty = _blend_of(RANKING, lambda m: np.zeros(1) if isinstance(m, EASE) else m.item_count_[m.items_.lookup([target])])
    assert reasons.contribution.sum() == pytest.approx(full - empty[0], rel=1e-10, abs=1e-10)
    ease = RANKING.models_[0].explain(history, target).set_index("movieId").contribution
    expected = ease / RANKING.score_std_[0] * RANKING.weights_[0]
    got = reasons.set_index("movieId").contribution
    np.testing.assert_allclose(got[expected.index], expected, rtol=1e-12)


def test_score_history_is_top_ns_blend_of_the_members_history_scores():
    history = list(MOVIES[:7])
    blended = _blend_of(RANKING, lambda m: m.score_history(history, MOVIES))
    np.testing.assert_allclose(RANKING.score_history(history, MOVIES), blended, rtol=1e-12)
    top = RANKING.top_n_from_history(history, n=len(MOVIES))
    scores = pd.Series(blended, index=MOVIES)
    np.testing.assert_allclose(top.score, scores[top.movieId].to_numpy(), rtol=1e-12)
    assert not set(top.movieId) & set(history)


def test_similar_items_standardizes_the_members_that_can_compare_movies():
    movie = MOVIES[3]
    ease = RANKING.models_[0]
    raw = ease.similar_items(movie, n=len(MOVIES)).set_index("movieId").similarity
    z = (raw - raw.mean()) / raw.std(ddof=0) * RANKING.weights_[0]  # Popularity cannot, and adds nothing
    expected = z.sort_values(ascending=False, kind="stable")
    got = RANKING.similar_items(movie, n=5)
    assert got.movieId.tolist() == list(expected.index[:5])
    np.testing.assert_allclose(got.similarity, expected.iloc[:5], rtol=1e-10)


def test_similar_items_without_a_member_that_can_compare_movies_says_why():
    ensemble = _fit([BiasedBaseline(), Popularity()], errors=[1.0, 2.0])
    with pytest.raises(NotImplementedError, match="WeightedEnsemble cannot find similar movies.*BiasedBaseline.*Popularity"):
        ensemble.similar_items(MOVIES[0])
    with pytest.raises(DataValidationError, match="-4"):
        RANKING.similar_items(-4)


def test_unknown_movies_warn_once_empty_history_falls_back_and_exclude_applies():
    with pytest.warns(MovieRecWarning, match="2 of 4 history movie.*WeightedEnsemble") as record:
        noisy = RANKING.top_n_from_history([MOVIES[0], -1, MOVIES[5], "x"], n=5, exclude=[MOVIES[9]])
    assert len(record) == 1  # members are asked only about movies the ensemble knows: no second warning
    clean = RANKING.top_n_from_history([MOVIES[0], MOVIES[5]], n=5, exclude=[MOVIES[9]])
    pd.testing.assert_frame_equal(noisy, clean)
    assert MOVIES[9] not in set(clean.movieId)
    counts = RATINGS.movieId.value_counts()
    fallback = RANKING.top_n_from_history([], n=4)
    assert fallback.score.tolist() == counts[fallback.movieId].astype(float).tolist()
    assert fallback.score.iloc[-1] >= counts.drop(fallback.movieId).max()


def test_string_ids_and_a_saved_ensemble(tmp_path):
    ratings = RATINGS.assign(movieId="m" + RATINGS.movieId.astype(str))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MovieRecWarning)
        ensemble = WeightedEnsemble([EASE(l2=20.0), Popularity()], errors=[0.5, 0.9], random_state=0).fit(ratings)
    user = ratings.userId.iloc[0]
    own = ratings[ratings.userId == user]
    pd.testing.assert_frame_equal(ensemble.top_n_from_history(own, n=5, user=user), ensemble.top_n(users=[user], n=5),
                                  check_dtype=False)
    assert ensemble.similar_items(own.movieId.iloc[0], n=3).movieId.str.startswith("m").all()
    ensemble.save(tmp_path / "ensemble")
    loaded = WeightedEnsemble.load(tmp_path / "ensemble")
    pd.testing.assert_frame_equal(loaded.top_n_from_history(own.movieId.tolist(), n=5),
                                  ensemble.top_n_from_history(own.movieId.tolist(), n=5))
