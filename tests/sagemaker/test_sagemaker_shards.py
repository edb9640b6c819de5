"""Several training instances: one RecordIO shard per instance under each channel's folder, over moto.

With ``ShardedByS3Key`` each instance gets its share of the *objects* under a channel's ``S3Uri``,
so ``train_instance_count = n > 1`` must write ``n`` objects there and nothing else; one instance
keeps the single ``train.protobuf`` layout.
"""

from __future__ import annotations

import io
import itertools
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from botocore.awsrequest import AWSResponse
from hypothesis import given, settings
from hypothesis import strategies as st

from movierec.exceptions import BackendError, DataValidationError, InvalidParameterError
from movierec.sagemaker import SageMakerBackend
from movierec.sagemaker._shards import shard_bounds, shard_rows
from movierec.sagemaker.recordio import iter_records, read_sparse, write_sparse

HYPERPARAMETERS = {"predictor_type": "regressor", "num_factors": 4, "epochs": 5, "mini_batch_size": 10}
DOCS = Path(__file__).resolve().parents[2] / "docs" / "sagemaker.md"


# -- the arithmetic ----------------------------------------------------------------------------
@settings(max_examples=300, deadline=None)
@given(n_records=st.integers(0, 5000), n_shards=st.integers(1, 300))
def test_shard_bounds_are_even_contiguous_and_cover_every_record(n_records, n_shards):
    bounds = shard_bounds(n_records, n_shards)
    assert len(bounds) == n_shards
    sizes = [stop - start for start, stop in bounds]
    assert max(sizes) - min(sizes) <= 1
    assert sizes == sorted(sizes, reverse=True)  # the larger shards come first
    if n_records >= n_shards:
        assert min(sizes) >= 1
    # the slices, one after the other, are exactly range(n_records)
    assert bounds[0][0] == 0 and bounds[-1][1] == n_records
    assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))
    assert [i for start, stop in bounds for i in range(start, stop)] == list(range(n_records))


@settings(max_examples=200, deadline=None)
@given(n_records=st.integers(0, 2000), n_shards=st.integers(1, 50), seed=st.integers(0, 2**32 - 1))
def test_shard_rows_split_every_row_once_in_ascending_order(n_records, n_shards, seed):
    shards = shard_rows(n_records, n_shards, seed)
    assert [len(s) for s in shards] == [stop - start for start, stop in shard_bounds(n_records, n_shards)]
    assert all(np.all(np.diff(s) > 0) for s in shards)  # each shard keeps the original order
    together = np.concatenate(shards) if shards else np.array([], dtype=int)
    np.testing.assert_array_equal(np.sort(together), np.arange(n_records))  # every row exactly once
    again = shard_rows(n_records, n_shards, seed)
    assert all(np.array_equal(a, b) for a, b in zip(shards, again, strict=True))  # seeded


def test_shard_bounds_refuses_no_shards():
    with pytest.raises(ValueError, match="n_shards >= 1"):
        shard_bounds(3, 0)


def test_shards_are_not_contiguous_slices_of_ordered_rows():
    # positives first, then negatives, as SageMakerFM builds them: slices would split them apart
    shards = shard_rows(60, 3, random_state=0)
    labels = np.repeat([1, 0], 30)
    assert all(set(labels[s]) == {0, 1} for s in shards)
    assert any(not np.array_equal(s, np.arange(a, b)) for s, (a, b) in zip(shards, shard_bounds(60, 3), strict=True))


# -- the layout, without AWS -------------------------------------------------------------------
def test_channel_keys_and_uris(moto):
    one = moto.config()
    assert one.channel_keys("train") == ["fm/train/train.protobuf"]
    assert one.channel_uri("train") == f"s3://{moto.bucket}/fm/train/train.protobuf"
    assert one.channel_uri("test") == f"s3://{moto.bucket}/fm/test/test.protobuf"
    three = moto.config(train_instance_count=3, prefix="runs/a")
    assert three.channel_keys("test") == [
        "runs/a/test/test-00000-of-00003.protobuf",
        "runs/a/test/test-00001-of-00003.protobuf",
        "runs/a/test/test-00002-of-00003.protobuf",
    ]
    assert three.channel_uri("train") == f"s3://{moto.bucket}/runs/a/train/"
    twelve = moto.config(train_instance_count=12).channel_keys("train")
    assert twelve == sorted(twelve)  # names sort in shard order
    with pytest.raises(InvalidParameterError, match="channel"):
        three.channel_keys("validation")


# -- helpers over moto ---------------------------------------------------------------------------
def matrix(n_rows: int, seed: int = 3) -> tuple[sp.csr_matrix, np.ndarray]:
    """A one-hot design, every row distinct (a row-number feature), and float labels."""
    rng = np.random.default_rng(seed)
    users, movies = rng.integers(0, 6, n_rows), rng.integers(0, 8, n_rows)
    rows = np.repeat(np.arange(n_rows), 3)
    cols = np.column_stack([users, 6 + movies, 14 + np.arange(n_rows)]).ravel()
    X = sp.csr_matrix((np.ones(3 * n_rows), (rows, cols)), shape=(n_rows, 14 + n_rows))
    return X, rng.integers(1, 6, n_rows).astype(float)


def single_file(X, y) -> bytes:
    buffer = io.BytesIO()
    write_sparse(buffer, sp.csr_matrix(X).astype(np.float32), np.asarray(y, dtype=np.float32))
    return buffer.getvalue()


def objects(moto, prefix: str) -> dict[str, bytes]:
    s3 = moto.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=moto.bucket, Prefix=prefix).get("Contents", [])]
    return {k: s3.get_object(Bucket=moto.bucket, Key=k)["Body"].read() for k in keys}


def channels_of(moto, job: str) -> dict[str, dict]:
    described = moto.client("sagemaker").describe_training_job(TrainingJobName=job)
    return {c["ChannelName"]: c["DataSource"]["S3DataSource"] for c in described["InputDataConfig"]}, described


def under_uri(moto, uri: str) -> set[str]:
    """The keys SageMaker would read for an ``S3Prefix`` channel of ``uri``."""
    return set(objects(moto, uri.removeprefix(f"s3://{moto.bucket}/")))


# -- several instances ---------------------------------------------------------------------------
@pytest.mark.slow
def test_three_instances_write_three_shards_per_channel_and_point_the_channels_at_the_folders(moto):
    X, y = matrix(30)
    config = moto.config(train_instance_count=3)
    backend = SageMakerBackend(config, random_state=0)
    weights = backend.fit(X[5:], y[5:], X[:5], y[:5], HYPERPARAMETERS)

    for channel, (X_part, y_part), sizes in (("train", (X[5:], y[5:]), [9, 8, 8]), ("test", (X[:5], y[:5]), [2, 2, 1])):
        written = objects(moto, f"fm/{channel}/")
        assert sorted(written) == [f"fm/{channel}/{channel}-0000{i}-of-00003.protobuf" for i in range(3)]
        payloads = {k: list(iter_records(io.BytesIO(body))) for k, body in written.items()}
        assert [len(payloads[k]) for k in sorted(written)] == sizes
        # every record of the one-file layout, exactly once across the shards
        everything = Counter(p for records in payloads.values() for p in records)
        expected = list(iter_records(io.BytesIO(single_file(X_part, y_part))))
        assert everything == Counter(expected) and len(set(expected)) == len(expected)
        # each shard reads back as rows of the channel's matrix, in their original order
        for body in written.values():
            X_back, y_back = read_sparse(io.BytesIO(body))
            ids = X_back[:, 14:].tocsr().indices  # the row-number feature
            assert np.all(np.diff(ids) > 0)
            np.testing.assert_array_equal(X_back.toarray(), X[ids].toarray())
            np.testing.assert_array_equal(y_back, y[ids])
        for key in written:
            head = moto.client("s3").head_object(Bucket=moto.bucket, Key=key)
            assert head["ServerSideEncryption"] == "AES256"

    channels, described = channels_of(moto, weights.training_job)
    for channel in ("train", "test"):
        assert channels[channel] == {
            "S3DataType": "S3Prefix",
            "S3Uri": f"s3://{moto.bucket}/fm/{channel}/",
            "S3DataDistributionType": "ShardedByS3Key",
        }
    assert described["ResourceConfig"]["InstanceCount"] == 3
    assert backend.calls == [
        "s3:HeadBucket",
        *["s3:PutObject"] * 3, "s3:ListObjectsV2",
        *["s3:PutObject"] * 3, "s3:ListObjectsV2",
        "sagemaker:CreateTrainingJob", "sagemaker:DescribeTrainingJob",
    ]


def test_same_random_state_gives_the_same_shards(moto):
    X, y = matrix(40)
    config = moto.config(train_instance_count=4, test_fraction=0)
    SageMakerBackend(config, random_state=5).fit(X, y, hyperparameters=HYPERPARAMETERS)
    first = objects(moto, "fm/train/")
    SageMakerBackend(config, random_state=5).fit(X, y, hyperparameters=HYPERPARAMETERS)
    assert objects(moto, "fm/train/") == first
    SageMakerBackend(config, random_state=6).fit(X, y, hyperparameters=HYPERPARAMETERS)
    assert objects(moto, "fm/train/") != first


def test_tuning_jobs_train_on_the_shards_with_every_instance(moto):
    X, y = matrix(30)
    config = moto.config(train_instance_count=2, test_fraction=0.2)
    backend = SageMakerBackend(config, random_state=0)
    backend.tune(X, y, hyperparameters=HYPERPARAMETERS, max_jobs=2, max_parallel_jobs=1)
    tuning = moto.client("sagemaker").describe_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=backend.tuning_job_name
    )
    definition = tuning["TrainingJobDefinition"]
    uris = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in definition["InputDataConfig"]}
    assert uris == {"train": f"s3://{moto.bucket}/fm/train/", "test": f"s3://{moto.bucket}/fm/test/"}
    assert definition["ResourceConfig"]["InstanceCount"] == 2
    assert sorted(objects(moto, "fm/test/")) == [f"fm/test/test-0000{i}-of-00002.protobuf" for i in range(2)]


# -- one instance: one file, unchanged --------------------------------------------------------------
def test_one_instance_writes_the_single_train_protobuf(moto):
    X, y = matrix(30)
    backend = SageMakerBackend(moto.config(), random_state=0)
    weights = backend.fit(X[5:], y[5:], X[:5], y[:5], HYPERPARAMETERS)
    assert objects(moto, "fm/") == {
        "fm/train/train.protobuf": single_file(X[5:], y[5:]),  # byte for byte
        "fm/test/test.protobuf": single_file(X[:5], y[:5]),
    }
    channels, described = channels_of(moto, weights.training_job)
    assert channels["train"]["S3Uri"] == f"s3://{moto.bucket}/fm/train/train.protobuf"
    assert channels["test"]["S3Uri"] == f"s3://{moto.bucket}/fm/test/test.protobuf"
    assert described["ResourceConfig"]["InstanceCount"] == 1
    assert backend.calls == [  # no listing, no deleting
        "s3:HeadBucket", "s3:PutObject", "s3:PutObject", "sagemaker:CreateTrainingJob", "sagemaker:DescribeTrainingJob",
    ]


# -- stale data from earlier runs under the same prefix ------------------------------------------
@pytest.mark.slow
def test_no_stale_object_reaches_a_channel_whatever_ran_before(moto):
    X, y = matrix(30)
    for count in (5, 3, 1, 3, 2):
        config = moto.config(train_instance_count=count)
        backend = SageMakerBackend(config, random_state=0)
        weights = backend.fit(X[5:], y[5:], X[:5], y[:5], HYPERPARAMETERS)
        channels, _ = channels_of(moto, weights.training_job)
        for channel in ("train", "test"):
            # what SageMaker would hand the instances: this run's objects, nothing older
            assert under_uri(moto, channels[channel]["S3Uri"]) == set(config.channel_keys(channel)), count
            read = [r for k in config.channel_keys(channel) for r in iter_records(io.BytesIO(objects(moto, k)[k]))]
            assert len(read) == (25 if channel == "train" else 5)
        if count > 1:
            # the folders hold only this run's shards (an earlier run's train.protobuf included)
            assert set(objects(moto, "fm/train/")) == set(config.channel_keys("train"))
    # 5 -> 3 deleted shards 0-4 of 5; 1 -> 3 deleted the single file: both runs deleted
    assert "s3:DeleteObjects" in backend.calls


def test_several_instances_delete_shards_of_a_larger_earlier_run(moto):
    X, y = matrix(30)
    SageMakerBackend(moto.config(train_instance_count=5, test_fraction=0)).fit(X, y, hyperparameters=HYPERPARAMETERS)
    assert len(objects(moto, "fm/train/")) == 5
    backend = SageMakerBackend(moto.config(train_instance_count=3, test_fraction=0))
    backend.fit(X, y, hyperparameters=HYPERPARAMETERS)
    assert sorted(objects(moto, "fm/train/")) == [f"fm/train/train-0000{i}-of-00003.protobuf" for i in range(3)]
    assert backend.calls[:6] == ["s3:HeadBucket", *["s3:PutObject"] * 3, "s3:ListObjectsV2", "s3:DeleteObjects"]


def test_a_failed_delete_stops_before_the_job(moto):
    X, y = matrix(30)
    earlier = moto.config(train_instance_count=4, test_fraction=0)
    SageMakerBackend(earlier).fit(X, y, hyperparameters=HYPERPARAMETERS)
    backend = SageMakerBackend(moto.config(train_instance_count=2, test_fraction=0))

    def refuse(**_):  # DeleteObjects answers 200 and lists the keys it could not delete
        errors = [{"Key": k, "Code": "AccessDenied", "Message": "Access Denied"} for k in earlier.channel_keys("train")]
        return AWSResponse("http://stub", 200, {}, None), {"Errors": errors}

    backend.aws.s3.meta.events.register("before-call.s3.DeleteObjects", refuse)
    with pytest.raises(BackendError, match=r"could not delete 4 of 4 object\(s\).*AccessDenied"):
        backend.fit(X, y, hyperparameters=HYPERPARAMETERS)
    assert "sagemaker:CreateTrainingJob" not in backend.calls


# -- fewer rows than instances ----------------------------------------------------------------------
def test_fewer_train_rows_than_instances_is_an_error_before_any_call(moto):
    X, y = matrix(2)
    backend = SageMakerBackend(moto.config(train_instance_count=3, test_fraction=0))
    with pytest.raises(DataValidationError, match=r"train channel has 2 row\(s\) but train_instance_count=3"):
        backend.fit(X, y, hyperparameters=HYPERPARAMETERS)
    assert backend.calls == []
    assert objects(moto, "") == {}
    # as many rows as instances is enough: one row each
    backend = SageMakerBackend(moto.config(train_instance_count=2, test_fraction=0))
    backend.fit(X, y, hyperparameters=HYPERPARAMETERS)
    assert [len(list(iter_records(io.BytesIO(b)))) for b in objects(moto, "fm/train/").values()] == [1, 1]


def test_fewer_test_rows_than_instances_is_an_error_naming_the_test_channel(moto):
    X, y = matrix(30)
    backend = SageMakerBackend(moto.config(train_instance_count=3))
    with pytest.raises(DataValidationError, match=r"test channel has 2 row\(s\).*test_fraction"):
        backend.fit(X[2:], y[2:], X[:2], y[:2], HYPERPARAMETERS)
    # held out with test_fraction: round(0.05 * 30) = 2 rows for 3 instances
    backend = SageMakerBackend(moto.config(train_instance_count=3, test_fraction=0.05))
    with pytest.raises(DataValidationError, match="test channel"):
        backend.tune(X, y, hyperparameters=HYPERPARAMETERS)
    assert backend.calls == []


# -- docs ---------------------------------------------------------------------------------------------
def test_docs_name_the_permission_several_instances_add(moto):
    X, y = matrix(30)
    SageMakerBackend(moto.config(train_instance_count=3, test_fraction=0)).fit(X, y, hyperparameters=HYPERPARAMETERS)
    backend = SageMakerBackend(moto.config(train_instance_count=2, test_fraction=0))
    backend.fit(X, y, hyperparameters=HYPERPARAMETERS)
    s3_calls = {c for c in backend.calls if c.startswith("s3:")}
    assert s3_calls == {"s3:HeadBucket", "s3:PutObject", "s3:ListObjectsV2", "s3:DeleteObjects"}
    text = DOCS.read_text()
    assert "s3:DeleteObject" in text and "ListObjectsV2" in text and "train-00000-of-00003.protobuf" in text
