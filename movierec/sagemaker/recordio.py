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
`google.protobuf.descriptor_pb2.FileDescriptorProto` in a private descriptor pool, on first
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
anything else                      --                   [`RecordIOError`][movierec.sagemaker.recordio.RecordIOError]
=================================  ===================  =========================================

SDK v2 accepts exactly ``float32``, ``float64`` and the platform ``int`` (``int64``); the other
integer dtypes are an extension here (they give the bytes SDK v2 gives for the same values as
``int64``). Most built-in algorithms want ``Float32Tensor`` features *and* labels, so cast to
``float32`` first unless you know otherwise. The readers accept all three tensor types and return
``float32`` by default (``dtype=`` to change it; ``Float64Tensor`` values are rounded).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from movierec.sagemaker._record_proto import (
    FLOAT32,
    FLOAT64,
    HEADER,
    INT32,
    LENGTH_MASK,
    MAGIC,
    FileLike,
    RecordIOError,
    open_binary,
)
from movierec.sagemaker._record_proto import messages as _messages  # the tests use recordio._messages
from movierec.sagemaker._recordio_read import coordinates, iter_frames, parse

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

_PADDING = (b"", b"\x00", b"\x00\x00", b"\x00\x00\x00")
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1
_WRITE_BATCH = 4096  # frames joined per file.write call


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def _tensor_kind(dtype: np.dtype[Any], what: str) -> str:
    """Return the ``Value`` oneof field SageMaker SDK v2 uses for ``dtype`` (see module docstring)."""
    if dtype == np.float32:
        return FLOAT32
    if dtype == np.float64:
        return FLOAT64
    if dtype.kind in "iu":
        return INT32
    raise RecordIOError(
        f"{what} has dtype {dtype}; RecordIO-protobuf stores float32, float64 or int32 "
        "(cast it, e.g. with .astype(np.float32))"
    )


def _check_int32(values: np.ndarray, kind: str, what: str) -> None:
    """Raise if an array bound for an ``Int32Tensor`` has values outside the int32 range."""
    if kind == INT32 and values.size:
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
    if length > LENGTH_MASK:
        raise RecordIOError(f"a record of {length} bytes exceeds the RecordIO limit of {LENGTH_MASK} bytes")
    return HEADER.pack(MAGIC, length) + payload + _PADDING[-length & 3]


def _write_records(
    f: FileLike, n_rows: int, fill_features: Callable[[Any, int], None], labels: tuple[list[Any], str] | None
) -> None:
    """Write ``n_rows`` records: row ``i`` filled by ``fill_features(record, i)``, plus its label.

    ``labels`` is what `_check_labels` returns. Writes in batches of ``_WRITE_BATCH`` frames.
    """
    record = _messages().Record()
    chunks: list[bytes] = []
    with open_binary(f, "wb") as out:
        for i in range(n_rows):
            record.Clear()
            fill_features(record, i)
            if labels is not None:
                getattr(record.label["values"], labels[1]).values.append(labels[0][i])
            chunks.append(_frame(record.SerializeToString()))
            if len(chunks) == _WRITE_BATCH:
                out.write(b"".join(chunks))
                chunks.clear()
        if chunks:
            out.write(b"".join(chunks))


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

    def fill(record: Any, i: int) -> None:
        start, stop = bounds[i], bounds[i + 1]
        tensor = getattr(record.features["values"], kind)
        tensor.values.extend(data[start:stop])
        tensor.keys.extend(keys[start:stop])
        tensor.shape.append(n_cols)

    _write_records(f, n_rows, fill, checked)


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

    def fill(record: Any, i: int) -> None:
        getattr(record.features["values"], kind).values.extend(rows[i])

    _write_records(f, len(rows), fill, checked)


# ---------------------------------------------------------------------------------------------
# readers
# ---------------------------------------------------------------------------------------------


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
    for _, _, payload in iter_frames(f):
        yield payload


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
        On bad framing (see [`iter_records`][movierec.sagemaker.recordio.iter_records]), an unparsable payload, a record without a
        numeric ``values`` feature, keys and values of different lengths, records of different
        widths, keys outside the width, tensors of rank > 1, labels on some records only or labels
        that are not a single value.
    """
    import scipy.sparse as sp

    parsed = parse(f, dtype)
    n_rows = parsed.counts.size
    rows, cols, vals = coordinates(parsed)
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
        As [`read_sparse`][movierec.sagemaker.recordio.read_sparse].
    """
    parsed = parse(f, dtype)
    n_rows, n_cols = parsed.counts.size, parsed.n_cols
    if not parsed.is_sparse.any():  # all dense rows of equal width (checked in parse)
        return parsed.values.reshape(n_rows, n_cols), parsed.labels
    rows, cols, vals = coordinates(parsed)
    out = np.zeros((n_rows, n_cols), dtype=parsed.values.dtype)
    out[rows, cols] = vals
    return out, parsed.labels
