"""Popularity and EASE: the ranking models, under the Recommender contract and against known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from movierec import EASE, InvalidParameterError, Popularity, official_folds
from movierec.exceptions import DataValidationError, ModelFileError, MovieRecWarning
from movierec.metrics import model_error, ndcg_at_k
from movierec.testing import RecommenderContract, synthetic_ratings


class _RankingContract(RecommenderContract):
    # Ranking models score relevance, not ratings: "learns" means it ranks held-out movies better
    # than random lists of unseen movies do, not a lower RMSE.
    def test_learns_better_than_a_constant(self, ratings, fitted):
        from movierec.data.split import stratified_split

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

    def test_weights_are_float32_from_float32_items_and_rank_as_float64(self):
        ratings = synthetic_ratings(seed=2)
        exact = EASE(l2=5.0).fit(ratings)
        single = EASE(l2=5.0)
        single.float32_items = 10  # 60 movies: float32 from here
        single.fit(ratings)
        assert exact.B_.dtype == np.float64 and single.B_.dtype == np.float32
        assert np.allclose(single.B_, exact.B_, atol=1e-5)
        pd.testing.assert_frame_equal(single.top_n(n=5)[["userId", "movieId"]], exact.top_n(n=5)[["userId", "movieId"]])


class TestEASEOnItsMostRatedMovies(_RankingContract):
    """A catalogue over max_items: B covers the most-rated movies only (the contract, save/load included)."""

    def make_model(self):
        return EASE(l2=10.0, max_items=25)

    def test_keeps_the_most_rated_movies_ties_by_movie_id(self):
        ratings = pd.DataFrame({"userId": [1, 1, 1, 2, 2, 3, 3, 4], "movieId": [50, 40, 30, 50, 40, 20, 10, 30],
                                "rating": 4.0})
        # counts: 50 -> 2, 40 -> 2, 30 -> 2, 20 -> 1, 10 -> 1; three kept: ties among the 2s by movieId
        model = EASE(l2=1.0, max_items=3).fit(ratings)
        assert model.items_.ids[model.kept_].tolist() == [30, 40, 50]
        model = EASE(l2=1.0, max_items=4).fit(ratings)
        assert model.items_.ids[model.kept_].tolist() == [10, 30, 40, 50]

    def test_equals_ease_on_the_kept_movies_and_scores_0_elsewhere(self):
        ratings = synthetic_ratings(seed=4)
        model = EASE(l2=7.0, max_items=20).fit(ratings)
        counts = ratings.movieId.value_counts()
        kept_ids = model.items_.ids[model.kept_]
        assert len(kept_ids) == 20 and counts[kept_ids].min() >= counts.drop(kept_ids).max()
        alone = EASE(l2=7.0).fit(ratings[ratings.movieId.isin(kept_ids)])
        pairs = pd.DataFrame({"userId": np.repeat(alone.users_.ids, len(kept_ids)),
                              "movieId": np.tile(kept_ids, len(alone.users_.ids))})
        assert np.allclose(model.predict(pairs).to_numpy(), alone.predict(pairs).to_numpy())
        others = ratings.movieId.unique()[~np.isin(ratings.movieId.unique(), kept_ids)]
        scores = model.score_matrix(model.users_.ids, others)
        assert scores.shape == (len(model.users_), len(others)) and (scores == 0).all()

    def test_a_saved_model_keeps_its_movies(self, tmp_path):
        model = EASE(l2=3.0, max_items=15).fit(synthetic_ratings(seed=5))
        model.save(tmp_path / "ease")
        loaded = EASE.load(tmp_path / "ease")
        assert np.array_equal(loaded.kept_, model.kept_) and loaded.B_.shape == (15, 15)
        pd.testing.assert_frame_equal(loaded.top_n(n=7), model.top_n(n=7))

    @pytest.mark.parametrize("kept", [[3, 1, 2], [0, 1, 99], [0.0, 1.0, 2.0]])
    def test_a_file_with_bad_kept_movies_is_refused_at_load(self, tmp_path, kept):
        path = tmp_path / "ease"
        EASE(l2=3.0, max_items=3).fit(synthetic_ratings(seed=5)).save(path)
        _rewrite_arrays(path, model_kept=np.array(kept))
        with pytest.raises(ModelFileError, match="kept"):
            EASE.load(path)


def _rewrite_arrays(path, drop=(), **arrays):
    """Change arrays.npz of a saved model folder and re-sign its manifest (as a hostile file would)."""
    from movierec._core import folder as _folder

    with np.load(path / "arrays.npz", allow_pickle=False) as data:
        saved = {k: data[k] for k in data.files if k not in drop}
    np.savez(path / "arrays.npz", **{**saved, **arrays})
    _folder.write_manifest(path)


def test_ease_files_saved_before_kept_existed_load_as_the_whole_catalogue(tmp_path):
    model = EASE(l2=3.0).fit(synthetic_ratings(seed=7))
    model.save(tmp_path / "ease")
    _rewrite_arrays(tmp_path / "ease", drop=("model_kept",))
    loaded = EASE.load(tmp_path / "ease")
    assert np.array_equal(loaded.kept_, np.arange(len(model.items_)))
    pd.testing.assert_frame_equal(loaded.top_n(n=4), model.top_n(n=4))


def test_ease_gram_and_inverse_in_blocks_equal_the_dense_ones(monkeypatch):
    import movierec.models.ease as ease_module

    monkeypatch.setattr(ease_module, "_GRAM_BLOCK_CELLS", 70)  # 60 movies: blocks of one column
    ratings = synthetic_ratings(seed=6)
    model = EASE(l2=4.0).fit(ratings)
    X = model.seen_.toarray().astype(float)
    P = np.linalg.inv(X.T @ X + 4.0 * np.eye(X.shape[1]))
    assert model.B_.flags.c_contiguous
    assert np.allclose(model.B_, (P / -np.diag(P)) * ~np.eye(len(P), dtype=bool))


@settings(max_examples=25, deadline=None)
@given(st.integers(8, 30), st.integers(6, 25), st.integers(1, 25), st.floats(0.5, 50.0))
def test_ease_over_max_items_is_ease_on_the_kept_movies(n_users, n_items, max_items, l2):
    ratings = synthetic_ratings(n_users=n_users, n_items=n_items, seed=n_items)
    model = EASE(l2=l2, max_items=max_items).fit(ratings)
    kept_ids = model.items_.ids[model.kept_]
    assert len(kept_ids) == min(max_items, ratings.movieId.nunique())
    full = model.score_matrix(model.users_.ids, model.items_.ids)
    alone = EASE(l2=l2).fit(ratings[ratings.movieId.isin(kept_ids)])
    block = alone.score_matrix(model.users_.ids, kept_ids)
    # users who rated no kept movie are unknown to `alone` (NaN) and score 0 in `model`
    assert np.allclose(full[:, model.kept_], np.nan_to_num(block, nan=0.0))
    assert (np.delete(full, model.kept_, axis=1) == 0).all()


class TestEASETune:
    def test_tune_returns_a_tune_result_and_fits_the_best(self):
        model = EASE()
        result = model.tune(synthetic_ratings(), {"l2": [1.0, 30.0, 1000.0]}, metric="ndcg@5")
        assert result.metric == "ndcg@5"
        assert list(result.results.l2) == [1.0, 30.0, 1000.0]
        assert result.best_score == result.results["ndcg@5"].max()
        assert model.l2 == result.best_params["l2"] and hasattr(model, "B_")
        # refit=False sets the chosen l2 and leaves the model unfitted, with the same search
        unfitted = EASE()
        again = unfitted.tune(synthetic_ratings(), {"l2": [1.0, 30.0, 1000.0]}, metric="ndcg@5", refit=False)
        assert unfitted.l2 == result.best_params["l2"] and not hasattr(unfitted, "B_")
        pd.testing.assert_frame_equal(again.results, result.results)

    def test_tune_without_a_user_of_two_ratings_says_so(self):
        one_each = pd.DataFrame({"userId": range(10), "movieId": [i % 3 for i in range(10)], "rating": 4.0})
        with pytest.raises(DataValidationError, match="at least two ratings"):
            EASE().tune(one_each)

    def test_tune_builds_the_gram_matrix_once(self, monkeypatch):
        built = []
        original = EASE._gram_of
        monkeypatch.setattr(EASE, "_gram_of", lambda model, kept: built.append(len(kept)) or original(model, kept))
        model = EASE()
        model.tune(synthetic_ratings(), {"l2": [1.0, 30.0, 1000.0]}, refit=False)
        assert len(built) == 1 and getattr(model, "_kept_gram", None) is None  # no Gram matrix is kept

    def test_tune_at_scale_compares_candidates_on_sampled_users_and_popular_movies(self):
        from movierec.data.split import sample_users, stratified_split
        from movierec.metrics import model_error

        ratings = synthetic_ratings(n_users=60, n_items=40, seed=3)
        grid = {"l2": [0.5, 5.0, 50.0]}
        small = EASE(max_items=30).tune(ratings, grid, max_users=12, max_items=20, random_state=4)
        # by hand: the same split, 12 of its validation users, candidates on the 20 most-rated movies
        train, valid = stratified_split(ratings, 0.1, random_state=4)
        valid = sample_users(valid[valid.userId.isin(train.userId)], 12, 4)
        assert valid.userId.nunique() == 12
        expected = [1 - model_error(EASE(l2=v, max_items=20).fit(train), valid, "ndcg@10") for v in grid["l2"]]
        assert np.allclose(small.results["ndcg@10"], expected)
        # ml-100k-sized data are searched whole: no sample, every movie
        whole = EASE().tune(ratings, grid, random_state=4)
        train, valid = stratified_split(ratings, 0.1, random_state=4)
        valid = valid[valid.userId.isin(train.userId)]
        assert np.allclose(whole.results["ndcg@10"],
                           [1 - model_error(EASE(l2=v).fit(train), valid, "ndcg@10") for v in grid["l2"]])
        # the chosen l2 is refitted with the model's own max_items
        model = EASE(max_items=30)
        model.tune(ratings, grid, max_users=12, max_items=20, random_state=4)
        assert len(model.kept_) == 30


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


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 30), st.integers(1, 40), st.booleans(), st.integers(0, 5))
def test_ease_top_n_over_max_items_equals_ranking_the_whole_catalogue(max_items, n, exclude_seen, seed):
    # EASE.top_n ranks the kept movies and merges the zero-scored rest; the base class scores every movie
    from movierec.base import ArrayRecommender

    model = EASE(l2=2.0, max_items=max_items).fit(synthetic_ratings(n_users=25, n_items=30, seed=seed))
    users = model.users_.ids[::2]
    pd.testing.assert_frame_equal(model.top_n(users, n, exclude_seen=exclude_seen),
                                  ArrayRecommender.top_n(model, users, n, exclude_seen=exclude_seen))


@pytest.mark.parametrize(
    ("grid", "options"),
    [({"l2": []}, {}), ({"alpha": [1.0]}, {}), ({"l2": [-1.0]}, {}), (None, {"validation_size": 1.5}),
     (None, {"metric": "auc@3"}), (None, {"random_state": -1}), (None, {"max_users": 0}), (None, {"max_items": 1.5}),
     (None, {"refit": "yes"})],
)
def test_ease_tune_refuses_bad_options_with_invalid_parameter_error(grid, options):
    with pytest.raises(InvalidParameterError):
        EASE().tune(synthetic_ratings(), grid, **options)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 40), st.booleans(), st.floats(0.05, 0.9), st.booleans())
def test_popularity_top_n_equals_scoring_the_whole_catalogue(seed, n, exclude_seen, density, some_users):
    from movierec.base import ArrayRecommender

    rng = np.random.default_rng(seed)
    ratings = synthetic_ratings(n_users=int(rng.integers(1, 30)), n_items=int(rng.integers(1, 30)), density=density,
                                seed=int(rng.integers(0, 1000)))
    model = Popularity().fit(ratings)  # few movies: many count ties, broken by movieId
    users = sorted(rng.choice(ratings.userId.unique(), size=3)) if some_users else None
    fast = model.top_n(users, n=n, exclude_seen=exclude_seen)
    scored = ArrayRecommender.top_n(model, users, n=n, exclude_seen=exclude_seen)  # every movie scored per user
    pd.testing.assert_frame_equal(fast.reset_index(drop=True), scored.reset_index(drop=True))


def test_ease_tune_goes_on_doubling_while_the_largest_default_l2_is_best(monkeypatch):
    from movierec.models import ease as ease_module

    ratings = synthetic_ratings(n_users=40, n_items=30, seed=2)
    # a metric that always prefers a larger l2: the default grid is extended up to _MAX_GRID values
    monkeypatch.setattr("movierec.metrics.model_error", lambda model, valid, metric: 1.0 / (1.0 + model.l2))
    result = EASE().tune(ratings, refit=False)
    assert list(result.results.l2) == [50.0 * 2**i for i in range(ease_module._MAX_GRID)]
    assert result.best_params["l2"] == 50.0 * 2 ** (ease_module._MAX_GRID - 1)
    # a best value inside the grid stops it at 8; a given grid is never extended
    monkeypatch.setattr("movierec.metrics.model_error", lambda model, valid, metric: abs(model.l2 - 800.0))
    assert len(EASE().tune(ratings, refit=False).results) == 8
    monkeypatch.setattr("movierec.metrics.model_error", lambda model, valid, metric: 1.0 / (1.0 + model.l2))
    assert list(EASE().tune(ratings, {"l2": [1.0, 2.0]}, refit=False).results.l2) == [1.0, 2.0]


def test_unknown_users_are_named_by_their_plain_ids():
    model = Popularity().fit(synthetic_ratings())
    with pytest.warns(MovieRecWarning, match=r"e\.g\. \[9000, 9001\]"):  # not np.int64(9000)
        assert model.top_n(np.array([9000, 9001]), n=2).empty
