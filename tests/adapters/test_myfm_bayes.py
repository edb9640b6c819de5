import numpy as np
import pytest

from movierec.adapters import myfm_bayes  # the `all` extra installs myfm: never skipped
from movierec.adapters.myfm_bayes import MyFMBayes
from movierec.exceptions import InvalidParameterError, NotFittedError
from movierec.testing import RecommenderContract, synthetic_ratings

SMALL = {"rank": 4, "n_iter": 40, "random_state": 0}


class TestMyFMBayesContract(RecommenderContract):
    def make_model(self):
        return MyFMBayes(**SMALL)


def test_scores_equal_myfm_posterior_mean():
    """The folded arrays give exactly myfm's own predict (the mean over kept samples)."""
    from scipy import sparse

    ratings = synthetic_ratings()
    model = MyFMBayes(**SMALL).fit(ratings)
    users, items = model.users_.lookup(ratings.userId), model.items_.lookup(ratings.movieId)
    n_users, n_items = len(model.users_), len(model.items_)
    n = len(ratings)
    X = sparse.csr_matrix(
        (np.ones(2 * n), (np.repeat(np.arange(n), 2), np.column_stack([users, n_users + items]).ravel())),
        shape=(n, n_users + n_items),
    )
    reference = myfm_bayes.myfm.MyFMRegressor(rank=4, random_seed=0).fit(
        X, ratings.rating.to_numpy(), n_iter=40, group_shapes=[n_users, n_items], callback=lambda *_: (False, None)
    )
    np.testing.assert_allclose(model.predict(ratings).to_numpy(), reference.predict(X), rtol=1e-10, atol=1e-10)


def test_kept_samples_set_the_factor_width():
    model = MyFMBayes(rank=3, n_iter=12, n_kept_samples=7, random_state=0).fit(synthetic_ratings())
    assert model.user_factors_.shape[1] == 3 * 7
    assert model.item_factors_.shape[1] == 3 * 7


@pytest.mark.parametrize(
    "params",
    [{"rank": 0}, {"n_iter": 2.5}, {"n_kept_samples": 500}, {"n_kept_samples": 0}, {"grouped": "yes"},
     {"init_stdev": -1.0}, {"init_stdev": float("inf")}, {"random_state": -3}, {"random_state": 2**32}],
)
def test_bad_hyperparameters_raise_before_fitting(params):
    (name, value), = params.items()
    model = MyFMBayes(**{**SMALL, **params})
    with pytest.raises(InvalidParameterError, match=rf"^MyFMBayes: {name} must be .*, got {value!r}$"):
        model.fit(synthetic_ratings())
    with pytest.raises(NotFittedError):
        model.predict(synthetic_ratings())


def test_random_state_bounds_follow_the_package_rule():
    for seed in (-1, 2**32):
        with pytest.raises(InvalidParameterError) as caught:
            MyFMBayes(**{**SMALL, "random_state": seed}).fit(synthetic_ratings())
        assert str(caught.value) == (
            f"MyFMBayes: random_state must be None or an int in [0, 4294967295], got {seed}"
        )


def test_kept_samples_may_not_exceed_the_sweeps():
    with pytest.raises(InvalidParameterError, match=r"n_kept_samples must be .* \[1, n_iter=12\], got 13$"):
        MyFMBayes(rank=2, n_iter=12, n_kept_samples=13).fit(synthetic_ratings())
    model = MyFMBayes(rank=2, n_iter=12, n_kept_samples=12, random_state=0).fit(synthetic_ratings())
    assert model.user_factors_.shape[1] == 2 * 12


def test_invalid_refit_keeps_the_fitted_model():
    ratings = synthetic_ratings()
    model = MyFMBayes(**SMALL).fit(ratings)
    before = model.predict(ratings)
    with pytest.raises(InvalidParameterError, match="rank"):
        model.set_params(rank=0).fit(ratings)
    np.testing.assert_array_equal(model.predict(ratings), before)


@pytest.mark.slow
@pytest.mark.realdata
def test_u1_rmse_near_published(u1):
    from movierec.exceptions import MovieRecWarning

    with pytest.warns(MovieRecWarning, match="32 of 20000"):
        rmse = MyFMBayes(random_state=0).fit(u1.train).rmse(u1.test)
    assert rmse < 0.915
