import itertools

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import sparse

from movierec import SageMakerFM, TuneResult
from movierec.data import features as _features
from movierec.exceptions import BackendError, DataValidationError, InvalidParameterError
from movierec.models.sagemaker_fm import _trainer
from movierec.testing import RecommenderContract, synthetic_ratings

FAST = {"num_factors": 4, "epochs": 30, "mini_batch_size": 64, "random_state": 0}


class TestSageMakerFMContract(RecommenderContract):
    def make_model(self):
        return SageMakerFM(**FAST)


class TestSageMakerFMBinaryContract(RecommenderContract):
    def rmse_target(self, rating):
        return (rating >= 4).astype(float)

    def make_model(self):
        return SageMakerFM(predictor_type="binary_classifier", **FAST)


# -- the FM formula and its gradients --------------------------------------------------------------
def naive_fm(X, w0, w, V):
    """O(k n^2) textbook formula, one row at a time."""
    X = X.toarray()
    out = []
    for x in X:
        pairwise = sum(V[f] @ V[g] * x[f] * x[g] for f, g in itertools.combinations(range(len(x)), 2))
        out.append(w0 + x @ w + pairwise)
    return np.array(out)


@st.composite
def fm_problem(draw):
    n, dim, k = draw(st.integers(1, 5)), draw(st.integers(1, 7)), draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2**32 - 1))
    density = draw(st.sampled_from([0.0, 0.3, 0.7, 1.0]))
    rng = np.random.default_rng(seed)
    X = sparse.random(
        n, dim, density=density, format="csr", random_state=rng, data_rvs=lambda s: rng.normal(size=s)
    )
    return X, float(rng.normal()), rng.normal(size=dim), rng.normal(size=(dim, k))


@settings(max_examples=60, deadline=None)
@given(fm_problem())
def test_fm_predict_equals_the_naive_pairwise_formula(problem):
    X, w0, w, V = problem
    np.testing.assert_allclose(_trainer.fm_predict(X, w0, w, V), naive_fm(X, w0, w, V), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("predictor_type", ["regressor", "binary_classifier"])
def test_batch_gradients_match_finite_differences(predictor_type, rng):
    X = sparse.random(
        6, 5, density=0.5, format="csr", random_state=rng, data_rvs=lambda s: rng.normal(size=s)
    )
    y = rng.integers(0, 2, 6).astype(float) if predictor_type == "binary_classifier" else rng.normal(3, 1, 6)
    w0, w, V = 0.3, rng.normal(size=5), rng.normal(size=(5, 3))
    _loss, g0, gw, gV = _trainer.batch_gradients(X, y, w0, w, V, predictor_type)

    def f(w0_, w_, V_):
        return _trainer.batch_gradients(X, y, w0_, w_, V_, predictor_type)[0]

    h = 1e-6
    assert g0 == pytest.approx((f(w0 + h, w, V) - f(w0 - h, w, V)) / (2 * h), rel=1e-5, abs=1e-6)
    for j in range(5):
        e = np.zeros(5)
        e[j] = h
        assert gw[j] == pytest.approx((f(w0, w + e, V) - f(w0, w - e, V)) / (2 * h), rel=1e-5, abs=1e-6)
        for c in range(3):
            E = np.zeros((5, 3))
            E[j, c] = h
            assert gV[j, c] == pytest.approx(
                (f(w0, w, V + E) - f(w0, w, V - E)) / (2 * h), rel=1e-5, abs=1e-6
            )


def test_scores_split_into_user_and_movie_blocks(rng):
    user_side = sparse.csr_matrix(rng.integers(0, 2, (4, 3)).astype(float))
    item_side = sparse.csr_matrix(rng.integers(0, 2, (5, 2)).astype(float))
    rated_u, rated_i = np.array([1, 1, 0, 1], bool), np.array([1, 0, 1, 1, 1], bool)
    users, items = _features.design_rows(rated_u, rated_i, user_side, item_side)
    dim = 3 + 4 + 3 + 2
    assert users.shape == (4, dim) and items.shape == (5, dim)
    w0, w, V = 0.5, rng.normal(size=dim), rng.normal(size=(dim, 3))
    u, i = np.repeat(np.arange(4), 5), np.tile(np.arange(5), 4)
    direct = _trainer.fm_predict(users[u] + items[i], w0, w, V)
    bu, pu = _trainer.block_terms(users, w, V)
    bi, qi = _trainer.block_terms(items, w, V)
    np.testing.assert_allclose(w0 + bu[u] + bi[i] + np.einsum("nk,nk->n", pu[u], qi[i]), direct, rtol=1e-10)
    assert users[2, :7].nnz == 0  # an unrated user has no one-hot column


# -- the model -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ratings():
    return synthetic_ratings()


def test_one_hot_feature_dim_and_learned_arrays(ratings):
    model = SageMakerFM(**FAST).fit(ratings)
    n = ratings.userId.nunique() + ratings.movieId.nunique()
    assert model.w_.shape == (n,) and model.V_.shape == (n, 4)
    assert model.hyperparameters()["feature_dim"] == n
    assert model.feature_names_[0] == f"user={ratings.userId.min()}"
    # one-hot case: w0 + w_u + w_i + <v_u, v_i>
    u, i = 2, 5
    expected = (
        model.w0_
        + model.w_[u]
        + model.w_[model.users_.ids.size + i]
        + model.V_[u] @ model.V_[model.users_.ids.size + i]
    )
    pair = pd.DataFrame({"userId": [model.users_.ids[u]], "movieId": [model.items_.ids[i]]})
    assert model.predict(pair).iloc[0] == pytest.approx(expected)


def test_hyperparameters_resolve_defaults_with_sagemaker_names():
    hp = SageMakerFM().hyperparameters()
    assert hp["factors_wd"] == 3e-4 and "feature_dim" not in hp and "clip_gradient" not in hp
    assert "backend" not in hp and "random_state" not in hp
    assert SageMakerFM(predictor_type="binary_classifier").hyperparameters()["factors_wd"] == 1.5e-4
    assert SageMakerFM(factors_wd=0.1).hyperparameters()["factors_wd"] == 0.1


def test_same_seed_same_weights_other_seed_other_weights(ratings):
    a = SageMakerFM(**FAST).fit(ratings)
    b = SageMakerFM(**FAST).fit(ratings)
    c = SageMakerFM(**{**FAST, "random_state": 1}).fit(ratings)
    np.testing.assert_array_equal(a.V_, b.V_)
    assert a.w0_ == b.w0_
    assert not np.allclose(a.V_, c.V_)


def test_binary_classifier_gives_probabilities_and_rmse_against_labels(ratings):
    model = SageMakerFM(predictor_type="binary_classifier", **FAST).fit(ratings)
    p = model.predict(ratings)
    assert ((p >= 0) & (p <= 1)).all()
    labels = (ratings.rating >= 4).astype(float)
    assert model.rmse(ratings) == pytest.approx(np.sqrt(np.mean((p - labels) ** 2)))
    assert np.mean((p >= 0.5) == (labels == 1)) > max(labels.mean(), 1 - labels.mean())
    top = model.top_n(n=3)
    assert top.score.between(0, 1).all()


@pytest.mark.parametrize(
    "params, name",
    [
        ({"num_factors": 0}, "num_factors"),
        ({"epochs": 2.5}, "epochs"),
        ({"mini_batch_size": -1}, "mini_batch_size"),
        ({"predictor_type": "ranker"}, "predictor_type"),
        ({"factors_lr": -0.1}, "factors_lr"),
        ({"eps": 0.0}, "eps"),
        ({"bias_init_method": "uniform"}, "bias_init_scale"),
        ({"factors_init_method": "zeros"}, "factors_init_method"),
        ({"linear_wd": float("nan")}, "linear_wd"),
        ({"side_features": "yes"}, "side_features"),
        ({"backend": "spark"}, "backend"),
        ({"random_state": -3}, "random_state"),
        ({"random_state": np.random.default_rng(0)}, "random_state"),  # one rule: a seed or None
        ({"sagemaker": "my-bucket"}, "sagemaker"),
        ({"positive_rating": "4"}, "positive_rating"),
        ({"negatives_per_positive": -1.0}, "negatives_per_positive"),
        ({"negatives_per_positive": 1.0}, "negatives_per_positive"),  # a regressor has no negatives
    ],
)
def test_bad_parameters_raise_in_fit_and_name_the_argument(ratings, params, name):
    model = SageMakerFM(**{**FAST, **params})
    with pytest.raises(InvalidParameterError, match=name):
        model.fit(ratings)
    assert not hasattr(model, "w_")
    with pytest.raises(InvalidParameterError, match=name):  # tune checks them before any work too
        model.tune(ratings, {"epochs": (1, 2)}, max_jobs=1)


# Recorded from the committed code before positive_rating and negatives_per_positive existed:
# the defaults must keep those fits bit for bit. Re-recorded when the local trainer moved to float32
# (issue 17); the float64 trainer gave w0 2.572229036792487 and -0.7625715712257647, the same to 1e-6.
KNOWN_FITS = {
    "regressor": (2.572229308860034, [3.6268267929562494, 3.2098251429539375, 2.636635039092578]),
    "binary_classifier": (-0.7625714801923384, [0.7474263616852752, 0.3845094849393692, 0.14883717447059697]),
}


@pytest.mark.parametrize("predictor_type", ["regressor", "binary_classifier"])
def test_default_fits_are_the_same_as_before_the_negatives_option(ratings, predictor_type):
    model = SageMakerFM(predictor_type=predictor_type, **FAST).fit(ratings)
    w0, predictions = KNOWN_FITS[predictor_type]
    assert model.w0_ == w0
    assert model.predict(ratings.iloc[[0, 7, 42]]).tolist() == predictions
    explicit = SageMakerFM(predictor_type=predictor_type, positive_rating=4.0, negatives_per_positive=0.0, **FAST)
    np.testing.assert_array_equal(explicit.fit(ratings).V_, model.V_)


@pytest.fixture
def training_rows(monkeypatch):
    """The (X, y) of every local fit in the test, in order."""
    seen = []
    original = _trainer.LocalTrainer.fit

    def keep(self, X, y):
        seen.append((X.copy(), np.array(y)))
        return original(self, X, y)

    monkeypatch.setattr(_trainer.LocalTrainer, "fit", keep)
    return seen


def test_negatives_are_added_unrated_and_labelled_zero(ratings, training_rows):
    model = SageMakerFM(
        predictor_type="binary_classifier", positive_rating=None, negatives_per_positive=2.0, **FAST
    ).fit(ratings)
    X, y = training_rows[0]
    n_items = ratings.movieId.nunique()
    rated = ratings.groupby("userId").size()
    n_negatives = int(np.minimum(2 * rated, n_items - rated).sum())
    assert X.shape[0] == len(ratings) + n_negatives and n_negatives < 2 * len(ratings)  # capped by the unseen
    np.testing.assert_array_equal(y, np.r_[np.ones(len(ratings)), np.zeros(n_negatives)])
    # each negative row is the one-hot pair of an unrated (user, movie)
    n_users = len(model.users_)
    users = model.users_.ids[X[len(ratings):, :n_users].nonzero()[1]]
    movies = model.items_.ids[X[len(ratings):, n_users:].nonzero()[1]]
    negatives = set(zip(users.tolist(), movies.tolist()))
    assert len(negatives) == n_negatives and not negatives & set(zip(ratings.userId, ratings.movieId))
    # top_n leaves out the rated movies only: a user's full list is every unrated movie
    user = ratings.userId.iloc[0]
    top = model.top_n(users=[user], n=n_items)
    assert set(top.movieId) == set(ratings.movieId) - set(ratings.movieId[ratings.userId == user])


def test_negatives_keep_low_ratings_as_zeros_and_follow_the_seed(ratings, training_rows):
    params = {**FAST, "predictor_type": "binary_classifier", "negatives_per_positive": 1.0}
    a = SageMakerFM(**params).fit(ratings)
    b = SageMakerFM(**params).fit(ratings)
    SageMakerFM(**{**params, "random_state": 1}).fit(ratings)
    (Xa, ya), (Xb, _), (Xc, _) = training_rows
    liked = (ratings.rating >= 4).groupby(ratings.userId).sum()
    unseen = ratings.movieId.nunique() - ratings.groupby("userId").size()
    n_negatives = int(np.minimum(liked, unseen).sum())  # one per positive, as many as there are unseen
    np.testing.assert_array_equal(ya[: len(ratings)], (ratings.rating >= 4).to_numpy(float))  # as before
    assert len(ya) == len(ratings) + n_negatives and (ya[len(ratings):] == 0).all()
    assert (Xa != Xb).nnz == 0 and (Xa != Xc).nnz > 0  # the negatives come from random_state
    np.testing.assert_array_equal(a.V_, b.V_)
    assert a.rmse(ratings) == pytest.approx(np.sqrt(np.mean((a.predict(ratings) - (ratings.rating >= 4)) ** 2)))


def test_positive_rating_sets_the_labels(ratings, training_rows):
    model = SageMakerFM(predictor_type="binary_classifier", positive_rating=3.0, **FAST).fit(ratings)
    np.testing.assert_array_equal(training_rows[0][1], (ratings.rating >= 3).to_numpy(float))
    labels = (ratings.rating >= 3).astype(float)
    assert model.rmse(ratings) == pytest.approx(np.sqrt(np.mean((model.predict(ratings) - labels) ** 2)))
    implicit = SageMakerFM(predictor_type="binary_classifier", positive_rating=None, **FAST)
    np.testing.assert_array_equal(implicit.prediction_targets(ratings.rating.to_numpy()), np.ones(len(ratings)))
    # a regressor ignores positive_rating
    regressor = SageMakerFM(positive_rating=None, **FAST)
    np.testing.assert_array_equal(regressor.prediction_targets(ratings.rating.to_numpy()), ratings.rating)


def test_negative_options_survive_save_and_load(ratings, tmp_path):
    params = {**FAST, "predictor_type": "binary_classifier", "positive_rating": None, "negatives_per_positive": 1.5}
    model = SageMakerFM(**params).fit(ratings)
    model.save(tmp_path / "fm")
    loaded = SageMakerFM.load(tmp_path / "fm")
    assert loaded.get_params()["positive_rating"] is None
    assert loaded.get_params()["negatives_per_positive"] == 1.5
    np.testing.assert_array_equal(loaded.predict(ratings), model.predict(ratings))
    assert "positive_rating" not in model.hyperparameters()  # they shape the data, SageMaker never sees them


def test_negatives_rank_a_users_kind_of_movie_first():
    """Two groups of users, each rating only its half of the catalogue: trained on seen against
    unseen, the model ranks a user's held-out movies (their half) above the other half."""
    rng = np.random.default_rng(0)
    u, i = np.nonzero((rng.random((40, 60)) < 0.5) & (np.arange(40)[:, None] % 2 == np.arange(60)[None, :] % 2))
    ratings = pd.DataFrame({"userId": u, "movieId": i, "rating": rng.integers(1, 6, len(u)).astype(float)})
    held = ratings.groupby("userId").sample(frac=0.2, random_state=0)
    params = {**FAST, "predictor_type": "binary_classifier", "positive_rating": None, "epochs": 60}
    model = SageMakerFM(**params, negatives_per_positive=1.0).fit(ratings.drop(held.index))
    other_half = pd.DataFrame({"userId": np.repeat(np.arange(40), 30)})
    other_half["movieId"] = 2 * np.tile(np.arange(30), 40) + 1 - other_half.userId % 2
    assert model.predict(held).mean() > model.predict(other_half).mean() + 0.3


def test_feature_dim_that_the_data_does_not_give_is_a_data_error(ratings):
    with pytest.raises(DataValidationError, match="feature_dim=7"):
        SageMakerFM(**{**FAST, "feature_dim": 7}).fit(ratings)


def test_init_methods_uniform_and_constant(ratings):
    model = SageMakerFM(
        **{**FAST, "epochs": 1},
        factors_init_method="constant",
        factors_init_value=0.0,
        linear_init_method="uniform",
        linear_init_scale=0.5,
    ).fit(ratings)
    # constant 0 factors get gradient 0, so V stays 0: only the biases learn
    assert np.all(model.V_ == 0)
    assert np.isfinite(model.w_).all()


def test_config_survives_save_and_load(ratings, tmp_path):
    from movierec.sagemaker import SageMakerConfig

    config = SageMakerConfig("movierec-test-bucket", "arn:aws:iam::123456789012:role/fm", endpoint_url="http://127.0.0.1:1")
    model = SageMakerFM(**FAST, sagemaker=config).fit(ratings)
    model.save(tmp_path / "fm")
    loaded = SageMakerFM.load(tmp_path / "fm")
    assert loaded.get_params()["sagemaker"] == config
    np.testing.assert_allclose(loaded.predict(ratings), model.predict(ratings))


def test_divergence_raises_backend_error(ratings):
    diverged = r"^SageMakerFM: NaN or infinite weights after training \(.* in V\)"
    with pytest.raises(BackendError, match=diverged):
        SageMakerFM(**FAST, factors_init_sigma=1e200).fit(ratings)


# -- side features and cold start ------------------------------------------------------------------
@pytest.fixture(scope="module")
def side(ratings):
    user_ids = np.append(ratings.userId.unique(), 99_999)  # the last user has no ratings
    rng = np.random.default_rng(0)
    users = pd.DataFrame(
        {
            "userId": user_ids,
            "age": rng.integers(10, 70, len(user_ids)),
            "gender": rng.choice(["F", "M"], len(user_ids)),
            "occupation": rng.choice(["writer", "artist", "other"], len(user_ids)),
            "zip": "00000",
        }
    )
    item_ids = np.append(ratings.movieId.unique(), 88_888)  # the last movie has no ratings
    items = pd.DataFrame(
        {
            "movieId": item_ids,
            "title": "x",
            "Action": rng.random(len(item_ids)) < 0.5,
            "Drama": rng.random(len(item_ids)) < 0.5,
        }
    )
    return users, items


def test_side_features_score_cold_start_users_and_movies(ratings, side):
    users, items = side
    cold = pd.DataFrame(
        {
            "userId": [99_999, ratings.userId.iloc[0], 99_999, -1],
            "movieId": [ratings.movieId.iloc[0], 88_888, 88_888, 1],
        }
    )
    plain = SageMakerFM(**FAST).fit(ratings)
    assert plain.predict(cold).isna().all()
    model = SageMakerFM(side_features=True, **FAST).fit(ratings, users=users, items=items)
    predicted = model.predict(cold)
    assert np.isfinite(predicted.iloc[:3]).all() and np.isnan(predicted.iloc[3])
    n_onehot = ratings.userId.nunique() + ratings.movieId.nunique()
    assert len(model.feature_names_) == n_onehot + 7 + 2 + 3 + 2
    assert {"age=<18", "gender=F", "occupation=writer", "genre=Action"} <= set(model.feature_names_)
    top = model.top_n(users=[99_999], n=3)
    assert len(top) == 3
    assert np.isfinite(model.rmse(ratings))


def test_side_features_save_load_round_trip(ratings, side, tmp_path):
    users, items = side
    model = SageMakerFM(side_features=True, **FAST).fit(ratings, users=users, items=items)
    model.save(tmp_path / "fm")
    loaded = SageMakerFM.load(tmp_path / "fm")
    pairs = pd.DataFrame(
        {"userId": [99_999, ratings.userId.iloc[3]], "movieId": [88_888, ratings.movieId.iloc[2]]}
    )
    np.testing.assert_array_equal(loaded.predict(pairs), model.predict(pairs))
    assert loaded.feature_names_ == model.feature_names_
    assert not list((tmp_path / "fm").rglob("*.pkl"))


def test_side_frames_need_the_switch_and_the_switch_needs_frames(ratings, side):
    users, _items = side
    with pytest.raises(DataValidationError, match="side_features=False"):
        SageMakerFM(**FAST).fit(ratings, users=users)
    with pytest.raises(DataValidationError, match="needs users"):
        SageMakerFM(side_features=True, **FAST).fit(ratings)
    with pytest.raises(DataValidationError, match="age"):
        SageMakerFM(side_features=True, **FAST).fit(ratings, users=users[["userId", "zip"]])


def test_rated_ids_missing_from_the_side_frame_warn(ratings, side):
    from movierec.exceptions import MovieRecWarning

    users, _ = side
    with pytest.warns(MovieRecWarning, match="1 rated ids are not in users") as record:
        SageMakerFM(side_features=True, **FAST).fit(ratings, users=users.iloc[1:])
    assert record[0].filename == __file__


def test_item_genres_from_a_genres_string_column():
    items = pd.DataFrame({"movieId": [1, 2, 3], "genres": ["Action|Drama", "Drama", "(no genres listed)"]})
    matrix, names = _features.item_side_features(items, np.array([3, 2, 1, 4]))
    assert names == ["genre=(no genres listed)", "genre=Action", "genre=Drama"]
    np.testing.assert_array_equal(matrix.toarray(), [[1, 0, 0], [0, 0, 1], [0, 1, 1], [0, 0, 0]])


# -- tuning ----------------------------------------------------------------------------------------
def test_tune_random_search_picks_the_best_job_and_refits(ratings):
    model = SageMakerFM(**{**FAST, "epochs": 5})
    ranges = {
        "mini_batch_size": (16, 256),
        "epochs": (2, 10),
        "factors_lr": (1e-4, 1e-1),
        "num_factors": [2, 4],
    }
    result = model.tune(ratings, ranges, max_jobs=4)
    assert isinstance(result, TuneResult)
    table = result.results
    assert len(table) == 4 and result.metric == "test:rmse"
    assert list(table.columns) == [*ranges, "test:rmse"]
    assert result.best_score == table["test:rmse"].min()
    assert table.mini_batch_size.between(16, 256).all() and table.epochs.between(2, 10).all()
    assert table.factors_lr.between(1e-4, 1e-1).all() and set(table.num_factors) <= {2, 4}
    assert {k: getattr(model, k) for k in ranges} == result.best_params
    assert model.V_.shape[1] == result.best_params["num_factors"]
    again = SageMakerFM(**{**FAST, "epochs": 5}).tune(ratings, ranges, max_jobs=4)
    pd.testing.assert_frame_equal(again.results, table)


def test_tune_keeps_the_draws_and_the_choice_of_its_seed(ratings):
    """The figures tune gave before the FM subpackage (seed 0): same split, same draws, same pick."""
    model = SageMakerFM(**{**FAST, "epochs": 5})
    ranges = {"mini_batch_size": (16, 256), "epochs": (2, 10), "factors_lr": (1e-4, 1e-1), "num_factors": [2, 4]}
    result = model.tune(ratings, ranges, max_jobs=4)
    assert result.results.mini_batch_size.tolist() == [175, 163, 204, 179]
    assert result.results.epochs.tolist() == [8, 2, 8, 10]
    assert result.best_params == {
        "mini_batch_size": 179, "epochs": 10, "factors_lr": pytest.approx(0.06912386482753333, rel=1e-12),
        "num_factors": 2,
    }
    assert result.best_score == pytest.approx(1.1858867919571603, rel=1e-9)  # float64 trainer: 1.185886800661522


def test_tune_binary_objective_and_bad_arguments(ratings):
    model = SageMakerFM(predictor_type="binary_classifier", **FAST)
    result = model.tune(ratings, {"factors_wd": (1e-5, 1e-3)}, max_jobs=2)
    assert result.metric == "test:binary_classification_accuracy"
    assert 0 <= result.best_score <= 1
    assert result.best_score == result.results[result.metric].max()
    before = model.get_params()
    with pytest.raises(InvalidParameterError, match="predictor_type"):
        model.tune(ratings, {"epochs": (1, 2)}, objective="test:rmse")
    with pytest.raises(InvalidParameterError, match="ranges"):
        model.tune(ratings, {"backend": ["local"]})
    with pytest.raises(InvalidParameterError, match="ranges"):  # they change the data, not the model
        model.tune(ratings, {"negatives_per_positive": [1.0, 2.0]})
    with pytest.raises(InvalidParameterError, match="low <= high"):
        model.tune(ratings, {"epochs": (5, 1)})
    with pytest.raises(InvalidParameterError, match="empty list"):
        model.tune(ratings, {"num_factors": []})
    with pytest.raises(InvalidParameterError, match="max_jobs"):
        model.tune(ratings, {"epochs": (1, 2)}, max_jobs=0)
    with pytest.raises(InvalidParameterError, match="validation_size"):
        model.tune(ratings, {"epochs": (1, 2)}, validation_size=1.0)
    with pytest.raises(InvalidParameterError, match="objective"):
        model.tune(ratings, {"epochs": (1, 2)}, objective="test:mae")
    assert model.get_params() == before  # a refused search changes nothing


# -- MovieLens 100K --------------------------------------------------------------------------------
@pytest.mark.realdata
def test_ml100k_features(ml100k):
    model = SageMakerFM(epochs=1, num_factors=2, random_state=0).fit(ml100k.ratings)
    assert model.hyperparameters()["feature_dim"] == 2625
    matrix, _names = _features.user_side_features(ml100k.users, ml100k.users.userId.to_numpy())
    assert matrix.shape == (943, 7 + 2 + 21) and (matrix.sum(axis=1) == 3).all()
    genres, genre_names = _features.item_side_features(ml100k.items, ml100k.items.movieId.to_numpy())
    assert genres.shape == (1682, 19) and "genre=Sci-Fi" in genre_names


@pytest.mark.realdata
@pytest.mark.slow
def test_u1_rmse_with_defaults(u1):
    from movierec.exceptions import MovieRecWarning

    model = SageMakerFM(random_state=0).fit(u1.train)
    with pytest.warns(MovieRecWarning, match="32 of 20000"):  # movies with no rating in u1.train
        assert model.rmse(u1.test) <= 0.93


@pytest.mark.realdata
@pytest.mark.slow
def test_ua_binary_classifier_accuracy(data_home):
    from movierec.data.movielens import official_folds

    ua = official_folds("ml-100k", which=("ua",), data_home=data_home)[0]
    model = SageMakerFM(predictor_type="binary_classifier", num_factors=64, random_state=0).fit(ua.train)
    p = model.predict(ua.test)
    assert p.isna().sum() == 2  # two test movies have no ratings in ua.train; counted as wrong below
    assert np.mean((p >= 0.5) == (ua.test.rating >= 4)) >= 0.70
