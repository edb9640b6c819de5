import numpy as np
import pytest

from movierec.adapters import myfm_bayes  # the `all` extra installs myfm: never skipped
from movierec.adapters.myfm_bayes import MyFMBayes
from movierec.exceptions import DataValidationError
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
    [{"rank": 0}, {"n_iter": 2.5}, {"n_kept_samples": 500}, {"grouped": "yes"}, {"init_stdev": -1.0},
     {"random_state": -3}],
)
def test_bad_hyperparameters_raise_before_fitting(params):
    model = MyFMBayes(**{**SMALL, **params})
    with pytest.raises(DataValidationError, match=next(iter(params))):
        model.fit(synthetic_ratings())
    assert not model._is_fitted()


@pytest.mark.slow
@pytest.mark.realdata
def test_u1_rmse_near_published(u1):
    from movierec.exceptions import MovieRecWarning

    with pytest.warns(MovieRecWarning, match="32 of 20000"):
        rmse = MyFMBayes(random_state=0).fit(u1.train).rmse(u1.test)
    assert rmse < 0.915
