import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from movierec.exceptions import DataValidationError, InvalidParameterError, MovieRecWarning, NotFittedError
from movierec.models.myfm_bayes import MyFMBayes  # the `all` extra installs myfm: never skipped
from movierec.testing import RecommenderContract, synthetic_ratings

# Imported by the adapter above, which lets myfm import without pkg_resources.
myfm = pytest.importorskip("myfm")

SMALL = {"rank": 4, "n_iter": 40, "random_state": 0}
FEATURES = {"side_features": True, "time_features": True, "implicit": True}
DAY = 86_400
JAN_1998 = 883_612_800  # 1998-01-01T00:00:00Z


def quiet(*_):  # myfm's callback: no progress text, never stop
    return False, None



class TestMyFMBayesContract(RecommenderContract):
    def make_model(self):
        return MyFMBayes(**SMALL)


class TestMyFMBayesTimeImplicitContract(RecommenderContract):
    """The contract holds with time and implicit features on (side features need frames in fit)."""

    scores_histories = False  # fold-in needs the ids-only user part (MyFMBayes._fold_in_prior)

    def make_model(self):
        return MyFMBayes(**SMALL, time_features=True, implicit=True)


def _monthly(ratings: pd.DataFrame, months: int = 3) -> pd.DataFrame:
    """Return ``ratings`` with timestamps spread over ``months`` months from January 1998."""
    rng = np.random.default_rng(1)
    return ratings.assign(timestamp=JAN_1998 + rng.integers(0, months * 30 * DAY, len(ratings)))


def _side_frames(ratings: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return users (two of them without ratings) and items (one without ratings) side frames."""
    user_ids = np.append(np.sort(ratings.userId.unique()), [9001, 9002])
    item_ids = np.append(np.sort(ratings.movieId.unique()), [8001])
    n_users, n_items = len(user_ids), len(item_ids)
    users = pd.DataFrame({
        "userId": user_ids,
        "age": np.resize([15, 22, 30, 40, 60], n_users),
        "gender": np.resize(["F", "M"], n_users),
        "occupation": np.resize(["writer", "student", "other"], n_users),
        "zip": np.resize(["94043", "10001", "T8H1N", "55414"], n_users),
    })
    items = pd.DataFrame({
        "movieId": item_ids,
        "title": [f"Movie {i} ({1990 + i % 5})" for i in range(n_items)],
        "Action": np.arange(n_items) % 2 == 0,
        "Comedy": np.arange(n_items) % 3 == 0,
    })
    return users, items


def test_defaults_are_ids_only():
    params = MyFMBayes().get_params()
    assert {k: params[k] for k in ("side_features", "time_features", "implicit", "grouped")} == {
        "side_features": False, "time_features": False, "implicit": False, "grouped": True
    }


def test_scores_equal_myfm_posterior_mean():
    """The folded arrays give exactly myfm's own predict (the mean over kept samples)."""
    ratings = synthetic_ratings()
    model = MyFMBayes(**SMALL).fit(ratings)
    users, items = model.users_.lookup(ratings.userId), model.items_.lookup(ratings.movieId)
    n_users, n_items = len(model.users_), len(model.items_)
    n = len(ratings)
    X = sparse.csr_matrix(
        (np.ones(2 * n), (np.repeat(np.arange(n), 2), np.column_stack([users, n_users + items]).ravel())),
        shape=(n, n_users + n_items),
    )
    reference = myfm.MyFMRegressor(rank=4, random_seed=0).fit(
        X, ratings.rating.to_numpy(), n_iter=40, group_shapes=[n_users, n_items], callback=quiet
    )
    np.testing.assert_allclose(model.predict(ratings), reference.predict(X), rtol=1e-10, atol=1e-10)


def test_feature_scores_equal_myfm_with_relation_blocks():
    """Months, implicit groups and per-block priors, built here independently, give myfm's own predict."""
    ratings = _monthly(synthetic_ratings())
    model = MyFMBayes(**SMALL, time_features=True, implicit=True).fit(ratings)
    u, i = model.users_.lookup(ratings.userId), model.items_.lookup(ratings.movieId)
    n, n_users, n_items = len(ratings), len(model.users_), len(model.items_)
    month = pd.to_datetime(ratings.timestamp, unit="s").dt.month.to_numpy() - 1  # Jan..Mar 1998: 0..2

    def implicit(own, other, n_own, n_other):
        counts = np.bincount(own, minlength=n_own)
        return sparse.csr_matrix((1 / np.sqrt(counts[own]), (own, other)), shape=(n_own, n_other))

    user_block = sparse.hstack([sparse.identity(n_users), implicit(u, i, n_users, n_items)], format="csr")
    item_block = sparse.hstack([sparse.identity(n_items), implicit(i, u, n_items, n_users)], format="csr")
    X = sparse.csr_matrix((np.ones(n), (np.arange(n), month)), shape=(n, 3))
    blocks = [myfm.RelationBlock(u, user_block), myfm.RelationBlock(i, item_block)]
    grouping = [0] * 3 + [1] * n_users + [2] * n_items + [3] * n_items + [4] * n_users
    reference = myfm.MyFMRegressor(rank=4, random_seed=0).fit(
        X, ratings.rating.to_numpy(), X_rel=blocks, n_iter=40, grouping=grouping, callback=quiet
    )
    assert list(model.periods_) == [12 * 1998, 12 * 1998 + 1, 12 * 1998 + 2]
    np.testing.assert_allclose(model.predict(ratings), reference.predict(X, blocks), rtol=1e-9, atol=1e-9)


def test_side_features_score_users_and_movies_known_only_from_the_frames(tmp_path):
    ratings = synthetic_ratings()
    users, items = _side_frames(ratings)
    model = MyFMBayes(**SMALL, side_features=True).fit(ratings, users=users, items=items)
    known_user, known_movie = ratings.userId.iloc[0], ratings.movieId.iloc[0]
    pairs = pd.DataFrame(
        {"userId": [9001, 9002, known_user, -5], "movieId": [known_movie, 8001, 8001, known_movie]}
    )
    scores = model.predict(pairs)
    assert np.isfinite(scores.iloc[:3]).all() and np.isnan(scores.iloc[3])
    # The two new users differ in age band, gender, occupation and zip: their scores differ too.
    assert scores.iloc[0] != model.predict(pairs.assign(userId=9002)).iloc[0]
    top = model.top_n(users=[9001], n=3)
    assert list(top.userId) == [9001] * 3
    model.save(tmp_path / "bfm")
    np.testing.assert_array_equal(MyFMBayes.load(tmp_path / "bfm").predict(pairs), scores)


def test_side_features_change_the_fit():
    ratings = synthetic_ratings()
    users, items = _side_frames(ratings)
    plain = MyFMBayes(**SMALL).fit(ratings).predict(ratings)
    side = MyFMBayes(**SMALL, side_features=True).fit(ratings, users=users, items=items).predict(ratings)
    assert not np.allclose(plain, side)


def test_side_frames_and_the_switch_must_agree():
    ratings = synthetic_ratings()
    users, items = _side_frames(ratings)
    with pytest.raises(DataValidationError, match="side_features=False"):
        MyFMBayes(**SMALL).fit(ratings, users=users)
    with pytest.raises(DataValidationError, match="needs users=, items= or both"):
        MyFMBayes(**SMALL, side_features=True).fit(ratings)
    only_items = MyFMBayes(**SMALL, side_features=True).fit(ratings, items=items)
    cold_movie = pd.DataFrame({"userId": [ratings.userId.iloc[0]], "movieId": [8001]})
    assert np.isfinite(only_items.predict(cold_movie)).all()


def test_predict_scores_at_the_rating_month_and_top_n_at_the_latest():
    ratings = _monthly(synthetic_ratings())
    model = MyFMBayes(**SMALL, time_features=True).fit(ratings)
    pairs = ratings[["userId", "movieId"]].iloc[:10]
    at = {m: model.predict(pairs.assign(timestamp=JAN_1998 + (30 * m + 5) * DAY)) for m in range(3)}
    assert not np.allclose(at[0], at[2])
    np.testing.assert_array_equal(model.predict(pairs), at[2])  # no timestamp: the latest month
    np.testing.assert_array_equal(model.predict(pairs.assign(timestamp=np.nan)), at[2])
    later = model.predict(pairs.assign(timestamp=JAN_1998 + 400 * DAY))
    earlier = model.predict(pairs.assign(timestamp=JAN_1998 - 400 * DAY))
    np.testing.assert_array_equal(later, at[2])
    np.testing.assert_array_equal(earlier, at[0])
    as_dates = pairs.assign(timestamp=pd.Timestamp("1998-01-20"))
    np.testing.assert_array_equal(model.predict(as_dates), at[0])
    top = model.top_n(n=3)
    np.testing.assert_allclose(top.score, model.predict(top), rtol=1e-10)


def test_time_features_need_timestamps_and_a_failed_refit_keeps_the_model():
    ratings = _monthly(synthetic_ratings())
    model = MyFMBayes(**SMALL, time_features=True).fit(ratings)
    before = model.predict(ratings)
    with pytest.raises(DataValidationError, match="needs a 'timestamp' column for time_features=True"):
        model.fit(ratings.drop(columns="timestamp"))
    np.testing.assert_array_equal(model.predict(ratings), before)
    with pytest.raises(DataValidationError, match="must hold Unix seconds or datetimes"):
        model.predict(ratings.assign(timestamp="yesterday"))


def test_without_time_features_the_timestamp_is_ignored():
    model = MyFMBayes(**SMALL).fit(_monthly(synthetic_ratings()))
    pairs = synthetic_ratings().iloc[:5]
    assert len(model.periods_) == 0
    np.testing.assert_array_equal(model.predict(pairs), model.predict(pairs.drop(columns="timestamp")))


def test_one_prior_and_grouped_priors_differ():
    ratings = _monthly(synthetic_ratings())
    features = {"implicit": True, "time_features": True}
    grouped = MyFMBayes(**SMALL, **features).fit(ratings).predict(ratings)
    shared = MyFMBayes(**SMALL, **features, grouped=False).fit(ratings).predict(ratings)
    assert not np.allclose(grouped, shared)


def test_kept_samples_set_the_factor_width():
    model = MyFMBayes(rank=3, n_iter=12, n_kept_samples=7, random_state=0).fit(synthetic_ratings())
    assert model.user_factors_.shape[1] == 3 * 7
    assert model.item_factors_.shape[1] == 3 * 7


@pytest.mark.parametrize(
    "params",
    [{"rank": 0}, {"n_iter": 2.5}, {"n_kept_samples": 500}, {"n_kept_samples": 0}, {"grouped": "yes"},
     {"init_stdev": -1.0}, {"init_stdev": float("inf")}, {"random_state": -3}, {"random_state": 2**32},
     {"side_features": 1}, {"time_features": None}, {"implicit": "True"}],
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
    with pytest.warns(MovieRecWarning, match="32 of 20000"):
        rmse = MyFMBayes(random_state=0).fit(u1.train).rmse(u1.test)
    assert rmse < 0.915


@pytest.mark.slow
@pytest.mark.realdata
def test_u1_rmse_with_features_meets_issue_14(u1, ml100k):
    model = MyFMBayes(random_state=0, **FEATURES).fit(u1.train, users=ml100k.users, items=ml100k.items)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # side features score the 32 test pairs of unrated movies
        rmse = model.rmse(u1.test)
    assert rmse <= 0.890
