"""RecordIO channels on S3: one file for one training instance, one shard per instance for several.

SageMaker's ``ShardedByS3Key`` gives each training instance about ``1/n`` of the *objects* under a
channel's ``S3Uri``; it never splits an object. One file and three instances leave two instances
with no data, billed all the same. So with ``train_instance_count = n > 1`` each channel is
written as ``n`` objects (`SageMakerConfig.channel_keys`) under the channel's folder, which
becomes the channel's ``S3Uri``, and nothing else may stay in that folder.

Which rows go to which shard
----------------------------
A random split (seeded by the backend's ``random_state``) into ``n`` parts whose sizes differ
by at most one; each shard keeps its rows in their original order. Not contiguous slices: the
rows arrive ordered (``SageMakerFM`` puts the rated pairs first and the sampled negatives after;
ratings are often sorted by user or time), so slices would give one instance only positives and
another only negatives, or each instance its own users, while data-parallel training assumes
every instance sees the same distribution. Not round-robin either: a periodic order in the input
(``pos, neg, pos, neg``) would line up with it. The original order within a shard means each
instance reads a subsequence of the one-instance file.

One instance writes the single-file layout: ``{prefix}/{channel}/{channel}.protobuf``, the
same bytes, the same calls.
"""

from __future__ import annotations

import io
import logging
from typing import Any, Literal

import numpy as np

from movierec.exceptions import DataValidationError
from movierec.sagemaker._requests import as_csr
from movierec.sagemaker.aws import AwsClients
from movierec.sagemaker.config import SageMakerConfig

__all__ = ["check_shardable", "recordio_bytes", "shard_bounds", "shard_rows", "upload_channel"]

logger = logging.getLogger(__name__)


def shard_bounds(n_records: int, n_shards: int) -> list[tuple[int, int]]:
    """Return ``n_shards`` contiguous ``(start, stop)`` slices of ``range(n_records)``, as even as possible.

    The first ``n_records % n_shards`` slices hold one record more than the others; with fewer
    records than shards the last ones are empty (`check_shardable` refuses that case
    before any upload).
    """
    if n_shards < 1 or n_records < 0:
        raise ValueError(f"need n_shards >= 1 and n_records >= 0, got {n_shards} and {n_records}")
    base, extra = divmod(n_records, n_shards)
    bounds, start = [], 0
    for shard in range(n_shards):
        stop = start + base + (shard < extra)
        bounds.append((start, stop))
        start = stop
    return bounds


def shard_rows(n_records: int, n_shards: int, random_state: int | None) -> list[np.ndarray]:
    """Return the row numbers of each shard: a seeded random split, each shard's rows in ascending order.

    Every row is in exactly one shard; shard sizes are those of `shard_bounds`. The
    generator is a child of ``random_state``'s seed sequence, so it does not repeat the draw that
    held out the test rows with the same seed.
    """
    rng = np.random.default_rng(np.random.SeedSequence(random_state).spawn(1)[0])
    order = rng.permutation(n_records)
    return [np.sort(order[start:stop]) for start, stop in shard_bounds(n_records, n_shards)]


def check_shardable(channel: str, n_records: int, n_instances: int) -> None:
    """Raise when a channel has fewer rows than training instances (with more than one instance).

    ``ShardedByS3Key`` would hand the instances left over no object at all: they start, are
    billed, and have no data (SageMaker's own docs: do not choose more instances than objects).
    The SageMaker Python SDK refuses the same case ("Array length is less than num shards").
    """
    if n_instances > 1 and n_records < n_instances:
        hint = "give more test rows or a larger test_fraction" if channel == "test" else "train on more rows"
        raise DataValidationError(
            f"the {channel} channel has {n_records} row(s) but train_instance_count={n_instances}: "
            f"each instance needs at least one row of it (ShardedByS3Key would leave "
            f"{n_instances - n_records} instance(s) without {channel} data, billed all the same); "
            f"use train_instance_count <= {n_records}, or {hint}"
        )


def recordio_bytes(X: Any, y: np.ndarray) -> bytes:
    """Return ``(X, y)`` as RecordIO-protobuf: float32 sparse features and labels, FM's input."""
    from movierec.sagemaker.recordio import write_sparse  # protobuf: imported when data is written

    buffer = io.BytesIO()
    write_sparse(buffer, as_csr(X).astype(np.float32), np.asarray(y, dtype=np.float32))
    return buffer.getvalue()


def upload_channel(
    aws: AwsClients,
    config: SageMakerConfig,
    channel: Literal["train", "test"],
    X: Any,
    y: np.ndarray,
    *,
    random_state: int | None,
) -> list[str]:
    """Write one channel's data to S3 and return the keys written, in shard order.

    One instance: PutObject of the single file. Several: PutObject of each shard, then
    ListObjectsV2 of the channel's folder and DeleteObjects of every other key there (the shards
    of an earlier run with another instance count, or its single file), which ``ShardedByS3Key``
    would otherwise hand to the instances along with this run's data.
    """
    keys = config.channel_keys(channel)
    if len(keys) == 1:
        aws.put_object(keys[0], recordio_bytes(X, y))
        return keys
    csr = as_csr(X)
    y = np.asarray(y)
    check_shardable(channel, csr.shape[0], len(keys))
    for key, rows in zip(keys, shard_rows(csr.shape[0], len(keys), random_state), strict=True):
        aws.put_object(key, recordio_bytes(csr[rows], y[rows]))
    written = set(keys)
    stale = [k for k in aws.list_keys(config.channel_folder(channel)) if k not in written]
    if stale:
        aws.delete_keys(stale)
        logger.info(
            "deleted %d stale object(s) under %s", len(stale), config.s3_uri(config.channel_folder(channel))
        )
    logger.info(
        "%s channel: %d rows in %d shards under %s",
        channel,
        csr.shape[0],
        len(keys),
        config.channel_uri(channel),
    )
    return keys
