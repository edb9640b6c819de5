"""WeightedEnsemble: the contract, the formula by hand, and the properties of docs/architecture.md, section 4."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from movierec import BiasedBaseline, FitEvent, Recommender, WeightedEnsemble, clone
from movierec.data.split import stratified_split
from movierec.exceptions import InvalidParameterError, MovieRecWarning, NotFittedError
from movierec.testing import RecommenderContract, synthetic_ratings


class TableModel(Recommender):
    """A user-written Recommender, built on the public interface only: scores from a fixed table.

    ``table`` is an (n_users, n_items) array; user ``u`` is id ``u + 1``, movie ``i`` is ``100 + i``.
    """

    def __init__(self, table, scale: float = 1.0, shift: float = 0.0):
        self.table = table
        self.scale = scale
        self.shift = shift

    def fit(self, ratings):
        self.seen_ = set(zip(ratings.userId, ratings.movieId))
        self.users_ = sorted(ratings.userId.unique())
        self.items_ = sorted(ratings.movieId.unique())
        return self

    def predict(self, pairs):
        u = pairs.userId.to_numpy() - 1
        i = pairs.movieId.to_numpy() - 100
        known = pairs.userId.isin(self.users_).to_numpy() & pairs.movieId.isin(self.items_).to_numpy()
        out = np.full(len(pairs), np.nan)
        out[known] = np.asarray(self.table)[u[known], i[known]] * self.scale + self.shift
        return pd.Series(out, index=pairs.index)

    def top_n(self, users=None, n=5, *, exclude_seen=True):
        users = self.users_ if users is None else [u for u in users if u in self.users_]
        pairs = pd.DataFrame([(u, i) for u in users for i in self.items_], columns=["userId", "movieId"])
        if exclude_seen:
            pairs = pairs[[p not in self.seen_ for p in zip(pairs.userId, pairs.movieId)]]
        pairs = pairs.assign(score=self.predict(pairs))
        pairs = pairs.sort_values(["userId", "score", "movieId"], ascending=[True, False, True])
        pairs["rank"] = pairs.groupby("userId").cumcount() + 1
        return pairs[pairs["rank"] <= n].reset_index(drop=True)


def table_ratings(n_users: int, n_items: int, seed: int) -> pd.DataFrame:
    """Every movie rated by someone, every user rated something, about a third of the grid."""
    rng = np.random.default_rng(seed)
    mask = rng.random((n_users, n_items)) < 0.3
    mask[0, :] = True
    mask[:, 0] = True
    mask[0, -1] = False
    u, i = np.nonzero(mask)
    return pd.DataFrame({"userId": u + 1, "movieId": i + 100, "rating": rng.integers(1, 6, len(u)).astype(float)})


def ranking(top: pd.DataFrame) -> list[tuple]:
    return list(zip(top.userId, top.movieId, top["rank"]))


tables = st.integers(0, 2**32 - 1).map(lambda seed: np.random.default_rng(seed).normal(size=(6, 9)))
modes = st.sampled_from([None, 3])
positive = st.floats(0.05, 20.0)


class TestEnsembleContract(RecommenderContract):
    def make_model(self):
        return WeightedEnsemble([BiasedBaseline(), BiasedBaseline(damping=2.0)], random_state=0)

    def test_top_n_scores_match_predict(self, fitted):
        # Ensemble scores are standardized sums, not ratings: recompute them from the members.
        top = fitted.top_n(n=4)
        expected = sum(
            (member.predict(top) - fitted.score_mean_[m]) / fitted.score_std_[m] / fitted.errors_[m]
            for m, member in enumerate(fitted.models_)
        )
        np.testing.assert_allclose(top.score, expected, rtol=1e-9)


class TestCandidateEnsembleContract(TestEnsembleContract):
    def make_model(self):
        return WeightedEnsemble([BiasedBaseline(), BiasedBaseline(damping=2.0)], candidates=60, random_state=0)


def test_score_is_sum_of_standardized_scores_over_errors():
    ratings = table_ratings(4, 5, seed=1)
    a, b = np.arange(20.0).reshape(4, 5), np.arange(20.0)[::-1].reshape(4, 5) ** 2
    ensemble = WeightedEnsemble([TableModel(a), TableModel(b)], errors=[0.5, 2.0], random_state=0).fit(ratings)
    top = ensemble.top_n(n=5)
    for position, member in enumerate([TableModel(a).fit(ratings), TableModel(b).fit(ratings)]):
        assert ensemble.score_mean_[position] == pytest.approx(member.predict(_reference(ensemble)).mean())
    z = [
        (table[top.userId - 1, top.movieId - 100] - ensemble.score_mean_[m]) / ensemble.score_std_[m]
        for m, table in enumerate((a, b))
    ]
    np.testing.assert_allclose(top.score, z[0] / 0.5 + z[1] / 2.0)


def _reference(ensemble: WeightedEnsemble) -> pd.DataFrame:
    from movierec._core.random import rng as named_stream
    from movierec.ensemble._weighted import REFERENCE_PAIRS

    rng = named_stream(ensemble.random_state, "reference pairs")
    size = min(REFERENCE_PAIRS, len(ensemble.users_) * len(ensemble.items_))
    return pd.DataFrame(
        {
            "userId": ensemble.users_.ids[rng.integers(len(ensemble.users_), size=size)],
            "movieId": ensemble.items_.ids[rng.integers(len(ensemble.items_), size=size)],
        }
    )


def test_predict_is_the_rating_scale_blend_over_members_that_can_score():
    ratings = table_ratings(4, 5, seed=2)
    a, b = np.full((4, 5), 4.0), np.full((4, 5), 2.0)
    ensemble = WeightedEnsemble([TableModel(a), TableModel(b)], errors=[1.0, 3.0])
    with pytest.warns(UserWarning, match="same score"):
        ensemble.fit(ratings)
    pairs = pd.DataFrame({"userId": [1, 99], "movieId": [100, 100]})
    predicted = ensemble.predict(pairs)
    assert predicted.iloc[0] == pytest.approx((4 / 1 + 2 / 3) / (1 + 1 / 3))
    assert np.isnan(predicted.iloc[1])


def test_errors_come_from_a_holdout_of_the_training_data():
    ratings = synthetic_ratings()
    members = [BiasedBaseline(), BiasedBaseline(damping=0.0)]
    ensemble = WeightedEnsemble(members, validation_size=0.2, random_state=7).fit(ratings)
    train, holdout = stratified_split(ratings, 0.2, random_state=7)
    expected = [BiasedBaseline().fit(train).rmse(holdout), BiasedBaseline(damping=0.0).fit(train).rmse(holdout)]
    np.testing.assert_allclose(ensemble.errors_, expected)
    np.testing.assert_allclose(ensemble.weights_, 1 / np.array(expected))
    # the members' clones end up fitted on all the data
    np.testing.assert_allclose(ensemble.models_[0].item_bias_, BiasedBaseline().fit(ratings).item_bias_)


def test_fit_clones_the_members_and_leaves_the_callers_objects_untouched():
    ratings = synthetic_ratings()
    members = [BiasedBaseline(), BiasedBaseline(damping=0.0)]
    given = list(members)
    ensemble = WeightedEnsemble(members, random_state=0).fit(ratings)
    assert ensemble.models is members and members == given  # the same list, the same objects
    for member, fitted in zip(members, ensemble.models_):
        assert fitted is not member and type(fitted) is type(member)
        assert fitted.get_params() == member.get_params()
        with pytest.raises(NotFittedError):  # the caller's member was never fitted
            member.predict(ratings)
    # a second fit makes new clones and gives the same numbers
    first = ensemble.models_
    again = ensemble.fit(ratings)
    assert all(a is not b for a, b in zip(first, again.models_))
    np.testing.assert_allclose(again.models_[1].item_bias_, first[1].item_bias_)


def test_clone_copies_nested_recommenders_and_passes_other_values_as_they_are():
    table = np.ones((2, 2))
    inner = BiasedBaseline(damping=3.0)
    copy = clone(Affine(inner, 2.0, 1.0))
    assert copy.member is not inner and copy.member.get_params() == inner.get_params()
    assert copy.scale == 2.0 and clone(TableModel(table)).table is table
    pair = clone(WeightedEnsemble((BiasedBaseline(), inner), errors=[1.0, 2.0]))
    assert isinstance(pair.models, tuple) and pair.models[1] is not inner
    assert pair.models[1].get_params() == inner.get_params()


def test_callback_sees_two_fits_per_member_when_errors_are_measured():
    ratings = synthetic_ratings()
    events: list[FitEvent] = []
    ensemble = WeightedEnsemble([BiasedBaseline(), BiasedBaseline(damping=0.0)], validation_size=0.2, random_state=1)
    ensemble.fit(ratings, callback=events.append)
    train, _ = stratified_split(ratings, 0.2, random_state=1)
    assert [(e.position, e.stage, e.n_ratings) for e in events] == [
        (0, "validation", len(train)),
        (1, "validation", len(train)),
        (0, "final", len(ratings)),
        (1, "final", len(ratings)),
    ]
    assert all(e.model == "BiasedBaseline" and e.seconds >= 0 for e in events)
    totals = [sum(e.seconds for e in events if e.position == p) for p in (0, 1)]
    np.testing.assert_allclose(ensemble.fit_seconds_, totals)
    # with the errors given, one (final) fit per member
    events.clear()
    WeightedEnsemble([BiasedBaseline()], errors=[1.0]).fit(ratings, callback=events.append)
    assert [(e.position, e.stage) for e in events] == [(0, "final")]
    with pytest.raises(InvalidParameterError, match="callback"):
        WeightedEnsemble([BiasedBaseline()], errors=[1.0]).fit(ratings, callback="print")


def test_holdout_warnings_say_they_come_from_the_holdout():
    ratings = synthetic_ratings()
    # A movie rated once is in train or in the hold-out, never both: the hold-out has cold-start pairs.
    lonely = pd.DataFrame({"userId": [3, 13, 23], "movieId": [9001, 9002, 9003], "rating": [4.0, 3.0, 5.0]})
    ratings = pd.concat([ratings.drop(columns="timestamp"), lonely], ignore_index=True)
    with pytest.warns(MovieRecWarning, match=r"^ensemble hold-out: \d+ of \d+ test pairs"):
        WeightedEnsemble([BiasedBaseline()], validation_size=0.5, random_state=0).fit(ratings)


def test_a_generator_of_models_is_refused():
    ratings = synthetic_ratings()
    members = (BiasedBaseline() for _ in range(2))
    ensemble = WeightedEnsemble(members)
    assert "generator" in repr(ensemble)  # repr does not consume it
    with pytest.raises(InvalidParameterError, match="models must be a list or tuple"):
        ensemble.fit(ratings)
    with pytest.raises(InvalidParameterError, match="models must be a list or tuple"):
        WeightedEnsemble(iter([BiasedBaseline()])).fit(ratings)


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"models": []}, "at least one Recommender"),
        ({"models": [object()]}, r"models\[0\] must be a Recommender"),
        ({"models": {BiasedBaseline()}}, "models must be a list or tuple"),
        ({"errors": [0.0]}, r"errors\[0\] must be a float > 0, got 0.0"),
        ({"errors": [float("nan")]}, r"errors\[0\]"),
        ({"errors": [1.0, 2.0]}, "list of 1 positive floats"),
        ({"errors": 1.0}, "list of 1 positive floats"),
        ({"candidates": 0}, "candidates must be a positive int or None, got 0"),
        ({"validation_size": 1.0}, "validation_size must be a float in"),
        ({"holdout_users": 0}, "holdout_users must be a positive int or None, got 0"),
        ({"holdout_users": 2.5}, "holdout_users"),
        ({"refit": "no"}, "refit"),
        ({"random_state": -1}, r"random_state must be None or an int in \[0, 4294967295\], got -1"),
        ({"random_state": np.random.default_rng(0)}, "random_state"),
    ],
)
def test_bad_parameters_raise_invalid_parameter_error(params, fragment):
    params = {"models": [BiasedBaseline()], **params}
    ensemble = WeightedEnsemble(**params)
    with pytest.raises(InvalidParameterError, match=fragment) as caught:
        ensemble.fit(synthetic_ratings())
    assert "WeightedEnsemble" in str(caught.value)
    assert not hasattr(ensemble, "models_")


def test_close_closes_every_fitted_member_even_if_one_fails():
    closed = []

    class Closing(BiasedBaseline):
        def close(self):
            closed.append(self)
            if len(closed) == 1:
                raise OSError("cannot close")

    members = [Closing(), Closing()]
    ensemble = WeightedEnsemble(members, errors=[1.0, 1.0]).fit(synthetic_ratings())
    with pytest.raises(OSError, match="cannot close"):
        ensemble.close()
    assert closed == ensemble.models_  # both clones, in order; the caller's members were not closed


def test_save_load_keeps_members_and_fit_times(tmp_path):
    ratings = synthetic_ratings()
    ensemble = WeightedEnsemble([BiasedBaseline(), BiasedBaseline(damping=0.0)], random_state=0).fit(ratings)
    ensemble.save(tmp_path / "ensemble")
    loaded = WeightedEnsemble.load(tmp_path / "ensemble")
    assert loaded.models == loaded.models_ and len(loaded.models_) == 2
    np.testing.assert_array_equal(loaded.fit_seconds_, ensemble.fit_seconds_)
    pd.testing.assert_series_equal(loaded.predict(ratings), ensemble.predict(ratings))


# -- the five properties -------------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(tables, tables, positive, st.floats(-50, 50), modes, st.integers(0, 3))
def test_positive_affine_change_of_a_member_changes_nothing(a, b, scale, shift, candidates, seed):
    ratings = table_ratings(6, 9, seed)
    errors = [0.9, 1.1]
    before = WeightedEnsemble([TableModel(a), TableModel(b)], errors=errors, candidates=candidates, random_state=seed)
    after = WeightedEnsemble(
        [TableModel(a), TableModel(b, scale=scale, shift=shift)], errors=errors, candidates=candidates, random_state=seed
    )
    x, y = before.fit(ratings).top_n(n=4), after.fit(ratings).top_n(n=4)
    assert ranking(x) == ranking(y)
    np.testing.assert_allclose(x.score, y.score, rtol=1e-7, atol=1e-9)


@settings(max_examples=40, deadline=None)
@given(tables, tables, tables, st.permutations([0, 1, 2]), modes, st.integers(0, 3))
def test_member_order_changes_nothing(a, b, c, order, candidates, seed):
    ratings = table_ratings(6, 9, seed)
    tabs, errors = [a, b, c], [0.8, 1.0, 1.3]
    first = WeightedEnsemble([TableModel(t) for t in tabs], errors=errors, candidates=candidates, random_state=seed)
    second = WeightedEnsemble(
        [TableModel(tabs[k]) for k in order], errors=[errors[k] for k in order], candidates=candidates, random_state=seed
    )
    x, y = first.fit(ratings).top_n(n=4), second.fit(ratings).top_n(n=4)
    assert ranking(x) == ranking(y)
    np.testing.assert_allclose(x.score, y.score, rtol=1e-9, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(tables, tables, positive, modes, st.integers(0, 3))
def test_scaling_every_error_changes_nothing(a, b, factor, candidates, seed):
    ratings = table_ratings(6, 9, seed)
    first = WeightedEnsemble([TableModel(a), TableModel(b)], errors=[0.9, 1.2], candidates=candidates, random_state=seed)
    second = WeightedEnsemble(
        [TableModel(a), TableModel(b)], errors=[0.9 * factor, 1.2 * factor], candidates=candidates, random_state=seed
    )
    assert ranking(first.fit(ratings).top_n(n=4)) == ranking(second.fit(ratings).top_n(n=4))


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.floats(0.1, 5.0), modes, st.booleans())
def test_one_member_ensemble_ranks_exactly_as_its_member(seed, error, candidates, exclude_seen):
    # Integer scores make ties frequent: both break them by movieId.
    table = np.random.default_rng(seed).integers(0, 4, size=(6, 9)).astype(float)
    ratings = table_ratings(6, 9, seed % 4)
    ensemble = WeightedEnsemble([TableModel(table)], errors=[error], candidates=candidates, random_state=0).fit(ratings)
    member = TableModel(table).fit(ratings)
    n = 3 if candidates else 9
    assert ranking(ensemble.top_n(n=n, exclude_seen=exclude_seen)) == ranking(member.top_n(n=n, exclude_seen=exclude_seen))


class Affine(Recommender):
    """A user-written wrapper that multiplies a fitted member's scores by ``scale`` and adds ``shift``."""

    def __init__(self, member, scale, shift):
        self.member, self.scale, self.shift = member, scale, shift

    def fit(self, ratings):
        self.member.fit(ratings)
        self.fitted_ = True
        return self

    def predict(self, pairs):
        return self.member.predict(pairs) * self.scale + self.shift

    def top_n(self, users=None, n=5, *, exclude_seen=True):
        top = self.member.top_n(users, n, exclude_seen=exclude_seen)
        return top.assign(score=top.score * self.scale + self.shift)


@pytest.mark.parametrize("candidates", [None, 10])
def test_one_member_ensemble_ranks_as_biased_baseline_and_affine_member_too(candidates):
    ratings = synthetic_ratings()
    member = BiasedBaseline().fit(ratings)
    alone = WeightedEnsemble([BiasedBaseline()], errors=[1.0], candidates=candidates).fit(ratings)
    assert ranking(alone.top_n(n=5)) == ranking(member.top_n(n=5))
    shifted = WeightedEnsemble([Affine(BiasedBaseline(), 3.0, -7.0)], errors=[1.0], candidates=candidates).fit(ratings)
    assert ranking(shifted.top_n(n=5)) == ranking(member.top_n(n=5))
    pair = WeightedEnsemble([BiasedBaseline(), BiasedBaseline(damping=0.0)], errors=[0.9, 1.0], candidates=candidates)
    pair_shifted = WeightedEnsemble(
        [Affine(BiasedBaseline(), 3.0, -7.0), BiasedBaseline(damping=0.0)], errors=[0.9, 1.0], candidates=candidates
    )
    assert ranking(pair.fit(ratings).top_n(n=5)) == ranking(pair_shifted.fit(ratings).top_n(n=5))


@settings(max_examples=40, deadline=None)
@given(tables, st.floats(0.2, 0.9), modes, st.integers(0, 3))
def test_member_with_smaller_error_gets_larger_weight_and_wins(a, small, candidates, seed):
    ratings = table_ratings(6, 9, seed)
    # Two members that disagree completely: the one with the smaller error decides the ranking.
    good, bad = TableModel(a), TableModel(-a)
    ensemble = WeightedEnsemble([bad, good], errors=[1.0, small], candidates=candidates, random_state=seed).fit(ratings)
    assert ensemble.weights_[1] > ensemble.weights_[0]
    if candidates is None:
        assert ranking(ensemble.top_n(n=3)) == ranking(good.fit(ratings).top_n(n=3))


# -- ranking error, member selection, array scoring (issue 13) -------------------------------------
def test_ranking_metric_errors_are_one_minus_the_holdout_metric():
    from movierec import EASE, Popularity
    from movierec.metrics import model_error

    ratings = synthetic_ratings(seed=5)
    ensemble = WeightedEnsemble([EASE(l2=5.0), Popularity()], metric="ndcg@5", validation_size=0.2, random_state=3)
    ensemble.fit(ratings)
    train, holdout = stratified_split(ratings, 0.2, random_state=3)
    expected = [model_error(m.fit(train), holdout, "ndcg@5") for m in (EASE(l2=5.0), Popularity())]
    np.testing.assert_allclose(ensemble.errors_, expected)
    assert all(0 < e < 1 for e in ensemble.errors_)


@pytest.mark.parametrize("metric", ["ndcg", "precision", "recall", "map"])
def test_every_ranking_metric_at_any_k_is_accepted(metric):
    ensemble = WeightedEnsemble([BiasedBaseline()], metric=f"{metric}@7", random_state=0).fit(synthetic_ratings())
    assert ensemble.errors_.shape == (1,)


@pytest.mark.parametrize("bad", ["ndcg", "ndcg@0", "auc@10", "ndcg@x", 10])
def test_bad_metric_is_refused(bad):
    with pytest.raises(InvalidParameterError, match="metric"):
        WeightedEnsemble([BiasedBaseline()], metric=bad).fit(synthetic_ratings())


def test_forward_selection_drops_a_member_that_only_adds_noise():
    from movierec import EASE

    ratings = synthetic_ratings(n_users=60, n_items=40, seed=2)
    noise = TableModel(np.random.default_rng(0).normal(size=(700, 300)))
    ratings = ratings.assign(userId=ratings.userId % 600 + 1, movieId=ratings.movieId % 280 + 100)
    ratings = ratings.drop_duplicates(["userId", "movieId"])
    ensemble = WeightedEnsemble([noise, EASE(l2=5.0)], metric="ndcg@5", select="forward", random_state=0)
    ensemble.fit(ratings)
    assert ensemble.members_.tolist() == [1]
    assert [type(m).__name__ for m in ensemble.models_] == ["EASE"]
    assert ensemble.candidate_errors_[1] < ensemble.candidate_errors_[0]
    assert set(ensemble.selection_.members) >= {(0,), (1,), (0, 1)}
    # The ensemble of the chosen member ranks exactly as that member.
    alone = EASE(l2=5.0).fit(ratings).top_n(n=4)
    assert ranking(ensemble.top_n(n=4)) == ranking(alone)


def test_forward_selection_needs_measured_errors():
    with pytest.raises(InvalidParameterError, match="select"):
        WeightedEnsemble([BiasedBaseline()], errors=[1.0], select="forward").fit(synthetic_ratings())


def test_full_top_n_from_score_matrices_equals_the_pair_by_pair_blend():
    from movierec import EASE

    ratings = synthetic_ratings(seed=4)
    ensemble = WeightedEnsemble([BiasedBaseline(), EASE(l2=3.0)], metric="ndcg@5", random_state=1).fit(ratings)
    top = ensemble.top_n(n=6)
    grid = pd.DataFrame(
        [(u, i) for u in ensemble.users_.ids for i in ensemble.items_.ids], columns=["userId", "movieId"]
    )
    grid = grid[~grid.set_index(["userId", "movieId"]).index.isin(ratings.set_index(["userId", "movieId"]).index)]
    score = sum(
        (m.predict(grid) - ensemble.score_mean_[p]) / ensemble.score_std_[p] / ensemble.errors_[p]
        for p, m in enumerate(ensemble.models_)
    )
    expected = grid.assign(score=score.to_numpy()).sort_values(
        ["userId", "score", "movieId"], ascending=[True, False, True]
    )
    expected = expected.groupby("userId").head(6)
    assert list(zip(top.userId, top.movieId)) == list(zip(expected.userId, expected.movieId))
    np.testing.assert_allclose(top.score, expected.score, rtol=1e-9)


@settings(max_examples=25, deadline=None)
@given(tables, tables, positive, st.floats(-50, 50), st.integers(0, 3))
def test_under_a_ranking_metric_an_affine_change_of_a_member_changes_nothing(a, b, scale, shift, seed):
    ratings = table_ratings(6, 9, seed)
    make = lambda t2: WeightedEnsemble([TableModel(a), t2], metric="ndcg@3", validation_size=0.3, random_state=seed)
    x = make(TableModel(b)).fit(ratings)
    y = make(TableModel(b, scale=scale, shift=shift)).fit(ratings)
    np.testing.assert_allclose(x.errors_, y.errors_)
    assert ranking(x.top_n(n=4)) == ranking(y.top_n(n=4))


@settings(max_examples=25, deadline=None)
@given(tables, tables, tables, st.permutations([0, 1, 2]), st.integers(0, 3))
def test_under_a_ranking_metric_member_order_changes_nothing(a, b, c, order, seed):
    ratings = table_ratings(6, 9, seed)
    tabs = [a, b, c]
    first = WeightedEnsemble([TableModel(t) for t in tabs], metric="ndcg@3", validation_size=0.3, random_state=seed)
    second = WeightedEnsemble(
        [TableModel(tabs[k]) for k in order], metric="ndcg@3", validation_size=0.3, random_state=seed
    )
    x, y = first.fit(ratings).top_n(n=4), second.fit(ratings).top_n(n=4)
    assert ranking(x) == ranking(y)
    np.testing.assert_allclose(x.score, y.score, rtol=1e-9, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(tables, st.integers(0, 3), st.booleans())
def test_under_a_ranking_metric_a_one_member_ensemble_ranks_as_its_member(a, seed, exclude_seen):
    ratings = table_ratings(6, 9, seed)
    ensemble = WeightedEnsemble([TableModel(a)], metric="map@3", validation_size=0.3, random_state=seed).fit(ratings)
    member = TableModel(a).fit(ratings)
    x = ensemble.top_n(n=4, exclude_seen=exclude_seen)
    y = member.top_n(n=4, exclude_seen=exclude_seen)
    assert ranking(x) == ranking(y)


# -- stacked weights (issue 14) ---------------------------------------------------------------------
def _z(members, fit_on, held, seed):
    """Standardized held-out scores of ``members`` fitted on ``fit_on``, mu and sigma from the public pieces."""
    fitted = [clone(m).fit(fit_on) for m in members]
    probe = WeightedEnsemble(members, errors=[1.0] * len(members), random_state=seed).fit(fit_on)
    return np.column_stack([
        np.nan_to_num((m.predict(held) - probe.score_mean_[p]) / probe.score_std_[p]) for p, m in enumerate(fitted)
    ]), fitted


def _nnls(z, y):
    from scipy.optimize import nnls

    return nnls(z - z.mean(0), y - y.mean())[0]


def test_stacked_weights_are_non_negative_least_squares_on_the_holdout():
    ratings = synthetic_ratings(seed=6)
    members = [BiasedBaseline(), BiasedBaseline(damping=0.0), BiasedBaseline(damping=50.0)]
    ensemble = WeightedEnsemble(members, weights="stacked", stacking_folds=None, validation_size=0.2,
                                random_state=2).fit(ratings)
    assert (ensemble.weights_ >= 0).all() and ensemble.weights_.any()
    # Recompute from the public pieces: the hold-out split, the members fitted on its training part, mu and sigma.
    train, holdout = stratified_split(ratings, 0.2, random_state=2)
    z, fitted = _z(members, train, holdout, 2)
    np.testing.assert_allclose(ensemble.weights_, _nnls(z, holdout.rating.to_numpy()), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(ensemble.errors_, [m.rmse(holdout) for m in fitted])
    assert np.isfinite(ensemble.stacked_error_) and np.isfinite(ensemble.intercept_)
    # predict is b + sum_m w_m z_m with the final members, clipped to the rating scale.
    z_all = sum((m.predict(ratings) - ensemble.score_mean_[p]) / ensemble.score_std_[p] * ensemble.weights_[p]
                for p, m in enumerate(ensemble.models_))
    np.testing.assert_allclose(ensemble.predict(ratings), np.clip(ensemble.intercept_ + z_all, 1, 5), rtol=1e-9)


def test_stacked_out_of_fold_weights_learn_from_every_rating():
    from movierec._core.random import rng as named_stream
    from movierec.ensemble._stacking import user_folds

    ratings = synthetic_ratings(seed=8)
    members = [BiasedBaseline(), BiasedBaseline(damping=0.0), BiasedBaseline(damping=50.0)]
    events: list[FitEvent] = []
    ensemble = WeightedEnsemble(members, weights="stacked", stacking_folds=3, random_state=4)
    ensemble.fit(ratings, callback=events.append)
    # Each member: 3 fits on two parts of every user's ratings, then one on all.
    folds = user_folds(ratings.userId, 3, named_stream(4, "stacking folds"))
    sizes = [int((folds != k).sum()) for k in range(3)]
    assert [(e.position, e.stage, e.n_ratings) for e in events] == [
        *((p, "validation", n) for n in sizes for p in range(3)), *((p, "final", len(ratings)) for p in range(3))
    ]
    # Every rating is scored once, by fits that did not see it; NNLS on all of them.
    zs, ys, errors = [], [], []
    for k in range(3):
        held = ratings[folds == k]
        z, fitted = _z(members, ratings[folds != k], held, 4)
        zs.append(z)
        ys.append(held.rating.to_numpy())
        errors.append([(m.predict(held) - held.rating).to_numpy() ** 2 for m in fitted])
    np.testing.assert_allclose(ensemble.weights_, _nnls(np.vstack(zs), np.concatenate(ys)), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(ensemble.errors_, [np.sqrt(np.mean(np.concatenate([e[p] for e in errors])))
                                                 for p in range(3)])
    assert np.isfinite(ensemble.stacked_error_)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(1, 6), min_size=1, max_size=60), st.integers(2, 6), st.integers(0, 2**32 - 1))
def test_user_folds_deal_each_users_ratings_evenly(users, n_folds, seed):
    from movierec.ensemble._stacking import user_folds

    users = pd.Series(users)
    folds = user_folds(users, n_folds, seed)
    assert ((folds >= 0) & (folds < n_folds)).all()
    for user in users.unique():
        counts = np.bincount(folds[(users == user).to_numpy()], minlength=n_folds)
        assert counts.max() - counts.min() <= 1
    np.testing.assert_array_equal(folds, user_folds(users, n_folds, seed))


def test_stacked_predictions_are_clipped_to_the_rating_scale():
    from movierec._core.validation import declare_scale

    ratings = declare_scale(table_ratings(6, 9, seed=5), (0.0, 10.0))
    table = np.zeros((6, 9))
    table[ratings.userId - 1, ratings.movieId - 100] = ratings.rating
    # An unrated pair of known ids (every user rated movie 100; this movie someone rated), far above the ratings.
    user, movie = next((u, i) for u, i in np.argwhere(table == 0) if table[:, i].any())
    table[user, movie] = 1e6
    ensemble = WeightedEnsemble([TableModel(table)], weights="stacked", stacking_folds=None, validation_size=0.3,
                                random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MovieRecWarning)  # hold-out pairs of movies rated once
        ensemble.fit(ratings)
    np.testing.assert_array_equal(ensemble.rating_scale_, [0.0, 10.0])
    predicted = ensemble.predict(pd.DataFrame({"userId": [user + 1, 1], "movieId": [movie + 100, 100]}))
    assert predicted.iloc[0] == 10.0 and 0.0 <= predicted.iloc[1] < 10.0
    # Undeclared: the range of the ratings.
    plain = WeightedEnsemble([BiasedBaseline()], weights="stacked", random_state=0).fit(synthetic_ratings(seed=5))
    np.testing.assert_array_equal(plain.rating_scale_, [1.0, 5.0])


def test_stacked_error_is_cross_fitted_not_in_sample():
    from movierec.ensemble._stacking import cross_fitted_rmse, stack

    rng = np.random.default_rng(0)
    z = rng.normal(size=(200, 3))
    y = rng.normal(size=200)  # pure noise: in-sample fit flatters, cross-fitting must not
    w, b = stack(z, y)
    in_sample = np.sqrt(np.mean((b + z @ w - y) ** 2))
    assert cross_fitted_rmse(z, y, seed=0) > in_sample
    # Clipping to a scale can only bring the blend closer to ratings that lie on it.
    y_on = np.clip(y, -0.5, 0.5)
    assert cross_fitted_rmse(z, y_on, 0, np.array([-0.5, 0.5])) <= cross_fitted_rmse(z, y_on, 0)


def test_stacked_ensemble_saves_and_loads_with_its_weights(tmp_path):
    ratings = synthetic_ratings(seed=7)
    ensemble = WeightedEnsemble([BiasedBaseline(), BiasedBaseline(damping=0.0)], weights="stacked",
                                stacking_folds=3, random_state=0).fit(ratings)
    ensemble.save(tmp_path / "e")
    loaded = WeightedEnsemble.load(tmp_path / "e")
    np.testing.assert_array_equal(loaded.weights_, ensemble.weights_)
    np.testing.assert_array_equal(loaded.rating_scale_, ensemble.rating_scale_)
    assert loaded.intercept_ == ensemble.intercept_ and loaded.stacking_folds == 3
    pd.testing.assert_series_equal(loaded.predict(ratings), ensemble.predict(ratings))
    plain = WeightedEnsemble([BiasedBaseline()], random_state=0).fit(ratings)
    plain.save(tmp_path / "p")
    assert np.isnan(WeightedEnsemble.load(tmp_path / "p").intercept_)


@pytest.mark.parametrize("params", [{"errors": [1.0, 1.0]}, {"metric": "ndcg@10"}])
def test_stacked_needs_measured_rmse_errors(params):
    with pytest.raises(InvalidParameterError, match="stacked"):
        WeightedEnsemble([BiasedBaseline(), BiasedBaseline()], weights="stacked", **params).fit(synthetic_ratings())


@pytest.mark.parametrize("folds", [1, 0, 2.5, "3"])
def test_stacking_folds_must_be_an_int_of_at_least_two(folds):
    with pytest.raises(InvalidParameterError, match="stacking_folds"):
        WeightedEnsemble([BiasedBaseline()], weights="stacked", stacking_folds=folds).fit(synthetic_ratings())


def test_forward_selection_with_stacking_needs_the_single_holdout():
    members = [BiasedBaseline(), BiasedBaseline(damping=0.0)]
    with pytest.raises(InvalidParameterError, match="stacking_folds=None"):
        WeightedEnsemble(members, weights="stacked", select="forward").fit(synthetic_ratings())
    ensemble = WeightedEnsemble(members, weights="stacked", select="forward", stacking_folds=None, random_state=0)
    assert len(ensemble.fit(synthetic_ratings()).weights_) == len(ensemble.models_)


folds_or_holdout = st.sampled_from([None, 2, 3])


@settings(max_examples=25, deadline=None)
@given(tables, tables, positive, st.floats(-50, 50), st.integers(0, 3), folds_or_holdout)
def test_stacked_an_affine_change_of_a_member_changes_nothing(a, b, scale, shift, seed, folds):
    ratings = table_ratings(6, 9, seed)
    make = lambda t2: WeightedEnsemble([TableModel(a), t2], weights="stacked", stacking_folds=folds,
                                       validation_size=0.3, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MovieRecWarning)
        x = make(TableModel(b)).fit(ratings)
        y = make(TableModel(b, scale=scale, shift=shift)).fit(ratings)
    # Collinear members may swap weights between them (NNLS picks one); the blend's scores cannot change.
    top_x, top_y = x.top_n(n=4), y.top_n(n=4)
    assert ranking(top_x) == ranking(top_y)
    np.testing.assert_allclose(top_x.score, top_y.score, rtol=1e-6, atol=1e-9)


@settings(max_examples=25, deadline=None)
@given(tables, tables, st.integers(0, 3), folds_or_holdout)
def test_stacked_member_order_changes_nothing(a, b, seed, folds):
    ratings = table_ratings(6, 9, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MovieRecWarning)
        x = WeightedEnsemble([TableModel(a), TableModel(b)], weights="stacked", stacking_folds=folds,
                             validation_size=0.3, random_state=seed).fit(ratings)
        y = WeightedEnsemble([TableModel(b), TableModel(a)], weights="stacked", stacking_folds=folds,
                             validation_size=0.3, random_state=seed).fit(ratings)
    top_x, top_y = x.top_n(n=4), y.top_n(n=4)
    assert ranking(top_x) == ranking(top_y)
    np.testing.assert_allclose(top_x.score, top_y.score, rtol=1e-6, atol=1e-9)


@settings(max_examples=25, deadline=None)
@given(tables, st.integers(0, 3), folds_or_holdout)
def test_stacked_one_member_ensemble_ranks_as_its_member(a, seed, folds):
    ratings = table_ratings(6, 9, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MovieRecWarning)
        ensemble = WeightedEnsemble([TableModel(a)], weights="stacked", stacking_folds=folds, validation_size=0.3,
                                    random_state=seed)
        ensemble.fit(ratings)
    assert ranking(ensemble.top_n(n=4)) == ranking(TableModel(a).fit(ratings).top_n(n=4))


def test_holdout_users_holds_out_ratings_of_a_sample_of_users_only():
    from movierec._core.random import rng as named_stream
    from movierec.data.split import sample_users
    from movierec.ensemble._holdout import holdout_split

    ratings = synthetic_ratings(n_users=60, seed=3)
    train, holdout = holdout_split(ratings, 0.2, 15, random_state=4)
    sampled = set(sample_users(ratings, 15, named_stream(4, "hold-out users")).userId)
    assert set(holdout.userId) <= sampled and len(set(holdout.userId)) == 15
    # every rating is in exactly one part, and the other users keep all of theirs in train
    both = pd.concat([train, holdout])
    assert len(both) == len(ratings) and not both.duplicated(["userId", "movieId"]).any()
    others = ratings[~ratings.userId.isin(sampled)]
    assert len(train.merge(others, on=["userId", "movieId"])) == len(others)
    # the errors are measured on that hold-out
    ensemble = WeightedEnsemble([BiasedBaseline()], validation_size=0.2, holdout_users=15, random_state=4)
    ensemble.fit(ratings)
    np.testing.assert_allclose(ensemble.errors_, [BiasedBaseline().fit(train).rmse(holdout)])
    # no more users than the limit: the plain stratified hold-out
    np.testing.assert_array_equal(holdout_split(ratings, 0.2, 60, 4)[1].index, stratified_split(ratings, 0.2, random_state=4)[1].index)


@pytest.mark.parametrize("candidates", [None, 30])
def test_refit_false_keeps_the_holdout_fits_and_still_excludes_every_rated_movie(candidates):
    from movierec import EASE

    ratings = synthetic_ratings(n_users=50, n_items=60, seed=5)
    events: list[FitEvent] = []
    ensemble = WeightedEnsemble([EASE(l2=5.0), BiasedBaseline()], metric="ndcg@5", validation_size=0.3,
                                holdout_users=20, refit=False, candidates=candidates, random_state=0)
    ensemble.fit(ratings, callback=events.append)
    assert {e.stage for e in events} == {"validation"} and len(events) == 2
    assert all(e.n_ratings < len(ratings) for e in events)
    top = ensemble.top_n(n=60)
    rated = top.merge(ratings, on=["userId", "movieId"])
    assert rated.empty  # the hold-out's movies are rated: never listed, though the members did not see them
    # the members themselves would list some of them: the exclusion is the ensemble's
    member_top = ensemble.models_[0].top_n(n=60)
    assert not member_top.merge(ratings, on=["userId", "movieId"]).empty
    # refit=True (the default) fits each member again on everything
    events.clear()
    WeightedEnsemble([BiasedBaseline()], holdout_users=20, random_state=0).fit(ratings, callback=events.append)
    assert [e.stage for e in events] == ["validation", "final"] and events[-1].n_ratings == len(ratings)


def test_rank_proposals_equals_top_n_from_the_members_lists_already_ranked():
    from movierec import EASE

    ratings = synthetic_ratings(n_users=40, n_items=60, seed=6)
    ensemble = WeightedEnsemble([EASE(l2=5.0), BiasedBaseline()], metric="ndcg@5", candidates=7, random_state=0)
    ensemble.fit(ratings)
    users = sorted(ratings.userId.unique())[:25]
    for exclude_seen in (True, False):
        deeper = [m.top_n(users=users, n=12, exclude_seen=exclude_seen) for m in ensemble.models_]  # past candidates
        got = ensemble.rank_proposals(deeper, n=6, exclude_seen=exclude_seen)
        pd.testing.assert_frame_equal(got.reset_index(drop=True),
                                      ensemble.top_n(users=users, n=6, exclude_seen=exclude_seen).reset_index(drop=True))
    with pytest.raises(InvalidParameterError, match="one top-N frame per member"):
        ensemble.rank_proposals(deeper[:1], n=6)
    full = WeightedEnsemble([BiasedBaseline()], errors=[1.0]).fit(ratings)
    with pytest.raises(InvalidParameterError, match="candidates"):
        full.rank_proposals([deeper[0]], n=6)


@pytest.mark.parametrize("candidates", [None, 5])
def test_forward_selection_scores_a_subset_as_that_ensemble_would_rank_in_its_own_mode(candidates):
    from movierec import EASE
    from movierec.ensemble._holdout import holdout_error

    ratings = synthetic_ratings(n_users=50, n_items=60, seed=7)
    members = [EASE(l2=5.0), BiasedBaseline()]
    ensemble = WeightedEnsemble(members, metric="ndcg@5", select="forward", candidates=candidates,
                                validation_size=0.2, random_state=3).fit(ratings)
    trace = {tuple(row.members): row.error for row in ensemble.selection_.itertuples()}
    np.testing.assert_allclose([trace[(0,)], trace[(1,)]], ensemble.candidate_errors_)  # a member alone: its error
    train, holdout = stratified_split(ratings, 0.2, random_state=3)
    pair = WeightedEnsemble([EASE(l2=5.0), BiasedBaseline()], errors=list(ensemble.candidate_errors_),
                            metric="ndcg@5", candidates=candidates, random_state=3).fit(train)
    assert trace[(0, 1)] == pytest.approx(holdout_error(pair, holdout, "ndcg@5"))


def test_scoring_copies_pickle_and_rank_as_the_fitted_models():
    import pickle

    from movierec import EASE, Popularity

    ratings = synthetic_ratings(n_users=25, n_items=20, seed=5)
    ensemble = WeightedEnsemble([EASE(l2=5.0), Popularity()], errors=[0.8, 0.9], random_state=0).fit(ratings)
    for model in (ensemble, ensemble.models_[0]):
        copy = pickle.loads(pickle.dumps(model.scoring_copy()))
        pd.testing.assert_frame_equal(copy.top_n(n=4), model.top_n(n=4))
    copy = ensemble.scoring_copy()
    assert all(a is not b for a, b in zip(copy.models_, ensemble.models_, strict=True))
    assert copy.models_[0].B_ is ensemble.models_[0].B_  # arrays are shared, not copied
    with pytest.raises(NotFittedError):
        WeightedEnsemble([EASE(), Popularity()]).scoring_copy()
    with pytest.raises(NotFittedError):
        EASE().scoring_copy()
