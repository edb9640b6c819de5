"""``SageMakerConfig``: where and how ``SageMakerFM(backend="sagemaker")`` runs on AWS.

Pure data and validation: importing this module imports neither boto3 nor sagemaker, and building
a config makes no AWS call. Credentials are not part of it: boto3 finds them itself (environment,
shared files, SSO, instance role), and movierec never reads, stores or logs them.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, ClassVar, Literal

from movierec._core.params import Constraint, Int, Real, check_params
from movierec.exceptions import InvalidParameterError

__all__ = ["SageMakerConfig", "check_bucket_name"]

_BUCKET_CHARS = re.compile(r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$")
# Prefixes and suffixes S3 reserves (access points, Object Lambda, directory and table buckets).
_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
_CHANNELS = ("train", "test")
_INSTANCE = re.compile(r"^ml\.[a-z0-9-]+\.[a-z0-9]+$")
#: text argument -> (the pattern it must match, what that means, whether None is allowed)
_TEXT_RULES = {
    "role_arn": (
        re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$"),
        "an IAM role ARN like 'arn:aws:iam::123456789012:role/Name'",
        False,
    ),
    "region": (re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$"), "an AWS region name like 'us-east-2'", False),
    "prefix": (
        re.compile(r"^(?!/)(?!.*//)[A-Za-z0-9!_.*'()/-]+(?<!/)$"),
        "a non-empty S3 key prefix without leading or trailing '/' (nor '//')",
        False,
    ),
    "train_instance_type": (_INSTANCE, "a SageMaker instance type like 'ml.c5.xlarge'", False),
    "endpoint_instance_type": (_INSTANCE, "a SageMaker instance type like 'ml.c5.xlarge'", False),
    "endpoint_url": (re.compile(r"^https?://"), "None or an http(s) URL", True),
    "kms_key_id": (re.compile(r"^.+", re.DOTALL), "None or a KMS key id or ARN", True),
    "name_prefix": (
        re.compile(r"^[a-zA-Z0-9](-?[a-zA-Z0-9]){0,12}$"),
        "1-13 letters, digits or single hyphens, starting and ending with a letter or digit",
        False,
    ),
}


def check_bucket_name(bucket: Any) -> str:
    """Return ``bucket`` if it follows S3's naming rules for general purpose buckets, else raise.

    3-63 characters; lowercase letters, digits, dots and hyphens; starting and ending with a
    letter or digit; no two adjacent dots; not an IP address; none of S3's reserved prefixes
    (``xn--``, ``sthree-``, ``amzn-s3-demo-``) or suffixes (``-s3alias``, ``--ol-s3``, ``.mrap``,
    ``--x-s3``, ``--table-s3``).

    Raises
    ------
    InvalidParameterError
        Naming the rule the name breaks (a ``ValueError``), or when ``bucket`` is not a str (a
        ``TypeError`` too).
    """
    if not isinstance(bucket, str):
        raise InvalidParameterError(f"bucket must be a str, got {type(bucket).__name__}: {bucket!r}")
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
        raise InvalidParameterError(f"bucket {bucket!r} is not a valid S3 bucket name: {problem}")
    return bucket


def _is_ip(name: str) -> bool:
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class SageMakerConfig:
    """Where SageMaker runs: bucket, role, region, instance types, and how long to wait.

    Passed as ``SageMakerFM(backend="sagemaker", sagemaker=config)``. Arguments after
    ``endpoint_url`` are keyword-only. Every argument is checked
    when the config is built, before any AWS call: a bad bucket name fails here, not in S3, with
    an [`InvalidParameterError`][movierec.exceptions.InvalidParameterError] naming the argument and the value.

    Parameters
    ----------
    bucket : str
        An existing S3 bucket in ``region`` (create it in the console, with Block
        Public Access on). Data goes to ``s3://{bucket}/{prefix}/train/train.protobuf`` and
        ``.../test/test.protobuf`` (one object per instance with several, see
        ``train_instance_count``), models to ``s3://{bucket}/{prefix}/output``.
    role_arn : str
        The SageMaker execution role (``arn:aws:iam::123456789012:role/...``) that training jobs
        and endpoints run as; see docs/sagemaker.md for its least-privilege policy.
    region : str, default "us-east-2"
        AWS region of the bucket, jobs and endpoints; also picks the FM container image.
    prefix : str, default "fm"
        Key prefix inside the bucket (no leading or trailing '/').
    train_instance_type, train_instance_count : default "ml.c5.xlarge", 1
        Training (and tuning) instances. With more than one, FM trains data-parallel and each
        channel is written as ``train_instance_count`` shards
        (``{prefix}/train/train-00000-of-00003.protobuf`` ...) under the channel's folder, which
        becomes the channel's ``S3Uri``, so that ``ShardedByS3Key`` gives each instance one
        shard; every channel then needs at least that many rows (see docs/sagemaker.md).
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
    connect_timeout_seconds : float, default 10
        How long each AWS request may take to open its connection (botocore's ``connect_timeout``).
    read_timeout_seconds : float, default 30
        How long each AWS request may wait for the answer (botocore's ``read_timeout``). Every
        control-plane call answers in well under a second and an ``invoke_endpoint`` batch of
        ``invoke_batch_size`` rows in milliseconds; raise it (up to the 60 s a real-time endpoint
        may take) for slow custom endpoints.
    max_attempts : int, default 3
        Attempts per AWS request, the first included (botocore's ``total_max_attempts``, standard
        retry mode): an address that accepts connections but never answers fails the call after
        about ``max_attempts * read_timeout_seconds``, with a
        [`BackendError`][movierec.exceptions.BackendError].
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
    connect_timeout_seconds: float = 10.0
    read_timeout_seconds: float = 30.0
    max_attempts: int = 3
    invoke_batch_size: int = 500
    test_fraction: float = 0.1
    kms_key_id: str | None = None
    name_prefix: str = "movierec-fm"
    tags: dict[str, str] = field(default_factory=dict)

    #: Numbers, checked when the config is built (movierec._core.params); text follows _TEXT_RULES.
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "train_instance_count": Int(1),
        "endpoint_instance_count": Int(1),
        "volume_size_gb": Int(1),
        "max_runtime_seconds": Int(1),
        "invoke_batch_size": Int(1),
        "job_timeout_seconds": Real(0, open_low=True),
        "endpoint_timeout_seconds": Real(0, open_low=True),
        "poll_seconds": Real(0),
        "connect_timeout_seconds": Real(0, open_low=True),
        "read_timeout_seconds": Real(0, open_low=True),
        "max_attempts": Int(1),
        "test_fraction": Real(0, 1, open_high=True),
    }

    def __post_init__(self) -> None:
        check_bucket_name(self.bucket)
        if isinstance(self.tags, dict):
            object.__setattr__(self, "tags", dict(self.tags))  # a copy: the caller's dict stays theirs
        for name, (pattern, wanted, none) in _TEXT_RULES.items():
            value = getattr(self, name)
            if not ((value is None and none) or (isinstance(value, str) and pattern.match(value))):
                raise InvalidParameterError(f"SageMakerConfig: {name} must be {wanted}, got {value!r}")
        check_params(self)
        if not isinstance(self.tags, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in self.tags.items()
        ):
            raise InvalidParameterError(
                f"SageMakerConfig: tags must be a dict of str to str, got {self.tags!r}"
            )

    # -- S3 locations ---------------------------------------------------------------------------
    @property
    def train_key(self) -> str:
        """Key of the training channel's RecordIO file (the single-file layout)."""
        return f"{self.prefix}/train/train.protobuf"

    @property
    def test_key(self) -> str:
        """Key of the test channel's RecordIO file."""
        return f"{self.prefix}/test/test.protobuf"

    def channel_keys(self, channel: Literal["train", "test"]) -> list[str]:
        """Return the keys a channel's RecordIO data is written to, in shard order.

        One instance: a single file (``train_key`` or ``test_key``). Several: one shard
        per instance, ``{prefix}/{channel}/{channel}-{i:05d}-of-{n:05d}.protobuf``; the total in
        the name keeps the shards of runs with different counts apart, and the names sort in
        shard order.
        """
        if channel not in _CHANNELS:
            raise InvalidParameterError(f"channel must be one of {_CHANNELS}, got {channel!r}")
        n = self.train_instance_count
        if n == 1:
            return [self.train_key if channel == "train" else self.test_key]
        return [f"{self.channel_folder(channel)}{channel}-{i:05d}-of-{n:05d}.protobuf" for i in range(n)]

    def channel_folder(self, channel: Literal["train", "test"]) -> str:
        """Return ``{prefix}/{channel}/``: the key prefix under which a channel's data lives."""
        return f"{self.prefix}/{channel}/"

    def channel_uri(self, channel: Literal["train", "test"]) -> str:
        """Return the channel's ``S3Uri``: the single file's key for one instance, else its folder.

        With several instances ``ShardedByS3Key`` shares the objects under the folder among them,
        so the folder must hold this run's shards only (the upload deletes any other key there).
        With one instance the URI is the file's key: shards left there by an
        earlier run with several instances do not start with it, so they never reach the job.
        """
        keys = self.channel_keys(channel)
        return self.s3_uri(keys[0] if len(keys) == 1 else self.channel_folder(channel))

    @property
    def output_uri(self) -> str:
        """Where training jobs write ``{job}/output/model.tar.gz``."""
        return self.s3_uri(f"{self.prefix}/output")

    def s3_uri(self, key: str) -> str:
        """Return ``s3://{bucket}/{key}``."""
        return f"s3://{self.bucket}/{key}"
