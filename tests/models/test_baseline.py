import numpy as np
import pandas as pd
import pytest

from movierec import BiasedBaseline
from movierec.exceptions import InvalidParameterError, NotFittedError
from movierec.testing import RecommenderContract, synthetic_ratings


class TestBiasedBaselineContract(RecommenderContract):
    def make_model(self):
        return BiasedBaseline()


def test_biases_solve_the_damped_least_squares_problem():
    # One sweep with no item damping on a tiny frame, checked by hand.
    ratings = pd.DataFrame({"userId": [1, 1, 2], "movieId": [1, 2, 1], "rating": [5.0, 3.0, 1.0]})
    model = BiasedBaseline(damping=(0.0, 0.0), n_iter=1).fit(ratings)
    mu = 3.0
    assert model.global_mean_ == mu
    np.testing.assert_allclose(model.user_bias_, [1.0, -2.0])  # (2+0)/2, (-2)/1
    np.testing.assert_allclose(model.item_bias_, [(5 - 3 - 1 + 1 - 3 + 2) / 2, 3 - 3 - 1])


def test_damping_shrinks_biases():
    ratings = synthetic_ratings()
    loose = BiasedBaseline(damping=0.0).fit(ratings)
    tight = BiasedBaseline(damping=100.0).fit(ratings)
    assert np.abs(tight.item_bias_).sum() < np.abs(loose.item_bias_).sum()


@pytest.mark.parametrize(
    "params",
    [{"damping": -1.0}, {"damping": (1.0,)}, {"damping": (1.0, -2.0)}, {"damping": (1.0, 2.0, 3.0)},
     {"damping": "15"}, {"damping": float("nan")}, {"damping": True}, {"n_iter": 0}, {"n_iter": 2.5}],
)
def test_bad_parameters_raise_naming_the_argument(params):
    (name, value), = params.items()
    model = BiasedBaseline(**params)
    assert model.get_params()[name] is value  # stored unchanged, checked by fit
    with pytest.raises(InvalidParameterError, match=rf"^BiasedBaseline: {name} must be .*, got ") as caught:
        model.fit(synthetic_ratings())
    assert str(caught.value).endswith(f"got {value!r}")
    with pytest.raises(NotFittedError):  # a failed fit leaves nothing half-fitted behind
        model.predict(synthetic_ratings())


def test_damping_pair_as_tuple_list_or_one_float(tmp_path):
    ratings = synthetic_ratings()
    model = BiasedBaseline(damping=(5.0, 3.0)).fit(ratings)
    model.save(tmp_path / "baseline")
    loaded = BiasedBaseline.load(tmp_path / "baseline")
    assert loaded.damping == (5.0, 3.0)
    refit = loaded.fit(ratings)  # a loaded model's parameters pass the same checks
    np.testing.assert_array_equal(refit.user_bias_, model.user_bias_)
    as_list = BiasedBaseline(damping=[5, 3]).fit(ratings)
    np.testing.assert_array_equal(as_list.item_bias_, model.item_bias_)
    one = BiasedBaseline(damping=4.0).fit(ratings)
    np.testing.assert_array_equal(one.item_bias_, BiasedBaseline(damping=(4, 4)).fit(ratings).item_bias_)


def test_string_ids_work(rng):
    ratings = pd.DataFrame(
        {"userId": ["ann", "ann", "bob", "cy"], "movieId": ["m1", "m2", "m1", "m3"], "rating": [4.0, 2.0, 5.0, 3.0]}
    )
    model = BiasedBaseline().fit(ratings)
    top = model.top_n(n=2)
    assert set(top.userId) == {"ann", "bob", "cy"}
    assert top[top.userId == "ann"].movieId.tolist() == ["m3"]


@pytest.mark.realdata
def test_u1_rmse_close_to_surprise_baseline_only(u1):
    from movierec.exceptions import MovieRecWarning

    with pytest.warns(MovieRecWarning, match="32 of 20000"):  # u1.test has movies u1.base lacks
        rmse = BiasedBaseline().fit(u1.train).rmse(u1.test)
    assert rmse <= 0.965
    surprise = pytest.importorskip("surprise")
    reader = surprise.Reader(rating_scale=(1, 5))
    train = surprise.Dataset.load_from_df(u1.train[["userId", "movieId", "rating"]], reader).build_full_trainset()
    algo = surprise.BaselineOnly(verbose=False).fit(train)
    predictions = algo.test(list(u1.test[["userId", "movieId", "rating"]].itertuples(index=False)))
    reference = surprise.accuracy.rmse(predictions, verbose=False)
    assert abs(rmse - reference) < 0.01
