import numpy as np
import pandas as pd
import pytest

surprise = pytest.importorskip("surprise")

from benchmarks._reference import surprise_faq_top_n
from movierec import SurpriseSVD, TuneResult
from movierec.exceptions import BackendError, DataValidationError, InvalidParameterError, NotFittedError
from movierec.testing import RecommenderContract, synthetic_ratings

SMALL = {"n_factors": 5, "n_epochs": 10, "random_state": 0}
# Learns fast and unregularized, so many estimates clip to 1 or 5: ties for the top-N tie-break.
CLIPPING = {"n_factors": 5, "n_epochs": 40, "lr_all": 0.02, "reg_all": 0.0, "random_state": 0}


class TestSurpriseSVDContract(RecommenderContract):
    def make_model(self):
        return SurpriseSVD(**SMALL)


def surprise_svd(ratings, rating_scale=None, **params):
    """Return Surprise's own SVD fitted on ``ratings`` (rows in their order)."""
    scale = rating_scale or (ratings.rating.min(), ratings.rating.max())
    data = surprise.Dataset.load_from_df(ratings[["userId", "movieId", "rating"]], surprise.Reader(rating_scale=scale))
    return surprise.SVD(**params).fit(data.build_full_trainset())


@pytest.fixture(scope="module")
def shuffled():
    # Shuffled rows: first-appearance order (Surprise's inner ids) differs from id order.
    return synthetic_ratings().sample(frac=1.0, random_state=3).reset_index(drop=True)


# -- predictions equal Surprise's --------------------------------------------------------------------
@pytest.mark.parametrize(
    "params",
    [SMALL, {**SMALL, "biased": False}, CLIPPING, {**SMALL, "rating_scale": (0.5, 5.5)}],
    ids=["biased", "unbiased", "clipping", "given-scale"],
)
def test_predict_equals_surprise_predict_est(shuffled, params):
    params = dict(params)
    scale = params.pop("rating_scale", None)
    model = SurpriseSVD(**params, rating_scale=scale).fit(shuffled)
    algo = surprise_svd(shuffled, rating_scale=scale, **params)
    users, items = shuffled.userId.unique(), shuffled.movieId.unique()
    # every (user, movie) combination: the training pairs and all the unseen ones
    pairs = pd.DataFrame([(u, i) for u in users for i in items], columns=["userId", "movieId"])
    expected = [algo.predict(u, i).est for u, i in pairs.itertuples(index=False)]
    np.testing.assert_allclose(model.predict(pairs), expected, rtol=1e-12, atol=1e-12)
    if params.get("lr_all"):
        assert (model.predict(pairs) == 5.0).any(), "the clipping case should reach the top of the scale"


def test_unknown_ids_give_nan_where_surprise_falls_back(shuffled):
    model = SurpriseSVD(**SMALL).fit(shuffled)
    algo = surprise_svd(shuffled, **SMALL)
    user, movie = shuffled.userId.iloc[0], shuffled.movieId.iloc[0]
    pairs = pd.DataFrame({"userId": [-5, user, -5], "movieId": [movie, -9, -9]})
    assert model.predict(pairs).isna().all()
    assert all(algo.predict(u, i).details["was_impossible"] is False for u, i in [(-5, movie), (user, -9)])
    assert algo.predict(-5, -9).est == pytest.approx(algo.trainset.global_mean)


def test_string_ids_match_surprise():
    ratings = synthetic_ratings(n_users=15, n_items=20, seed=2)
    ratings = ratings.assign(userId="u" + ratings.userId.astype(str), movieId="m" + ratings.movieId.astype(str))
    model = SurpriseSVD(**SMALL).fit(ratings)
    algo = surprise_svd(ratings, **SMALL)
    expected = [algo.predict(u, i).est for u, i in ratings[["userId", "movieId"]].itertuples(index=False)]
    np.testing.assert_allclose(model.predict(ratings), expected, rtol=1e-12)


# -- top_n equals the FAQ recipe -------------------------------------------------------------------
@pytest.mark.parametrize("params", [SMALL, CLIPPING], ids=["small", "clipping-ties"])
def test_top_n_equals_faq_recipe(shuffled, params):
    n = 5
    model = SurpriseSVD(**params).fit(shuffled)
    ours = model.top_n(n=n)
    recipe = surprise_faq_top_n(surprise_svd(shuffled, **params), n)
    assert set(ours.userId) == set(recipe)
    for uid, items in recipe.items():
        mine = ours[ours.userId == uid]
        # same movies in the same order (ties included), same clipped scores
        assert mine.movieId.tolist() == [i for i, _ in items], f"user {uid}"
        np.testing.assert_allclose(mine.score, [est for _, est in items], rtol=1e-12)


def test_ties_break_by_first_appearance_not_by_movie_id():
    ratings = pd.DataFrame(
        {"userId": [1, 1, 2, 2, 3], "movieId": [30, 10, 20, 30, 10], "rating": [5.0, 5.0, 5.0, 5.0, 5.0]}
    )
    # every rating is 5, so the scale from the data is (5, 5): all estimates clip to 5 and the
    # order is the tie-break alone (first appearance: 30, 10, 20), as in Surprise's recipe
    model = SurpriseSVD(n_factors=2, n_epochs=5, random_state=0).fit(ratings)
    top = model.top_n(users=[3], n=2)
    assert top.movieId.tolist() == [30, 20]
    assert (top.score == 5.0).all()
    assert [i for i, _ in surprise_faq_top_n(surprise_svd(ratings, n_factors=2, n_epochs=5, random_state=0), 2)[3]] == [30, 20]


# -- save / load ------------------------------------------------------------------------------------
def test_loaded_model_predicts_identically_without_surprise_state(shuffled, tmp_path):
    model = SurpriseSVD(**CLIPPING, rating_scale=(1, 5)).fit(shuffled)
    model.save(tmp_path / "svd")
    assert sorted(p.name for p in (tmp_path / "svd").iterdir()) == ["arrays.npz", "manifest.json", "params.json"]
    with np.load(tmp_path / "svd" / "arrays.npz", allow_pickle=False) as arrays:
        assert {"model_user_factors", "model_item_factors", "model_user_bias", "model_item_bias"} <= set(arrays.files)
    loaded = SurpriseSVD.load(tmp_path / "svd")
    assert loaded.get_params() == {**model.get_params(), "rating_scale": [1, 5]}  # JSON keeps lists
    assert loaded.rating_scale_ == (1.0, 5.0)
    pairs = pd.DataFrame({"userId": np.repeat(shuffled.userId.unique()[:10], 5), "movieId": np.tile(shuffled.movieId.unique()[:5], 10)})
    pd.testing.assert_series_equal(loaded.predict(pairs), model.predict(pairs))
    pd.testing.assert_frame_equal(loaded.top_n(n=5), model.top_n(n=5))
    assert not any(type(v).__module__.startswith("surprise") for v in vars(loaded).values())


# -- parameters -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "bad",
    [
        {"n_factors": 0},
        {"n_factors": 2.5},
        {"n_epochs": True},
        {"lr_all": 0.0},
        {"lr_all": float("nan")},
        {"reg_all": -0.1},
        {"biased": "yes"},
        {"random_state": -1},
        {"random_state": 2**32},
        {"random_state": 1.5},
        {"random_state": np.random.default_rng(0)},
        {"rating_scale": (5, 1)},
        {"rating_scale": (1, 2, 3)},
        {"rating_scale": "1-5"},
    ],
)
def test_bad_parameters_are_stored_then_rejected_by_fit(bad):
    (name, value), = bad.items()
    model = SurpriseSVD(**bad)
    assert model.get_params()[name] is value
    with pytest.raises(InvalidParameterError, match=rf"^SurpriseSVD: {name} must be .*, got ") as caught:
        model.fit(synthetic_ratings(n_users=5, n_items=6))
    assert str(caught.value).endswith(f"got {value!r}")
    with pytest.raises(NotFittedError):
        model.predict(synthetic_ratings(n_users=5, n_items=6))


def test_random_state_bounds_follow_the_package_rule():
    ratings = synthetic_ratings(n_users=5, n_items=6)
    for seed in (-1, 2**32):
        with pytest.raises(InvalidParameterError) as caught:
            SurpriseSVD(n_factors=2, n_epochs=1, random_state=seed).fit(ratings)
        assert str(caught.value) == (
            f"SurpriseSVD: random_state must be None or an int in [0, 4294967295], got {seed}"
        )
    SurpriseSVD(n_factors=2, n_epochs=1, random_state=2**32 - 1).fit(ratings)  # the largest seed is fine


def test_a_scale_read_back_as_a_list_is_accepted():
    ratings = synthetic_ratings(n_users=8, n_items=10)
    as_list = SurpriseSVD(**SMALL, rating_scale=[1, 5]).fit(ratings)
    as_tuple = SurpriseSVD(**SMALL, rating_scale=(1.0, 5.0)).fit(ratings)
    assert as_list.rating_scale_ == (1.0, 5.0)
    pd.testing.assert_series_equal(as_list.predict(ratings), as_tuple.predict(ratings))


def test_ratings_outside_a_given_scale_raise():
    ratings = synthetic_ratings(n_users=5, n_items=6)
    with pytest.raises(DataValidationError, match="rating_scale"):
        SurpriseSVD(rating_scale=(1, 4)).fit(ratings.assign(rating=ratings.rating.clip(2, 5)))


def test_scale_from_data_and_random_state_none_leaves_global_rng_alone():
    ratings = synthetic_ratings(n_users=10, n_items=12).assign(rating=lambda f: f.rating.clip(2, 4))
    state = np.random.get_state()
    model = SurpriseSVD(n_factors=3, n_epochs=3).fit(ratings)
    after = np.random.get_state()
    assert state[0] == after[0] and np.array_equal(state[1], after[1]) and state[2:] == after[2:]
    assert model.rating_scale_ == (2.0, 4.0)
    assert model.predict(ratings).between(2.0, 4.0).all()


def test_diverging_sgd_raises_backend_error():
    with pytest.raises(BackendError, match="diverged"):
        SurpriseSVD(n_factors=5, n_epochs=30, lr_all=5.0, random_state=0).fit(synthetic_ratings())


# -- tune -------------------------------------------------------------------------------------------
def test_tune_returns_best_grid_point_and_refits():
    ratings = synthetic_ratings()
    grid = {"n_factors": [2, 8], "reg_all": [0.02, 0.5]}
    before = {k: list(v) for k, v in grid.items()}
    model = SurpriseSVD(n_epochs=10, random_state=0)
    result = model.tune(ratings, grid, folds=3)
    assert grid == before
    assert isinstance(result, TuneResult)
    assert result.metric == "rmse"
    assert set(result.best_params) == set(grid)
    assert all(result.best_params[k] in grid[k] for k in grid)
    assert 0 < result.best_score < 2
    assert {k: model.get_params()[k] for k in grid} == result.best_params
    # every candidate, its values and its score; the best row is the chosen one
    assert list(result.results.columns) == ["n_factors", "reg_all", "rmse"]
    assert sorted(map(tuple, result.results[["n_factors", "reg_all"]].to_numpy().tolist())) == [
        (2, 0.02), (2, 0.5), (8, 0.02), (8, 0.5)
    ]
    best_row = result.results.loc[result.results.rmse.idxmin()]
    assert {k: best_row[k] for k in grid} == result.best_params
    assert best_row.rmse == result.best_score
    fresh = SurpriseSVD(**model.get_params()).fit(ratings)
    np.testing.assert_array_equal(model.predict(ratings), fresh.predict(ratings))
    # the same search straight in Surprise finds the same point with the same score
    ms = surprise.model_selection
    data = surprise.Dataset.load_from_df(ratings[["userId", "movieId", "rating"]], surprise.Reader(rating_scale=(1, 5)))
    search = ms.GridSearchCV(
        surprise.SVD, {**grid, "n_epochs": [10], "random_state": [0]}, measures=["rmse"], cv=ms.KFold(3, random_state=0)
    )
    search.fit(data)
    assert {k: search.best_params["rmse"][k] for k in grid} == result.best_params
    assert search.best_score["rmse"] == pytest.approx(result.best_score, rel=1e-12)


def test_tune_on_mae_scores_every_candidate_under_that_name():
    ratings = synthetic_ratings(n_users=15, n_items=20)
    result = SurpriseSVD(n_epochs=5, random_state=0).tune(ratings, {"biased": [True, False]}, metric="mae")
    assert result.metric == "mae"
    assert list(result.results.columns) == ["biased", "mae"]
    assert sorted(result.results.biased) == [False, True]
    assert result.best_score == result.results.mae.min()


def test_tune_checks_its_arguments():
    ratings = synthetic_ratings(n_users=8, n_items=10)
    model = SurpriseSVD(n_epochs=2, random_state=0)
    bad_grids = {
        "grid": ({}, [("n_factors", [2])]),
        "cannot be tuned": ({"random_state": [1, 2]}, {"nfactors": [2]}),
        "non-empty list": ({"n_factors": []}, {"n_factors": 5}, {"n_factors": "25"}),
        "n_factors must be a positive int, got 0": ({"n_factors": [0]}, {"n_factors": (x for x in [4, 0])}),
    }
    for message, grids in bad_grids.items():
        for grid in grids:
            with pytest.raises(InvalidParameterError, match=f"^SurpriseSVD.tune: .*{message}"):
                model.tune(ratings, grid)
    with pytest.raises(InvalidParameterError, match="folds must be an int >= 2, got 1"):
        model.tune(ratings, {"n_factors": [2]}, folds=1)
    with pytest.raises(InvalidParameterError, match="metric"):
        model.tune(ratings, {"n_factors": [2]}, metric="auc")
    with pytest.raises(InvalidParameterError, match="SurpriseSVD: lr_all"):
        SurpriseSVD(lr_all=-1.0).tune(ratings, {"n_factors": [2]})
    with pytest.raises(DataValidationError, match="rating"):
        model.tune(ratings.drop(columns="rating"), {"n_factors": [2]})
    with pytest.raises(NotFittedError):
        model.predict(ratings)


def test_public_name_is_lazy_attribute():
    import movierec

    assert movierec.SurpriseSVD is SurpriseSVD


# -- real data --------------------------------------------------------------------------------------
@pytest.mark.realdata
def test_u1_rmse_equals_surprise_svd(u1):
    model = SurpriseSVD(random_state=0).fit(u1.train)
    scorable = model.predict(u1.test).notna().to_numpy()
    ours = model.rmse(u1.test[scorable])
    algo = surprise_svd(u1.train, random_state=0)
    test = u1.test[scorable][["userId", "movieId", "rating"]]
    reference = surprise.accuracy.rmse(algo.test(list(test.itertuples(index=False))), verbose=False)
    assert abs(ours - reference) < 0.001
    assert ours <= 0.96


@pytest.mark.realdata
@pytest.mark.slow
def test_u1_top5_sets_agree_with_faq_recipe(u1):
    model = SurpriseSVD(random_state=0).fit(u1.train)
    ours = model.top_n(n=5).groupby("userId")["movieId"].apply(frozenset)
    recipe = surprise_faq_top_n(surprise_svd(u1.train, random_state=0), 5)
    agree = np.mean([ours[uid] == frozenset(i for i, _ in items) for uid, items in recipe.items()])
    assert len(recipe) == 943
    assert agree >= 0.99


def test_failed_fit_leaves_the_model_unfitted():
    ratings = synthetic_ratings()
    model = SurpriseSVD(**SMALL).fit(ratings)
    model.set_params(lr_all=5.0, n_epochs=30)
    with pytest.raises(BackendError):
        model.fit(ratings)
    with pytest.raises(NotFittedError):
        model.predict(ratings)


def test_invalid_refit_input_keeps_the_fitted_model():
    ratings = synthetic_ratings()
    model = SurpriseSVD(**SMALL).fit(ratings)
    before = model.predict(ratings)
    with pytest.raises(DataValidationError):
        model.fit(ratings.drop(columns="rating"))
    with pytest.raises(InvalidParameterError):
        model.set_params(n_factors=0).fit(ratings)
    pd.testing.assert_series_equal(model.predict(ratings), before)


def test_clips_to_the_declared_scale_and_refuses_a_stray_rating():
    from movierec._core.validation import declare_scale

    def small_ratings() -> pd.DataFrame:  # 3 users x 4 movies, rated 1-5 (and one 3.5)
        users, movies = np.meshgrid([1, 2, 3], [10, 20, 30, 40], indexing="ij")
        rating = np.array([5, 4, 1, 2, 3, 3.5, 2, 5, 1, 1, 4, 5], dtype=float)
        return pd.DataFrame({"userId": users.ravel(), "movieId": movies.ravel(), "rating": rating})

    ratings = declare_scale(small_ratings(), (0.5, 5))
    model = SurpriseSVD(n_factors=2, n_epochs=3, random_state=0).fit(ratings)
    assert model.rating_scale_ == (0.5, 5.0)  # the frame's scale, not its range (1, 5)
    ratings.loc[0, "rating"] = 6.0
    with pytest.raises(DataValidationError, match="outside"):
        SurpriseSVD(n_factors=2, n_epochs=3, random_state=0).fit(ratings)
    with pytest.raises(DataValidationError, match=r"outside rating_scale \(1, 5\)"):
        SurpriseSVD(rating_scale=(1, 5), n_epochs=3).fit(small_ratings().assign(rating=6.0))
