"""``SageMakerBackend``: trains, tunes, deploys and invokes Factorization Machines on SageMaker.

The backend of ``SageMakerFM(backend="sagemaker")``. It gets the one-hot design matrix and the
labels the model built, and does from code what is otherwise done by hand in the AWS console:

1. ``fit``: RecordIO-protobuf train (and test) files to ``s3://{bucket}/{prefix}/train/...``, a
   training job with SageMaker's FM image, wait for it; it returns the job's weights as a
   `JobWeights`, read from its ``model.tar.gz`` on first access, so the whole catalogue is
   scored locally without an endpoint. ``tune``: a hyperparameter tuning job
   (`movierec.sagemaker._tuning`), whose best training job is then used;
2. ``deploy`` / ``invoke``: a real-time endpoint and FM's JSON requests, in batches;
3. ``close`` (also context exit, failures after creation, and garbage collection): delete the
   endpoint, its config and the model, so no billed endpoint is left behind.

Every AWS call is recorded in ``calls`` (``"service:Operation"``, in order).
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Literal, Self

import numpy as np

from movierec._core.params import Instance, Int, Seed, check_value
from movierec.exceptions import BackendError, DataValidationError
from movierec.sagemaker._endpoint import EndpointResources, delete_forgotten
from movierec.sagemaker._finite import check_finite
from movierec.sagemaker._jobs import JobWeights, fm_image_uri, split_test, upload_channels, wait_job
from movierec.sagemaker._requests import (
    DEFAULT_RANGES,
    as_csr,
    endpoint_requests,
    fm_request,
    hyperparameter_strings,
    parameter_ranges,
    parse_fm_response,
    training_job_request,
    tuning_objective,
)
from movierec.sagemaker._tuning import TuningOutcome, run_tuning_job
from movierec.sagemaker.artifact import FMParameters, read_fm_artifact
from movierec.sagemaker.aws import AwsClients, aws_errors, unique_name, wait_for
from movierec.sagemaker.config import SageMakerConfig

__all__ = ["JobWeights", "SageMakerBackend", "TuningOutcome", "fm_image_uri"]

logger = logging.getLogger(__name__)

_ENDPOINT_DONE = ("InService",)
_ENDPOINT_FAILED = ("Failed", "OutOfService", "Deleting", "RollingBack")


class SageMakerBackend:
    """Runs Factorization Machines on Amazon SageMaker for one `SageMakerConfig`.

    Parameters
    ----------
    config : SageMakerConfig
        Bucket, role, region, instance types, endpoint_url, timeouts.
    random_state : int or None
        Seeds the choice of held-out test rows when no test data is given, and the split of
        the rows into one shard per instance when ``config.train_instance_count > 1``.
    hyperparameters : mapping, optional
        FM hyperparameters (SageMaker's names) that ``fit`` and ``tune`` use when they are given
        none, so ``SageMakerFM`` can call ``fit(X, y)`` as on its local trainer.

    Attributes
    ----------
    job_name : str or None
        The training job whose model ``load_artifact`` and ``deploy`` use by default: the last
        ``fit``'s job, or the best training job of the last ``tune``.
    tuning_job_name : str or None
        The last ``tune``'s tuning job.
    endpoint_name : str or None
        The live endpoint, if ``deploy`` was called and ``close`` was not.
    calls : list of str
        Every AWS API call made so far, ``"service:Operation"``, in order.

    Examples
    --------
    >>> with SageMakerBackend(config) as backend:                     # doctest: +SKIP
    ...     weights = backend.fit(X, y, hyperparameters={"predictor_type": "regressor", "num_factors": 64})
    ...     weights.V.shape                                           # downloads model.tar.gz
    ...     backend.deploy()
    ...     scores = backend.invoke(X[:10])
    """

    def __init__(
        self,
        config: SageMakerConfig,
        *,
        random_state: int | None = None,
        hyperparameters: Mapping[str, Any] | None = None,
    ) -> None:
        owner = type(self).__name__
        self.config = check_value(
            owner, "config", config, Instance((SageMakerConfig,), "a movierec.sagemaker.SageMakerConfig")
        )
        self.random_state = check_value(owner, "random_state", random_state, Seed())
        self.hyperparameters = dict(hyperparameters or {})
        self.job_name: str | None = None
        self.tuning_job_name: str | None = None
        self._artifact_uris: dict[str, str] = {}
        self._deployed_job: str | None = None
        self._aws_holder: list[AwsClients] = []
        self._created = EndpointResources(self._aws_holder)
        self._finalizer = weakref.finalize(self, delete_forgotten, self._created)

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

    def _prepare(self, X: Any, y: Any, X_test: Any, y_test: Any, hyperparameters: Mapping[str, Any] | None):
        """Return the checked data (test rows held out when none are given) and the string hyperparameters."""
        X, y, X_test, y_test = split_test(
            X, y, X_test, y_test, fraction=self.config.test_fraction, random_state=self.random_state
        )
        given = self.hyperparameters if hyperparameters is None else hyperparameters
        strings = hyperparameter_strings(given, X.shape[1])
        return X, y, X_test, y_test, strings

    # -- training ------------------------------------------------------------------------------
    def fit(
        self,
        X_train: Any,
        y_train: Any,
        X_test: Any = None,
        y_test: Any = None,
        hyperparameters: Mapping[str, Any] | None = None,
    ) -> JobWeights:
        """Run a training job on ``(X_train, y_train)``; return its weights once it has completed.

        The test channel is ``(X_test, y_test)`` or, when not given, ``config.test_fraction`` of
        the training rows held out (SageMaker then reports ``test:*`` metrics in its logs). The
        returned `JobWeights` knows the job (``training_job``, also ``job_name`` from now
        on) and downloads its ``model.tar.gz`` the first time ``w0``, ``w`` or ``V`` is read.

        Raises
        ------
        BackendError
            With SageMaker's ``FailureReason`` when the job fails; when it does not finish within
            ``config.job_timeout_seconds`` (the job is stopped); on any AWS error.
        """
        image = fm_image_uri(self.config.region)
        X, y, X_test, y_test, strings = self._prepare(X_train, y_train, X_test, y_test, hyperparameters)
        with_test = upload_channels(
            self.aws, self.config, X, y, X_test, y_test, random_state=self.random_state
        )
        name = unique_name(self.config.name_prefix)
        request = training_job_request(self.config, name, image, strings, with_test=with_test)
        with aws_errors(f"creating training job {name}"):
            self.aws.sagemaker.create_training_job(**request)
        logger.info("training job %s started (%d rows, feature_dim %d)", name, X.shape[0], X.shape[1])
        description = wait_job(
            self.config,
            f"training job {name}",
            lambda: self.aws.sagemaker.describe_training_job(TrainingJobName=name),
            "TrainingJobStatus",
            detail_key="SecondaryStatus",
            stop=lambda: self.aws.sagemaker.stop_training_job(TrainingJobName=name),
        )
        self._remember_artifact(name, description)
        self.job_name = name
        feature_dim = X.shape[1]
        return JobWeights(name, lambda: self.load_artifact(name, feature_dim=feature_dim))

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
    ) -> TuningOutcome:
        """Run a hyperparameter tuning job; return its best training job (used from now on).

        Parameters
        ----------
        ranges : mapping, default ``{"mini_batch_size": (50, 3000), "epochs": (50, 500)}``
            ``(int, int)`` an integer range, ``(float, float)`` a continuous one, a list of values
            a categorical one. Tuned names are left out of the static hyperparameters.
        objective : str or (metric, "Minimize" | "Maximize"), optional
            Default ``("test:rmse", "Minimize")`` for ``regressor``,
            ``("test:binary_classification_accuracy", "Maximize")`` for ``binary_classifier``; a
            known metric name alone gets its direction.
        max_jobs, max_parallel_jobs : int
            SageMaker's ``ResourceLimits``.

        Returns
        -------
        TuningOutcome
            The tuning job, its best training job (also ``job_name`` from now on), that job's
            tuned values and objective value, and its weights (read on first access).
        """
        owner = f"{type(self).__name__}.tune"
        max_jobs = check_value(owner, "max_jobs", max_jobs, Int(1))
        max_parallel_jobs = check_value(owner, "max_parallel_jobs", max_parallel_jobs, Int(1))
        image = fm_image_uri(self.config.region)
        X, y, X_test, y_test, strings = self._prepare(X_train, y_train, X_test, y_test, hyperparameters)
        if X_test is None:
            raise DataValidationError("tuning needs a test channel: give X_test, y_test or set config.test_fraction > 0")
        search = parameter_ranges(DEFAULT_RANGES if ranges is None else ranges)
        metric = tuning_objective(objective, strings["predictor_type"])
        upload_channels(self.aws, self.config, X, y, X_test, y_test, random_state=self.random_state)
        feature_dim = X.shape[1]
        outcome = run_tuning_job(
            self.aws, self.config, image, strings, search, metric,
            max_jobs=max_jobs, max_parallel_jobs=max_parallel_jobs, strategy=strategy,
            load=lambda job: self.load_artifact(job, feature_dim=feature_dim),
        )
        self.tuning_job_name, self.job_name = outcome.tuning_job, outcome.training_job
        return outcome

    # -- artifacts -----------------------------------------------------------------------------
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
        """Download the job's ``model.tar.gz`` and return its ``(w0, w, V)`` (V: feature_dim x k).

        Raises
        ------
        ArtifactError
            If the archive is truncated, corrupt or not a Factorization Machines model.
        BackendError
            If a weight is NaN or infinite (the training job diverged), or on any AWS error.
        """
        uri = self.artifact_uri(job_name)
        params = read_fm_artifact(self.aws.get_object(uri), feature_dim=feature_dim)
        what = f"the model of training job {self._job(job_name)} ({uri})"
        check_finite(np.array([params.w0]), what, "bias w0")
        check_finite(params.w, what, "linear weight")
        check_finite(params.V, what, "factor")
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

        A failure deletes the endpoint, its config and the model (``deploy`` again to retry); so
        does a NaN or infinite score, which means the model it serves is broken.
        """
        if self._created.endpoint is None:
            raise BackendError("no endpoint: call deploy() first")
        batch = self.config.invoke_batch_size if batch_size is None else batch_size
        batch = check_value(f"{type(self).__name__}.invoke", "batch_size", batch, Int(1))
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
                batch_scores = parse_fm_response(body, rows.shape[0])
                rows_asked = f"rows {start}-{start + len(batch_scores) - 1}"
                check_finite(
                    batch_scores, f"endpoint {endpoint} (request for {rows_asked})", "score", first_row=start
                )
                scores[start : start + rows.shape[0]] = batch_scores
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
