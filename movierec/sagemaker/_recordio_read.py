"""The RecordIO-protobuf readers' internals: frames, parsed records, matrix coordinates.

``movierec.sagemaker.recordio`` turns what `parse` and `coordinates` give into a CSR or
dense matrix.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

import numpy as np
import numpy.typing as npt

from movierec.sagemaker._record_proto import (
    HEADER,
    LENGTH_MASK,
    MAGIC,
    MAGIC_BYTES,
    TENSOR_KINDS,
    FileLike,
    RecordIOError,
    messages,
    open_binary,
)

__all__ = ["Parsed", "coordinates", "iter_frames", "parse", "read_exact"]


def read_exact(fh: IO[bytes], n: int) -> bytes:
    """Read up to ``n`` bytes, looping over short reads; fewer only at end of file."""
    data = fh.read(n)
    if data is None:
        data = b""
    if len(data) == n or not data:
        return data
    parts = [data]
    got = len(data)
    while got < n:
        more = fh.read(n - got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def iter_frames(f: FileLike) -> Iterator[tuple[int, int, bytes]]:
    """Yield ``(record_number, byte_offset, payload)`` for each (reassembled) record."""
    with open_binary(f, "rb") as fh:
        offset = 0  # relative to where reading started
        number = 0
        parts: list[bytes] = []
        record_offset = 0
        while True:
            header = read_exact(fh, 8)
            if not header:
                if parts:
                    raise RecordIOError(
                        f"record {number} at byte offset {record_offset}: file ends inside a multi-part "
                        "record (no final part)"
                    )
                return
            if not parts:
                record_offset = offset
            where = f"record {number} at byte offset {record_offset}"
            if len(header) < 8:
                raise RecordIOError(
                    f"{where}: truncated header ({len(header)} of 8 bytes before end of file)"
                )
            magic, word = HEADER.unpack(header)
            if magic != MAGIC:
                raise RecordIOError(
                    f"{where}: bad magic 0x{magic:08x} at byte offset {offset}, expected 0x{MAGIC:08x} "
                    "(not a RecordIO file, or corrupt)"
                )
            length, flag = word & LENGTH_MASK, word >> 29
            padded = (length + 3) & ~3
            body = read_exact(fh, padded)
            if len(body) < padded:
                raise RecordIOError(
                    f"{where}: payload of {length} bytes (+{padded - length} padding) runs past the end "
                    f"of the file ({len(body)} bytes left)"
                )
            offset += 8 + padded
            payload = body[:length]
            if flag == 0:
                if parts:
                    raise RecordIOError(f"{where}: multi-part record interrupted by a whole record")
                yield number, record_offset, payload
                number += 1
            elif flag == 1:
                if parts:
                    raise RecordIOError(f"{where}: multi-part record interrupted by a new first part")
                parts = [payload]
            elif flag in (2, 3):
                if not parts:
                    raise RecordIOError(f"{where}: continuation part (flag {flag}) without a first part")
                parts.append(payload)
                if flag == 3:
                    yield number, record_offset, MAGIC_BYTES.join(parts)
                    number += 1
                    parts = []
            else:
                raise RecordIOError(f"{where}: unknown continuation flag {flag}")


@dataclass
class Parsed:
    """Everything the readers collect from a file, before building matrices."""

    values: np.ndarray  # all stored values, record after record
    counts: np.ndarray  # number of values per record
    sparse_keys: np.ndarray  # keys of the records that have keys, in order
    is_sparse: np.ndarray  # per record: keys present (or no values at all)
    n_cols: int
    labels: np.ndarray | None
    offsets: list[int]


def parse(f: FileLike, dtype: npt.DTypeLike) -> Parsed:
    """Parse every record of a file; check features, labels and shapes."""
    msgs = messages()
    record = msgs.Record()
    values: list[float] = []
    keys: list[int] = []
    counts: list[int] = []
    is_sparse: list[bool] = []
    labels: list[float] = []
    offsets: list[int] = []
    n_cols: int | None = None
    cols_from = -1  # record that fixed n_cols
    labelled: bool | None = None

    for number, offset, payload in iter_frames(f):
        where = f"record {number} at byte offset {offset}"
        try:
            record.ParseFromString(payload)
        except msgs.DecodeError as exc:
            raise RecordIOError(
                f"{where}: payload of {len(payload)} bytes is not a Record protobuf ({exc})"
            ) from exc
        features = record.features
        if "values" not in features:
            found = ", ".join(sorted(features)) or "none"
            raise RecordIOError(f"{where}: no 'values' feature (features: {found})")
        value = features["values"]
        kind = value.WhichOneof("value")
        if kind not in TENSOR_KINDS:
            raise RecordIOError(f"{where}: 'values' feature holds {kind or 'nothing'}, not a numeric tensor")
        tensor = getattr(value, kind)
        n_values, n_keys, shape = len(tensor.values), len(tensor.keys), tensor.shape
        if len(shape) > 1:
            raise RecordIOError(
                f"{where}: tensor of shape {list(shape)}; only vectors (rank 1) are supported"
            )
        width = int(shape[0]) if shape else None
        if n_keys:
            if n_keys != n_values:
                raise RecordIOError(f"{where}: {n_values} values but {n_keys} keys")
            keys.extend(tensor.keys)
            sparse = True
        elif n_values:
            if width is not None and width != n_values:
                raise RecordIOError(f"{where}: dense tensor of {n_values} values has shape [{width}]")
            width = n_values
            sparse = False
        else:
            sparse = True  # empty row: no keys, no values
        if width is not None:
            if n_cols is None:
                n_cols, cols_from = width, number
            elif width != n_cols:
                raise RecordIOError(
                    f"{where}: inconsistent shapes: {width} columns, but record {cols_from} has {n_cols}"
                )
        values.extend(tensor.values)
        counts.append(n_values)
        is_sparse.append(sparse)
        offsets.append(offset)

        has_label = "values" in record.label
        if labelled is None:
            labelled = has_label
        elif has_label != labelled:
            state = "has a label" if has_label else "has no label"
            raise RecordIOError(f"{where}: {state}, unlike record 0")
        if has_label:
            lvalue = record.label["values"]
            lkind = lvalue.WhichOneof("value")
            if lkind not in TENSOR_KINDS:
                raise RecordIOError(f"{where}: label holds {lkind or 'nothing'}, not a numeric tensor")
            lvalues = getattr(lvalue, lkind).values
            if len(lvalues) != 1:
                raise RecordIOError(f"{where}: label has {len(lvalues)} values, expected 1")
            labels.append(lvalues[0])

    counts_arr = np.asarray(counts, dtype=np.int64)
    keys_arr = np.asarray(keys, dtype=np.uint64)
    if n_cols is None:  # only sparse records without shape (or no records): infer
        n_cols = int(keys_arr.max()) + 1 if keys_arr.size else 0
    if n_cols > np.iinfo(np.int64).max:
        raise RecordIOError(
            f"record {cols_from} at byte offset {offsets[cols_from]}: implausible shape [{n_cols}]"
        )
    is_sparse_arr = np.asarray(is_sparse, dtype=bool)
    if keys_arr.size:
        bad = np.flatnonzero(keys_arr >= n_cols)
        if bad.size:
            sparse_counts = np.where(is_sparse_arr, counts_arr, 0)
            rec = int(np.searchsorted(np.cumsum(sparse_counts), bad[0], side="right"))
            raise RecordIOError(
                f"record {rec} at byte offset {offsets[rec]}: key {int(keys_arr[bad[0]])} is outside "
                f"the {n_cols} columns"
            )
    return Parsed(
        values=np.asarray(values, dtype=dtype),
        counts=counts_arr,
        sparse_keys=keys_arr.astype(np.int64),
        is_sparse=is_sparse_arr,
        n_cols=n_cols,
        labels=np.asarray(labels, dtype=dtype) if labelled else None,
        offsets=offsets,
    )


def coordinates(parsed: Parsed) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return canonical ``(rows, cols, values)``: sorted by row then column, duplicates summed.

    Stored entries of sparse records are kept (explicit zeros included); dense records contribute
    their non-zero entries only.
    """
    counts = parsed.counts
    n_rows, total = counts.size, int(counts.sum())
    rows = np.repeat(np.arange(n_rows, dtype=np.int64), counts)
    starts = np.cumsum(counts) - counts
    cols = np.arange(total, dtype=np.int64) - np.repeat(starts, counts)  # position within the row
    entry_sparse = np.repeat(parsed.is_sparse, counts)
    cols[entry_sparse] = parsed.sparse_keys
    vals = parsed.values
    keep = entry_sparse | (vals != 0)
    if not keep.all():
        rows, cols, vals = rows[keep], cols[keep], vals[keep]
    if rows.size > 1:
        step = np.diff(cols)
        same_row = rows[1:] == rows[:-1]
        if np.any(same_row & (step <= 0)):  # unsorted or duplicate keys within a row
            order = np.lexsort((cols, rows))
            rows, cols, vals = rows[order], cols[order], vals[order]
            first = np.ones(rows.size, dtype=bool)
            first[1:] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])
            starts_idx = np.flatnonzero(first)
            vals = np.add.reduceat(vals, starts_idx)
            rows, cols = rows[starts_idx], cols[starts_idx]
    return rows, cols, vals
