"""Faulty AWS answers: an address that never answers, NaN from an endpoint, NaN in a job's artifact.

Each must end in a :class:`BackendError` that says what was wrong (and, through ``SageMakerFM``,
names the model), within the configured time, with no endpoint left behind.
"""

from __future__ import annotations

import socket
import threading
import time
import warnings
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest

from movierec import SageMakerFM
from movierec.exceptions import BackendError
from movierec.sagemaker import SageMakerBackend
from movierec.sagemaker.artifact import write_fm_artifact
from movierec.sagemaker.aws import AwsClients
from movierec.sagemaker.backend import fm_image_uri

HYPERPARAMETERS = {"predictor_type": "regressor", "num_factors": 2, "epochs": 1}
EMPTY = {"endpoints": [], "endpoint_configs": [], "models": []}


# -- an address that accepts connections but never answers ---------------------------------------
class SilentServer:
    """A TCP server on 127.0.0.1 that accepts every connection and never sends a byte."""

    def __init__(self) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.connections: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.socket.getsockname()[1]}"

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:  # closed
                return
            self.connections.append(connection)

    def close(self) -> None:
        self.socket.close()
        for connection in self.connections:
            connection.close()


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


def test_a_silent_address_fails_within_timeout_times_attempts(moto, ratings_matrix, silent):
    config = moto.config(
        endpoint_url=silent.url, connect_timeout_seconds=0.5, read_timeout_seconds=0.4, max_attempts=3
    )
    backend = SageMakerBackend(config, hyperparameters=HYPERPARAMETERS)
    fm_image_uri(config.region)  # cached: the first one imports sagemaker, which takes seconds
    start = time.monotonic()
    with pytest.raises(
        BackendError, match="checking bucket.*no answer in time.*read_timeout_seconds"
    ) as caught:
        backend.fit(*ratings_matrix)  # the first AWS call: HeadBucket
    elapsed = time.monotonic() - start
    assert 3 * 0.4 <= elapsed < 3 * 0.4 + 3.0  # three reads of 0.4 s, plus backoff and setup
    assert len(silent.connections) == 3  # one connection per attempt
    assert backend.calls == ["s3:HeadBucket"]
    assert "Read timeout" in str(caught.value.__cause__)


def test_every_client_uses_the_configured_limits(moto):
    config = moto.config(connect_timeout_seconds=2.5, read_timeout_seconds=7, max_attempts=4)
    clients = AwsClients(config)
    for client in (clients.s3, clients.sagemaker, clients.runtime):
        options = client.meta.config
        assert (options.connect_timeout, options.read_timeout) == (2.5, 7)
        assert options.retries == {"total_max_attempts": 4, "mode": "standard"}


# -- NaN and infinity ----------------------------------------------------------------------------
def _fitted_backend(moto, ratings_matrix, w0=0.5, V=None) -> SageMakerBackend:
    X, y = ratings_matrix
    backend = SageMakerBackend(moto.config(), hyperparameters=HYPERPARAMETERS)
    backend.fit(X, y)
    rng = np.random.default_rng(0)
    V = rng.normal(size=(X.shape[1], 2)) if V is None else V
    moto.put_artifact(backend.artifact_uri(), write_fm_artifact(w0, rng.normal(size=X.shape[1]), V))
    return backend


def test_nan_from_the_endpoint_is_an_error_and_deletes_it(moto, ratings_matrix):
    backend = _fitted_backend(moto, ratings_matrix)
    backend.deploy()
    moto.queue_replies([{"predictions": [{"score": 1.0}, {"score": float("nan")}, {"score": float("inf")}]}])
    with pytest.raises(
        BackendError, match=r"gave 2 NaN or infinite score\(s\) of 3 \(the first at \[1\] is nan\)"
    ):
        backend.invoke(ratings_matrix[0][:3])
    assert moto.leftovers() == EMPTY  # a broken model is not left billing


def test_nan_in_the_artifact_names_the_job_and_the_weights(moto, ratings_matrix):
    V = np.ones((ratings_matrix[0].shape[1], 2))
    V[3, 1] = np.nan
    backend = _fitted_backend(moto, ratings_matrix, V=V)
    with pytest.raises(
        BackendError, match=rf"training job {backend.job_name}.*1 NaN or infinite factor\(s\) of 28 "
    ):
        backend.load_artifact()


@pytest.fixture
def ratings() -> pd.DataFrame:
    """5 users x 6 movies, 20 ratings."""
    rng = np.random.default_rng(3)
    cells = rng.choice(30, size=20, replace=False)
    return pd.DataFrame(
        {"userId": cells // 6, "movieId": 10 + cells % 6, "rating": rng.integers(1, 6, 20).astype(float)}
    )


def _fitted_model(moto, ratings, w0=3.0) -> SageMakerFM:
    fm = SageMakerFM(backend="sagemaker", sagemaker=moto.config(), num_factors=2, epochs=1, random_state=0)
    fm.fit(ratings)
    dim = len(fm.feature_names_)
    job = moto.client("sagemaker").describe_training_job(TrainingJobName=fm.training_job_)
    artifact = write_fm_artifact(w0, np.zeros(dim), np.full((dim, 2), 0.1))
    moto.put_artifact(job["ModelArtifacts"]["S3ModelArtifacts"], artifact)
    return fm


def test_rmse_over_an_endpoint_answering_nan_names_the_model_not_unseen_ids(moto, ratings):
    fm = _fitted_model(moto, ratings)
    fm.deploy()
    moto.queue_scores(np.full(len(ratings), np.nan), batch_size=500)
    with warnings.catch_warnings(record=True) as caught, pytest.raises(BackendError) as error:
        warnings.simplefilter("always")
        fm.rmse(ratings)
    message = str(error.value)
    assert message.startswith("SageMakerFM: endpoint ")
    assert f"gave {len(ratings)} NaN or infinite score(s)" in message
    assert "unseen" not in message and not [w for w in caught if "unseen" in str(w.message)]
    assert moto.leftovers() == EMPTY
    assert fm.predict(ratings.head(2)).tolist() == pytest.approx([3.02, 3.02])  # the artifact still scores


def test_top_n_over_an_endpoint_answering_infinity_names_the_model(moto, ratings):
    fm = _fitted_model(moto, ratings)
    fm.deploy()
    n_users, n_items = ratings.userId.nunique(), ratings.movieId.nunique()
    moto.queue_scores(np.full(n_users * n_items, np.inf), batch_size=500)
    with pytest.raises(BackendError, match="^SageMakerFM: endpoint .* NaN or infinite score"):
        fm.top_n(n=2)
    fm.close()


def test_nan_weights_in_the_artifact_name_the_model_and_the_job(moto, ratings):
    fm = _fitted_model(moto, ratings, w0=np.inf)
    with pytest.raises(
        BackendError, match=rf"^SageMakerFM: the model of training job {fm.training_job_} .*bias w0"
    ):
        fm.predict(ratings)
    with pytest.raises(BackendError, match="^SageMakerFM: .*bias w0"):
        fm.top_n(n=1)
