"""What training and tuning jobs share: the FM image, the data channels, waiting, and the weights they leave.

Functions of explicit arguments (clients, config, matrices), so ``backend.py`` and ``_tuning.py``
use them alike; nothing here keeps state but `JobWeights`, which reads a finished job's
``model.tar.gz`` the first time its weights are asked for.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from movierec._core.extras import require
from movierec.exceptions import BackendError, DataValidationError
from movierec.sagemaker._requests import as_csr
from movierec.sagemaker._shards import check_shardable, upload_channel
from movierec.sagemaker.artifact import FMParameters
from movierec.sagemaker.aws import AwsClients, aws_errors, wait_for
from movierec.sagemaker.config import SageMakerConfig

__all__ = ["JobWeights", "fm_image_uri", "split_test", "upload_channels", "wait_job"]

logger = logging.getLogger(__name__)

_JOB_DONE, _JOB_FAILED = ("Completed",), ("Failed", "Stopped")


@functools.cache
def fm_image_uri(region: str) -> str:
    """Return the ECR URI of SageMaker's Factorization Machines image in ``region`` (sagemaker-core)."""
    image_uris = require("sagemaker.core.image_uris", "sagemaker")
    try:
        return image_uris.retrieve("factorization-machines", region)
    except ValueError as err:
        raise BackendError(f"no Factorization Machines image for region {region!r}: {err}") from err


# -- data --------------------------------------------------------------------------------------
def split_test(
    X: Any, y: Any, X_test: Any, y_test: Any, *, fraction: float, random_state: int | None
) -> tuple[Any, np.ndarray, Any, Any]:
    """Return ``(X, y, X_test, y_test)`` checked, the test part held out of ``X`` when not given.

    Without test data, ``fraction`` of the rows (drawn with ``random_state``) become the test
    channel; ``fraction=0`` or a single row gives no test channel (``None, None``).
    """
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
    if fraction == 0 or X.shape[0] < 2:
        return X, y, None, None
    order = np.random.default_rng(random_state).permutation(X.shape[0])
    n_test = min(X.shape[0] - 1, max(1, round(fraction * X.shape[0])))
    test, train = np.sort(order[:n_test]), np.sort(order[n_test:])
    return X[train], y[train], X[test], y[test]


def upload_channels(
    aws: AwsClients,
    config: SageMakerConfig,
    X: Any,
    y: np.ndarray,
    X_test: Any,
    y_test: Any,
    *,
    random_state: int | None = None,
) -> bool:
    """HeadBucket, then write train (and test) as RecordIO-protobuf; return whether test was sent.

    One file per channel for one instance, one shard per instance for several
    (`movierec.sagemaker._shards`, split with ``random_state``). A channel with fewer rows
    than instances raises [`DataValidationError`][movierec.exceptions.DataValidationError] before any AWS call.
    """
    n = config.train_instance_count
    check_shardable("train", X.shape[0], n)
    if X_test is not None:
        check_shardable("test", X_test.shape[0], n)
    aws.check_bucket()
    upload_channel(aws, config, "train", X, y, random_state=random_state)
    if X_test is not None:
        upload_channel(aws, config, "test", X_test, y_test, random_state=random_state)
    return X_test is not None


# -- waiting -----------------------------------------------------------------------------------
def wait_job(
    config: SageMakerConfig,
    what: str,
    describe: Callable[[], dict[str, Any]],
    status_key: str,
    *,
    stop: Callable[[], Any],
    detail_key: str | None = None,
) -> dict[str, Any]:
    """Wait for a job and return its last description; on timeout or Ctrl-C stop it first.

    A job left running would be billed and never used.
    """
    try:
        with aws_errors(f"waiting for {what}"):
            return wait_for(
                what, describe, status_key, done=_JOB_DONE, failed=_JOB_FAILED, detail_key=detail_key,
                timeout=config.job_timeout_seconds, poll=config.poll_seconds,
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


# -- the weights a job leaves ----------------------------------------------------------------------
class JobWeights:
    """The ``w0``, ``w``, ``V`` of a finished training job, read from its ``model.tar.gz`` on first access.

    What ``SageMakerBackend.fit`` returns: the same interface as the local trainer's weights, but
    nothing is downloaded until one of the three is read (then once).

    Parameters
    ----------
    training_job : str
        The job whose artifact holds the weights.
    load : callable
        ``load()`` returns the job's [`FMParameters`][movierec.sagemaker.artifact.FMParameters] (a download).
    """

    def __init__(self, training_job: str, load: Callable[[], FMParameters]) -> None:
        self.training_job = training_job
        self._load = load
        self._params: FMParameters | None = None

    def _read(self) -> FMParameters:
        if self._params is None:
            self._params = self._load()
        return self._params

    @property
    def w0(self) -> float:
        """Global bias."""
        return self._read().w0

    @property
    def w(self) -> np.ndarray:
        """Linear weights, shape (feature_dim,)."""
        return self._read().w

    @property
    def V(self) -> np.ndarray:
        """Factor vectors, shape (feature_dim, num_factors)."""
        return self._read().V

    def __repr__(self) -> str:
        state = "read" if self._params is not None else "not read yet"
        return f"JobWeights(training_job={self.training_job!r}, {state})"
