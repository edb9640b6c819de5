"""Popularity and EASE: the ranking models, under the Recommender contract and against known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from movierec import EASE, InvalidParameterError, Popularity, official_folds
from movierec.exceptions import DataValidationError
from movierec.metrics import model_error, ndcg_at_k
from movierec.testing import RecommenderContract, synthetic_ratings


class _RankingContract(RecommenderContract):
    # Ranking models score relevance, not ratings: "learns" means it ranks held-out movies better
    # than random lists of unseen movies do, not a lower RMSE.
    def test_learns_better_than_a_constant(self, ratings, fitted):
        from movierec.split import stratified_split

        train, test = stratified_split(synthetic_ratings(seed=3), 0.2, random_state=0)
        learned = ndcg_at_k(self.make_model().fit(train).top_n(n=5), test, 5)
        rng = np.random.default_rng(0)
        catalogue = train.movieId.unique()
        rows = [
            (user, movie, rank + 1)
            for user, group in train.groupby("userId")
            for rank, movie in enumerate(rng.choice(np.setdiff1d(catalogue, group.movieId), 5, replace=False))
        ]
        random_lists = pd.DataFrame(rows, columns=["userId", "movieId", "rank"])
        assert learned > ndcg_at_k(random_lists, test, 5)


class TestPopularity(_RankingContract):
    def make_model(self):
        return Popularity()

    def test_scores_are_rating_counts_and_lists_skip_seen(self):
        ratings = pd.DataFrame({"userId": [1, 1, 2, 3, 3, 3], "movieId": [10, 20, 10, 10, 20, 30], "rating": 3.0})
        model = Popularity().fit(ratings)
        assert model.predict(pd.DataFrame({"userId": [1, 1, 1], "movieId": [10, 20, 30]})).tolist() == [3, 2, 1]
        top = model.top_n(n=2)
        assert top[top.userId == 2].movieId.tolist() == [20, 30]
        assert top[top.userId == 1].movieId.tolist() == [30]


class TestEASE(_RankingContract):
    def make_model(self):
        return EASE(l2=10.0)

    def test_weights_solve_the_closed_form(self):
        ratings = synthetic_ratings(n_users=30, n_items=12, seed=1)
        model = EASE(l2=3.0).fit(ratings)
        X = model.seen_.toarray().astype(float)
        B = model.B_
        assert np.allclose(np.diag(B), 0)
        # The stationarity condition of min ||X - XB||^2 + l2 ||B||^2 s.t. diag(B) = 0:
        # off the diagonal, (X^T X + l2 I) B = X^T X.
        lhs = (X.T @ X + 3.0 * np.eye(len(B))) @ B
        off = ~np.eye(len(B), dtype=bool)
        assert np.allclose(lhs[off], (X.T @ X)[off])

    def test_predict_equals_full_scores_in_blocks(self):
        model = EASE(l2=5.0).fit(synthetic_ratings())
        rng = np.random.default_rng(0)
        users, items = model.users_.ids, model.items_.ids
        pairs = pd.DataFrame({"userId": rng.choice(users, 500), "movieId": rng.choice(items, 500)})
        full = model.seen_.astype(float) @ model.B_
        expected = np.asarray(full)[model.users_.lookup(pairs.userId), model.items_.lookup(pairs.movieId)]
        assert np.allclose(model.predict(pairs).to_numpy(), expected)

    @pytest.mark.parametrize("bad", [0, -1.0, float("nan"), "500", True])
    def test_bad_l2_is_refused_at_fit(self, bad):
        with pytest.raises(InvalidParameterError, match="l2"):
            EASE(l2=bad).fit(synthetic_ratings())

    def test_large_catalogue_is_refused_with_the_reason(self):
        with pytest.raises(DataValidationError, match="max_items"):
            EASE(max_items=10).fit(synthetic_ratings())

    def test_tune_returns_a_tune_result_and_fits_the_best(self):
        model = EASE()
        result = model.tune(synthetic_ratings(), {"l2": [1.0, 30.0, 1000.0]}, metric="ndcg@5")
        assert result.metric == "ndcg@5"
        assert list(result.results.l2) == [1.0, 30.0, 1000.0]
        assert result.best_score == result.results["ndcg@5"].max()
        assert model.l2 == result.best_params["l2"] and hasattr(model, "B_")


@settings(max_examples=20, deadline=None)
@given(st.integers(5, 15), st.integers(4, 10), st.floats(0.5, 50.0))
def test_ease_scores_are_unchanged_by_relabelling_ids(n_users, n_items, l2):
    ratings = synthetic_ratings(n_users=n_users, n_items=n_items, seed=n_users)
    relabelled = ratings.assign(userId=ratings.userId * 7 + 1, movieId=ratings.movieId.astype(str) + "m")
    a = EASE(l2=l2).fit(ratings)
    b = EASE(l2=l2).fit(relabelled)
    pairs = ratings[["userId", "movieId"]]
    pairs_b = relabelled[["userId", "movieId"]]
    assert np.allclose(a.predict(pairs).to_numpy(), b.predict(pairs_b).to_numpy())


@pytest.mark.realdata
def test_ease_ranks_ml100k_u1_far_above_popularity(data_home):
    fold = official_folds("ml-100k", which=("u1",), data_home=data_home)[0]
    ease = 1 - model_error(EASE().fit(fold.train), fold.test, "ndcg@10")
    popular = 1 - model_error(Popularity().fit(fold.train), fold.test, "ndcg@10")
    assert popular == pytest.approx(0.325, abs=0.005)
    assert ease > 0.55 and ease > 1.6 * popular


@pytest.mark.parametrize(
    ("grid", "options"),
    [({"l2": []}, {}), ({"alpha": [1.0]}, {}), ({"l2": [-1.0]}, {}), (None, {"validation_size": 1.5}),
     (None, {"metric": "auc@3"}), (None, {"random_state": -1})],
)
def test_ease_tune_refuses_bad_options_with_invalid_parameter_error(grid, options):
    with pytest.raises(InvalidParameterError):
        EASE().tune(synthetic_ratings(), grid, **options)
