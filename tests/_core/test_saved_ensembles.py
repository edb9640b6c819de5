"""An ensemble's fitted state: one-valued ratings, folders saved by earlier code, one ratings check per fit.

- Data with one rating value (clicks: every rating 1.0) gives a rating scale (1, 1): every core
  model and the ensemble fit, save and load on it; a scale with lowest > highest or NaN is refused.
- ``tests/fixtures/ensemble-9178e73`` holds two tiny ensembles (synthetic ratings, no MovieLens
  data) saved by the code of commit 9178e73, before saves wrote a generation token and before
  ``FittedState``; they load and rank as they did then.
- A public ``fit`` checks its ratings once; the ensemble's inner fits (hold-out split, members,
  stacking folds, forward selection, nested ensembles) do not check them again.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from movierec._core import folder as _folder
from movierec._core import validation
from movierec.ensemble import WeightedEnsemble
from movierec.ensemble._state import FittedState
from movierec.exceptions import DataValidationError, ModelFileError
from movierec.models.baseline import BiasedBaseline
from movierec.models.ease import EASE
from movierec.models.popularity import Popularity
from movierec.testing import synthetic_ratings

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ensemble-9178e73"
RATINGS = synthetic_ratings(n_users=20, n_items=25, seed=7)  # the fixtures' data
CLICKS = synthetic_ratings(n_users=30, n_items=20, seed=1).assign(rating=1.0)


def core_models() -> dict[str, object]:
    return {
        "baseline": BiasedBaseline(),
        "pop": Popularity(),
        "ease": EASE(l2=10.0),
        "ensemble": WeightedEnsemble([BiasedBaseline(), Popularity(), EASE(l2=10.0)], random_state=0),
        "ensemble-ndcg": WeightedEnsemble([Popularity(), EASE(l2=10.0)], metric="ndcg@5", random_state=0),
        "ensemble-forward": WeightedEnsemble([BiasedBaseline(), EASE(l2=10.0)], select="forward", random_state=0),
        "ensemble-stacked": WeightedEnsemble([BiasedBaseline(), EASE(l2=10.0)], weights="stacked", random_state=0),
    }


# -- one rating value ---------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("name", list(core_models()))
def test_a_model_fitted_on_one_rating_value_saves_and_loads(tmp_path, name):
    model = core_models()[name].fit(CLICKS)
    model.save(tmp_path / "m")
    loaded = type(model).load(tmp_path / "m")
    pd.testing.assert_frame_equal(loaded.top_n(n=3), model.top_n(n=3))
    pd.testing.assert_series_equal(loaded.predict(CLICKS), model.predict(CLICKS))
    if isinstance(model, WeightedEnsemble):
        np.testing.assert_array_equal(loaded.rating_scale_, [1.0, 1.0])


@pytest.mark.filterwarnings("ignore")
def test_surprise_svd_fitted_on_one_rating_value_saves_and_loads(tmp_path):
    pytest.importorskip("surprise")
    from movierec.models.surprise_svd import SurpriseSVD

    model = SurpriseSVD(random_state=0).fit(CLICKS)
    model.save(tmp_path / "m")
    pd.testing.assert_series_equal(SurpriseSVD.load(tmp_path / "m").predict(CLICKS), model.predict(CLICKS))


def _with_scale(path: Path, scale: list[float]) -> None:
    with np.load(path / "arrays.npz", allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    np.savez(path / "arrays.npz", **{**arrays, "rating_scale": np.array(scale)})
    _folder.write_manifest(path)


@pytest.mark.parametrize(("scale", "match"), [([5.0, 1.0], r"lowest <= highest, got \[5.0, 1.0\]"),
                                              ([np.nan, 5.0], "NaN or infinite")])
def test_a_decreasing_or_nan_rating_scale_is_refused(tmp_path, scale, match):
    WeightedEnsemble([BiasedBaseline(), EASE(l2=10.0)], weights="stacked", random_state=0).fit(RATINGS).save(tmp_path / "m")
    _with_scale(tmp_path / "m", scale)
    with pytest.raises(ModelFileError, match=match):
        WeightedEnsemble.load(tmp_path / "m")


# -- folders saved by earlier code ----------------------------------------------------------------
@pytest.mark.parametrize("name", ["inverse", "stacked"])
def test_an_ensemble_saved_at_9178e73_loads_and_ranks_the_same(tmp_path, name):
    shutil.copytree(FIXTURES / name, tmp_path / name)  # a load must not need to write
    expected = json.loads((FIXTURES / f"{name}.expected.json").read_text())
    loaded = WeightedEnsemble.load(tmp_path / name)
    top = loaded.top_n(n=3)
    old = pd.DataFrame(expected["top_n"])
    pd.testing.assert_frame_equal(top[["userId", "movieId", "rank"]], old[["userId", "movieId", "rank"]],
                                  check_dtype=False)
    np.testing.assert_allclose(top["score"], old["score"], rtol=1e-12)
    np.testing.assert_allclose(loaded.predict(RATINGS.iloc[:40]), expected["predict"], rtol=1e-12)
    assert set(vars(FittedState.from_ensemble(loaded))) == {f"{k[:-1]}" for k in vars(loaded) if k.endswith("_")}


def test_fitted_state_is_every_fitted_attribute_and_round_trips(tmp_path):
    model = WeightedEnsemble([BiasedBaseline(), Popularity()], select="forward", random_state=0).fit(RATINGS)
    state = FittedState.from_ensemble(model)
    fitted = {k for k in vars(model) if k.endswith("_") and not k.startswith("_")}
    assert fitted == {f"{name}_" for name in vars(state)}
    copy = state.apply(WeightedEnsemble(model.models, select="forward", random_state=0))
    pd.testing.assert_frame_equal(copy.top_n(n=3), model.top_n(n=3))


# -- one check per public fit -------------------------------------------------------------------
@pytest.fixture
def checks(monkeypatch) -> list[int]:
    """Count the full checks of a ratings frame (not the calls a running fit lets through)."""
    counted: list[int] = []
    real = validation._validate_ratings

    def counting(ratings, *args, **kwargs):
        counted.append(len(ratings))
        return real(ratings, *args, **kwargs)

    monkeypatch.setattr(validation, "_validate_ratings", counting)
    return counted


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize(
    "model",
    [
        WeightedEnsemble([BiasedBaseline(), Popularity(), EASE(l2=10.0)], random_state=0),
        WeightedEnsemble([BiasedBaseline(), Popularity(), EASE(l2=10.0)], holdout_users=8, random_state=0),
        WeightedEnsemble([BiasedBaseline(), EASE(l2=10.0)], weights="stacked", random_state=0),
        WeightedEnsemble([BiasedBaseline(), Popularity(), EASE(l2=10.0)], select="forward", random_state=0),
        WeightedEnsemble([WeightedEnsemble([BiasedBaseline(), EASE(l2=10.0)], random_state=1), Popularity()],
                         random_state=0),
        EASE(l2=10.0),
    ],
    ids=["holdout", "holdout-users", "stacked-folds", "forward", "nested", "ease"],
)
def test_a_public_fit_checks_its_ratings_exactly_once(checks, model):
    model.fit(RATINGS)
    assert checks == [len(RATINGS)]
    model.fit(RATINGS)  # the trust ended with the first fit
    assert checks == [len(RATINGS)] * 2


def test_a_member_fitted_after_the_ensemble_checks_again(checks):
    WeightedEnsemble([BiasedBaseline(), Popularity()], random_state=0).fit(RATINGS)
    BiasedBaseline().fit(RATINGS.iloc[:100])
    assert checks == [len(RATINGS), 100]


def test_a_trusted_frame_is_checked_again_once_changed(checks):
    frame = RATINGS.copy()
    with validation.trusted_ratings(frame):
        validation.check_ratings(frame)
        assert checks == []
        frame["timestamp"] = frame["timestamp"].astype(float)  # dtypes changed since the check
        validation.check_ratings(frame)
        assert checks == [len(RATINGS)]
        other = frame.copy()  # the same rows in another frame: not the trusted one
        validation.check_ratings(other)
        assert len(checks) == 2
    validation.check_ratings(frame)  # the block ended
    assert len(checks) == 3


def test_an_empty_or_bad_frame_is_never_trusted():
    empty = RATINGS.iloc[:0]
    bad = RATINGS.assign(rating=np.nan)
    with validation.trusted_ratings(empty, bad):
        with pytest.raises(DataValidationError, match="ratings is empty"):
            validation.check_ratings(empty)
        validation.check_ratings(bad)  # the block vouches for it: the trust is the block's, not the frame's
    with pytest.raises(DataValidationError, match="NaN"):
        validation.check_ratings(bad)


# -- a member that reads its own files by path ----------------------------------------------------
@pytest.mark.spark
@pytest.mark.slow
def test_an_ensemble_with_a_spark_member_loads_whole_and_rereads_when_replaced(spark, tmp_path, monkeypatch):
    from movierec.ensemble import _files
    from movierec.models.spark_als import SparkALS

    members = [SparkALS(rank=3, max_iter=3, random_state=0, spark=spark), BiasedBaseline()]
    model = WeightedEnsemble(members, errors=[1.0, 2.0], random_state=0).fit(RATINGS)
    model.save(tmp_path / "e")
    loaded = WeightedEnsemble.load(tmp_path / "e")
    try:
        np.testing.assert_allclose(loaded.predict(RATINGS), model.predict(RATINGS), rtol=1e-6)
    finally:
        loaded.close()
    # A save that lands while the Spark member is read by path makes the load read again.
    real, calls = SparkALS.load, []

    def load_then_replace(path, spark=None):
        member = real(path, spark=spark)
        calls.append(path)
        if len(calls) == 1:
            model.save(tmp_path / "e")
        return member

    monkeypatch.setattr(SparkALS, "load", classmethod(lambda cls, path, spark=None: load_then_replace(path, spark)))
    again = WeightedEnsemble.load(tmp_path / "e")
    again.close()
    assert len(calls) == 2 and _files.generation_at(tmp_path / "e") is not None  # read again once
    model.close()
