"""SageMakerFM's tuning: the checks and split both backends share, and the local random search.

The local search uses only the model's public API: each candidate is a new model built from
``get_params()`` and the drawn values, fitted on the training part and scored (``predict``) on
the validation part with SageMaker's objective; the best values are then ``set_params`` on the
model, which is fitted on all the ratings. The SageMaker backend runs a tuning job instead
(`movierec.sagemaker._tuning`) on the same split.
"""

from __future__ import annotations

import logging
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from movierec._core.params import Int, Options, Real, check_value, seed_sequence
from movierec._core.validation import RATING
from movierec.base import TuneResult
from movierec.data.split import stratified_split
from movierec.exceptions import InvalidParameterError
from movierec.sagemaker._requests import OBJECTIVES as DEFAULT_OBJECTIVES  # SageMaker's own defaults

if TYPE_CHECKING:  # pragma: no cover
    from movierec.models.sagemaker_fm._model import SageMakerFM
    from movierec.sagemaker._tuning import TuningOutcome

__all__ = [
    "INTEGER_PARAMETERS",
    "NOT_TUNABLE",
    "OBJECTIVES",
    "Search",
    "objective_value",
    "plan",
    "random_search",
    "tuning_job_result",
]

logger = logging.getLogger("movierec.models.sagemaker_fm")  # the logger name users filter on

#: parameters a search may not draw: they change the task, the data or who trains
NOT_TUNABLE = (
    "predictor_type", "positive_rating", "negatives_per_positive", "feature_dim", "side_features", "backend",
    "sagemaker", "random_state",
)
#: parameters drawn as integers (the others in a (low, high) range are floats)
INTEGER_PARAMETERS = ("num_factors", "epochs", "mini_batch_size")
OBJECTIVES = {  # SageMaker's metric name -> (predictor type, direction); see objective_value
    "test:rmse": ("regressor", "minimize"),
    "test:binary_classification_accuracy": ("binary_classifier", "maximize"),
    "test:binary_classification_cross_entropy": ("binary_classifier", "minimize"),
}


@dataclass(frozen=True)
class Search:
    """A checked tuning request: what to draw, what to measure, and the split to measure it on.

    Attributes
    ----------
    ranges : dict
        Hyperparameter name -> ``(low, high)`` or a list of values.
    objective : str
        SageMaker's metric name (``"test:rmse"`` ...).
    max_jobs : int
    train, valid : pandas.DataFrame
        The per-user split of the ratings: candidates learn from ``train`` and are scored on ``valid``.
    draws : numpy.random.Generator
        Draws the candidates' values (the local search only).
    """

    ranges: dict[str, Any]
    objective: str
    max_jobs: int
    train: pd.DataFrame
    valid: pd.DataFrame
    draws: np.random.Generator

    def typed_ranges(self) -> dict[str, Any]:
        """Return the ranges with integer bounds for integer parameters and float bounds otherwise.

        SageMaker tells an integer range from a continuous one by the type of its bounds.
        """
        return {
            name: tuple((int if name in INTEGER_PARAMETERS else float)(v) for v in spec)
            if isinstance(spec, tuple) else spec
            for name, spec in self.ranges.items()
        }


def plan(
    model: SageMakerFM,
    ratings: pd.DataFrame,
    ranges: Mapping[str, Any],
    *,
    max_jobs: Any,
    objective: Any,
    validation_size: Any,
) -> Search:
    """Return the checked `Search` for ``model.tune``'s arguments, its split drawn.

    ``ratings`` and the model's own parameters are checked by the caller. The split and the draws
    come from ``SeedSequence(random_state).spawn(2)``, so a seeded search is repeatable.

    Raises
    ------
    InvalidParameterError
        A bad ``max_jobs``, ``validation_size``, ``objective`` or ``ranges``.
    """
    owner = f"{type(model).__name__}.tune"
    max_jobs = check_value(owner, "max_jobs", max_jobs, Int(1))
    validation_size = check_value(
        owner, "validation_size", validation_size, Real(0, 1, open_low=True, open_high=True)
    )
    params = model.get_params()
    predictor_type = params["predictor_type"]
    objective = check_value(
        owner, "objective", DEFAULT_OBJECTIVES[predictor_type] if objective is None else objective,
        Options(tuple(OBJECTIVES)),
    )
    if OBJECTIVES[objective][0] != predictor_type:
        raise InvalidParameterError(
            f"{owner}: objective {objective!r} needs predictor_type={OBJECTIVES[objective][0]!r}, "
            f"not {predictor_type!r}"
        )
    checked = _check_ranges(owner, ranges, sorted(set(params) - set(NOT_TUNABLE)))
    split_rng, draws = (np.random.default_rng(s) for s in seed_sequence(params["random_state"]).spawn(2))
    train, valid = stratified_split(ratings, validation_size, random_state=split_rng)
    return Search(checked, objective, max_jobs, train, valid, draws)


def _check_ranges(owner: str, ranges: Any, tunable: list[str]) -> dict[str, Any]:
    if not isinstance(ranges, Mapping) or not ranges or set(ranges) - set(tunable):
        raise InvalidParameterError(
            f"{owner}: ranges must name hyperparameters among {tunable}, "
            f"got {sorted(ranges) if isinstance(ranges, Mapping) else ranges!r}"
        )
    for name, spec in ranges.items():
        if isinstance(spec, list):
            if not spec:
                raise InvalidParameterError(f"{owner}: ranges[{name!r}] is an empty list")
            continue
        if not (
            isinstance(spec, tuple)
            and len(spec) == 2
            and all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in spec)
            and spec[0] <= spec[1]
        ):
            raise InvalidParameterError(
                f"{owner}: ranges[{name!r}] must be (low, high) with low <= high or a list, got {spec!r}"
            )
    return dict(ranges)


def draw(rng: np.random.Generator, spec: Any, *, integer: bool) -> Any:
    """Return one value drawn from ``spec``, a checked (low, high) pair or a non-empty list.

    Integers are uniform in ``[low, high]``; floats log-uniform when ``low > 0``, else uniform; a
    list gives one of its values.
    """
    if isinstance(spec, list):
        return spec[int(rng.integers(len(spec)))]
    low, high = spec
    if integer:
        return int(rng.integers(int(low), int(high) + 1))
    if low > 0:
        return float(np.exp(rng.uniform(np.log(low), np.log(high))))
    return float(rng.uniform(low, high))


def objective_value(targets: np.ndarray, predicted: np.ndarray, objective: str) -> float:
    """Return SageMaker's tuning metric ``objective`` of ``predicted`` against the model's ``targets``.

    ``targets`` are ``prediction_targets`` of the ratings: ``test:rmse`` compares with the ratings;
    the binary metrics with the 0/1 labels (accuracy at threshold 0.5; cross entropy with
    probabilities clipped to [1e-15, 1 - 1e-15]).
    Pairs predicted NaN (ids unseen in training) are left out; NaN if none is left.
    """
    known = np.isfinite(predicted)
    if not known.any():
        return float("nan")
    if not known.all():
        logger.debug("%d validation pairs cannot be scored and are left out", int((~known).sum()))
    truth, predicted = targets[known], predicted[known]
    if objective == "test:rmse":
        return float(np.sqrt(np.mean((truth - predicted) ** 2)))
    labels = truth == 1.0
    if objective == "test:binary_classification_accuracy":
        return float(np.mean((predicted >= 0.5) == labels))
    p = np.clip(predicted, 1e-15, 1 - 1e-15)  # test:binary_classification_cross_entropy
    return float(-np.mean(np.where(labels, np.log(p), np.log1p(-p))))


def random_search(
    model: SageMakerFM,
    ratings: pd.DataFrame,
    search: Search,
    *,
    users: pd.DataFrame | None,
    items: pd.DataFrame | None,
) -> TuneResult:
    """Return the best of ``search.max_jobs`` random candidates, after fitting ``model`` with it on all data.

    Every candidate is ``type(model)(**model.get_params(), **drawn)``; the model itself is only
    changed at the end, by ``set_params`` and ``fit``.
    """
    base = model.get_params()
    truth = model.prediction_targets(search.valid[RATING].to_numpy(dtype=np.float64))
    jobs, rows = [], []
    for job in range(search.max_jobs):
        drawn = {
            name: draw(search.draws, spec, integer=name in INTEGER_PARAMETERS)
            for name, spec in search.ranges.items()
        }
        with type(model)(**{**base, **drawn}) as candidate:
            candidate.fit(search.train, users=users, items=items)
            predicted = candidate.predict(search.valid).to_numpy()
        value = objective_value(truth, predicted, search.objective)
        logger.info(
            "tune job %d/%d: %s -> %s = %.5f", job + 1, search.max_jobs, drawn, search.objective, value
        )
        jobs.append(drawn)
        rows.append({**drawn, search.objective: value})
    results = pd.DataFrame(rows)
    scores = results[search.objective].to_numpy(dtype=float)
    if OBJECTIVES[search.objective][1] == "minimize":
        best = int(np.argmin(np.where(np.isnan(scores), np.inf, scores)))
    else:
        best = int(np.argmax(np.where(np.isnan(scores), -np.inf, scores)))
    model.set_params(**jobs[best])
    model.fit(ratings, users=users, items=items)
    return TuneResult(
        best_params=jobs[best],
        best_score=float(results[search.objective].iloc[best]),
        metric=search.objective,
        results=results,
    )


def tuning_job_result(search: Search, outcome: TuningOutcome) -> TuneResult:
    """Return the [`TuneResult`][movierec.TuneResult] of a SageMaker tuning job: its best job's tuned values and score.

    SageMaker reports no score for the jobs that lost, so ``results`` has the best job's row only,
    with its ``training_job``; ``best_score`` is NaN when SageMaker reported none.
    """
    params = {k: v for k, v in outcome.hyperparameters.items() if k in search.ranges}
    score = float("nan") if outcome.objective_value is None else float(outcome.objective_value)
    results = pd.DataFrame([{**params, search.objective: score, "training_job": outcome.training_job}])
    return TuneResult(best_params=params, best_score=score, metric=search.objective, results=results)
