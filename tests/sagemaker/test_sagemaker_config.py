"""SageMakerConfig: S3's bucket naming rules and the other checks, all before any AWS call."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from movierec.exceptions import InvalidParameterError
from movierec.sagemaker import SageMakerConfig
from movierec.sagemaker.aws import client_options
from movierec.sagemaker.config import check_bucket_name

ROLE = "arn:aws:iam::123456789012:role/movierec-fm"


def test_defaults_follow_the_issue():
    config = SageMakerConfig("my-bucket", ROLE)
    assert (config.region, config.prefix, config.train_instance_type, config.endpoint_instance_type) == (
        "us-east-2", "fm", "ml.c5.xlarge", "ml.c5.xlarge",
    )
    assert config.endpoint_url is None
    assert config.train_key == "fm/train/train.protobuf"
    assert config.test_key == "fm/test/test.protobuf"
    assert config.output_uri == "s3://my-bucket/fm/output"


def test_aws_calls_wait_seconds_not_minutes_by_default():
    config = SageMakerConfig("my-bucket", ROLE)
    limits = (config.connect_timeout_seconds, config.read_timeout_seconds, config.max_attempts)
    assert limits == (10.0, 30.0, 3)
    assert client_options(config) == {
        "connect_timeout": 10.0,
        "read_timeout": 30.0,
        "retries": {"total_max_attempts": 3, "mode": "standard"},
    }
    emulated = SageMakerConfig(
        "my-bucket", ROLE, endpoint_url="http://127.0.0.1:5000", read_timeout_seconds=2
    )
    assert client_options(emulated)["read_timeout"] == 2
    assert client_options(emulated)["s3"] == {"addressing_style": "path"}


@pytest.mark.parametrize(
    "name", ["abc", "my-bucket", "my.bucket.name", "a" * 63, "123bucket", "bucket-2024", "b1.c2-d3"]
)
def test_valid_bucket_names(name):
    assert check_bucket_name(name) == name


@pytest.mark.parametrize(
    "name, rule",
    [
        ("ab", "3 to 63"),
        ("a" * 64, "3 to 63"),
        ("My-Bucket", "lowercase"),
        ("my_bucket", "lowercase"),
        ("-bucket", "start and end"),
        ("bucket-", "start and end"),
        ("my..bucket", "adjacent periods"),
        ("192.168.5.4", "IP address"),
        ("xn--bucket", "reserved prefix"),
        ("sthree-bucket", "reserved prefix"),
        ("amzn-s3-demo-bucket", "reserved prefix"),
        ("bucket-s3alias", "reserved suffix"),
        ("bucket--ol-s3", "reserved suffix"),
        ("bucket.mrap", "reserved suffix"),
        ("bucket--x-s3", "reserved suffix"),
        ("s3://bucket/key", "without 's3://'"),
        ("", "3 to 63"),
    ],
)
def test_invalid_bucket_names_name_the_rule(name, rule):
    with pytest.raises(InvalidParameterError, match=rule):
        SageMakerConfig(name, ROLE)


@given(st.from_regex(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]", fullmatch=True))
def test_dns_style_names_without_reserved_affixes_are_valid(name):
    reserved = name.startswith(("xn--", "sthree-", "amzn-s3-demo-")) or name.endswith(("-s3alias", "--ol-s3", "--x-s3", "--table-s3"))
    if reserved:
        with pytest.raises(InvalidParameterError):
            check_bucket_name(name)
    else:
        assert check_bucket_name(name) == name


def test_bucket_must_be_a_string():
    with pytest.raises(InvalidParameterError, match="must be a str") as caught:
        SageMakerConfig(None, ROLE)  # type: ignore[arg-type]
    assert isinstance(caught.value, TypeError)  # a wrong type is a TypeError as well


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"role_arn": "movierec-role"}, "role_arn"),
        ({"region": "Ohio"}, "region"),
        ({"prefix": "/fm"}, "prefix"),
        ({"prefix": "fm/"}, "prefix"),
        ({"prefix": "a//b"}, "prefix"),
        ({"kms_key_id": ""}, "kms_key_id"),
        ({"train_instance_type": "c5.xlarge"}, "train_instance_type"),
        ({"endpoint_instance_type": ""}, "endpoint_instance_type"),
        ({"endpoint_url": "127.0.0.1:5000"}, "endpoint_url"),
        ({"invoke_batch_size": 0}, "invoke_batch_size"),
        ({"train_instance_count": True}, "train_instance_count"),
        ({"poll_seconds": -1}, "poll_seconds"),
        ({"test_fraction": 1.0}, "test_fraction"),
        ({"name_prefix": "a-name-prefix-too-long"}, "name_prefix"),
        ({"tags": {"k": 1}}, "tags"),
        ({"job_timeout_seconds": 0}, "job_timeout_seconds"),
        ({"volume_size_gb": 2.5}, "volume_size_gb"),
        ({"connect_timeout_seconds": 0}, "connect_timeout_seconds"),
        ({"read_timeout_seconds": -1.0}, "read_timeout_seconds"),
        ({"read_timeout_seconds": "60"}, "read_timeout_seconds"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"max_attempts": 2.0}, "max_attempts"),
    ],
)
def test_other_arguments_are_checked(kwargs, message):
    args = {"bucket": "my-bucket", "role_arn": ROLE} | kwargs
    with pytest.raises(InvalidParameterError, match=f"SageMakerConfig: {message} must be"):
        SageMakerConfig(**args)


def test_options_after_endpoint_url_are_keyword_only():
    with pytest.raises(TypeError):
        SageMakerConfig("my-bucket", ROLE, "us-east-2", "fm", "ml.c5.xlarge", "ml.c5.xlarge", None, 2)  # type: ignore[misc]


def test_tags_are_copied():
    tags = {"project": "movierec"}
    config = SageMakerConfig("my-bucket", ROLE, tags=tags)
    tags["project"] = "changed"
    assert config.tags == {"project": "movierec"}


def test_importing_the_package_and_building_a_config_loads_no_aws_library():
    code = (
        "import sys, movierec, movierec.sagemaker as s; "
        "s.SageMakerConfig('my-bucket', 'arn:aws:iam::123456789012:role/r'); "
        "import movierec.sagemaker.artifact, movierec.sagemaker.config; "
        "bad = [m for m in ('boto3', 'botocore', 'sagemaker') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
