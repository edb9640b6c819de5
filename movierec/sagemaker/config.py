"""``SageMakerConfig``: where and how ``SageMakerFM(backend="sagemaker")`` runs on AWS.

Pure data and validation: importing this module imports neither boto3 nor sagemaker, and building
a config makes no AWS call. Credentials are not part of it: boto3 finds them itself (environment,
shared files, SSO, instance role), and movierec never reads, stores or logs them.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

__all__ = ["SageMakerConfig", "check_bucket_name", "check_positive"]

_BUCKET_CHARS = re.compile(r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$")
# Prefixes and suffixes S3 reserves (access points, Object Lambda, directory and table buckets).
_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
_INSTANCE = re.compile(r"^ml\.[a-z0-9-]+\.[a-z0-9]+$")
_NAME_PREFIX = re.compile(r"^[a-zA-Z0-9](-?[a-zA-Z0-9]){0,12}$")
_S3_PREFIX = re.compile(r"^[A-Za-z0-9!_.*'()/-]+$")


def check_bucket_name(bucket: Any) -> str:
    """Return ``bucket`` if it follows S3's naming rules for general purpose buckets, else raise.

    3-63 characters; lowercase letters, digits, dots and hyphens; starting and ending with a
    letter or digit; no two adjacent dots; not an IP address; none of S3's reserved prefixes
    (``xn--``, ``sthree-``, ``amzn-s3-demo-``) or suffixes (``-s3alias``, ``--ol-s3``, ``.mrap``,
    ``--x-s3``, ``--table-s3``).

    Raises
    ------
    ValueError
        Naming the rule the name breaks.
    TypeError
        If ``bucket`` is not a str.
    """
    if not isinstance(bucket, str):
        raise TypeError(f"bucket must be a str, got {type(bucket).__name__}: {bucket!r}")
    problem = None
    if bucket.startswith("s3://"):
        problem = "give the bucket name alone, without 's3://' or a key"
    elif not 3 <= len(bucket) <= 63:
        problem = f"it must be 3 to 63 characters long, not {len(bucket)}"
    elif not _BUCKET_CHARS.match(bucket):
        problem = (
            "it may hold only lowercase letters, digits, '.' and '-', and must start and end with a "
            "letter or digit"
        )
    elif ".." in bucket:
        problem = "it must not contain two adjacent periods"
    elif _is_ip(bucket):
        problem = "it must not be formatted as an IP address"
    elif bucket.startswith(_RESERVED_PREFIXES):
        problem = f"it must not start with a reserved prefix {_RESERVED_PREFIXES}"
    elif bucket.endswith(_RESERVED_SUFFIXES):
        problem = f"it must not end with a reserved suffix {_RESERVED_SUFFIXES}"
    if problem:
        raise ValueError(f"bucket {bucket!r} is not a valid S3 bucket name: {problem}")
    return bucket


def _is_ip(name: str) -> bool:
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        return False
    return True


def check_positive(value: Any, name: str, kind: type = int) -> None:
    """Raise ``ValueError`` unless ``value`` is a positive ``kind`` (int; float also takes ints), never a bool."""
    ok = isinstance(value, (int, float) if kind is float else int) and not isinstance(value, bool)
    if not ok or value <= 0:
        raise ValueError(f"{name} must be a positive {kind.__name__}, got {value!r}")


@dataclass(frozen=True)
class SageMakerConfig:
    """Where SageMaker runs: bucket, role, region, instance types, and how long to wait.

    Passed as ``SageMakerFM(backend="sagemaker", sagemaker=config)``. Arguments after
    ``endpoint_url`` are keyword-only. Every argument is checked
    when the config is built, before any AWS call: a bad bucket name fails here, not in S3.

    Parameters
    ----------
    bucket : str
        An existing S3 bucket in ``region`` (the seed created it in the console, with Block
        Public Access on). Data goes to ``s3://{bucket}/{prefix}/train/train.protobuf`` and
        ``.../test/test.protobuf``, models to ``s3://{bucket}/{prefix}/output``.
    role_arn : str
        The SageMaker execution role (``arn:aws:iam::123456789012:role/...``) that training jobs
        and endpoints run as; see docs/sagemaker.md for its least-privilege policy.
    region : str, default "us-east-2"
        AWS region of the bucket, jobs and endpoints; also picks the FM container image.
    prefix : str, default "fm"
        Key prefix inside the bucket (no leading or trailing '/').
    train_instance_type, train_instance_count : default "ml.c5.xlarge", 1
        Training (and tuning) instances.
    endpoint_instance_type, endpoint_instance_count : default "ml.c5.xlarge", 1
        Real-time endpoint instances (billed per hour while the endpoint exists).
    endpoint_url : str, optional
        Sends every client (S3, SageMaker, SageMaker runtime) to this address instead of AWS,
        e.g. a moto server ``"http://127.0.0.1:5000"``; S3 then uses path-style addressing.
    volume_size_gb : int, default 10
        EBS volume of each training instance.
    max_runtime_seconds : int, default 3600
        SageMaker's ``StoppingCondition``: the service stops a job that runs longer.
    job_timeout_seconds : float, default 7200
        How long ``fit``/``tune`` wait for a job; past it the job is stopped and an error raised.
    endpoint_timeout_seconds : float, default 1800
        How long ``deploy`` waits for ``InService``; past it everything it created is deleted.
    poll_seconds : float, default 15
        Pause between status checks (0 in tests against moto).
    invoke_batch_size : int, default 500
        Rows per ``invoke_endpoint`` request (FM's JSON; keep each request under 6 MB).
    test_fraction : float, default 0.1
        Part of the training rows held out for the ``test`` channel when no test data is given
        (0 sends no test channel; tuning needs one).
    kms_key_id : str, optional
        Encrypt uploads with this KMS key (``aws:kms``) instead of S3-managed keys (``AES256``).
    name_prefix : str, default "movierec-fm"
        Start of every job, model, endpoint-config and endpoint name (at most 13 characters, so
        tuning job names stay within SageMaker's 32).
    tags : dict of str to str, optional
        Tags put on jobs, models, endpoint configs and endpoints (needs ``sagemaker:AddTags``).
    """

    bucket: str
    role_arn: str
    region: str = "us-east-2"
    prefix: str = "fm"
    train_instance_type: str = "ml.c5.xlarge"
    endpoint_instance_type: str = "ml.c5.xlarge"
    endpoint_url: str | None = None
    _: KW_ONLY
    train_instance_count: int = 1
    endpoint_instance_count: int = 1
    volume_size_gb: int = 10
    max_runtime_seconds: int = 3600
    job_timeout_seconds: float = 7200.0
    endpoint_timeout_seconds: float = 1800.0
    poll_seconds: float = 15.0
    invoke_batch_size: int = 500
    test_fraction: float = 0.1
    kms_key_id: str | None = None
    name_prefix: str = "movierec-fm"
    tags: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_bucket_name(self.bucket)
        if isinstance(self.tags, dict):
            object.__setattr__(self, "tags", dict(self.tags))  # a copy: the caller's dict stays theirs
        if not isinstance(self.role_arn, str) or not _ROLE_ARN.match(self.role_arn):
            raise ValueError(
                f"role_arn must be an IAM role ARN like 'arn:aws:iam::123456789012:role/Name', got {self.role_arn!r}"
            )
        if not isinstance(self.region, str) or not _REGION.match(self.region):
            raise ValueError(f"region must be an AWS region name like 'us-east-2', got {self.region!r}")
        if not isinstance(self.prefix, str) or not self.prefix or not _S3_PREFIX.match(self.prefix) or (
            self.prefix.startswith("/") or self.prefix.endswith("/") or "//" in self.prefix
        ):
            raise ValueError(f"prefix must be a non-empty S3 key prefix without leading or trailing '/', got {self.prefix!r}")
        for name in ("train_instance_type", "endpoint_instance_type"):
            value = getattr(self, name)
            if not isinstance(value, str) or not _INSTANCE.match(value):
                raise ValueError(f"{name} must be a SageMaker instance type like 'ml.c5.xlarge', got {value!r}")
        if self.endpoint_url is not None and (
            not isinstance(self.endpoint_url, str) or not self.endpoint_url.startswith(("http://", "https://"))
        ):
            raise ValueError(f"endpoint_url must be None or an http(s) URL, got {self.endpoint_url!r}")
        for name in (
            "train_instance_count", "endpoint_instance_count", "volume_size_gb", "max_runtime_seconds",
            "invoke_batch_size",
        ):
            check_positive(getattr(self, name), name)
        for name in ("job_timeout_seconds", "endpoint_timeout_seconds"):
            check_positive(getattr(self, name), name, float)
        if isinstance(self.poll_seconds, bool) or not isinstance(self.poll_seconds, (int, float)) or self.poll_seconds < 0:
            raise ValueError(f"poll_seconds must be a number >= 0, got {self.poll_seconds!r}")
        if isinstance(self.test_fraction, bool) or not isinstance(self.test_fraction, (int, float)) or not (
            0 <= self.test_fraction < 1
        ):
            raise ValueError(f"test_fraction must be a number in [0, 1), got {self.test_fraction!r}")
        if self.kms_key_id is not None and (not isinstance(self.kms_key_id, str) or not self.kms_key_id):
            raise ValueError(f"kms_key_id must be None or a KMS key id or ARN, got {self.kms_key_id!r}")
        if not isinstance(self.name_prefix, str) or not _NAME_PREFIX.match(self.name_prefix):
            raise ValueError(
                "name_prefix must be 1-13 letters, digits or single hyphens, starting and ending with "
                f"a letter or digit, got {self.name_prefix!r}"
            )
        if not isinstance(self.tags, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in self.tags.items()
        ):
            raise ValueError(f"tags must be a dict of str to str, got {self.tags!r}")

    # -- S3 locations ---------------------------------------------------------------------------
    @property
    def train_key(self) -> str:
        """Key of the training channel's RecordIO file (the seed's layout)."""
        return f"{self.prefix}/train/train.protobuf"

    @property
    def test_key(self) -> str:
        """Key of the test channel's RecordIO file."""
        return f"{self.prefix}/test/test.protobuf"

    @property
    def output_uri(self) -> str:
        """Where training jobs write ``{job}/output/model.tar.gz``."""
        return self.s3_uri(f"{self.prefix}/output")

    def s3_uri(self, key: str) -> str:
        """Return ``s3://{bucket}/{key}``."""
        return f"s3://{self.bucket}/{key}"
