"""SageMakerFM.tune: a local random search, or one SageMaker tuning job."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from movierec._validation import ITEM, RATING, USER, check_choice, check_fraction, check_n, check_ratings
from movierec.adapters import _fm, _fm_features
from movierec.adapters.sagemaker_fm import _POSITIVE_INTS, SageMakerFM, _sagemaker_backend
from movierec.exceptions import DataValidationError

__all__ = ["NOT_TUNABLE", "OBJECTIVES", "tune"]

logger = logging.getLogger("movierec.adapters.sagemaker_fm")  # the logger name users filter on

NOT_TUNABLE = ("predictor_type", "feature_dim", "side_features", "backend", "sagemaker", "random_state")
OBJECTIVES = {  # SageMaker's metric name -> (predictor type, direction); see _fm.objective_value
    "test:rmse": ("regressor", "minimize"),
    "test:binary_classification_accuracy": ("binary_classifier", "maximize"),
    "test:binary_classification_cross_entropy": ("binary_classifier", "minimize"),
}


def tune(
    model: SageMakerFM,
    ratings: pd.DataFrame,
    ranges: Mapping[str, tuple[float, float] | list[Any]],
    *,
    max_jobs: int,
    objective: str | None,
    validation_size: float,
    users: pd.DataFrame | None,
    items: pd.DataFrame | None,
) -> dict[str, Any]:
    """Return what :meth:`SageMakerFM.tune` returns, for ``model``; see its docstring."""
    check_ratings(ratings)
    max_jobs = check_n(max_jobs, "max_jobs")
    validation_size = check_fraction(validation_size, "validation_size")
    model._check_params()
    from movierec.sagemaker._requests import OBJECTIVES as DEFAULT_OBJECTIVES  # SageMaker's own defaults

    objective = objective or DEFAULT_OBJECTIVES[model.predictor_type]
    check_choice(objective, "objective", tuple(OBJECTIVES))
    kind, direction = OBJECTIVES[objective]
    if kind != model.predictor_type:
        raise DataValidationError(
            f"objective {objective!r} needs predictor_type={kind!r}, not {model.predictor_type!r}"
        )
    tunable = set(model._param_names()) - set(NOT_TUNABLE)
    unknown = sorted(set(ranges) - tunable)
    if unknown or not ranges:
        raise DataValidationError(
            f"ranges must name hyperparameters among {sorted(tunable)}, got {sorted(ranges)}"
        )
    from movierec.split import stratified_split

    if isinstance(model.random_state, np.random.Generator):
        split_rng, draw = (np.random.default_rng(s) for s in model.random_state.integers(2**63, size=2))
    else:
        split_rng, draw = (
            np.random.default_rng(s) for s in np.random.SeedSequence(model.random_state).spawn(2)
        )
    train, valid = stratified_split(ratings, validation_size, random_state=split_rng)
    if model.backend == "sagemaker":
        return _tune_on_sagemaker(model, ratings, train, valid, ranges, objective, max_jobs, users, items)
    jobs, rows = [], []
    for job in range(max_jobs):
        drawn = {
            name: _fm.draw(draw, name, spec, integer=name in _POSITIVE_INTS)
            for name, spec in ranges.items()
        }
        with type(model)(**{**model.get_params(), **drawn}) as candidate:
            candidate.fit(train, users=users, items=items)
            predicted = candidate.predict(valid).to_numpy()
        value = _fm.objective_value(valid[RATING].to_numpy(dtype=np.float64), predicted, objective)
        logger.info("tune job %d/%d: %s -> %s = %.5f", job + 1, max_jobs, drawn, objective, value)
        jobs.append(drawn)
        rows.append({**drawn, objective: value})
    results = pd.DataFrame(rows)
    scores = results[objective].to_numpy(dtype=float)
    scores = np.where(np.isnan(scores), np.inf if direction == "minimize" else -np.inf, scores)
    best = int(np.argmin(scores) if direction == "minimize" else np.argmax(scores))
    params = jobs[best]
    model.set_params(**params)
    model.fit(ratings, users=users, items=items)
    return {
        "params": params,
        "objective": objective,
        "value": float(results[objective].iloc[best]),
        "results": results,
    }


def _tune_on_sagemaker(model, ratings, train, valid, ranges, objective, max_jobs, users, items) -> dict[str, Any]:
    """One SageMaker tuning job (train part: train channel, validation part: test channel).

    Its best training job becomes the model as it is (trained on the training part; call
    ``fit(ratings)`` to retrain on everything); ``results`` holds that job only.
    """
    _fm_features.check_side_frames(model, users, items)
    model.close()
    model._reset()
    try:
        model._fit_all(ratings, users, items, train=False)
        (X_train, y_train), (X_valid, y_valid) = _design(model, train), _design(model, valid)
        hyperparameters = dict(model._resolved_hyperparameters(), feature_dim=X_train.shape[1])
        model._trainer = trainer = _sagemaker_backend(hyperparameters, model.random_state, model.sagemaker)
        search = {
            name: (tuple((int if name in _POSITIVE_INTS else float)(v) for v in spec) if isinstance(spec, tuple) else spec)
            for name, spec in ranges.items()
        }
        model.training_job_ = trainer.tune(
            X_train, y_train, X_valid, y_valid, ranges=search, objective=objective,
            max_jobs=max_jobs, max_parallel_jobs=min(2, max_jobs),
        )
    except BaseException:
        model.close()
        model._reset()
        raise
    params = {k: _from_string(v) for k, v in trainer.best_hyperparameters.items() if k in ranges}
    model.set_params(**params)
    value = trainer.best_objective_value
    return {
        "params": params,
        "objective": objective,
        "value": float("nan") if value is None else value,
        "results": pd.DataFrame([{**params, objective: value, "training_job": model.training_job_}]),
    }


def _design(model: SageMakerFM, frame: pd.DataFrame) -> tuple[Any, np.ndarray]:
    """Return the design rows and labels of ``frame``'s ratings (ids known to the model)."""
    X = model._design(model.users_.lookup(frame[USER]), model.items_.lookup(frame[ITEM]))
    return X, model.prediction_targets(frame[RATING].to_numpy(dtype=np.float64))


def _from_string(value: str) -> Any:
    """Return a tuned hyperparameter SageMaker reports as a string as int, float or str."""
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value
