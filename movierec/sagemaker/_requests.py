"""Request and reply bodies of the SageMaker backend, built without any AWS call.

``CreateTrainingJob``, ``CreateHyperParameterTuningJob`` and ``CreateModel`` /
``CreateEndpointConfig`` / ``CreateEndpoint`` arguments, FM's hyperparameters as strings, tuning
ranges, and Factorization Machines' JSON inference request and reply. Pure functions: the tests
check them directly, and ``backend.py`` and ``_tuning.py`` send what they return.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from movierec._core.extras import require
from movierec.exceptions import BackendError, DataValidationError, InvalidParameterError
from movierec.sagemaker.config import SageMakerConfig

__all__ = [
    "DEFAULT_RANGES",
    "OBJECTIVES",
    "RECORDIO_CONTENT_TYPE",
    "as_csr",
    "endpoint_requests",
    "fm_request",
    "hyperparameter_strings",
    "parameter_ranges",
    "parse_fm_response",
    "training_job_request",
    "tuning_job_request",
    "tuning_objective",
]

RECORDIO_CONTENT_TYPE = "application/x-recordio-protobuf"

#: the default tuning ranges
DEFAULT_RANGES: dict[str, tuple[int, int]] = {"mini_batch_size": (50, 3000), "epochs": (50, 500)}
#: default tuning metric per predictor_type (its direction is in OBJECTIVE_DIRECTIONS)
OBJECTIVES = {
    "regressor": "test:rmse",
    "binary_classifier": "test:binary_classification_accuracy",
}
#: tuning objectives FM reports, and their direction
OBJECTIVE_DIRECTIONS = {
    "test:rmse": "Minimize",
    "test:binary_classification_accuracy": "Maximize",
    "test:binary_classification_cross_entropy": "Minimize",
    "test:binary_f_beta": "Maximize",
}


# -- request bodies --------------------------------------------------------------------------
def _channels(config: SageMakerConfig, with_test: bool) -> list[dict[str, Any]]:
    """Return the ``InputDataConfig``: each channel's single file, or its folder of shards.

    ``ShardedByS3Key`` gives each of the ``train_instance_count`` instances its share of the
    objects under ``S3Uri`` (one shard each, as the upload writes them); with one instance it is
    the whole file.
    """
    names = ["train"] + (["test"] if with_test else [])
    return [
        {
            "ChannelName": name,
            "DataSource": {
                "S3DataSource": {
                    "S3DataType": "S3Prefix",
                    "S3Uri": config.channel_uri(name),
                    "S3DataDistributionType": "ShardedByS3Key",
                }
            },
            "ContentType": RECORDIO_CONTENT_TYPE,
            "CompressionType": "None",
            "RecordWrapperType": "None",
        }
        for name in names
    ]


def _job_definition(config: SageMakerConfig, image: str, with_test: bool) -> dict[str, Any]:
    output: dict[str, str] = {"S3OutputPath": config.output_uri}
    if config.kms_key_id:
        output["KmsKeyId"] = config.kms_key_id
    return {
        "AlgorithmSpecification": {"TrainingImage": image, "TrainingInputMode": "File"},
        "RoleArn": config.role_arn,
        "InputDataConfig": _channels(config, with_test),
        "OutputDataConfig": output,
        "ResourceConfig": {
            "InstanceType": config.train_instance_type,
            "InstanceCount": config.train_instance_count,
            "VolumeSizeInGB": config.volume_size_gb,
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": config.max_runtime_seconds},
    }


def _tags(config: SageMakerConfig) -> dict[str, Any]:
    return {"Tags": [{"Key": k, "Value": v} for k, v in config.tags.items()]} if config.tags else {}


def training_job_request(
    config: SageMakerConfig, name: str, image: str, hyperparameters: Mapping[str, str], *, with_test: bool
) -> dict[str, Any]:
    """Return the ``CreateTrainingJob`` arguments: FM image, string hyperparameters, RecordIO channels."""
    request = {"TrainingJobName": name, "HyperParameters": dict(hyperparameters)}
    request.update(_job_definition(config, image, with_test))
    return request | _tags(config)


def tuning_job_request(
    config: SageMakerConfig,
    name: str,
    image: str,
    static_hyperparameters: Mapping[str, str],
    parameter_ranges: Mapping[str, list[dict[str, Any]]],
    objective: tuple[str, str],
    *,
    max_jobs: int,
    max_parallel_jobs: int,
    strategy: str,
) -> dict[str, Any]:
    """Return the ``CreateHyperParameterTuningJob`` arguments (the test channel is required)."""
    definition = {"StaticHyperParameters": dict(static_hyperparameters)}
    definition.update(_job_definition(config, image, with_test=True))
    metric, direction = objective
    return {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobConfig": {
            "Strategy": strategy,
            "HyperParameterTuningJobObjective": {"Type": direction, "MetricName": metric},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": max_jobs, "MaxParallelTrainingJobs": max_parallel_jobs},
            "ParameterRanges": dict(parameter_ranges),
            "TrainingJobEarlyStoppingType": "Off",
        },
        "TrainingJobDefinition": definition,
    } | _tags(config)


def endpoint_requests(config: SageMakerConfig, name: str, image: str, model_data_url: str) -> tuple[dict, dict, dict]:
    """Return the ``CreateModel``, ``CreateEndpointConfig`` and ``CreateEndpoint`` arguments.

    The three resources share ``name``, so they are easy to find (and delete) together.
    """
    tags = _tags(config)
    model = {
        "ModelName": name,
        "ExecutionRoleArn": config.role_arn,
        "PrimaryContainer": {"Image": image, "ModelDataUrl": model_data_url},
    } | tags
    endpoint_config = {
        "EndpointConfigName": name,
        "ProductionVariants": [
            {
                "VariantName": "AllTraffic",
                "ModelName": name,
                "InitialInstanceCount": config.endpoint_instance_count,
                "InstanceType": config.endpoint_instance_type,
                "InitialVariantWeight": 1.0,
            }
        ],
    } | tags
    endpoint = {"EndpointName": name, "EndpointConfigName": name} | tags
    return model, endpoint_config, endpoint


def hp_string(value: Any) -> str:
    """Return one hyperparameter value as SageMaker wants it: ``true``/``false``, ``repr`` of floats."""
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return str(value)


def hyperparameter_strings(hyperparameters: Mapping[str, Any], feature_dim: int) -> dict[str, str]:
    """Return FM's hyperparameters as SageMaker wants them: strings, ``feature_dim`` filled in.

    ``None`` values are left out (SageMaker's default applies); booleans become ``true``/``false``.
    """
    strings = {str(k): hp_string(v) for k, v in hyperparameters.items() if v is not None}
    given = strings.get("feature_dim")
    if given is not None and given != str(feature_dim):
        raise DataValidationError(f"hyperparameter feature_dim={given} but the matrix has {feature_dim} columns")
    strings["feature_dim"] = str(feature_dim)
    kind = strings.get("predictor_type")
    if kind not in OBJECTIVES:
        raise InvalidParameterError(f"predictor_type must be one of {sorted(OBJECTIVES)}, got {kind!r}")
    if "num_factors" not in strings:
        raise InvalidParameterError("the num_factors hyperparameter is required by SageMaker's FM")
    return strings


def fm_request(X: Any) -> bytes:
    """Return FM's JSON inference request for the rows of the sparse matrix ``X``.

    ``{"instances": [{"data": {"features": {"keys": [...], "shape": [feature_dim], "values": [...]}}}]}``
    """
    csr = as_csr(X)
    dim = int(csr.shape[1])
    indptr, keys, values = csr.indptr.tolist(), csr.indices.tolist(), csr.data.tolist()
    instances = [
        {"data": {"features": {"keys": keys[a:b], "shape": [dim], "values": values[a:b]}}}
        for a, b in itertools.pairwise(indptr)
    ]
    return json.dumps({"instances": instances}, separators=(",", ":")).encode("utf-8")


def parse_fm_response(body: bytes | str, expected: int) -> np.ndarray:
    """Return the ``score`` of each prediction of FM's JSON response ``{"predictions": [...]}``, in order."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        predictions = json.loads(text)["predictions"]
        scores = np.array([float(p["score"]) for p in predictions], dtype=np.float64)
    except (ValueError, KeyError, TypeError) as err:
        raise BackendError(
            f"the endpoint's reply is not FM's JSON {{'predictions': [{{'score': ...}}]}}: {text[:200]!r}"
        ) from err
    if len(scores) != expected:
        raise BackendError(f"the endpoint returned {len(scores)} predictions for {expected} rows")
    return scores


def as_csr(X: Any) -> Any:
    sparse = require("scipy.sparse", "sagemaker")
    if not sparse.issparse(X) or len(X.shape) != 2:
        raise DataValidationError(f"X must be a 2-D scipy.sparse matrix, got {type(X).__name__}")
    csr = sparse.csr_matrix(X)
    csr.sort_indices()
    return csr


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def parameter_ranges(ranges: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Return SageMaker's ``ParameterRanges`` for ``{name: (low, high) or [choices]}``.

    A tuple of two integers is an integer range, of two numbers with a float a continuous one
    (both ``ScalingType: Auto``); a list (or a tuple of strings) gives categorical choices, sent
    as strings.
    """
    if not ranges:
        raise InvalidParameterError("ranges must name at least one hyperparameter to tune")
    out: dict[str, list[dict[str, Any]]] = {
        "IntegerParameterRanges": [], "ContinuousParameterRanges": [], "CategoricalParameterRanges": [],
    }
    for name, spec in ranges.items():
        if isinstance(spec, tuple) and len(spec) == 2 and all(_is_number(v) for v in spec):
            lo, hi = spec
            if not lo <= hi:
                raise InvalidParameterError(f"range of {name!r} must have low <= high, got {spec!r}")
            integer = all(isinstance(v, (int, np.integer)) for v in spec)
            out["IntegerParameterRanges" if integer else "ContinuousParameterRanges"].append(
                {"Name": name, "MinValue": hp_string(lo), "MaxValue": hp_string(hi), "ScalingType": "Auto"}
            )
        elif isinstance(spec, (list, tuple)) and spec and (isinstance(spec, list) or all(isinstance(v, str) for v in spec)):
            out["CategoricalParameterRanges"].append({"Name": name, "Values": [hp_string(v) for v in spec]})
        else:
            raise InvalidParameterError(f"range of {name!r} must be a (low, high) tuple of numbers or a list of choices, got {spec!r}")
    return {k: v for k, v in out.items() if v}


def tuning_objective(objective: str | tuple[str, str] | None, predictor_type: str) -> tuple[str, str]:
    """Return ``(metric, "Minimize" | "Maximize")``: the default of ``predictor_type`` when None."""
    if objective is None:
        objective = OBJECTIVES[predictor_type]
    if isinstance(objective, str):
        if objective not in OBJECTIVE_DIRECTIONS:
            raise InvalidParameterError(
                f"objective {objective!r} has no known direction: give (metric, 'Minimize'|'Maximize') or one of "
                f"{sorted(OBJECTIVE_DIRECTIONS)}"
            )
        return objective, OBJECTIVE_DIRECTIONS[objective]
    metric, direction = objective
    if direction not in ("Minimize", "Maximize"):
        raise InvalidParameterError(f"objective direction must be 'Minimize' or 'Maximize', got {direction!r}")
    return str(metric), direction
