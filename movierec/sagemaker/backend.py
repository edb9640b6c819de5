"""``SageMakerBackend``: trains, tunes, deploys and invokes Factorization Machines on SageMaker.

The backend of ``SageMakerFM(backend="sagemaker")``. It gets the one-hot design matrix and the
labels the model built, and does what the seed report did by hand in the AWS console:

1. ``fit``: RecordIO-protobuf train (and test) files to ``s3://{bucket}/{prefix}/train/...``, a
   training job with SageMaker's FM image, wait for it (or ``tune``: a hyperparameter tuning job,
   whose best training job is then used);
2. ``load_artifact``: download the job's ``model.tar.gz`` and read ``w0, w, V``, so the whole
   catalogue is scored locally without an endpoint;
3. ``deploy`` / ``invoke``: a real-time endpoint and FM's JSON requests, in batches;
4. ``close`` (also context exit, failures after creation, and garbage collection): delete the
   endpoint, its config and the model, so no billed endpoint is left behind.

Every AWS call is recorded in ``calls`` (``"service:Operation"``, in order).
"""

from __future__ import annotations

import functools
import io
import logging
import weakref
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Literal, Self

import numpy as np

from movierec._extras import require
from movierec.exceptions import BackendError, DataValidationError
from movierec.sagemaker._requests import (
    DEFAULT_RANGES,
    as_csr,
    endpoint_requests,
    fm_request,
    hyperparameter_strings,
    parameter_ranges,
    parse_fm_response,
    training_job_request,
    tuning_job_request,
    tuning_objective,
)
from movierec.sagemaker.artifact import FMParameters, read_fm_artifact
from movierec.sagemaker.aws import AwsClients, aws_errors, unique_name, wait_for
from movierec.sagemaker.config import SageMakerConfig, check_positive

__all__ = ["SageMakerBackend", "fm_image_uri"]

logger = logging.getLogger(__name__)

_JOB_DONE, _JOB_FAILED = ("Completed",), ("Failed", "Stopped")
_ENDPOINT_DONE = ("InService",)
_ENDPOINT_FAILED = ("Failed", "OutOfService", "Deleting", "RollingBack")


@functools.cache
def fm_image_uri(region: str) -> str:
    """Return the ECR URI of SageMaker's Factorization Machines image in ``region`` (sagemaker-core)."""
    image_uris = require("sagemaker.core.image_uris", "sagemaker")
    try:
        return image_uris.retrieve("factorization-machines", region)
    except ValueError as err:
        raise BackendError(f"no Factorization Machines image for region {region!r}: {err}") from err


def _recordio(X: Any, y: np.ndarray) -> bytes:
    from movierec.sagemaker.recordio import write_sparse

    buffer = io.BytesIO()
    write_sparse(buffer, as_csr(X).astype(np.float32), np.asarray(y, dtype=np.float32))
    return buffer.getvalue()


class _Created:
    """Names of the endpoint resources the backend created and has not deleted yet.

    Kept apart from the backend so a ``weakref.finalize`` can delete them without keeping the
    backend alive.
    """

    def __init__(self, aws_holder: list[AwsClients]) -> None:
        self.aws_holder = aws_holder
        self.endpoint: str | None = None
        self.endpoint_config: str | None = None
        self.model: str | None = None

    def any(self) -> bool:
        return any((self.endpoint, self.endpoint_config, self.model))

    def delete_all(self) -> bool:
        """Delete endpoint, then its config, then the model; return True if all are gone."""
        if not self.any():
            return True
        aws = self.aws_holder[0]
        ok = True
        for kind in ("endpoint", "endpoint_config", "model"):
            name = getattr(self, kind)
            if name is not None:
                if aws.delete_quietly(kind, name):
                    setattr(self, kind, None)
                else:
                    ok = False
        return ok


def _finalize(created: _Created) -> None:
    if created.any():
        logger.warning("a SageMakerBackend was not closed: deleting its endpoint %s", created.endpoint)
        created.delete_all()


class SageMakerBackend:
    """Runs Factorization Machines on Amazon SageMaker for one :class:`SageMakerConfig`.

    Parameters
    ----------
    config : SageMakerConfig
        Bucket, role, region, instance types, endpoint_url, timeouts.
    random_state : int, numpy Generator or None
        Seeds the choice of held-out test rows when no test data is given.
    hyperparameters : mapping, optional
        FM hyperparameters (SageMaker's names) that ``fit`` and ``tune`` use when they are given
        none, so ``SageMakerFM`` can call ``fit(X, y)`` as on its local trainer.

    Attributes
    ----------
    job_name : str or None
        The training job whose model ``load_artifact`` and ``deploy`` use: the last ``fit``'s
        job, or the best training job of the last ``tune``.
    tuning_job_name : str or None
    best_hyperparameters : dict or None
        ``TunedHyperParameters`` of the tuning job's best training job.
    best_objective_value : float or None
        Its final objective metric (``test:rmse`` ...), as SageMaker reports it.
    endpoint_name : str or None
        The live endpoint, if ``deploy`` was called and ``close`` was not.
    calls : list of str
        Every AWS API call made so far, ``"service:Operation"``, in order.

    Examples
    --------
    >>> with SageMakerBackend(config) as backend:                     # doctest: +SKIP
    ...     backend.fit(X, y, hyperparameters={"predictor_type": "regressor", "num_factors": 64})
    ...     backend.deploy()
    ...     scores = backend.invoke(X[:10])
    """

    def __init__(
        self, config: SageMakerConfig, *, random_state: Any = None, hyperparameters: Mapping[str, Any] | None = None
    ) -> None:
        if not isinstance(config, SageMakerConfig):
            raise TypeError(f"config must be a movierec.sagemaker.SageMakerConfig, got {type(config).__name__}")
        self.config = config
        self.random_state = random_state
        self.hyperparameters = dict(hyperparameters or {})
        self.job_name: str | None = None
        self.tuning_job_name: str | None = None
        self.best_hyperparameters: dict[str, str] | None = None
        self.best_objective_value: float | None = None
        self._artifact_uris: dict[str, str] = {}
        self._deployed_job: str | None = None
        self._aws_holder: list[AwsClients] = []
        self._created = _Created(self._aws_holder)
        self._finalizer = weakref.finalize(self, _finalize, self._created)

    # -- plumbing ------------------------------------------------------------------------------
    @property
    def aws(self) -> AwsClients:
        """The boto3 clients (built on first use, so building a backend makes no AWS call)."""
        if not self._aws_holder:
            self._aws_holder.append(AwsClients(self.config))
        return self._aws_holder[0]

    @property
    def calls(self) -> list[str]:
        return list(self.aws.calls) if self._aws_holder else []

    @property
    def endpoint_name(self) -> str | None:
        return self._created.endpoint

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SageMakerBackend(bucket={self.config.bucket!r}, job={self.job_name!r}, endpoint={self.endpoint_name!r})"

    # -- data ----------------------------------------------------------------------------------
    def _split(self, X: Any, y: np.ndarray, X_test: Any, y_test: Any) -> tuple[Any, np.ndarray, Any, Any]:
        X = as_csr(X)
        y = np.asarray(y, dtype=np.float64)
        if len(y) != X.shape[0] or X.shape[0] == 0:
            raise DataValidationError(f"X has {X.shape[0]} rows and y {len(y)} labels; need the same, > 0")
        if (X_test is None) != (y_test is None):
            raise DataValidationError("give both X_test and y_test, or neither")
        if X_test is not None:
            X_test, y_test = as_csr(X_test), np.asarray(y_test, dtype=np.float64)
            if X_test.shape[1] != X.shape[1] or len(y_test) != X_test.shape[0]:
                raise DataValidationError(
                    f"test data has shape {X_test.shape} and {len(y_test)} labels; train has {X.shape[1]} columns"
                )
            return X, y, X_test, y_test
        fraction = self.config.test_fraction
        if fraction == 0 or X.shape[0] < 2:
            return X, y, None, None
        order = np.random.default_rng(self.random_state).permutation(X.shape[0])
        n_test = min(X.shape[0] - 1, max(1, round(fraction * X.shape[0])))
        test, train = np.sort(order[:n_test]), np.sort(order[n_test:])
        return X[train], y[train], X[test], y[test]

    def _upload(self, X: Any, y: np.ndarray, X_test: Any, y_test: Any) -> bool:
        """HeadBucket, then PutObject train (and test); return whether a test channel exists."""
        self.aws.check_bucket()
        self.aws.put_object(self.config.train_key, _recordio(X, y))
        if X_test is not None:
            self.aws.put_object(self.config.test_key, _recordio(X_test, y_test))
        return X_test is not None

    # -- training ------------------------------------------------------------------------------
    def fit(
        self,
        X_train: Any,
        y_train: Any,
        X_test: Any = None,
        y_test: Any = None,
        hyperparameters: Mapping[str, Any] | None = None,
    ) -> str:
        """Run a training job on ``(X_train, y_train)``; return its name once it has completed.

        The test channel is ``(X_test, y_test)`` or, when not given, ``config.test_fraction`` of
        the training rows held out (SageMaker then reports ``test:*`` metrics in its logs).

        Raises
        ------
        BackendError
            With SageMaker's ``FailureReason`` when the job fails; when it does not finish within
            ``config.job_timeout_seconds`` (the job is stopped); on any AWS error.
        """
        image = fm_image_uri(self.config.region)
        X, y, X_test, y_test = self._split(X_train, y_train, X_test, y_test)
        strings = hyperparameter_strings(self.hyperparameters if hyperparameters is None else hyperparameters, X.shape[1])
        with_test = self._upload(X, y, X_test, y_test)
        name = unique_name(self.config.name_prefix)
        request = training_job_request(self.config, name, image, strings, with_test=with_test)
        with aws_errors(f"creating training job {name}"):
            self.aws.sagemaker.create_training_job(**request)
        logger.info("training job %s started (%d rows, feature_dim %d)", name, X.shape[0], X.shape[1])
        description = self._wait_job(
            f"training job {name}",
            lambda: self.aws.sagemaker.describe_training_job(TrainingJobName=name),
            "TrainingJobStatus",
            detail_key="SecondaryStatus",
            stop=lambda: self.aws.sagemaker.stop_training_job(TrainingJobName=name),
        )
        self._remember_artifact(name, description)
        self.job_name = name
        return name

    def tune(
        self,
        X_train: Any,
        y_train: Any,
        X_test: Any = None,
        y_test: Any = None,
        hyperparameters: Mapping[str, Any] | None = None,
        *,
        ranges: Mapping[str, tuple[int, int] | tuple[float, float] | Sequence[str]] | None = None,
        objective: str | tuple[str, Literal["Minimize", "Maximize"]] | None = None,
        max_jobs: int = 4,
        max_parallel_jobs: int = 2,
        strategy: Literal["Bayesian", "Random", "Hyperband", "Grid"] = "Bayesian",
    ) -> str:
        """Run a hyperparameter tuning job; return (and use from now on) its best training job.

        Parameters
        ----------
        ranges : mapping, default the seed's ``{"mini_batch_size": (50, 3000), "epochs": (50, 500)}``
            ``(int, int)`` an integer range, ``(float, float)`` a continuous one, a list of values
            a categorical one. Tuned names are left out of the static hyperparameters.
        objective : str or (metric, "Minimize" | "Maximize"), optional
            Default ``("test:rmse", "Minimize")`` for ``regressor``,
            ``("test:binary_classification_accuracy", "Maximize")`` for ``binary_classifier``; a
            known metric name alone gets its direction.
        max_jobs, max_parallel_jobs : int
            SageMaker's ``ResourceLimits``.
        """
        check_positive(max_jobs, "max_jobs")
        check_positive(max_parallel_jobs, "max_parallel_jobs")
        image = fm_image_uri(self.config.region)
        X, y, X_test, y_test = self._split(X_train, y_train, X_test, y_test)
        if X_test is None:
            raise DataValidationError("tuning needs a test channel: give X_test, y_test or set config.test_fraction > 0")
        strings = hyperparameter_strings(self.hyperparameters if hyperparameters is None else hyperparameters, X.shape[1])
        search = parameter_ranges(DEFAULT_RANGES if ranges is None else ranges)
        tuned = {r["Name"] for group in search.values() for r in group}
        static = {k: v for k, v in strings.items() if k not in tuned}
        objective = tuning_objective(objective, strings["predictor_type"])
        self._upload(X, y, X_test, y_test)
        name = unique_name(self.config.name_prefix)
        request = tuning_job_request(
            self.config, name, image, static, search, objective,
            max_jobs=max_jobs, max_parallel_jobs=max_parallel_jobs, strategy=strategy,
        )
        with aws_errors(f"creating tuning job {name}"):
            self.aws.sagemaker.create_hyper_parameter_tuning_job(**request)
        description = self._wait_job(
            f"tuning job {name}",
            lambda: self.aws.sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name),
            "HyperParameterTuningJobStatus",
            stop=lambda: self.aws.sagemaker.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName=name),
        )
        best = description.get("BestTrainingJob") or {}
        if not best.get("TrainingJobName"):
            raise BackendError(f"tuning job {name} completed without a best training job (did every job fail?)")
        self.tuning_job_name = name
        self.job_name = best["TrainingJobName"]
        self.best_hyperparameters = dict(best.get("TunedHyperParameters") or {})
        metric = (best.get("FinalHyperParameterTuningJobObjectiveMetric") or {}).get("Value")
        self.best_objective_value = None if metric is None else float(metric)
        logger.info("tuning job %s: best training job %s (%s = %s) with %s", name, self.job_name, objective[0], metric,
                    self.best_hyperparameters)
        return self.job_name

    def _wait_job(self, what: str, describe: Any, status_key: str, *, stop: Any, detail_key: str | None = None) -> dict:
        """Wait for a job; on timeout or interruption stop it (it would run on, billed, unused)."""
        try:
            with aws_errors(f"waiting for {what}"):
                return wait_for(
                    what, describe, status_key, done=_JOB_DONE, failed=_JOB_FAILED, detail_key=detail_key,
                    timeout=self.config.job_timeout_seconds, poll=self.config.poll_seconds,
                )
        except (TimeoutError, KeyboardInterrupt) as err:
            try:
                with aws_errors(f"stopping {what}"):
                    stop()
                logger.warning("stopped %s", what)
            except BackendError as stop_err:
                logger.error("could not stop %s: %s; stop it in the console", what, stop_err)
            if isinstance(err, KeyboardInterrupt):
                raise
            raise BackendError(f"{err}; the job was stopped") from err

    def _remember_artifact(self, job: str, description: Mapping[str, Any]) -> None:
        uri = (description.get("ModelArtifacts") or {}).get("S3ModelArtifacts")
        if uri:
            self._artifact_uris[job] = uri

    def _job(self, job_name: str | None) -> str:
        job = job_name or self.job_name
        if job is None:
            raise BackendError("no training job yet: call fit or tune first (or pass job_name)")
        return job

    def artifact_uri(self, job_name: str | None = None) -> str:
        """Return the ``s3://`` URI of the job's ``model.tar.gz`` (DescribeTrainingJob unless known)."""
        job = self._job(job_name)
        if job not in self._artifact_uris:
            with aws_errors(f"describing training job {job}"):
                description = self.aws.sagemaker.describe_training_job(TrainingJobName=job)
            if description.get("TrainingJobStatus") != "Completed":
                raise BackendError(f"training job {job} is {description.get('TrainingJobStatus')}, not Completed")
            self._remember_artifact(job, description)
            if job not in self._artifact_uris:
                raise BackendError(f"training job {job} reports no ModelArtifacts")
        return self._artifact_uris[job]

    def load_artifact(self, job_name: str | None = None, *, feature_dim: int | None = None) -> FMParameters:
        """Download the job's ``model.tar.gz`` and return its ``(w0, w, V)`` (V: feature_dim x k)."""
        uri = self.artifact_uri(job_name)
        params = read_fm_artifact(self.aws.get_object(uri), feature_dim=feature_dim)
        logger.info("read %s: %d features, %d factors", uri, params.V.shape[0], params.V.shape[1])
        return params

    # -- endpoint ------------------------------------------------------------------------------
    def deploy(self, job_name: str | None = None) -> str:
        """Create model, endpoint config and endpoint for the job's model; wait for ``InService``.

        Returns the endpoint name. If any step fails or times out, what was created so far is
        deleted before the error is raised. Calling ``deploy`` again while an endpoint is live
        returns that endpoint if it serves the same job, else replaces it.
        """
        job = self._job(job_name)
        if self._created.endpoint is not None and self._deployed_job == job:
            return self._created.endpoint
        self.delete_endpoint()
        image = fm_image_uri(self.config.region)
        model_data = self.artifact_uri(job)
        name = unique_name(self.config.name_prefix)
        model, endpoint_config, endpoint = endpoint_requests(self.config, name, image, model_data)
        sm = self.aws.sagemaker
        try:
            # Each name is recorded before its create call: a call that fails after AWS acted on
            # it (a lost reply) still gets its resource deleted; deleting one that does not exist
            # counts as done.
            self._created.model = name
            with aws_errors(f"creating model {name}"):
                sm.create_model(**model)
            self._created.endpoint_config = name
            with aws_errors(f"creating endpoint config {name}"):
                sm.create_endpoint_config(**endpoint_config)
            self._created.endpoint = name
            with aws_errors(f"creating endpoint {name}"):
                sm.create_endpoint(**endpoint)
            with aws_errors(f"waiting for endpoint {name}"):
                wait_for(
                    f"endpoint {name}", lambda: sm.describe_endpoint(EndpointName=name), "EndpointStatus",
                    done=_ENDPOINT_DONE, failed=_ENDPOINT_FAILED,
                    timeout=self.config.endpoint_timeout_seconds, poll=self.config.poll_seconds,
                )
        except BaseException as err:
            cleaned = self.delete_endpoint()
            note = "what it had created was deleted" if cleaned else "some resources could not be deleted (see log)"
            if isinstance(err, BackendError):
                raise BackendError(f"deploy failed: {err}; {note}") from err.__cause__ or err
            if isinstance(err, Exception):
                raise BackendError(f"deploy failed: {err}; {note}") from err
            raise
        self._deployed_job = job
        logger.info("endpoint %s is InService (model of %s)", name, job)
        return name

    def invoke(self, X: Any, batch_size: int | None = None) -> np.ndarray:
        """Return the endpoint's score for each row of ``X`` (FM JSON, ``batch_size`` rows a request).

        A failure deletes the endpoint, its config and the model (``deploy`` again to retry).
        """
        if self._created.endpoint is None:
            raise BackendError("no endpoint: call deploy() first")
        batch = self.config.invoke_batch_size if batch_size is None else batch_size
        check_positive(batch, "batch_size")
        csr = as_csr(X)
        endpoint = self._created.endpoint
        scores = np.empty(csr.shape[0], dtype=np.float64)
        try:
            for start in range(0, csr.shape[0], batch):
                rows = csr[start : start + batch]
                with aws_errors(f"invoking endpoint {endpoint}"):
                    reply = self.aws.runtime.invoke_endpoint(
                        EndpointName=endpoint, ContentType="application/json", Accept="application/json",
                        Body=fm_request(rows),
                    )
                    body = reply["Body"].read()
                scores[start : start + rows.shape[0]] = parse_fm_response(body, rows.shape[0])
        except Exception as err:
            self.delete_endpoint()
            raise BackendError(f"{err}; the endpoint, its config and model were deleted (deploy() to retry)") from err
        return scores

    def delete_endpoint(self) -> bool:
        """Delete the endpoint, its config and the model this backend created; True if all are gone."""
        ok = self._created.delete_all()
        if ok:
            self._deployed_job = None
        return ok

    def close(self) -> None:
        """Delete every endpoint resource this backend created (idempotent). Jobs and S3 data stay."""
        if not self.delete_endpoint():
            raise BackendError(
                f"could not delete all endpoint resources ({self._created.endpoint}, "
                f"{self._created.endpoint_config}, {self._created.model}): delete them by hand to stop their cost"
            )
