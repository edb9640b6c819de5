"""SageMakerFM(backend="sagemaker") end to end, over HTTP against moto (and real AWS with ``aws``)."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from movierec import SageMakerFM, TuneResult
from movierec.exceptions import BackendError, InvalidParameterError
from movierec.sagemaker.artifact import write_fm_artifact
from movierec.sagemaker.aws import AwsClients
from movierec.sagemaker.recordio import read_sparse

FAST = {"num_factors": 3, "epochs": 5, "mini_batch_size": 16, "random_state": 0}
EMPTY = {"endpoints": [], "endpoint_configs": [], "models": []}


@pytest.fixture
def ratings() -> pd.DataFrame:
    """8 users x 10 movies, 40 ratings; ids are not contiguous."""
    rng = np.random.default_rng(5)
    cells = rng.choice(80, size=40, replace=False)
    return pd.DataFrame(
        {
            "userId": 100 + cells // 10,
            "movieId": 1000 + 7 * (cells % 10),
            "rating": rng.integers(1, 6, size=40).astype(float),
        }
    )


def weights_for(model: SageMakerFM, seed: int = 1):
    rng = np.random.default_rng(seed)
    dim = len(model.feature_names_)
    return 3.0, rng.normal(scale=0.5, size=dim), rng.normal(scale=0.5, size=(dim, FAST["num_factors"]))


def expected_scores(model, w0, w, V, users, movies):
    u = np.array([model.feature_names_.index(f"user={x}") for x in users])
    m = np.array([model.feature_names_.index(f"movie={x}") for x in movies])
    return w0 + w[u] + w[m] + np.einsum("nk,nk->n", V[u], V[m])


def provide_artifact(target, model, naming="w0_weight"):
    """moto's jobs write no model: put one where the job says it is (real AWS wrote its own)."""
    w0, w, V = weights_for(model)
    job = target.client("sagemaker").describe_training_job(TrainingJobName=model.training_job_)
    target.put_artifact(job["ModelArtifacts"]["S3ModelArtifacts"], write_fm_artifact(w0, w, V, naming=naming))
    return w0, w, V


@pytest.fixture
def clients(monkeypatch):
    """Every AwsClients built during the test, in order: their ``calls`` show what the model called."""
    built = []
    original = AwsClients.__init__

    def keep(self, config):
        original(self, config)
        built.append(self)

    monkeypatch.setattr(AwsClients, "__init__", keep)
    return built


@pytest.mark.slow
def test_fit_predict_from_the_artifact_then_the_endpoint(target, ratings, clients):
    config = target.config(invoke_batch_size=25)
    with SageMakerFM(backend="sagemaker", sagemaker=config, **FAST) as fm:
        assert fm.fit(ratings) is fm
        job = target.client("sagemaker").describe_training_job(TrainingJobName=fm.training_job_)
        assert job["HyperParameters"]["feature_dim"] == "18"  # 8 users + 10 movies
        assert job["HyperParameters"]["num_factors"] == "3"
        assert job["HyperParameters"]["predictor_type"] == "regressor"
        train = target.client("s3").get_object(Bucket=config.bucket, Key="fm/train/train.protobuf")
        X, _ = read_sparse(io.BytesIO(train["Body"].read()))
        assert X.shape == (36, 18) and (X.sum(axis=1) == 2).all()  # 10 % held out for the test channel
        assert "w_" not in vars(fm)  # weights are read when first needed
        assert "s3:GetObject" not in clients[0].calls

        w0, w, V = provide_artifact(target, fm)
        pairs = ratings.head(6)
        predicted = fm.predict(pairs)
        if target.emulated:
            np.testing.assert_allclose(predicted, expected_scores(fm, w0, w, V, pairs.userId, pairs.movieId), rtol=1e-5)
            np.testing.assert_allclose(fm.w_, w, rtol=1e-6)
        top = fm.top_n(n=2)
        assert list(top.columns) == ["userId", "movieId", "score", "rank"]
        assert len(top) == 16
        assert clients[0].calls.count("s3:GetObject") == 1  # the artifact is read once
        calls_before = len(clients[0].calls)

        endpoint = fm.deploy()
        assert target.leftovers(config.name_prefix)["endpoints"] == [endpoint]
        # a full top-N through the endpoint: 8 users x 10 movies = 80 rows, 4 requests of 25 rows or less
        queued = np.arange(80, dtype=float)
        target.queue_scores(queued, batch_size=25)
        via_endpoint = fm.top_n(n=1, exclude_seen=False)
        assert len(via_endpoint) == 8
        if target.emulated:
            # user i's movies got scores 10 i .. 10 i + 9: the last movie wins
            assert via_endpoint.score.tolist() == [float(10 * i + 9) for i in range(8)]
            assert (via_endpoint.movieId == 1063).all()
        assert clients[0].calls[calls_before:].count("sagemaker-runtime:InvokeEndpoint") == 4
    assert target.leftovers(config.name_prefix) == EMPTY
    assert fm.predict(pairs).notna().all()  # after close: scores from the artifact again


def test_tune_uses_the_best_training_job(moto, ratings, monkeypatch):
    # moto's best job reports made-up hyperparameters: report the tuned ones SageMaker would
    original = AwsClients.__init__

    def with_tuned_values(self, config):
        original(self, config)

        def report(parsed, **_):
            parsed["BestTrainingJob"]["TunedHyperParameters"] = {"epochs": "120", "factors_lr": "0.02"}
            parsed["BestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] = 0.93

        self.sagemaker.meta.events.register("after-call.sagemaker.DescribeHyperParameterTuningJob", report)

    monkeypatch.setattr(AwsClients, "__init__", with_tuned_values)
    fm = SageMakerFM(backend="sagemaker", sagemaker=moto.config(), **FAST)
    result = fm.tune(ratings, {"epochs": (50, 500), "factors_lr": (1e-3, 0.1)}, max_jobs=3)
    assert isinstance(result, TuneResult)
    assert result.best_params == {"epochs": 120, "factors_lr": 0.02}
    assert result.best_score == pytest.approx(0.93) and result.metric == "test:rmse"
    assert result.results.to_dict("records") == [
        {"epochs": 120, "factors_lr": 0.02, "test:rmse": pytest.approx(0.93), "training_job": "FakeTrainingJobName"}
    ]
    assert (fm.epochs, fm.factors_lr) == (120, 0.02)
    assert fm.training_job_ == "FakeTrainingJobName"
    sm = moto.client("sagemaker")
    name = sm.list_hyper_parameter_tuning_jobs()["HyperParameterTuningJobSummaries"][0]["HyperParameterTuningJobName"]
    tuning = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
    job_config = tuning["HyperParameterTuningJobConfig"]
    assert job_config["HyperParameterTuningJobObjective"] == {"Type": "Minimize", "MetricName": "test:rmse"}
    assert job_config["ResourceLimits"] == {"MaxNumberOfTrainingJobs": 3, "MaxParallelTrainingJobs": 2}
    assert job_config["ParameterRanges"]["IntegerParameterRanges"][0]["Name"] == "epochs"
    assert job_config["ParameterRanges"]["ContinuousParameterRanges"][0]["Name"] == "factors_lr"
    # the validation part (stratified, 20 %) is the test channel
    test = moto.client("s3").get_object(Bucket=moto.bucket, Key="fm/test/test.protobuf")
    X_test, _ = read_sparse(io.BytesIO(test["Body"].read()))
    assert 0 < X_test.shape[0] < len(ratings) and X_test.shape[1] == 18
    # moto never ran its best job; SageMaker would have: create it, with a model, and score from it
    definition = tuning["TrainingJobDefinition"]
    sm.create_training_job(
        TrainingJobName=fm.training_job_, HyperParameters=definition["StaticHyperParameters"],
        AlgorithmSpecification=definition["AlgorithmSpecification"], RoleArn=definition["RoleArn"],
        InputDataConfig=definition["InputDataConfig"], OutputDataConfig=definition["OutputDataConfig"],
        ResourceConfig=definition["ResourceConfig"], StoppingCondition=definition["StoppingCondition"],
    )
    w0, w, V = provide_artifact(moto, fm, naming="Linear_Plus_Bias")
    pairs = ratings.tail(4)
    np.testing.assert_allclose(
        fm.predict(pairs), expected_scores(fm, w0, w, V, pairs.userId, pairs.movieId), rtol=1e-5
    )
    fm.close()


def test_binary_classifier_sends_like_labels_and_applies_the_sigmoid_locally(moto, ratings):
    fm = SageMakerFM(backend="sagemaker", sagemaker=moto.config(test_fraction=0), predictor_type="binary_classifier", **FAST)
    fm.fit(ratings)
    train = moto.client("s3").get_object(Bucket=moto.bucket, Key="fm/train/train.protobuf")
    _, labels = read_sparse(io.BytesIO(train["Body"].read()))
    np.testing.assert_array_equal(labels, (ratings.rating >= 4).to_numpy(dtype=np.float32))
    w0, w, V = provide_artifact(moto, fm)
    raw = expected_scores(fm, w0, w, V, ratings.userId[:3], ratings.movieId[:3])
    np.testing.assert_allclose(fm.predict(ratings.head(3)), 1 / (1 + np.exp(-raw)), rtol=1e-5)


def test_a_failure_in_a_with_block_deletes_the_endpoint(moto, ratings):
    with pytest.raises(KeyError), SageMakerFM(backend="sagemaker", sagemaker=moto.config(), **FAST) as fm:
        fm.fit(ratings)
        fm.deploy()
        assert moto.leftovers()["endpoints"]
        raise KeyError("user code failed mid-way")
    assert moto.leftovers() == EMPTY


def test_endpoint_failure_during_predict_deletes_it(moto, ratings):
    fm = SageMakerFM(backend="sagemaker", sagemaker=moto.config(), **FAST).fit(ratings)
    fm.deploy()
    moto.queue_replies([{"unexpected": True}])
    with pytest.raises(BackendError, match="deleted"):
        fm.predict(ratings.head(2))
    assert moto.leftovers() == EMPTY


def test_sagemaker_backend_needs_a_config(ratings):
    with pytest.raises(InvalidParameterError, match="needs sagemaker=movierec.sagemaker.SageMakerConfig"):
        SageMakerFM(backend="sagemaker", **FAST).fit(ratings)
    with pytest.raises(InvalidParameterError, match="sagemaker must be a movierec.sagemaker.SageMakerConfig"):
        SageMakerFM(backend="sagemaker", sagemaker={"bucket": "b"}, **FAST).fit(ratings)


def test_deploy_needs_the_sagemaker_backend(ratings):
    fm = SageMakerFM(**FAST).fit(ratings)
    with pytest.raises(BackendError, match="backend='sagemaker'"):
        fm.deploy()


def test_failed_training_job_leaves_an_unfitted_model(moto, ratings, monkeypatch):
    original = AwsClients.__init__

    def failing(self, config):
        original(self, config)
        self.sagemaker.meta.events.register(
            "after-call.sagemaker.DescribeTrainingJob",
            lambda parsed, **_: parsed.update(TrainingJobStatus="Failed", FailureReason="AlgorithmError: boom"),
        )

    monkeypatch.setattr(AwsClients, "__init__", failing)
    fm = SageMakerFM(backend="sagemaker", sagemaker=moto.config(), **FAST)
    with pytest.raises(BackendError, match="AlgorithmError: boom"):
        fm.fit(ratings)
    from movierec.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        fm.predict(ratings)


def test_weights_from_the_artifact_can_be_saved_as_a_local_model(moto, ratings, tmp_path):
    fm = SageMakerFM(backend="sagemaker", sagemaker=moto.config(), **FAST).fit(ratings)
    provide_artifact(moto, fm)
    expected = fm.predict(ratings)
    fm.set_params(backend="local", sagemaker=None).save(tmp_path)
    np.testing.assert_allclose(SageMakerFM.load(tmp_path).predict(ratings), expected)


def test_a_sagemaker_model_is_saved_with_its_config_and_loads_as_weights(moto, ratings, tmp_path):
    fm = SageMakerFM(backend="sagemaker", sagemaker=moto.config(), **FAST).fit(ratings)
    provide_artifact(moto, fm)
    fm.save(tmp_path)  # reads the artifact first: a saved model needs no AWS to score
    loaded = SageMakerFM.load(tmp_path)
    assert loaded.get_params() == fm.get_params()
    np.testing.assert_allclose(loaded.predict(ratings), fm.predict(ratings))
    with pytest.raises(BackendError, match="in this session"):  # no training job behind it to deploy
        loaded.deploy()
