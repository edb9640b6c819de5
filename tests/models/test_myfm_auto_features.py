"""MyFMBayes with side_features="auto" and time_features="auto": features when the data has them.

The main job's ``bfm`` member is built this way, so a MovieLens fold gets the side, time and
implicit features of the benchmark, and a ratings file without titles or timestamps still fits.
"""

import numpy as np
import pandas as pd
import pytest

from movierec import WeightedEnsemble
from movierec.exceptions import InvalidParameterError
from movierec.models.myfm_bayes import MyFMBayes
from movierec.testing import synthetic_ratings

pytest.importorskip("myfm")

SMALL = {"rank": 4, "n_iter": 30, "random_state": 0}
AUTO = {"side_features": "auto", "time_features": "auto"}
JAN_1998 = 883_612_800


def _frames(ratings):
    user_ids = np.append(np.sort(ratings.userId.unique()), [9001])
    users = pd.DataFrame({"userId": user_ids, "age": np.resize([15, 30, 60], len(user_ids)),
                          "gender": np.resize(["F", "M"], len(user_ids))})
    item_ids = np.sort(ratings.movieId.unique())
    items = pd.DataFrame({"movieId": item_ids, "title": [f"Movie {i} ({1990 + i % 5})" for i in item_ids],
                          "Action": item_ids % 2 == 0})
    return users, items


def _monthly(ratings):
    rng = np.random.default_rng(1)
    return ratings.assign(timestamp=JAN_1998 + rng.integers(0, 90 * 86_400, len(ratings)))


def test_auto_uses_the_side_frames_and_timestamps_it_is_given():
    ratings = _monthly(synthetic_ratings())
    users, items = _frames(ratings)
    auto = MyFMBayes(**SMALL, **AUTO).fit(ratings, users=users, items=items)
    on = MyFMBayes(**SMALL, side_features=True, time_features=True).fit(ratings, users=users, items=items)
    np.testing.assert_array_equal(auto.predict(ratings), on.predict(ratings))
    assert len(auto.periods_) == 3 and auto.uses_side_data()
    assert np.isfinite(auto.predict(pd.DataFrame({"userId": [9001], "movieId": [items.movieId[0]]}))).all()


def test_auto_without_frames_or_timestamps_fits_ids_only_and_folds_visitors_in():
    ratings = synthetic_ratings().drop(columns="timestamp", errors="ignore")
    auto = MyFMBayes(**SMALL, **AUTO).fit(ratings)
    plain = MyFMBayes(**SMALL).fit(ratings)
    np.testing.assert_array_equal(auto.predict(ratings), plain.predict(ratings))
    assert len(auto.periods_) == 0 and auto.user_prior_ is not None
    history = ratings[ratings.userId == ratings.userId.iloc[0]][["movieId", "rating"]]
    assert len(auto.top_n_from_history(history, n=3)) == 3


def test_auto_with_features_found_cannot_fold_in_and_says_why():
    ratings = _monthly(synthetic_ratings())
    model = MyFMBayes(**SMALL, **AUTO).fit(ratings)
    with pytest.raises(NotImplementedError, match="time_features='auto'"):
        model.top_n_from_history(ratings[["movieId", "rating"]].iloc[:3], n=3)


def test_the_ensemble_hands_auto_the_side_frames():
    ratings = _monthly(synthetic_ratings())
    users, items = _frames(ratings)
    ensemble = WeightedEnsemble([MyFMBayes(**SMALL, **AUTO)], random_state=0).fit(ratings, users=users, items=items)
    member = ensemble.models_[0]
    direct = MyFMBayes(**SMALL, **AUTO).fit(ratings, users=users, items=items)
    assert member.users_.lookup(pd.Series([9001]))[0] >= 0  # known from the users frame only
    assert len(member.users_) == len(direct.users_)


@pytest.mark.parametrize("bad", ["yes", "AUTO", 1, None])
def test_other_values_are_refused(bad):
    with pytest.raises(InvalidParameterError, match="side_features"):
        MyFMBayes(**SMALL, side_features=bad).fit(synthetic_ratings())
