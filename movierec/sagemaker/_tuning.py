"""SageMaker hyperparameter tuning jobs: create one, wait for it, and read its best training job.

Reached through `movierec.sagemaker.backend.SageMakerBackend.tune`, which checks the data and
uploads the channels first. ``SageMakerFM.tune(backend="sagemaker")`` goes through that method.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from movierec.exceptions import BackendError
from movierec.sagemaker._jobs import JobWeights, wait_job
from movierec.sagemaker._requests import tuning_job_request
from movierec.sagemaker.artifact import FMParameters
from movierec.sagemaker.aws import AwsClients, aws_errors, unique_name
from movierec.sagemaker.config import SageMakerConfig

__all__ = ["TuningOutcome", "run_tuning_job", "tuned_value"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TuningOutcome:
    """What a finished tuning job reports about its best training job.

    Attributes
    ----------
    tuning_job : str
    training_job : str
        The best training job.
    hyperparameters : dict
        Its ``TunedHyperParameters``, as int, float or str (SageMaker reports strings).
    objective : tuple of (str, str)
        The metric and its direction (``("test:rmse", "Minimize")``).
    objective_value : float or None
        The best job's final objective metric, None when SageMaker reports none.
    weights : JobWeights
        The best job's ``w0``, ``w``, ``V``, read from its artifact on first access.
    """

    tuning_job: str
    training_job: str
    hyperparameters: dict[str, Any]
    objective: tuple[str, str]
    objective_value: float | None
    weights: JobWeights


def tuned_value(value: str) -> Any:
    """Return a tuned hyperparameter SageMaker reports as a string as int, float or str."""
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def run_tuning_job(
    aws: AwsClients,
    config: SageMakerConfig,
    image: str,
    hyperparameters: Mapping[str, str],
    search: Mapping[str, list[dict[str, Any]]],
    metric: tuple[str, str],
    *,
    max_jobs: int,
    max_parallel_jobs: int,
    strategy: str,
    load: Callable[[str], FMParameters],
) -> TuningOutcome:
    """Create a tuning job over the uploaded channels, wait for it, and return its best training job.

    ``hyperparameters`` are the string hyperparameters of every training job; the names in
    ``search`` (SageMaker's ``ParameterRanges``) are tuned and left out of them. ``metric`` is the
    objective and its direction. ``load(job)`` reads a job's artifact (the best job's weights are
    read through it on first access).

    Raises
    ------
    BackendError
        With SageMaker's ``FailureReason`` when the tuning job fails, when it completes without a
        best training job, when it does not finish within ``config.job_timeout_seconds`` (it is
        stopped), or on any AWS error.
    """
    tuned = {r["Name"] for group in search.values() for r in group}
    static = {k: v for k, v in hyperparameters.items() if k not in tuned}
    name = unique_name(config.name_prefix)
    request = tuning_job_request(
        config, name, image, static, search, metric,
        max_jobs=max_jobs, max_parallel_jobs=max_parallel_jobs, strategy=strategy,
    )
    with aws_errors(f"creating tuning job {name}"):
        aws.sagemaker.create_hyper_parameter_tuning_job(**request)
    description = wait_job(
        config,
        f"tuning job {name}",
        lambda: aws.sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name),
        "HyperParameterTuningJobStatus",
        stop=lambda: aws.sagemaker.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName=name),
    )
    best = description.get("BestTrainingJob") or {}
    job = best.get("TrainingJobName")
    if not job:
        raise BackendError(f"tuning job {name} completed without a best training job (did every job fail?)")
    tuned_values = {k: tuned_value(v) for k, v in (best.get("TunedHyperParameters") or {}).items()}
    value = (best.get("FinalHyperParameterTuningJobObjectiveMetric") or {}).get("Value")
    logger.info(
        "tuning job %s: best training job %s (%s = %s) with %s", name, job, metric[0], value, tuned_values
    )
    return TuningOutcome(
        tuning_job=name,
        training_job=job,
        hyperparameters=tuned_values,
        objective=metric,
        objective_value=None if value is None else float(value),
        weights=JobWeights(job, lambda: load(job)),
    )
