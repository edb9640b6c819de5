"""Amazon SageMaker RecordIO-protobuf files, written and read without a ``protoc`` step.

SageMaker's built-in algorithms (Factorization Machines, Linear Learner, k-means, ...) read
training data as *RecordIO-protobuf*: a stream of RecordIO frames, each holding one serialized
``aialgs.data.Record`` protobuf message (SageMaker's ``record.proto``).

Framing
-------
Every frame is::

    uint32 little-endian magic   0xCED7230A
    uint32 little-endian word    lower 29 bits: payload length, upper 3 bits: continuation flag
    payload                      one serialized ``Record``
    zero padding                 up to the next multiple of 4 bytes

The writers always emit whole records (flag 0), as SageMaker SDK v2 does. The readers also accept
MXNet/dmlc multi-part records (flag 1 = first part, 2 = middle, 3 = last; the magic number that
the writer cut out is put back between the parts).

Messages
--------
The ``record.proto`` message types are built at run time from a
:class:`google.protobuf.descriptor_pb2.FileDescriptorProto` in a private descriptor pool, on first
use: importing this module does not import ``protobuf`` (nor ``scipy``).

Tensor types
------------
The writers reproduce SageMaker SDK v2 ``sagemaker.amazon.common.write_spmatrix_to_sparse_tensor``
and ``write_numpy_to_dense_tensor`` byte for byte. As there, the tensor type of the features is
chosen from the dtype of the matrix, and, independently, the tensor type of the labels from the
dtype of the labels:

=================================  ===================  =========================================
dtype                              tensor               note
=================================  ===================  =========================================
``float32``                        ``Float32Tensor``    what SageMaker algorithms expect
``float64``                        ``Float64Tensor``    also what a plain Python list becomes
integer (``int64``, ``int32``...)  ``Int32Tensor``      values must fit in int32
anything else                      --                   :class:`RecordIOError`
=================================  ===================  =========================================

SDK v2 accepts exactly ``float32``, ``float64`` and the platform ``int`` (``int64``); the other
integer dtypes are an extension here (they give the bytes SDK v2 gives for the same values as
``int64``). Most built-in algorithms want ``Float32Tensor`` features *and* labels, so cast to
``float32`` first unless you know otherwise. The readers accept all three tensor types and return
``float32`` by default (``dtype=`` to change it; ``Float64Tensor`` values are rounded).
"""

from __future__ import annotations

import functools
import os
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from movierec.exceptions import DataValidationError

if TYPE_CHECKING:  # pragma: no cover
    import scipy.sparse

__all__ = [
    "MAGIC",
    "RecordIOError",
    "iter_records",
    "read_dense",
    "read_sparse",
    "write_dense",
    "write_sparse",
]

#: RecordIO magic number that starts every frame.
MAGIC = 0xCED7230A

FileLike = str | os.PathLike[str] | IO[bytes]

_HEADER = struct.Struct("<II")
_MAGIC_BYTES = struct.pack("<I", MAGIC)
_LENGTH_MASK = (1 << 29) - 1
_PADDING = (b"", b"\x00", b"\x00\x00", b"\x00\x00\x00")
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1
_WRITE_BATCH = 4096  # frames joined per file.write call

_FLOAT32, _FLOAT64, _INT32 = "float32_tensor", "float64_tensor", "int32_tensor"


class RecordIOError(DataValidationError):
    """A RecordIO-protobuf file or the data to write into one is malformed.

    Reader errors name the record number (0-based) and the byte offset of its frame.
    """


# ---------------------------------------------------------------------------------------------
# record.proto, built lazily
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Messages:
    """The generated message classes of SageMaker's ``record.proto``."""

    Float32Tensor: Any
    Float64Tensor: Any
    Int32Tensor: Any
    Bytes: Any
    Value: Any
    Record: Any
    DecodeError: type[Exception]


@functools.cache
def _messages() -> _Messages:
    """Build the ``aialgs.data`` message classes (cached; imports ``protobuf`` on first call).

    Returns
    -------
    _Messages
        The message classes and protobuf's ``DecodeError``.

    Raises
    ------
    ImportError
        If the ``protobuf`` package is not installed.
    """
    try:
        from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
        from google.protobuf.message import DecodeError
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "movierec.sagemaker.recordio needs the 'protobuf' package (pip install 'protobuf>=4.21')"
        ) from exc

    field = descriptor_pb2.FieldDescriptorProto
    packed = descriptor_pb2.FieldOptions(packed=True)
    pkg = ".aialgs.data."
    proto = descriptor_pb2.FileDescriptorProto(
        name="movierec/sagemaker/record.proto", package="aialgs.data", syntax="proto2"
    )

    for name, value_type in (
        ("Float32Tensor", field.TYPE_FLOAT),
        ("Float64Tensor", field.TYPE_DOUBLE),
        ("Int32Tensor", field.TYPE_INT32),
    ):
        msg = proto.message_type.add(name=name)
        msg.field.add(name="values", number=1, label=field.LABEL_REPEATED, type=value_type, options=packed)
        msg.field.add(
            name="keys", number=2, label=field.LABEL_REPEATED, type=field.TYPE_UINT64, options=packed
        )
        msg.field.add(
            name="shape", number=3, label=field.LABEL_REPEATED, type=field.TYPE_UINT64, options=packed
        )

    msg = proto.message_type.add(name="Bytes")
    msg.field.add(name="value", number=1, label=field.LABEL_REPEATED, type=field.TYPE_BYTES)
    msg.field.add(name="content_type", number=2, label=field.LABEL_OPTIONAL, type=field.TYPE_STRING)

    msg = proto.message_type.add(name="Value")
    msg.oneof_decl.add(name="value")
    for name, number, type_name in (
        (_FLOAT32, 2, "Float32Tensor"),
        (_FLOAT64, 3, "Float64Tensor"),
        (_INT32, 7, "Int32Tensor"),
        ("bytes", 9, "Bytes"),
    ):
        msg.field.add(
            name=name,
            number=number,
            label=field.LABEL_OPTIONAL,
            type=field.TYPE_MESSAGE,
            type_name=pkg + type_name,
            oneof_index=0,
        )

    msg = proto.message_type.add(name="Record")
    for number, (name, entry) in enumerate((("features", "FeaturesEntry"), ("label", "LabelEntry")), 1):
        nested = msg.nested_type.add(name=entry, options=descriptor_pb2.MessageOptions(map_entry=True))
        nested.field.add(name="key", number=1, label=field.LABEL_OPTIONAL, type=field.TYPE_STRING)
        nested.field.add(
            name="value",
            number=2,
            label=field.LABEL_OPTIONAL,
            type=field.TYPE_MESSAGE,
            type_name=pkg + "Value",
        )
        msg.field.add(
            name=name,
            number=number,
            label=field.LABEL_REPEATED,
            type=field.TYPE_MESSAGE,
            type_name=f"{pkg}Record.{entry}",
        )
    for number, name in ((3, "uid"), (4, "metadata"), (5, "configuration")):
        msg.field.add(name=name, number=number, label=field.LABEL_OPTIONAL, type=field.TYPE_STRING)

    pool = descriptor_pool.DescriptorPool()  # private: no clash with sagemaker's own record_pb2
    pool.AddSerializedFile(proto.SerializeToString())

    get_class = getattr(message_factory, "GetMessageClass", None)
    if get_class is None:  # pragma: no cover - protobuf < 4.21
        get_class = message_factory.MessageFactory(pool).GetPrototype

    def cls(name: str) -> Any:
        return get_class(pool.FindMessageTypeByName("aialgs.data." + name))

    return _Messages(
        Float32Tensor=cls("Float32Tensor"),
        Float64Tensor=cls("Float64Tensor"),
        Int32Tensor=cls("Int32Tensor"),
        Bytes=cls("Bytes"),
        Value=cls("Value"),
        Record=cls("Record"),
        DecodeError=DecodeError,
    )


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


@contextmanager
def _open(f: FileLike, mode: str) -> Iterator[IO[bytes]]:
    """Yield a binary file object: open a path (and close it), or pass a file object through."""
    if isinstance(f, (str, os.PathLike)):
        with open(f, mode) as fh:
            yield fh
    else:
        yield f


def _tensor_kind(dtype: np.dtype[Any], what: str) -> str:
    """Return the ``Value`` oneof field SageMaker SDK v2 uses for ``dtype`` (see module docstring)."""
    if dtype == np.float32:
        return _FLOAT32
    if dtype == np.float64:
        return _FLOAT64
    if dtype.kind in "iu":
        return _INT32
    raise RecordIOError(
        f"{what} has dtype {dtype}; RecordIO-protobuf stores float32, float64 or int32 "
        "(cast it, e.g. with .astype(np.float32))"
    )


def _check_int32(values: np.ndarray, kind: str, what: str) -> None:
    """Raise if an array bound for an ``Int32Tensor`` has values outside the int32 range."""
    if kind == _INT32 and values.size:
        low, high = int(values.min()), int(values.max())
        if low < _INT32_MIN or high > _INT32_MAX:
            raise RecordIOError(
                f"{what} has values in [{low}, {high}], outside the int32 range of Int32Tensor"
            )


def _check_labels(labels: Any, n_rows: int) -> tuple[list[Any], str] | None:
    """Validate labels; return them as a Python list plus their tensor kind."""
    if labels is None:
        return None
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise RecordIOError(f"labels must be a vector (1-D), got shape {arr.shape}")
    if arr.shape[0] != n_rows:
        raise RecordIOError(f"got {arr.shape[0]} labels for {n_rows} rows")
    kind = _tensor_kind(arr.dtype, "labels")
    _check_int32(arr, kind, "labels")
    return arr.tolist(), kind


def _frame(payload: bytes) -> bytes:
    """Return one RecordIO frame: header, payload, zero padding to a multiple of 4 bytes."""
    length = len(payload)
    if length > _LENGTH_MASK:
        raise RecordIOError(f"a record of {length} bytes exceeds the RecordIO limit of {_LENGTH_MASK} bytes")
    return _HEADER.pack(MAGIC, length) + payload + _PADDING[-length & 3]


# ---------------------------------------------------------------------------------------------
# writers
# ---------------------------------------------------------------------------------------------


def write_sparse(f: FileLike, X: Any, labels: npt.ArrayLike | None = None) -> None:
    """Write a sparse matrix as RecordIO-protobuf, one record per row.

    Byte-for-byte the output of SageMaker SDK v2 ``write_spmatrix_to_sparse_tensor``. Each record
    holds ``features["values"]``: a tensor with the row's stored values, ``keys`` = their column
    indices and ``shape`` = ``[n_columns]`` (so an empty row is still a valid record), and, when
    ``labels`` is given, ``label["values"]``: a tensor holding that row's label.

    Parameters
    ----------
    f : str, os.PathLike or binary file object
        Destination; a path is created or overwritten, a file object is written at its position
        and left open.
    X : scipy.sparse matrix or array, shape (n_rows, n_columns)
        Any sparse format; converted with ``tocsr()``. Stored entries are written as stored,
        explicit zeros and within-row order included (as SDK v2 does). Its dtype picks the tensor
        type (module docstring): ``float32`` gives ``Float32Tensor``.
    labels : array-like, shape (n_rows,), optional
        One label per row; its own dtype picks the label tensor type.

    Raises
    ------
    RecordIOError
        If ``X`` is not a 2-D sparse matrix, a dtype is unsupported, integer values overflow int32
        or the labels do not match the rows.
    """
    import scipy.sparse as sp

    if not sp.issparse(X):
        raise RecordIOError(
            f"write_sparse needs a scipy.sparse matrix, got {type(X).__name__}; use write_dense for arrays"
        )
    if len(X.shape) != 2:
        raise RecordIOError(f"the matrix must be 2-D, got shape {X.shape}")
    kind = _tensor_kind(np.dtype(X.dtype), "the matrix")
    csr = X.tocsr()
    n_rows, n_cols = csr.shape
    _check_int32(csr.data, kind, "the matrix")
    checked = _check_labels(labels, n_rows)

    data = csr.data.tolist()
    keys = csr.indices.tolist()
    bounds = csr.indptr.tolist()
    record = _messages().Record()
    chunks: list[bytes] = []
    with _open(f, "wb") as out:
        for i in range(n_rows):
            record.Clear()
            start, stop = bounds[i], bounds[i + 1]
            tensor = getattr(record.features["values"], kind)
            tensor.values.extend(data[start:stop])
            tensor.keys.extend(keys[start:stop])
            tensor.shape.append(n_cols)
            if checked is not None:
                getattr(record.label["values"], checked[1]).values.append(checked[0][i])
            chunks.append(_frame(record.SerializeToString()))
            if len(chunks) == _WRITE_BATCH:
                out.write(b"".join(chunks))
                chunks.clear()
        if chunks:
            out.write(b"".join(chunks))


def write_dense(f: FileLike, array: npt.ArrayLike, labels: npt.ArrayLike | None = None) -> None:
    """Write a dense matrix as RecordIO-protobuf, one record per row.

    Byte-for-byte the output of SageMaker SDK v2 ``write_numpy_to_dense_tensor``. Each record holds
    ``features["values"]``: a tensor with the whole row as ``values`` (no ``keys``, and no
    ``shape``, as in SDK v2), and, when ``labels`` is given, ``label["values"]`` with that row's
    label.

    Parameters
    ----------
    f : str, os.PathLike or binary file object
        Destination; a path is created or overwritten, a file object is written at its position
        and left open.
    array : array-like, shape (n_rows, n_columns)
        The matrix (``numpy.asarray`` is applied). Its dtype picks the tensor type (module
        docstring): ``float32`` gives ``Float32Tensor``.
    labels : array-like, shape (n_rows,), optional
        One label per row; its own dtype picks the label tensor type.

    Raises
    ------
    RecordIOError
        If the matrix is sparse or not 2-D, a dtype is unsupported, integer values overflow int32 or
        the labels do not match the rows.
    """
    if hasattr(array, "tocsr") and hasattr(array, "nnz"):
        raise RecordIOError("write_dense got a sparse matrix; use write_sparse")
    arr = np.asarray(array)
    if arr.ndim != 2:
        raise RecordIOError(f"the matrix must be 2-D, got shape {arr.shape}")
    kind = _tensor_kind(arr.dtype, "the matrix")
    _check_int32(arr, kind, "the matrix")
    checked = _check_labels(labels, arr.shape[0])

    rows = arr.tolist()
    record = _messages().Record()
    chunks: list[bytes] = []
    with _open(f, "wb") as out:
        for i, row in enumerate(rows):
            record.Clear()
            getattr(record.features["values"], kind).values.extend(row)
            if checked is not None:
                getattr(record.label["values"], checked[1]).values.append(checked[0][i])
            chunks.append(_frame(record.SerializeToString()))
            if len(chunks) == _WRITE_BATCH:
                out.write(b"".join(chunks))
                chunks.clear()
        if chunks:
            out.write(b"".join(chunks))


# ---------------------------------------------------------------------------------------------
# readers
# ---------------------------------------------------------------------------------------------


def _read_exact(fh: IO[bytes], n: int) -> bytes:
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


def _iter_frames(f: FileLike) -> Iterator[tuple[int, int, bytes]]:
    """Yield ``(record_number, byte_offset, payload)`` for each (reassembled) record."""
    with _open(f, "rb") as fh:
        offset = 0  # relative to where reading started
        number = 0
        parts: list[bytes] = []
        record_offset = 0
        while True:
            header = _read_exact(fh, 8)
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
            magic, word = _HEADER.unpack(header)
            if magic != MAGIC:
                raise RecordIOError(
                    f"{where}: bad magic 0x{magic:08x} at byte offset {offset}, expected 0x{MAGIC:08x} "
                    "(not a RecordIO file, or corrupt)"
                )
            length, flag = word & _LENGTH_MASK, word >> 29
            padded = (length + 3) & ~3
            body = _read_exact(fh, padded)
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
                    yield number, record_offset, _MAGIC_BYTES.join(parts)
                    number += 1
                    parts = []
            else:
                raise RecordIOError(f"{where}: unknown continuation flag {flag}")


def iter_records(f: FileLike) -> Iterator[bytes]:
    """Iterate over the raw payloads (serialized ``Record`` messages) of a RecordIO file.

    Parameters
    ----------
    f : str, os.PathLike or binary file object
        Source; a file object is read from its current position (offsets in errors count from
        there) and left open.

    Yields
    ------
    bytes
        One payload per record, padding removed, multi-part records reassembled.

    Raises
    ------
    RecordIOError
        On a bad magic number, a truncated header or payload, or inconsistent continuation flags.
    """
    for _, _, payload in _iter_frames(f):
        yield payload


@dataclass
class _Parsed:
    """Everything the readers collect from a file, before building matrices."""

    values: np.ndarray  # all stored values, record after record
    counts: np.ndarray  # number of values per record
    sparse_keys: np.ndarray  # keys of the records that have keys, in order
    is_sparse: np.ndarray  # per record: keys present (or no values at all)
    n_cols: int
    labels: np.ndarray | None
    offsets: list[int]


def _parse(f: FileLike, dtype: npt.DTypeLike) -> _Parsed:
    """Parse every record of a file; check features, labels and shapes."""
    msgs = _messages()
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

    for number, offset, payload in _iter_frames(f):
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
        if kind not in (_FLOAT32, _FLOAT64, _INT32):
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
            if lkind not in (_FLOAT32, _FLOAT64, _INT32):
                raise RecordIOError(f"{where}: label holds {lkind or 'nothing'}, not a numeric tensor")
            lvalues = getattr(lvalue, lkind).values
            if len(lvalues) != 1:
                raise RecordIOError(f"{where}: label has {len(lvalues)} values, expected 1")
            labels.append(lvalues[0])

    counts_arr = np.asarray(counts, dtype=np.int64)
    keys_arr = np.asarray(keys, dtype=np.uint64) if keys else np.zeros(0, dtype=np.uint64)
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
    return _Parsed(
        values=np.asarray(values, dtype=dtype) if values else np.zeros(0, dtype=dtype),
        counts=counts_arr,
        sparse_keys=keys_arr.astype(np.int64),
        is_sparse=is_sparse_arr,
        n_cols=n_cols,
        labels=np.asarray(labels, dtype=dtype) if labelled else None,
        offsets=offsets,
    )


def _coordinates(parsed: _Parsed) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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


def read_sparse(
    f: FileLike, dtype: npt.DTypeLike = np.float32
) -> tuple[scipy.sparse.csr_matrix, np.ndarray | None]:
    """Read a RecordIO-protobuf file into a CSR matrix and optional labels.

    Parameters
    ----------
    f : str, os.PathLike or binary file object
        Source; a file object is read from its current position and left open.
    dtype : numpy dtype, default float32
        Dtype of the matrix and labels, whatever tensor types the file holds.

    Returns
    -------
    X : scipy.sparse.csr_matrix, shape (n_records, n_columns)
        Canonical CSR (sorted column indices, duplicate keys summed). Entries stored in sparse
        records are kept, explicit zeros included; dense records (values without keys) give their
        non-zero entries. ``n_columns`` comes from the tensors' ``shape`` (or dense length), else
        from the largest key + 1; an empty file gives shape (0, 0).
    labels : numpy.ndarray of shape (n_records,) or None
        ``label["values"]`` of each record, or None if the records carry no label.

    Raises
    ------
    RecordIOError
        On bad framing (see :func:`iter_records`), an unparsable payload, a record without a
        numeric ``values`` feature, keys and values of different lengths, records of different
        widths, keys outside the width, tensors of rank > 1, labels on some records only or labels
        that are not a single value.
    """
    import scipy.sparse as sp

    parsed = _parse(f, dtype)
    n_rows = parsed.counts.size
    rows, cols, vals = _coordinates(parsed)
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
    index_dtype = np.int32 if max(parsed.n_cols, vals.size) < 2**31 else np.int64
    X = sp.csr_matrix(
        (vals, cols.astype(index_dtype), indptr.astype(index_dtype)),
        shape=(n_rows, parsed.n_cols),
    )
    return X, parsed.labels


def read_dense(f: FileLike, dtype: npt.DTypeLike = np.float32) -> tuple[np.ndarray, np.ndarray | None]:
    """Read a RecordIO-protobuf file into a dense matrix and optional labels.

    Parameters
    ----------
    f : str, os.PathLike or binary file object
        Source; a file object is read from its current position and left open.
    dtype : numpy dtype, default float32
        Dtype of the matrix and labels, whatever tensor types the file holds.

    Returns
    -------
    X : numpy.ndarray, shape (n_records, n_columns)
        One row per record. Sparse records (with keys) are scattered into zeros, duplicate keys
        summed. An empty file gives shape (0, 0).
    labels : numpy.ndarray of shape (n_records,) or None
        ``label["values"]`` of each record, or None if the records carry no label.

    Raises
    ------
    RecordIOError
        As :func:`read_sparse`.
    """
    parsed = _parse(f, dtype)
    n_rows, n_cols = parsed.counts.size, parsed.n_cols
    if not parsed.is_sparse.any():  # all dense rows of equal width (checked in _parse)
        return parsed.values.reshape(n_rows, n_cols), parsed.labels
    rows, cols, vals = _coordinates(parsed)
    out = np.zeros((n_rows, n_cols), dtype=parsed.values.dtype)
    out[rows, cols] = vals
    return out, parsed.labels
