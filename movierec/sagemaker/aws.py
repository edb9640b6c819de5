"""The AWS calls of the SageMaker backend: S3 objects, training and tuning jobs, endpoints.

Everything goes through boto3's low-level clients (``s3``, ``sagemaker``, ``sagemaker-runtime``),
which moto's server also answers; [`AwsClients`][movierec.sagemaker.aws.AwsClients] builds the three of them for one
[`SageMakerConfig`][movierec.sagemaker.SageMakerConfig] and records the name of every operation they call,
in order (``calls``), through botocore's ``before-call`` event. Credentials come from boto3's own
chain and are never read, stored or logged here.

Request bodies are built by the pure functions of ``_requests.py``, so they can be checked
without AWS. Failures become [`BackendError`][movierec.exceptions.BackendError] naming the operation and
AWS's error code and message, with the boto error chained.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from movierec._core.extras import require
from movierec.exceptions import BackendError
from movierec.sagemaker.config import SageMakerConfig

__all__ = ["AwsClients", "aws_errors", "client_options", "split_s3_uri", "unique_name", "wait_for"]

logger = logging.getLogger(__name__)

_NOT_FOUND = ("404", "NoSuchBucket", "NotFound", "NoSuchKey")
_DENIED = ("403", "AccessDenied", "Forbidden")
_DELETE_BATCH = 1000  # DeleteObjects takes at most 1,000 keys


def unique_name(prefix: str) -> str:
    """Return ``{prefix}-{yymmdd-HHMMSS}-{4 hex}`` (UTC): at most 32 characters for a 13-character prefix."""
    return f"{prefix}-{time.strftime('%y%m%d-%H%M%S', time.gmtime())}-{secrets.token_hex(2)}"


def _error_fields(err: BaseException | None) -> tuple[str, str]:
    """Return AWS's error ``(Code, Message)`` of a botocore ``ClientError``; ``("", "")`` for anything else."""
    error = getattr(err, "response", {}).get("Error", {})
    return str(error.get("Code", "")), str(error.get("Message", ""))


@contextmanager
def aws_errors(action: str, known: Mapping[str, str] | None = None) -> Iterator[None]:
    """Turn botocore errors raised inside the block into ``BackendError("{action}: ...")``.

    ``known`` maps AWS error codes to the whole message to raise instead (``BackendError(known[code])``).
    """
    botocore_exceptions = require("botocore.exceptions", "sagemaker")
    try:
        yield
    except botocore_exceptions.NoCredentialsError as err:
        raise BackendError(
            f"{action}: boto3 found no AWS credentials (environment, ~/.aws files, SSO or an instance "
            "role); configure them as for the AWS CLI"
        ) from err
    except botocore_exceptions.ClientError as err:
        code, _ = _error_fields(err)
        if known and code in known:
            raise BackendError(known[code]) from err
        error = err.response.get("Error", {})
        raise BackendError(
            f"{action}: {error.get('Code', 'error')}: {error.get('Message', str(err))}"
        ) from err
    except (botocore_exceptions.ConnectTimeoutError, botocore_exceptions.ReadTimeoutError) as err:
        raise BackendError(
            f"{action}: no answer in time, on every attempt ({err}); the limits are SageMakerConfig's "
            "connect_timeout_seconds, read_timeout_seconds and max_attempts"
        ) from err
    except botocore_exceptions.BotoCoreError as err:
        raise BackendError(f"{action}: {err}") from err


def client_options(config: SageMakerConfig) -> dict[str, Any]:
    """Return the ``botocore.config.Config`` arguments of every client movierec builds for ``config``.

    Timeouts and attempts come from the config, so an address that accepts connections but never
    answers fails the call within about ``max_attempts * read_timeout_seconds``, instead of
    botocore's default of 60 s reads tried 5 times.
    """
    options: dict[str, Any] = {
        "connect_timeout": config.connect_timeout_seconds,
        "read_timeout": config.read_timeout_seconds,
        "retries": {"total_max_attempts": config.max_attempts, "mode": "standard"},
    }
    if config.endpoint_url is not None:
        options["s3"] = {"addressing_style": "path"}  # emulators answer on one host
    return options


class AwsClients:
    """The S3, SageMaker and SageMaker runtime clients of one config, and the calls they made.

    Attributes
    ----------
    calls : list of str
        ``"service:Operation"`` of every API call, in order (``"s3:PutObject"``,
        ``"sagemaker:CreateTrainingJob"``, ``"sagemaker-runtime:InvokeEndpoint"`` ...).
    """

    def __init__(self, config: SageMakerConfig) -> None:
        boto3 = require("boto3", "sagemaker")
        botocore_config = require("botocore.config", "sagemaker")
        self.config = config
        self.calls: list[str] = []
        session = boto3.session.Session(region_name=config.region)
        client_config = botocore_config.Config(**client_options(config))
        self.s3 = self._client(session, "s3", client_config)
        self.sagemaker = self._client(session, "sagemaker", client_config)
        self.runtime = self._client(session, "sagemaker-runtime", client_config)

    def _client(self, session: Any, service: str, client_config: Any) -> Any:
        client = session.client(
            service, region_name=self.config.region, endpoint_url=self.config.endpoint_url, config=client_config
        )

        def record(model: Any, **_: Any) -> None:
            self.calls.append(f"{service}:{model.name}")

        client.meta.events.register_first(f"before-call.{client.meta.service_model.service_id.hyphenize()}.*", record)
        return client

    # -- S3 ----------------------------------------------------------------------------------
    def check_bucket(self) -> None:
        """Raise a clear error when the bucket does not exist or is not ours to use (HeadBucket)."""
        bucket = self.config.bucket
        missing = (
            f"S3 bucket {bucket!r} does not exist in {self.config.region}: create it first (console: "
            "S3 > Create bucket, Block all public access on; or `aws s3 mb`); see docs/sagemaker.md"
        )
        denied = (
            f"S3 bucket {bucket!r} exists but these credentials may not use it (403): it belongs to "
            "another account, or the policy lacks s3:ListBucket on it"
        )
        known = dict.fromkeys(_NOT_FOUND, missing) | dict.fromkeys(_DENIED, denied)
        with aws_errors(f"checking bucket {bucket!r}", known):
            self.s3.head_bucket(Bucket=bucket)

    def put_object(self, key: str, body: bytes) -> str:
        """Upload ``body`` to ``s3://bucket/key`` with server-side encryption; return the URI."""
        extra: dict[str, str] = {"ServerSideEncryption": "AES256"}
        if self.config.kms_key_id:
            extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.config.kms_key_id}
        uri = self.config.s3_uri(key)
        with aws_errors(f"uploading {uri}"):
            self.s3.put_object(Bucket=self.config.bucket, Key=key, Body=body, **extra)
        return uri

    def list_keys(self, prefix: str) -> list[str]:
        """Return every key of the bucket that starts with ``prefix`` (ListObjectsV2, all pages)."""
        keys: list[str] = []
        with aws_errors(f"listing {self.config.s3_uri(prefix)}"):
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.config.bucket, Prefix=prefix):
                keys.extend(item["Key"] for item in page.get("Contents", []))
        return keys

    def delete_keys(self, keys: Sequence[str]) -> None:
        """Delete ``keys`` from the bucket (DeleteObjects, 1,000 a request); raise if any is left.

        DeleteObjects answers 200 even when some keys fail; those failures are raised here, as a
        key that stays may be data a later job must not read.
        """
        for start in range(0, len(keys), _DELETE_BATCH):
            batch = keys[start : start + _DELETE_BATCH]
            with aws_errors(f"deleting {len(batch)} object(s) under {self.config.s3_uri('')}"):
                reply = self.s3.delete_objects(
                    Bucket=self.config.bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True}
                )
            errors = reply.get("Errors") or []
            if errors:
                first = errors[0]
                raise BackendError(
                    f"could not delete {len(errors)} of {len(batch)} object(s), e.g. "
                    f"{self.config.s3_uri(first.get('Key', '?'))}: {first.get('Code')}: {first.get('Message')}"
                )

    def get_object(self, uri: str) -> bytes:
        """Return the bytes of the object at ``s3://bucket/key``."""
        bucket, key = split_s3_uri(uri)
        missing = f"{uri} does not exist (did the training job write its model?)"
        with aws_errors(f"downloading {uri}", dict.fromkeys(_NOT_FOUND, missing)):
            return self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()

    # -- deletion that tolerates "already gone" ----------------------------------------------
    def delete_quietly(self, kind: str, name: str) -> bool:
        """Delete a SageMaker ``endpoint``, ``endpoint_config`` or ``model``; True unless it failed.

        A resource that is already gone counts as deleted. Other failures are logged, not raised,
        so cleanup goes on with the next resource.
        """
        method = {"endpoint": "delete_endpoint", "endpoint_config": "delete_endpoint_config", "model": "delete_model"}[kind]
        argument = {"endpoint": "EndpointName", "endpoint_config": "EndpointConfigName", "model": "ModelName"}[kind]
        try:
            with aws_errors(f"deleting {kind} {name}"):
                getattr(self.sagemaker, method)(**{argument: name})
        except BackendError as err:
            code, message = _error_fields(err.__cause__)
            if code == "ResourceNotFound" or "could not find" in message.lower():
                logger.info("%s %s was already gone", kind, name)
                return True
            logger.error("could not delete %s %s: %s; delete it by hand to stop its cost", kind, name, err)
            return False
        logger.info("deleted %s %s", kind, name)
        return True


def split_s3_uri(uri: str) -> tuple[str, str]:
    """Return ``(bucket, key)`` of ``s3://bucket/key``."""
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise BackendError(f"not an s3://bucket/key URI: {uri!r}")
    bucket, key = uri[5:].split("/", 1)
    return bucket, key


# -- waiting ---------------------------------------------------------------------------------
def wait_for(
    what: str,
    describe: Callable[[], dict[str, Any]],
    status_key: str,
    *,
    done: Sequence[str],
    failed: Sequence[str],
    timeout: float,
    poll: float,
    detail_key: str | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Poll ``describe()`` until ``status_key`` is in ``done``; return the last description.

    Logs every change of status (and of ``detail_key``, e.g. ``SecondaryStatus``) with the time
    elapsed, at INFO. A status in ``failed`` raises with SageMaker's ``FailureReason``; no final
    status within ``timeout`` seconds raises ``TimeoutError`` (which callers turn into cleanup).
    """
    start = time.monotonic()
    last = None
    while True:
        description = describe()
        status = description.get(status_key)
        state = (status, description.get(detail_key) if detail_key else None)
        elapsed = time.monotonic() - start
        if state != last:
            logger.info("%s: %s after %.0f s", what, " / ".join(str(s) for s in state if s), elapsed)
            last = state
        if status in done:
            return description
        if status in failed:
            reason = description.get("FailureReason") or "SageMaker gave no FailureReason"
            raise BackendError(f"{what} ended with status {status}: {reason}")
        if elapsed + poll > timeout:
            raise TimeoutError(f"{what} is still {status} after {elapsed:.0f} s (timeout {timeout:g} s)")
        sleep(poll)
