import dataclasses
import subprocess
import sys
from collections.abc import Mapping
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from movierec import Recommender, TuneResult
from movierec._core.ids import IdIndex
from movierec._core.params import Constraint, Real, Seed
from movierec._core.ranking import top_k
from movierec.exceptions import InvalidParameterError, NotFittedError


@given(arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 9)), elements=st.sampled_from([-np.inf, 0.0, 1.0, 2.0, 2.5, np.nan])), st.integers(1, 10))
def test_top_k_equals_a_full_sort(scores, k):
    rows, cols, values = top_k(scores, k)
    for r in range(scores.shape[0]):
        row = np.where(np.isnan(scores[r]), -np.inf, scores[r])
        finite = [c for c in np.lexsort((np.arange(len(row)), -row)) if np.isfinite(row[c])][:k]
        assert cols[rows == r].tolist() == finite
        np.testing.assert_array_equal(values[rows == r], row[finite])


def test_id_index_round_trip_and_unknowns():
    index = IdIndex([30, 10, 20, 10])
    assert index.ids.tolist() == [10, 20, 30]
    assert index.lookup([20, 99, 10]).tolist() == [1, -1, 0]
    again = IdIndex.from_array(index.to_array())
    assert again.lookup([30]).tolist() == [2]
    strings = IdIndex(["b", "a"])
    assert IdIndex.from_array(strings.to_array()).lookup(["a", "b", "z"]).tolist() == [0, 1, -1]


def test_import_movierec_loads_no_heavy_backend():
    code = (
        "import sys, movierec;"
        "heavy = [m for m in ('pyspark', 'surprise', 'boto3', 'sagemaker', 'botocore', 'matplotlib') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_lazy_adapter_names_are_listed():
    import movierec

    assert {"SparkALS", "SurpriseSVD", "SageMakerFM"} <= set(dir(movierec))
    with pytest.raises(AttributeError):
        _ = movierec.NoSuchThing


# -- the contract's parameter rules --------------------------------------------------------------------
def _fit_with_seed(name: str):
    """Return a function that fits (or splits) with a given random_state, for the model ``name``."""
    from movierec import random_split, stratified_split
    from movierec.registry import model_class
    from movierec.testing import synthetic_ratings

    ratings = synthetic_ratings(n_users=6, n_items=8)
    splits = {"random_split": random_split, "stratified_split": stratified_split}
    if name in splits:
        return lambda seed: splits[name](ratings, random_state=seed)
    cls = model_class(name)
    return lambda seed: cls(random_state=seed).fit(ratings)


@pytest.mark.parametrize("seed", [-1, 2**32])
def test_random_state_is_refused_with_the_same_message_everywhere(seed):
    owners = ["SurpriseSVD", "MyFMBayes", "random_split", "stratified_split"]
    messages = {}
    for owner in owners:
        with pytest.raises(InvalidParameterError) as caught:
            _fit_with_seed(owner)(seed)
        prefix, _, rest = str(caught.value).partition(": ")
        assert prefix == owner
        messages[owner] = rest
    assert set(messages.values()) == {f"random_state must be None or an int in [0, {2**32 - 1}], got {seed}"}


class _Toy(Recommender):
    """The smallest Recommender: enough to exercise the base class's own behaviour."""

    _parameter_constraints: ClassVar[Mapping[str, Constraint]] = {"alpha": Real(0, 1), "random_state": Seed()}

    def __init__(self, alpha: float = 0.5, random_state: int | None = None) -> None:
        self.alpha = alpha
        self.random_state = random_state
        self.closed = 0

    def fit(self, ratings):
        self._validate_params()
        self.fitted_ = True
        return self

    def predict(self, pairs):
        self._check_fitted()

    def top_n(self, users=None, n=5, *, exclude_seen=True):
        self._check_fitted()

    def close(self) -> None:
        self.closed += 1


def test_validate_params_checks_the_declared_constraints_and_normalizes():
    assert _Toy(alpha=1, random_state=np.int64(3))._validate_params() == {"alpha": 1.0, "random_state": 3}
    with pytest.raises(InvalidParameterError, match=r"^_Toy: alpha must be a float in \[0, 1\], got 2$"):
        _Toy(alpha=2).fit(None)
    with pytest.raises(NotFittedError):
        _Toy().predict(None)


def test_a_recommender_is_a_context_manager_that_closes():
    with _Toy() as model:
        assert model.closed == 0
    assert model.closed == 1


def test_tune_result_is_frozen():
    result = TuneResult({"rank": 4}, 0.9, "rmse", pd.DataFrame({"rank": [4], "rmse": [0.9]}))
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.best_score = 0.8


def test_non_finite_scores_of_known_ids_raise_backend_error_naming_the_model():
    import pandas as pd

    from movierec import BiasedBaseline
    from movierec.exceptions import BackendError
    from movierec.testing import synthetic_ratings

    ratings = synthetic_ratings()
    model = BiasedBaseline().fit(ratings)
    model.item_bias_[0] = np.nan  # a broken learned state, as a bad artifact or endpoint would give
    with pytest.raises(BackendError, match="BiasedBaseline gave .* NaN or infinite"):
        model.predict(ratings)
    with pytest.raises(BackendError, match="BiasedBaseline"):
        model.top_n(n=3)
    with pytest.raises(BackendError, match="BiasedBaseline"):
        model.score_matrix(model.users_.ids[:2], model.items_.ids)
    # Unknown ids stay NaN (cold start), not an error.
    cold = model.predict(pd.DataFrame({"userId": [-5], "movieId": [model.items_.ids[1]]}))
    assert np.isnan(cold.iloc[0])


# -- bools are bools (moved from the hostile-input tests) ------------------------------------------
@pytest.mark.parametrize("value", ["False", 0, 1, None, np.array([True])])
def test_exclude_seen_must_be_a_real_bool(value):
    from movierec import BiasedBaseline, WeightedEnsemble
    from movierec.testing import synthetic_ratings

    ratings = synthetic_ratings(n_users=5, n_items=8)
    for model in (BiasedBaseline().fit(ratings), WeightedEnsemble([BiasedBaseline()], errors=[1.0]).fit(ratings)):
        with pytest.raises(InvalidParameterError, match="exclude_seen"):
            model.top_n(n=2, exclude_seen=value)
