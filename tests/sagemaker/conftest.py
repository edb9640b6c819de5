"""Fixtures of the SageMaker tests: a moto server on 127.0.0.1, and the same flows on real AWS.

One ``ThreadedMotoServer`` serves the whole session (S3, SageMaker and SageMaker runtime on one
port); every test starts from an empty server (``POST /moto-api/reset``) with fake credentials in
the environment, so no test can reach a real account. Tests that take the ``target`` fixture run
once against moto and once, marked ``aws``, against real AWS when ``MOVIEREC_AWS_TESTS=1`` (with
``MOVIEREC_AWS_BUCKET``, ``MOVIEREC_AWS_ROLE_ARN`` and optionally ``MOVIEREC_AWS_REGION``).
"""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

pytest.importorskip("boto3", reason="the sagemaker extra (boto3) is not installed")
pytest.importorskip("moto.server", reason="moto[server] is not installed")
pytest.importorskip("google.protobuf", reason="the sagemaker extra (protobuf) is not installed")

from movierec.sagemaker import SageMakerConfig

REGION = "us-east-2"
BUCKET = "movierec-test-bucket"
ROLE = "arn:aws:iam::123456789012:role/movierec-fm"


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """Start moto's server once on a free port of 127.0.0.1; return its URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def _fake_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    # keep the developer's own ~/.aws files out of the tests
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))


@dataclass
class Moto:
    """The moto server of one test: clients, the bucket, queued endpoint replies, artifacts."""

    url: str
    region: str = REGION
    bucket: str = BUCKET
    emulated: bool = True
    _clients: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        if service not in self._clients:
            import boto3

            self._clients[service] = boto3.client(service, region_name=self.region, endpoint_url=self.url)
        return self._clients[service]

    def config(self, **overrides: Any) -> SageMakerConfig:
        options: dict[str, Any] = {"bucket": self.bucket, "role_arn": ROLE, "region": self.region}
        options.update(endpoint_url=self.url, poll_seconds=0)
        options.update(overrides)
        return SageMakerConfig(**options)

    def create_bucket(self) -> None:
        self.client("s3").create_bucket(
            Bucket=self.bucket, CreateBucketConfiguration={"LocationConstraint": self.region}
        )

    def _post(self, path: str, document: dict[str, Any] | None = None) -> None:
        data = json.dumps(document or {}).encode()
        request = urllib.request.Request(
            self.url + path, data=data, method="POST", headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as reply:
            reply.read()

    def reset(self) -> None:
        self._post("/moto-api/reset")

    def queue_replies(self, bodies: Sequence[dict[str, Any]]) -> None:
        """Queue endpoint replies: the n-th distinct invoke_endpoint request gets the n-th body."""
        results = [{"Body": json.dumps(b), "ContentType": "application/json"} for b in bodies]
        self._post("/moto-api/static/sagemaker/endpoint-results", {"results": results, "region": self.region})

    def queue_scores(self, scores: np.ndarray, batch_size: int) -> None:
        """Queue FM replies giving ``scores`` in requests of ``batch_size`` rows."""
        bodies = [
            {"predictions": [{"score": float(s)} for s in scores[i : i + batch_size]]}
            for i in range(0, len(scores), batch_size)
        ]
        self.queue_replies(bodies)

    def put_artifact(self, uri: str, body: bytes) -> None:
        """Put ``model.tar.gz`` where the job's ModelArtifacts says (moto's jobs write none)."""
        bucket, key = uri[5:].split("/", 1)
        self.client("s3").put_object(Bucket=bucket, Key=key, Body=body)

    def leftovers(self, name_prefix: str = "") -> dict[str, list[str]]:
        """Endpoints, endpoint configs and models that still exist (names starting ``name_prefix``)."""
        sm = self.client("sagemaker")
        kw = {"NameContains": name_prefix} if name_prefix else {}
        found = {
            "endpoints": [e["EndpointName"] for e in sm.list_endpoints(**kw)["Endpoints"]],
            "endpoint_configs": [c["EndpointConfigName"] for c in sm.list_endpoint_configs(**kw)["EndpointConfigs"]],
            "models": [m["ModelName"] for m in sm.list_models(**kw)["Models"]],
        }
        return {k: [n for n in v if n.startswith(name_prefix)] for k, v in found.items()}


@pytest.fixture
def moto(moto_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Moto:
    """An empty moto server (reset), fake credentials, and the test bucket created."""
    _fake_credentials(monkeypatch, tmp_path)
    server = Moto(moto_url)
    server.reset()
    server.create_bucket()
    return server


@dataclass
class RealAws(Moto):
    """The same helpers against a real account: nothing is queued or uploaded, no reset."""

    emulated: bool = False
    role: str = ""

    def client(self, service: str) -> Any:
        if service not in self._clients:
            import boto3

            self._clients[service] = boto3.client(service, region_name=self.region)
        return self._clients[service]

    def config(self, **overrides: Any) -> SageMakerConfig:
        options: dict[str, Any] = {"bucket": self.bucket, "role_arn": self.role, "region": self.region}
        options.update(poll_seconds=20, name_prefix="movierec-test")
        options.update({k: v for k, v in overrides.items() if k not in ("endpoint_url", "poll_seconds")})
        return SageMakerConfig(**options)

    def queue_replies(self, bodies: Sequence[dict[str, Any]]) -> None:
        pass

    def queue_scores(self, scores: np.ndarray, batch_size: int) -> None:
        pass

    def put_artifact(self, uri: str, body: bytes) -> None:
        pass


@pytest.fixture(params=["moto", pytest.param("aws", marks=pytest.mark.aws)])
def target(request: pytest.FixtureRequest) -> Moto:
    """moto, or real AWS when MOVIEREC_AWS_TESTS=1 (skipped otherwise)."""
    if request.param == "moto":
        return request.getfixturevalue("moto")
    if os.environ.get("MOVIEREC_AWS_TESTS") != "1":
        pytest.skip("real AWS tests run only with MOVIEREC_AWS_TESTS=1")
    missing = [v for v in ("MOVIEREC_AWS_BUCKET", "MOVIEREC_AWS_ROLE_ARN") if not os.environ.get(v)]
    if missing:
        pytest.fail(f"MOVIEREC_AWS_TESTS=1 needs {', '.join(missing)}")
    return RealAws(
        url="",
        region=os.environ.get("MOVIEREC_AWS_REGION", REGION),
        bucket=os.environ["MOVIEREC_AWS_BUCKET"],
        role=os.environ["MOVIEREC_AWS_ROLE_ARN"],
    )


@pytest.fixture
def ratings_matrix() -> tuple[sp.csr_matrix, np.ndarray]:
    """A one-hot FM design matrix: 6 users x 8 movies, 30 ratings (feature_dim 14), and the ratings."""
    rng = np.random.default_rng(7)
    pairs = [(u, m) for u in range(6) for m in range(8)]
    chosen = sorted(rng.choice(len(pairs), size=30, replace=False).tolist())
    users = np.array([pairs[i][0] for i in chosen])
    movies = np.array([pairs[i][1] for i in chosen])
    rows = np.repeat(np.arange(30), 2)
    cols = np.column_stack([users, 6 + movies]).ravel()
    X = sp.csr_matrix((np.ones(60), (rows, cols)), shape=(30, 14))
    y = rng.integers(1, 6, size=30).astype(float)
    return X, y

