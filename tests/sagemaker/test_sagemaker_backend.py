"""SageMakerBackend over HTTP: real boto3 clients against moto's server (and real AWS with ``aws``).

What moto cannot do is done by the test in its place: moto's training jobs complete at once and
write no model, so the test puts a ``model.tar.gz`` (built with the artifact writer) where the job
says its model is; endpoint replies are queued through moto's ``endpoint-results`` API.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError

from movierec.exceptions import BackendError, DataValidationError, InvalidParameterError
from movierec.sagemaker import JobWeights, SageMakerBackend, TuningOutcome
from movierec.sagemaker._requests import fm_request, hyperparameter_strings, parse_fm_response
from movierec.sagemaker.artifact import write_fm_artifact
from movierec.sagemaker.backend import fm_image_uri
from movierec.sagemaker.recordio import read_sparse

HYPERPARAMETERS = {
    "predictor_type": "regressor",
    "num_factors": 4,
    "epochs": 5,
    "mini_batch_size": 10,
    "factors_lr": 0.01,
    "bias_init_method": "normal",
    "eps": None,
}


def collapse(calls):
    """Merge consecutive repeats of polling calls (Describe*): real AWS polls several times."""
    out = []
    for call in calls:
        if not (out and call == out[-1] and ":Describe" in call):
            out.append(call)
    return out


def fm_weights(dim: int, k: int = 4):
    rng = np.random.default_rng(11)
    return 0.5, rng.normal(size=dim), rng.normal(scale=0.1, size=(dim, k))


def fm_scores(X, w0, w, V):
    XV = X @ V
    return w0 + X @ w + 0.5 * ((XV**2).sum(1) - (X.multiply(X) @ (V**2)).sum(1))


# -- the whole flow ---------------------------------------------------------------------------
@pytest.mark.slow
def test_fit_artifact_deploy_predict_close(target, ratings_matrix):
    X, y = ratings_matrix
    X_test, y_test = X[:5], y[:5]
    config = target.config(invoke_batch_size=4)
    backend = SageMakerBackend(config)
    try:
        weights = backend.fit(X[5:], y[5:], X_test, y_test, HYPERPARAMETERS)
        assert isinstance(weights, JobWeights)
        job = weights.training_job
        assert job == backend.job_name
        assert collapse(backend.calls) == [
            "s3:HeadBucket",
            "s3:PutObject",
            "s3:PutObject",
            "sagemaker:CreateTrainingJob",
            "sagemaker:DescribeTrainingJob",
        ]
        s3 = target.client("s3")
        # the single-file layout, RecordIO-protobuf bytes, encrypted
        train = s3.get_object(Bucket=config.bucket, Key=f"{config.prefix}/train/train.protobuf")
        test = s3.get_object(Bucket=config.bucket, Key=f"{config.prefix}/test/test.protobuf")
        assert train["ServerSideEncryption"] == test["ServerSideEncryption"] == "AES256"
        X_back, y_back = read_sparse(io.BytesIO(train["Body"].read()))
        np.testing.assert_array_equal(X_back.toarray(), X[5:].toarray())
        np.testing.assert_array_equal(y_back, y[5:])
        X_back, y_back = read_sparse(io.BytesIO(test["Body"].read()))
        np.testing.assert_array_equal(X_back.toarray(), X_test.toarray())

        job_description = target.client("sagemaker").describe_training_job(TrainingJobName=job)
        assert job_description["TrainingJobStatus"] == "Completed"
        assert job_description["AlgorithmSpecification"]["TrainingImage"] == fm_image_uri(config.region)
        assert job_description["AlgorithmSpecification"]["TrainingImage"].endswith("/factorization-machines:1")
        hp = job_description["HyperParameters"]
        assert hp == {
            "predictor_type": "regressor",
            "num_factors": "4",
            "epochs": "5",
            "mini_batch_size": "10",
            "factors_lr": "0.01",
            "bias_init_method": "normal",
            "feature_dim": "14",
        }
        channels = {c["ChannelName"]: c for c in job_description["InputDataConfig"]}
        assert set(channels) == {"train", "test"}
        for name, channel in channels.items():
            assert channel["ContentType"] == "application/x-recordio-protobuf"
            assert channel["DataSource"]["S3DataSource"]["S3Uri"] == f"s3://{config.bucket}/fm/{name}/{name}.protobuf"
        assert job_description["OutputDataConfig"]["S3OutputPath"] == f"s3://{config.bucket}/fm/output"
        assert job_description["ResourceConfig"]["InstanceType"] == "ml.c5.xlarge"
        assert job_description["RoleArn"] == config.role_arn

        # the artifact path: no endpoint, weights read from model.tar.gz when first asked for, once
        uri = backend.artifact_uri()
        assert uri == job_description["ModelArtifacts"]["S3ModelArtifacts"]
        w0, w, V = fm_weights(14)
        target.put_artifact(uri, write_fm_artifact(w0, w, V))
        assert collapse(backend.calls)[5:] == []
        assert weights.V.shape == (14, 4) and weights.w.shape == (14,)
        if target.emulated:
            np.testing.assert_allclose(weights.w, w, rtol=1e-6)
            assert weights.w0 == pytest.approx(w0)
        assert collapse(backend.calls)[5:] == ["s3:GetObject"]

        # the endpoint path
        endpoint = backend.deploy()
        described = target.client("sagemaker").describe_endpoint(EndpointName=endpoint)
        assert described["EndpointStatus"] == "InService"
        assert target.leftovers(config.name_prefix) == {
            "endpoints": [endpoint], "endpoint_configs": [endpoint], "models": [endpoint],
        }
        model = target.client("sagemaker").describe_model(ModelName=endpoint)
        assert model["PrimaryContainer"]["ModelDataUrl"] == uri
        expected = fm_scores(X[:10], w0, w, V)
        target.queue_scores(expected, batch_size=4)
        scores = backend.invoke(X[:10])
        assert scores.shape == (10,)
        if target.emulated:
            np.testing.assert_allclose(scores, expected)
        assert collapse(backend.calls)[6:] == [
            "sagemaker:CreateModel",
            "sagemaker:CreateEndpointConfig",
            "sagemaker:CreateEndpoint",
            "sagemaker:DescribeEndpoint",
            "sagemaker-runtime:InvokeEndpoint",
            "sagemaker-runtime:InvokeEndpoint",
            "sagemaker-runtime:InvokeEndpoint",
        ]
    finally:
        backend.close()
    assert collapse(backend.calls)[13:] == [
        "sagemaker:DeleteEndpoint",
        "sagemaker:DeleteEndpointConfig",
        "sagemaker:DeleteModel",
    ]
    assert target.leftovers(config.name_prefix) == {"endpoints": [], "endpoint_configs": [], "models": []}
    assert backend.endpoint_name is None
    n = len(backend.calls)
    backend.close()  # idempotent, and makes no call
    assert len(backend.calls) == n


def test_endpoint_requests_are_fm_json(moto, ratings_matrix):
    X, y = ratings_matrix
    with SageMakerBackend(moto.config()) as backend:
        backend.fit(X, y, hyperparameters=HYPERPARAMETERS)
        backend.deploy()
        sent = []
        backend.aws.runtime.meta.events.register(
            "before-call.sagemaker-runtime.InvokeEndpoint", lambda params, **_: sent.append(params)
        )
        moto.queue_scores(np.arange(3.0), batch_size=2)
        assert backend.invoke(X[:3], batch_size=2).tolist() == [0.0, 1.0, 2.0]
    assert [p["headers"]["Content-Type"] for p in sent] == ["application/json"] * 2
    first = json.loads(sent[0]["body"])
    assert first == {
        "instances": [
            {"data": {"features": {"keys": X[i].indices.tolist(), "shape": [14], "values": [1.0, 1.0]}}}
            for i in range(2)
        ]
    }
    assert moto.leftovers() == {"endpoints": [], "endpoint_configs": [], "models": []}


def test_tuning_job_request_and_best_job(target, ratings_matrix):
    X, y = ratings_matrix
    config = target.config(test_fraction=0.2)
    with SageMakerBackend(config, random_state=0) as backend:
        outcome = backend.tune(X, y, hyperparameters=HYPERPARAMETERS, max_jobs=2, max_parallel_jobs=1)
        assert isinstance(outcome, TuningOutcome)
        best = outcome.training_job
        assert outcome.tuning_job == backend.tuning_job_name
        assert outcome.objective == ("test:rmse", "Minimize")
        assert collapse(backend.calls) == [
            "s3:HeadBucket",
            "s3:PutObject",
            "s3:PutObject",
            "sagemaker:CreateHyperParameterTuningJob",
            "sagemaker:DescribeHyperParameterTuningJob",
        ]
        assert backend.job_name == best
        sm = target.client("sagemaker")
        tuning = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=backend.tuning_job_name)
        job_config = tuning["HyperParameterTuningJobConfig"]
        assert job_config["HyperParameterTuningJobObjective"] == {"Type": "Minimize", "MetricName": "test:rmse"}
        assert job_config["ResourceLimits"] == {"MaxNumberOfTrainingJobs": 2, "MaxParallelTrainingJobs": 1}
        assert job_config["ParameterRanges"]["IntegerParameterRanges"] == [
            {"Name": "mini_batch_size", "MinValue": "50", "MaxValue": "3000", "ScalingType": "Auto"},
            {"Name": "epochs", "MinValue": "50", "MaxValue": "500", "ScalingType": "Auto"},
        ]
        definition = tuning["TrainingJobDefinition"]
        static = definition["StaticHyperParameters"]
        assert "epochs" not in static and "mini_batch_size" not in static
        assert static["feature_dim"] == "14" and static["predictor_type"] == "regressor"
        assert {c["ChannelName"] for c in definition["InputDataConfig"]} == {"train", "test"}
        assert definition["AlgorithmSpecification"]["TrainingImage"] == fm_image_uri(config.region)
        # 20 % of the rows went to the test channel
        test = target.client("s3").get_object(Bucket=config.bucket, Key="fm/test/test.protobuf")
        assert read_sparse(io.BytesIO(test["Body"].read()))[0].shape == (6, 14)

        if target.emulated:
            # moto names a best job it never ran; SageMaker would have run it: create it as it would
            assert best == "FakeTrainingJobName"
            sm.create_training_job(
                TrainingJobName=best,
                HyperParameters=static | {"epochs": "100", "mini_batch_size": "200"},
                AlgorithmSpecification=definition["AlgorithmSpecification"],
                RoleArn=definition["RoleArn"],
                InputDataConfig=definition["InputDataConfig"],
                OutputDataConfig=definition["OutputDataConfig"],
                ResourceConfig=definition["ResourceConfig"],
                StoppingCondition=definition["StoppingCondition"],
            )
        uri = backend.artifact_uri()
        assert best in uri
        target.put_artifact(uri, write_fm_artifact(*fm_weights(14), naming="Linear_Plus_Bias"))
        assert outcome.weights.training_job == best
        assert outcome.weights.w.shape == (14,)  # the best job's weights, read on first access
        assert collapse(backend.calls)[5:] == ["sagemaker:DescribeTrainingJob", "s3:GetObject"]


def test_binary_classifier_tunes_for_accuracy(moto, ratings_matrix):
    X, y = ratings_matrix
    with SageMakerBackend(moto.config()) as backend:
        backend.tune(
            X, (y >= 4).astype(float), X[:4], (y[:4] >= 4).astype(float),
            HYPERPARAMETERS | {"predictor_type": "binary_classifier"},
            ranges={"epochs": (5, 20), "factors_lr": (0.001, 0.1), "factors_init_method": ["normal", "uniform"]},
        )
        tuning = backend.aws.sagemaker.describe_hyper_parameter_tuning_job(
            HyperParameterTuningJobName=backend.tuning_job_name
        )["HyperParameterTuningJobConfig"]
    assert tuning["HyperParameterTuningJobObjective"] == {
        "Type": "Maximize", "MetricName": "test:binary_classification_accuracy",
    }
    ranges = tuning["ParameterRanges"]
    assert ranges["ContinuousParameterRanges"][0]["Name"] == "factors_lr"
    assert ranges["CategoricalParameterRanges"] == [{"Name": "factors_init_method", "Values": ["normal", "uniform"]}]


# -- failures ---------------------------------------------------------------------------------
def test_missing_bucket_is_a_clear_error(moto, ratings_matrix):
    X, y = ratings_matrix
    backend = SageMakerBackend(moto.config(bucket="no-such-bucket-here"))
    with pytest.raises(BackendError, match="'no-such-bucket-here' does not exist.*create it"):
        backend.fit(X, y, hyperparameters=HYPERPARAMETERS)
    assert backend.calls == ["s3:HeadBucket"]


def test_bad_bucket_name_fails_before_any_call(moto):
    with pytest.raises(InvalidParameterError, match="not a valid S3 bucket name"):
        moto.config(bucket="Bad_Bucket")


def test_bad_arguments_are_refused_before_any_call(moto, ratings_matrix):
    X, y = ratings_matrix
    with pytest.raises(InvalidParameterError, match="config must be a movierec.sagemaker.SageMakerConfig"):
        SageMakerBackend({"bucket": moto.bucket})
    with pytest.raises(InvalidParameterError, match="random_state"):
        SageMakerBackend(moto.config(), random_state=np.random.default_rng(0))
    backend = SageMakerBackend(moto.config())
    with pytest.raises(InvalidParameterError, match="max_parallel_jobs"):
        backend.tune(X, y, hyperparameters=HYPERPARAMETERS, max_parallel_jobs=0)
    with pytest.raises(InvalidParameterError, match="low <= high"):
        backend.tune(X, y, hyperparameters=HYPERPARAMETERS, ranges={"epochs": (9, 1)})
    assert backend.calls == []  # nothing uploaded for a request that cannot run


def _fake_status(backend, operation, **fields):
    """Make every describe of ``operation`` report ``fields`` (moto's jobs always complete)."""
    def change(parsed, **_):
        parsed.update(fields)

    backend.aws.sagemaker.meta.events.register(f"after-call.sagemaker.{operation}", change)


def _short_circuit(backend, operation, calls):
    """Answer ``operation`` with an empty reply without sending it (moto does not implement it)."""
    def answer(**_):
        calls.append(operation)
        return AWSResponse("http://stub", 200, {}, None), {}

    backend.aws.sagemaker.meta.events.register(f"before-call.sagemaker.{operation}", answer)


def test_failed_training_job_raises_its_failure_reason(moto, ratings_matrix):
    X, y = ratings_matrix
    backend = SageMakerBackend(moto.config())
    _fake_status(backend, "DescribeTrainingJob", TrainingJobStatus="Failed",
                 FailureReason="ClientError: feature_dim 14 does not match the data")
    with pytest.raises(BackendError, match="Failed: ClientError: feature_dim 14 does not match"):
        backend.fit(X, y, hyperparameters=HYPERPARAMETERS)
    assert backend.job_name is None


def test_training_timeout_stops_the_job(moto, ratings_matrix):
    X, y = ratings_matrix
    backend = SageMakerBackend(moto.config(job_timeout_seconds=0.05, poll_seconds=0.02))
    _fake_status(backend, "DescribeTrainingJob", TrainingJobStatus="InProgress", SecondaryStatus="Training")
    stopped = []
    _short_circuit(backend, "StopTrainingJob", stopped)
    with pytest.raises(BackendError, match="still InProgress.*stopped"):
        backend.fit(X, y, hyperparameters=HYPERPARAMETERS)
    assert stopped == ["StopTrainingJob"]
    assert backend.calls[-1] == "sagemaker:StopTrainingJob"


def test_failed_tuning_job_raises_its_failure_reason(moto, ratings_matrix):
    X, y = ratings_matrix
    backend = SageMakerBackend(moto.config())
    _fake_status(backend, "DescribeHyperParameterTuningJob", HyperParameterTuningJobStatus="Failed",
                 FailureReason="all training jobs failed")
    with pytest.raises(BackendError, match="all training jobs failed"):
        backend.tune(X, y, hyperparameters=HYPERPARAMETERS)


def test_tuning_needs_a_test_channel(moto, ratings_matrix):
    X, y = ratings_matrix
    with pytest.raises(DataValidationError, match="test channel"):
        SageMakerBackend(moto.config(test_fraction=0)).tune(X, y, hyperparameters=HYPERPARAMETERS)


def _fitted(moto, ratings_matrix, **config):
    X, y = ratings_matrix
    backend = SageMakerBackend(moto.config(**config))
    backend.fit(X, y, hyperparameters=HYPERPARAMETERS)
    return backend


def test_failure_after_create_model_deletes_the_model(moto, ratings_matrix):
    backend = _fitted(moto, ratings_matrix, endpoint_instance_type="ml.bogus.xlarge")  # moto rejects it
    with pytest.raises(BackendError, match="deploy failed.*ml.bogus.xlarge.*deleted"):
        backend.deploy()
    assert backend.calls[5:] == [
        "sagemaker:CreateModel",
        "sagemaker:CreateEndpointConfig",
        "sagemaker:DeleteEndpointConfig",
        "sagemaker:DeleteModel",
    ]
    assert moto.leftovers() == {"endpoints": [], "endpoint_configs": [], "models": []}
    assert backend.endpoint_name is None


def test_failure_injected_at_create_endpoint_deletes_config_and_model(moto, ratings_matrix):
    backend = _fitted(moto, ratings_matrix)

    def refuse(**_):
        raise ClientError({"Error": {"Code": "ResourceLimitExceeded", "Message": "injected"}}, "CreateEndpoint")

    backend.aws.sagemaker.meta.events.register("before-call.sagemaker.CreateEndpoint", refuse)
    with pytest.raises(BackendError, match="ResourceLimitExceeded: injected"):
        backend.deploy()
    assert backend.calls[5:] == [
        "sagemaker:CreateModel",
        "sagemaker:CreateEndpointConfig",
        "sagemaker:CreateEndpoint",
        "sagemaker:DeleteEndpoint",  # in case AWS created it and the reply was lost: "not found" is fine
        "sagemaker:DeleteEndpointConfig",
        "sagemaker:DeleteModel",
    ]
    assert moto.leftovers() == {"endpoints": [], "endpoint_configs": [], "models": []}


def test_endpoint_that_fails_to_start_is_deleted(moto, ratings_matrix):
    backend = _fitted(moto, ratings_matrix)
    _fake_status(backend, "DescribeEndpoint", EndpointStatus="Failed", FailureReason="injected: image pull failed")
    with pytest.raises(BackendError, match="injected: image pull failed"):
        backend.deploy()
    assert moto.leftovers() == {"endpoints": [], "endpoint_configs": [], "models": []}


def test_endpoint_timeout_deletes_everything(moto, ratings_matrix):
    backend = _fitted(moto, ratings_matrix, endpoint_timeout_seconds=0.05, poll_seconds=0.02)
    _fake_status(backend, "DescribeEndpoint", EndpointStatus="Creating")
    with pytest.raises(BackendError, match="still Creating"):
        backend.deploy()
    assert moto.leftovers() == {"endpoints": [], "endpoint_configs": [], "models": []}


def test_context_exit_on_error_deletes_the_endpoint(moto, ratings_matrix):
    with pytest.raises(RuntimeError, match="user code failed"), _fitted(moto, ratings_matrix) as backend:
        backend.deploy()
        assert moto.leftovers()["endpoints"]
        raise RuntimeError("user code failed")
    assert moto.leftovers() == {"endpoints": [], "endpoint_configs": [], "models": []}


def test_bad_endpoint_reply_deletes_the_endpoint(moto, ratings_matrix):
    backend = _fitted(moto, ratings_matrix)
    backend.deploy()
    moto.queue_replies([{"predictions": [{"score": 1.0}]}])  # one prediction for three rows
    with pytest.raises(BackendError, match="1 predictions for 3 rows.*deleted"):
        backend.invoke(ratings_matrix[0][:3])
    assert moto.leftovers() == {"endpoints": [], "endpoint_configs": [], "models": []}
    with pytest.raises(BackendError, match="deploy"):
        backend.invoke(ratings_matrix[0][:3])


def test_a_forgotten_backend_deletes_its_endpoint_when_collected(moto, ratings_matrix):
    import gc

    backend = _fitted(moto, ratings_matrix)
    backend.deploy()
    del backend
    gc.collect()
    assert moto.leftovers() == {"endpoints": [], "endpoint_configs": [], "models": []}


def test_deploy_twice_reuses_the_endpoint(moto, ratings_matrix):
    with _fitted(moto, ratings_matrix) as backend:
        first = backend.deploy()
        assert backend.deploy() == first
        assert len(moto.leftovers()["endpoints"]) == 1


def test_predict_before_deploy_or_fit(moto):
    backend = SageMakerBackend(moto.config())
    with pytest.raises(BackendError, match="deploy"):
        backend.invoke(None)
    with pytest.raises(BackendError, match="fit or tune"):
        backend.deploy()
    assert backend.calls == []


def test_missing_artifact_is_a_clear_error(moto, ratings_matrix):
    backend = _fitted(moto, ratings_matrix)
    with pytest.raises(BackendError, match="model.tar.gz does not exist"):
        backend.load_artifact()


def test_no_credentials_is_a_clear_error(moto, ratings_matrix, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    X, y = ratings_matrix
    with pytest.raises(BackendError, match="no AWS credentials"):
        SageMakerBackend(moto.config()).fit(X, y, hyperparameters=HYPERPARAMETERS)


def test_credentials_are_never_logged(moto, ratings_matrix, caplog, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t-value-never-logged")
    caplog.set_level("DEBUG", logger="movierec")
    with _fitted(moto, ratings_matrix) as backend:
        backend.deploy()
    assert "s3cr3t-value-never-logged" not in caplog.text
    assert "s3cr3t-value-never-logged" not in repr(backend) + repr(backend.config)


# -- pure helpers -----------------------------------------------------------------------------
def test_hyperparameters_become_strings():
    strings = hyperparameter_strings(
        {"predictor_type": "binary_classifier", "num_factors": np.int64(8), "bias_lr": 1e-3, "x": True, "y": None}, 20
    )
    assert strings == {
        "predictor_type": "binary_classifier", "num_factors": "8", "bias_lr": "0.001", "x": "true", "feature_dim": "20",
    }
    with pytest.raises(DataValidationError, match="feature_dim=3"):
        hyperparameter_strings({"predictor_type": "regressor", "num_factors": 2, "feature_dim": 3}, 20)
    with pytest.raises(InvalidParameterError, match="predictor_type"):
        hyperparameter_strings({"num_factors": 2}, 20)
    with pytest.raises(InvalidParameterError, match="num_factors"):
        hyperparameter_strings({"predictor_type": "regressor"}, 20)


def test_fm_json_round_trip(ratings_matrix):
    X, _ = ratings_matrix
    request = json.loads(fm_request(X[:2]))
    assert request["instances"][1]["data"]["features"]["keys"] == X[1].indices.tolist()
    reply = json.dumps({"predictions": [{"score": 0.7, "predicted_label": 1.0}, {"score": 0.2, "predicted_label": 0.0}]})
    assert parse_fm_response(reply.encode(), 2).tolist() == [0.7, 0.2]
    with pytest.raises(BackendError, match="not FM's JSON"):
        parse_fm_response(b"<html>", 2)


def test_tuning_timeout_stops_the_tuning_job(moto, ratings_matrix):
    X, y = ratings_matrix
    backend = SageMakerBackend(moto.config(job_timeout_seconds=0.05, poll_seconds=0.02))
    _fake_status(backend, "DescribeHyperParameterTuningJob", HyperParameterTuningJobStatus="InProgress")
    stopped = []
    _short_circuit(backend, "StopHyperParameterTuningJob", stopped)
    with pytest.raises(BackendError, match="still InProgress.*stopped"):
        backend.tune(X, y, hyperparameters=HYPERPARAMETERS)
    assert stopped == ["StopHyperParameterTuningJob"]


# -- the documented IAM policy lists exactly what the backend calls ------------------------------
DOCS = Path(__file__).resolve().parents[2] / "docs" / "sagemaker.md"
IAM_ACTION = {"s3:HeadBucket": "s3:ListBucket", "sagemaker-runtime:InvokeEndpoint": "sagemaker:InvokeEndpoint"}


def _caller_policy_actions() -> set[str]:
    text = DOCS.read_text()
    block = text[text.index("<!-- caller-policy"):]
    block = block[block.index("```json") + len("```json"): block.index("```", block.index("```json") + 7)]
    actions = set()
    for statement in json.loads(block)["Statement"]:
        action = statement["Action"]
        actions.update([action] if isinstance(action, str) else action)
    return actions


def test_documented_caller_policy_lists_exactly_the_calls(moto, ratings_matrix):
    X, y = ratings_matrix
    calls = []
    with SageMakerBackend(moto.config()) as backend:  # fit, artifact, deploy, predict, close
        backend.fit(X, y, hyperparameters=HYPERPARAMETERS)
        moto.put_artifact(backend.artifact_uri(), write_fm_artifact(*fm_weights(14)))
        backend.load_artifact()
        backend.deploy()
        moto.queue_scores(np.zeros(2), batch_size=2)
        backend.invoke(X[:2])
    calls += backend.calls
    backend = SageMakerBackend(moto.config())
    backend.tune(X, y, hyperparameters=HYPERPARAMETERS)
    calls += backend.calls
    for operation, status in (("TrainingJob", "TrainingJobStatus"), ("HyperParameterTuningJob", "HyperParameterTuningJobStatus")):
        backend = SageMakerBackend(moto.config(job_timeout_seconds=0.01, poll_seconds=0.02))
        _fake_status(backend, f"Describe{operation}", **{status: "InProgress"})
        _short_circuit(backend, f"Stop{operation}", [])
        with pytest.raises(BackendError):
            (backend.fit if operation == "TrainingJob" else backend.tune)(X, y, hyperparameters=HYPERPARAMETERS)
        calls += backend.calls
    called = {IAM_ACTION.get(c, c) for c in calls}
    assert called == _caller_policy_actions() - {"iam:PassRole"}


def test_parameter_ranges_and_objectives():
    from movierec.sagemaker._requests import parameter_ranges, tuning_objective

    ranges = parameter_ranges({"epochs": (5, 20), "bias_lr": (1e-4, 0.1), "num_factors": [16, 32], "m": ("a", "b")})
    assert ranges["IntegerParameterRanges"] == [{"Name": "epochs", "MinValue": "5", "MaxValue": "20", "ScalingType": "Auto"}]
    assert ranges["ContinuousParameterRanges"][0]["MinValue"] == "0.0001"
    assert ranges["CategoricalParameterRanges"] == [
        {"Name": "num_factors", "Values": ["16", "32"]}, {"Name": "m", "Values": ["a", "b"]},
    ]
    with pytest.raises(InvalidParameterError, match="low <= high"):
        parameter_ranges({"epochs": (20, 5)})
    with pytest.raises(InvalidParameterError, match="at least one"):
        parameter_ranges({})
    assert tuning_objective(None, "regressor") == ("test:rmse", "Minimize")
    assert tuning_objective("test:binary_classification_cross_entropy", "binary_classifier")[1] == "Minimize"
    with pytest.raises(InvalidParameterError, match="direction"):
        tuning_objective(("test:rmse", "down"), "regressor")
