"""The main job as a library call: settings checked when made, members sized to the data, and a run
that ranks and measures every model as ``movierec recommend`` does."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from movierec import EASE, pipeline, registry
from movierec.data.split import stratified_split
from movierec.exceptions import DataValidationError, InvalidParameterError
from movierec.pipeline import Settings
from movierec.testing import synthetic_ratings


@pytest.mark.parametrize("bad", [
    {"task": "clicks"}, {"models": ("nope",)}, {"models": ("ease", "ease")}, {"models": ("svd",)},
    {"weights": "stacked"}, {"n": 0}, {"k": True}, {"ensemble": "some"}, {"recommender": "svd"},
    {"random_state": 2**32}, {"random_state": -1}, {"random_state": 1.5},
    {"ensemble": "candidates", "candidates": 5, "n": 10},
])
def test_bad_settings_are_refused_when_made(bad):
    with pytest.raises(InvalidParameterError):
        Settings(**bad)


def test_settings_defaults_and_members():
    settings = Settings()
    assert settings.members == pipeline.DEFAULT_MODELS["ranking"] and settings.metric == "ndcg@10"
    assert Settings(task="rating").members == ("als", "svd", "fm") and Settings(task="rating").metric == "rmse"
    assert Settings(models=["ease", "pop"]).models == ("ease", "pop")  # a list becomes a tuple: frozen
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.n = 3


def test_ranking_ensemble_mode_follows_the_data_size(monkeypatch):
    train = pd.DataFrame({"userId": [1, 1, 2, 3], "movieId": [10, 11, 10, 12], "rating": 4.0})  # 3 x 3 cells
    settings = Settings(n=30, k=10)
    assert pipeline.candidates_for(settings, train) is None  # small: every unseen movie
    monkeypatch.setattr(pipeline, "FULL_ENSEMBLE_CELLS", 8)
    assert pipeline.candidates_for(settings, train) == 30  # large: candidates, at least n
    assert pipeline.candidates_for(Settings(ensemble="full", n=5), train) is None
    assert pipeline.candidates_for(Settings(ensemble="candidates", n=5), train) == 20
    assert pipeline.candidates_for(Settings(task="rating", models=("svd",), n=5), train) == 20


def test_ranking_ensemble_settings_follow_the_data_size(monkeypatch):
    train = synthetic_ratings(n_users=30, n_items=40, seed=1)
    ensemble, names = pipeline.build_ensemble(train, Settings())
    assert names == ["ease", "als", "fm"] and ensemble.refit and ensemble.holdout_users == pipeline.HOLDOUT_USERS
    monkeypatch.setitem(registry.MODELS, "fm", dataclasses.replace(registry.MODELS["fm"],
                                                                   default_max_ratings={"ranking": len(train) - 1}))
    monkeypatch.setattr(pipeline, "REFIT_USERS", 29)
    ensemble, names = pipeline.build_ensemble(train, Settings())
    assert names == ["ease", "als"] and len(ensemble.models) == 2 and not ensemble.refit
    # members the user named are kept whatever the size
    assert pipeline.build_ensemble(train, Settings(models=("ease", "als", "fm")))[1] == ["ease", "als", "fm"]
    # the limit is the ranking task's only: the rating task keeps its members
    assert pipeline.build_ensemble(train, Settings(task="rating"))[1] == ["als", "svd", "fm"]


def test_a_member_that_cannot_be_tuned_keeps_its_default(caplog):
    one_each = pd.DataFrame({"userId": range(20), "movieId": [i % 4 for i in range(20)], "rating": 4.0})
    with caplog.at_level("WARNING", logger="movierec"):
        ensemble, names = pipeline.build_ensemble(one_each, Settings(models=("ease",)))
    assert names == ["ease"] and ensemble.models[0].l2 == EASE().l2
    assert "ease kept its default settings" in caplog.text and "two or more ratings" in caplog.text


def test_run_ranks_and_measures_every_model_and_closes_the_members():
    ratings = synthetic_ratings(n_users=60, n_items=50, seed=3)
    train, test = stratified_split(ratings, 0.2, random_state=0)
    steps = []
    result = pipeline.run(train, test, Settings(models=("ease", "pop"), n=5, k=5),
                          progress=lambda stage, done, total, detail: steps.append((stage, done, total)))
    assert list(result.metrics.index) == ["popularity", *result.members, "ensemble"]
    assert set(result.top) == set(result.metrics.index)
    top = result.recommendations
    assert list(top.columns) == ["userId", "movieId", "score", "rank"] and top["rank"].max() == 5
    assert top.groupby("userId").size().eq(5).all()
    pd.testing.assert_frame_equal(top, result.top["ensemble"][result.top["ensemble"]["rank"] <= 5].reset_index(drop=True))
    fits = [done for stage, done, _ in steps if stage == "fitting"]
    assert fits == list(range(1, 2 + len(result.members) + 1))  # both on the hold-out, the chosen on all
    assert ("top-N", len(result.top), len(result.top)) in steps
    assert set(result.timings) == {"build", "fit", "top_n", "evaluate"}
    assert set(result.fit_seconds) == {"ease", "pop"}
    # the table's figures are the lists' own
    from movierec.metrics import ndcg_at_k

    assert result.metrics.loc["ensemble", "ndcg@5"] == pytest.approx(ndcg_at_k(result.top["ensemble"], test, k=5))


def test_run_refuses_data_with_nothing_to_rank_before_any_fit():
    alone = pd.DataFrame({"userId": 1, "movieId": range(1, 11), "rating": 3.0})
    with pytest.raises(DataValidationError, match="nothing left to recommend"):
        pipeline.run(alone.iloc[:8], alone.iloc[8:], Settings(models=("ease",)))
