"""``RecommenderContract``: the contract tests every movierec model's test class reuses.

Use it as a mixin in a pytest test class and give it a model factory::

    class TestMyModel(RecommenderContract):
        def make_model(self):
            return MyModel(random_state=0)

The ratings are a small synthetic frame with gapped integer ids (so index leaks show), a few
users and movies of which each user rated about half.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from movierec._core.ranking import TOP_N_COLUMNS
from movierec.base import Recommender
from movierec.exceptions import DataValidationError, MovieRecWarning, NotFittedError

__all__ = ["RecommenderContract", "synthetic_ratings"]


def synthetic_ratings(
    n_users: int = 40, n_items: int = 60, density: float = 0.5, seed: int = 0
) -> pd.DataFrame:
    """Return a ratings frame with low-rank structure, ratings 1..5, ids ``10*u + 3`` / ``7*i + 1``."""
    rng = np.random.default_rng(seed)
    users = rng.normal(size=(n_users, 3))
    items = rng.normal(size=(n_items, 3))
    raw = users @ items.T + rng.normal(0, 0.3, size=(n_users, n_items)) + rng.normal(0, 0.5, n_items)
    stars = np.clip(np.round(3 + raw), 1, 5)
    mask = rng.random((n_users, n_items)) < density
    mask[:, 0] = True  # every user rated something, every movie was rated at least once
    mask[0, :] = True
    mask[0, -5:] = False  # user 0 leaves room for recommendations
    u, i = np.nonzero(mask)
    return pd.DataFrame(
        {
            "userId": 10 * u + 3,
            "movieId": 7 * i + 1,
            "rating": stars[u, i].astype(float),
            "timestamp": 1_000_000 + rng.permutation(len(u)),
        }
    )


class RecommenderContract:
    """Mixin of pytest tests for the ``Recommender`` contract (docs/architecture.md, section 3)."""

    #: top_n scores are the same numbers predict gives for those pairs
    top_n_scores_are_predictions = True
    #: decimal places to which a reloaded model must reproduce predictions
    save_load_decimal = 10

    def make_model(self) -> Recommender:  # pragma: no cover - overridden
        raise NotImplementedError

    def rmse_target(self, rating: pd.Series) -> pd.Series:
        """Return what the model's ``rmse`` compares predictions with (the ratings by default)."""
        return rating

    @pytest.fixture(scope="class")
    @classmethod
    def ratings(cls) -> pd.DataFrame:
        return synthetic_ratings()

    @pytest.fixture(scope="class")
    @classmethod
    def fitted(cls, ratings) -> Recommender:
        with cls().make_model() as model:  # every Recommender closes: a no-op unless it holds a backend
            yield model.fit(ratings)

    # -- fit -----------------------------------------------------------------------------------
    def test_fit_returns_self(self, ratings):
        model = self.make_model()
        assert model.fit(ratings) is model

    def test_methods_before_fit_raise_not_fitted(self, ratings):
        model = self.make_model()
        with pytest.raises(NotFittedError):
            model.predict(ratings)
        with pytest.raises(NotFittedError):
            model.top_n(n=3)
        with pytest.raises(NotFittedError):
            model.rmse(ratings)

    def test_params_round_trip(self):
        model = self.make_model()
        params = model.get_params()
        assert type(model)(**params).get_params() == params
        assert model.set_params(**params) is model
        with pytest.raises(ValueError):
            model.set_params(no_such_parameter=1)
        assert type(model).__name__ in repr(model)

    @pytest.mark.parametrize(
        "breakage",
        [
            "missing column", "extra column", "nan rating", "inf rating", "duplicate pair", "empty",
            "float ids",
        ],
    )
    def test_bad_ratings_raise_and_leave_input_alone(self, ratings, breakage):
        bad = ratings.copy()
        if breakage == "missing column":
            bad = bad.drop(columns="rating")
        elif breakage == "extra column":
            bad["title"] = "x"
        elif breakage == "nan rating":
            bad.loc[bad.index[3], "rating"] = np.nan
        elif breakage == "inf rating":
            bad.loc[bad.index[3], "rating"] = np.inf
        elif breakage == "duplicate pair":
            bad = pd.concat([bad, bad.iloc[[5]]])
        elif breakage == "empty":
            bad = bad.iloc[:0]
        elif breakage == "float ids":
            bad["userId"] = bad["userId"].astype(float)
        before = bad.copy()
        with pytest.raises(DataValidationError):
            self.make_model().fit(bad)
        pd.testing.assert_frame_equal(bad, before)

    def test_refit_with_same_seed_is_repeatable(self, ratings, fitted):
        again = self.make_model().fit(ratings.sample(frac=1.0, random_state=1).sort_index())
        pairs = ratings.iloc[::7]
        np.testing.assert_allclose(again.predict(pairs), fitted.predict(pairs), rtol=1e-6, atol=1e-8)

    def test_second_fit_starts_from_scratch(self, ratings):
        model = self.make_model().fit(ratings.iloc[: len(ratings) // 2])
        model.fit(ratings)
        fresh = self.make_model().fit(ratings)
        pairs = ratings.iloc[::5]
        np.testing.assert_allclose(model.predict(pairs), fresh.predict(pairs), rtol=1e-6, atol=1e-8)

    # -- predict -------------------------------------------------------------------------------
    def test_predict_keeps_index_and_gives_nan_for_unknown_ids(self, ratings, fitted):
        pairs = ratings.iloc[[4, 1, 9]][["userId", "movieId"]].copy()
        unknown = pd.DataFrame(
            {"userId": [-1, ratings.userId.iloc[0]], "movieId": [ratings.movieId.iloc[0], -1]}
        )
        pairs = pd.concat([pairs, unknown])
        pairs.index = [50, 10, 30, 20, 40]
        predicted = fitted.predict(pairs)
        assert isinstance(predicted, pd.Series)
        assert list(predicted.index) == [50, 10, 30, 20, 40]
        assert np.isfinite(predicted.iloc[:3]).all()
        assert predicted.iloc[3:].isna().all()

    def test_predict_rejects_bad_pairs(self, fitted):
        with pytest.raises(DataValidationError):
            fitted.predict(pd.DataFrame({"userId": [3]}))

    def test_learns_better_than_a_constant(self, ratings, fitted):
        target = self.rmse_target(ratings.rating)
        assert fitted.rmse(ratings) < float(np.sqrt(((target - target.mean()) ** 2).mean()))

    # -- rmse ----------------------------------------------------------------------------------
    def test_rmse_drops_cold_start_with_warning_or_raises(self, ratings, fitted):
        test = pd.concat([ratings.iloc[:20], pd.DataFrame({"userId": [-1], "movieId": [1], "rating": [3.0]})])
        with pytest.warns(MovieRecWarning, match="1 of 21"):
            dropped = fitted.rmse(test)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert dropped == pytest.approx(fitted.rmse(ratings.iloc[:20]))
        with pytest.raises(DataValidationError):
            fitted.rmse(test, cold_start="error")

    # -- top_n ---------------------------------------------------------------------------------
    def test_top_n_gives_n_unseen_movies_by_descending_score(self, ratings, fitted):
        top = fitted.top_n(n=3)
        assert list(top.columns) == TOP_N_COLUMNS
        assert set(top.userId) == set(ratings.userId)
        assert (top.groupby("userId").size() == 3).all()
        assert top.equals(top.sort_values(["userId", "rank"]).reset_index(drop=True))
        assert (top["rank"].to_numpy() == np.tile([1, 2, 3], top.userId.nunique())).all()
        assert (top.groupby("userId")["score"].diff().dropna() <= 1e-12).all()
        seen = top.merge(ratings, on=["userId", "movieId"])
        assert seen.empty, f"top_n recommended training movies: {seen.head()}"

    def test_top_n_scores_match_predict(self, fitted):
        if not self.top_n_scores_are_predictions:
            pytest.skip("top_n scores are not predictions for this model")
        top = fitted.top_n(n=4)
        np.testing.assert_allclose(top.score, fitted.predict(top), rtol=1e-5, atol=1e-6)

    def test_top_n_for_some_users_equals_full_restricted(self, ratings, fitted):
        some = list(ratings.userId.unique()[[5, 2]])
        part = fitted.top_n(users=some, n=4)
        full = fitted.top_n(n=4)
        expected = full[full.userId.isin(some)].reset_index(drop=True)
        columns = ["userId", "movieId", "rank"]
        pd.testing.assert_frame_equal(part[columns], expected[columns], check_dtype=False)
        np.testing.assert_allclose(part.score, expected.score, rtol=1e-6)

    def test_top_n_unknown_user_gets_no_rows_and_one_warning(self, ratings, fitted):
        known = ratings.userId.iloc[0]
        with pytest.warns(MovieRecWarning) as record:
            top = fitted.top_n(users=[known, -12345], n=2)
        assert len([w for w in record if issubclass(w.category, MovieRecWarning)]) == 1
        assert set(top.userId) == {known}

    def test_top_n_can_include_seen_movies(self, ratings, fitted):
        n_items = ratings.movieId.nunique()
        user = ratings.userId.iloc[0]
        top = fitted.top_n(users=[user], n=n_items, exclude_seen=False)
        assert len(top) == n_items
        assert set(ratings.movieId[ratings.userId == user]) <= set(top.movieId)

    def test_top_n_rejects_bad_n(self, fitted):
        for n in (0, -1, 2.5, True):
            with pytest.raises(DataValidationError):
                fitted.top_n(n=n)

    # -- persistence ---------------------------------------------------------------------------
    def test_save_load_round_trip(self, ratings, fitted, tmp_path):
        fitted.save(tmp_path / "model")
        loaded = type(fitted).load(tmp_path / "model")
        assert loaded.get_params().keys() == fitted.get_params().keys()
        pairs = ratings.iloc[::3]
        np.testing.assert_almost_equal(
            loaded.predict(pairs).to_numpy(), fitted.predict(pairs).to_numpy(), self.save_load_decimal
        )
        a, b = loaded.top_n(n=3), fitted.top_n(n=3)
        assert a[["userId", "movieId"]].equals(b[["userId", "movieId"]])
        assert not list((tmp_path / "model").rglob("*.pkl"))

    def test_scoring_copy_pickles_and_ranks_the_same(self, fitted):
        import pickle

        if not hasattr(fitted, "scoring_copy"):
            pytest.skip("only array-backed models and ensembles of them have scoring_copy")
        copy = pickle.loads(pickle.dumps(fitted.scoring_copy()))  # no live object: a Spark session would fail
        pd.testing.assert_frame_equal(copy.top_n(n=3), fitted.top_n(n=3))

    # -- a visitor's history (top_n_from_history, explain) ---------------------------------------
    #: False for a model that cannot score a history: its history tests then check that
    #: top_n_from_history raises NotImplementedError instead of the behaviour below.
    scores_histories = True

    @staticmethod
    def visitor(ratings: pd.DataFrame) -> pd.DataFrame:
        """Return the history of user 0 of `synthetic_ratings` (their ratings), a visitor's frame."""
        return ratings[ratings.userId == ratings.userId.iloc[0]][["movieId", "rating", "timestamp"]]

    def _history_top_n(self, fitted, *args, **kwargs) -> pd.DataFrame:
        if not self.scores_histories:
            with pytest.raises(NotImplementedError, match=type(fitted).__name__):
                fitted.top_n_from_history(*args, **kwargs)
            pytest.skip(f"{type(fitted).__name__} cannot score a history (scores_histories = False)")
        return fitted.top_n_from_history(*args, **kwargs)

    def test_history_list_has_top_n_columns_and_n_rows(self, ratings, fitted):
        history = self.visitor(ratings).iloc[:6]
        top = self._history_top_n(fitted, history, n=4, user="visitor")
        assert list(top.columns) == TOP_N_COLUMNS
        assert len(top) == 4 and (top.userId == "visitor").all()
        assert top["rank"].tolist() == [1, 2, 3, 4] and top["rank"].dtype == np.int64
        assert top["score"].dtype == np.float64 and np.isfinite(top.score).all()
        assert (np.diff(top.score.to_numpy()) <= 1e-12).all()
        assert set(top.movieId) <= set(ratings.movieId)

    def test_history_and_exclude_movies_are_never_recommended(self, ratings, fitted):
        history = self.visitor(ratings).movieId.iloc[:6].tolist()
        others = sorted(set(ratings.movieId) - set(history))
        exclude = others[:3]
        n_items = ratings.movieId.nunique()
        top = self._history_top_n(fitted, history, n=n_items, exclude=exclude)
        assert set(top.movieId) == set(others[3:]), "the list must hold every other movie, once"
        assert len(top) == len(others) - 3

    def test_history_unknown_movies_warn_once_and_are_ignored(self, ratings, fitted):
        history = self.visitor(ratings).movieId.iloc[:6].tolist()
        clean = self._history_top_n(fitted, history, n=5)
        with pytest.warns(MovieRecWarning) as record:
            noisy = fitted.top_n_from_history([-999, *history, -998], n=5)
        assert len([w for w in record if issubclass(w.category, MovieRecWarning)]) == 1
        assert "2 of 8" in str(record[0].message)
        pd.testing.assert_frame_equal(noisy, clean)

    def test_empty_history_gives_the_most_rated_movies(self, ratings, fitted):
        self._history_top_n(fitted, [ratings.movieId.iloc[0]], n=1)  # opts out here when it must
        counts = ratings.movieId.value_counts()
        top = fitted.top_n_from_history([], n=5)
        with pytest.warns(MovieRecWarning):
            unknown = fitted.top_n_from_history([-999], n=5)
        pd.testing.assert_frame_equal(unknown, top)
        np.testing.assert_array_equal(top.score.to_numpy(), counts[top.movieId].to_numpy(dtype=float))
        assert top.score.iloc[-1] >= counts.drop(top.movieId).max()
        excluded = fitted.top_n_from_history([], n=5, exclude=top.movieId.iloc[:2].tolist())
        assert not set(excluded.movieId) & set(top.movieId.iloc[:2])

    def test_history_duplicates_keep_the_last_row(self, ratings, fitted):
        history = self.visitor(ratings).iloc[:6].reset_index(drop=True)
        repeated = pd.concat([history.assign(rating=1.0, timestamp=history.timestamp - 10**6), history])
        pd.testing.assert_frame_equal(
            self._history_top_n(fitted, repeated.sample(frac=1.0, random_state=0), n=5),
            self._history_top_n(fitted, history, n=5),
        )

    @pytest.mark.parametrize(
        "history",
        ["abc", 5, {1, 8}, [1, None], [1, float("nan")], [True], pd.DataFrame({"item": [1]}),
         pd.DataFrame({"movieId": [1, 8], "rating": [4.0, np.nan]}),
         pd.DataFrame({"movieId": [1, 8], "rating": [4.0, np.inf]})],
        ids=["string", "scalar", "set", "None id", "NaN id", "bool id", "no movieId", "NaN rating", "inf rating"],
    )
    def test_bad_history_raises_data_validation_error(self, fitted, history):
        with pytest.raises(DataValidationError):
            fitted.top_n_from_history(history, n=3)

    def test_explain_gives_shares_of_the_history_movies(self, ratings, fitted):
        history = self.visitor(ratings).iloc[:5]
        target = self._history_top_n(fitted, history, n=1).movieId.iloc[0]
        reasons = fitted.explain(history, target)
        assert list(reasons.columns) == ["movieId", "contribution", "share"]
        assert set(reasons.movieId) == set(history.movieId)
        assert (np.diff(reasons.contribution.to_numpy()) <= 0).all()
        total = np.abs(reasons.share).sum()
        assert total == pytest.approx(1.0) or (reasons.contribution == 0).all()
        assert len(fitted.explain(history, target, n=2)) == 2
        with pytest.raises(DataValidationError, match="-999"):
            fitted.explain(history, -999)
