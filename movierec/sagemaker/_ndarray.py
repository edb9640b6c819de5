"""MXNet NDArray list files (what ``mx.nd.save`` writes), read and written without MXNet.

SageMaker's MXNet-based algorithms store their parameters in this format (see [`artifact`][movierec.sagemaker.artifact]).

NDArray list file (``mx.nd.save``), all integers little-endian::

    uint64 magic 0x112, uint64 reserved (0)
    uint64 count, then ``count`` arrays
    uint64 name count (0 or count), then names, each uint64 length + UTF-8 bytes

One array (MXNet ``NDArray::Save``)::

    uint32 magic: 0xF993FAC9 (V2), 0xF993FACA (V3, NumPy shapes) or 0xF993FAC8 (V1);
                  anything smaller is a legacy file where this word is ``ndim``
    V2/V3: int32 storage type (0 dense, 1 row_sparse, 2 csr)
           sparse only: storage shape
    shape: uint32 ndim, then ndim int64 dims (legacy: uint32 dims)
           V2/V1/legacy: ndim 0 is an empty array and nothing more follows
    int32 dev_type, int32 dev_id
    int32 type_flag (0 float32, 1 float64, 2 float16, 3 uint8, 4 int32, 5 int8, 6 int64, ...)
    sparse only: per auxiliary array: int32 type_flag + shape
    raw data (product of the shape, or of the storage shape when sparse), then sparse aux data
"""

from __future__ import annotations

import math
import os
import struct
from collections.abc import Sequence
from typing import IO, Any

import numpy as np

from movierec.exceptions import DataValidationError

__all__ = [
    "MAX_DENSE_BYTES",
    "ArtifactError",
    "FileLike",
    "read_bytes",
    "read_ndarray_list",
    "write_ndarray_list",
]

LIST_MAGIC = 0x112
V1_MAGIC, V2_MAGIC, V3_MAGIC = 0xF993FAC8, 0xF993FAC9, 0xF993FACA
_DENSE, _ROW_SPARSE, _CSR = 0, 1, 2
_AUX_COUNT = {_DENSE: 0, _ROW_SPARSE: 1, _CSR: 2}
_STORAGE_NAMES = {_DENSE: "dense", _ROW_SPARSE: "row_sparse", _CSR: "csr"}
#: mshadow type flags
_DTYPES: dict[int, np.dtype[Any]] = {
    0: np.dtype("<f4"),
    1: np.dtype("<f8"),
    2: np.dtype("<f2"),
    3: np.dtype("u1"),
    4: np.dtype("<i4"),
    5: np.dtype("i1"),
    6: np.dtype("<i8"),
    7: np.dtype("?"),
    8: np.dtype("<i2"),
    9: np.dtype("<u2"),
    10: np.dtype("<u4"),
    11: np.dtype("<u8"),
}
_FLAGS = {dtype: flag for flag, dtype in _DTYPES.items()}
_MAX_NDIM = 32  # MXNet's own limit; a larger value means a corrupt or foreign file
#: Largest array a sparse entry may expand to. Dense data must be in the file, but a sparse array's
#: shape is only a header field: one flipped byte would otherwise ask for terabytes. 1 GiB holds the
#: factors of 4 million features x 64 factors in float32.
MAX_DENSE_BYTES = 2**30

FileLike = str | os.PathLike[str] | bytes | IO[bytes]


class ArtifactError(DataValidationError):
    """A model artifact (tarball, zip or NDArray list) is malformed or not what was expected."""


def read_bytes(f: FileLike) -> bytes:
    """Return the bytes of ``f``: the bytes themselves, a path, or a binary file object."""
    if isinstance(f, (bytes, bytearray, memoryview)):
        return bytes(f)
    if isinstance(f, (str, os.PathLike)):
        with open(f, "rb") as fh:
            return fh.read()
    return f.read()


class _Cursor:
    """Reads little-endian values from a buffer, naming the offset when the buffer runs out."""

    def __init__(self, data: bytes, where: str) -> None:
        self.data, self.pos, self.where = data, 0, where

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise ArtifactError(
                f"{self.where}: truncated at byte offset {self.pos}: {what} needs {n} bytes, "
                f"{len(self.data) - self.pos} left"
            )
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt: str, what: str) -> Any:
        values = struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt), what))
        return values[0] if len(values) == 1 else values


def _read_shape(cur: _Cursor, what: str, *, legacy_ndim: int | None = None) -> tuple[int, ...]:
    if legacy_ndim is not None:
        ndim, dim_format = legacy_ndim, "I"
    else:
        ndim, dim_format = cur.unpack("i", f"{what} ndim"), "q"
    if ndim == -1:  # MXNet's "unknown shape" (NumPy mode); stored only for empty arrays
        return ()
    if not 0 <= ndim <= _MAX_NDIM:
        raise ArtifactError(f"{cur.where}: {what} has ndim {ndim} at byte offset {cur.pos - 4}")
    dims = cur.unpack(f"{ndim}{dim_format}", f"{what} dims") if ndim else ()
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    if any(d < 0 for d in dims):
        raise ArtifactError(f"{cur.where}: {what} has a negative dimension {dims}")
    return dims


def _read_data(cur: _Cursor, dtype: np.dtype[Any], shape: tuple[int, ...], what: str) -> np.ndarray:
    count = math.prod(shape)  # Python ints: a corrupt shape cannot overflow into a small count
    raw = cur.take(count * dtype.itemsize, what)
    return np.frombuffer(raw, dtype=dtype, count=count).reshape(shape).astype(dtype.newbyteorder("="))


def _read_dtype(cur: _Cursor, what: str) -> np.dtype[Any]:
    flag = cur.unpack("i", f"{what} type flag")
    if flag not in _DTYPES:
        raise ArtifactError(
            f"{cur.where}: {what} has unsupported type flag {flag} (known: {sorted(_DTYPES)})"
        )
    return _DTYPES[flag]


def _read_array(cur: _Cursor, index: int) -> np.ndarray:
    what = f"array {index}"
    start = cur.pos
    magic = cur.unpack("I", f"{what} magic")
    if magic in (V2_MAGIC, V3_MAGIC):
        stype = cur.unpack("i", f"{what} storage type")
        if stype not in _AUX_COUNT:
            raise ArtifactError(f"{cur.where}: {what} has unknown storage type {stype}")
        n_aux = _AUX_COUNT[stype]
        storage_shape = _read_shape(cur, f"{what} storage shape") if n_aux else None
        shape = _read_shape(cur, f"{what} shape")
    elif magic == V1_MAGIC or magic <= _MAX_NDIM:  # V1 dense; legacy: the first word is ndim, dims are uint32
        stype, n_aux, storage_shape = _DENSE, 0, None
        shape = _read_shape(cur, f"{what} shape", legacy_ndim=None if magic == V1_MAGIC else magic)
    else:
        raise ArtifactError(
            f"{cur.where}: {what} at byte offset {start} has magic 0x{magic:08X}; expected an MXNet "
            f"NDArray (0x{V2_MAGIC:08X}, 0x{V3_MAGIC:08X}, 0x{V1_MAGIC:08X} or a legacy ndim)"
        )
    if not shape and magic != V3_MAGIC:  # V2/V1/legacy: an empty array, nothing more follows
        return np.zeros(0, dtype=np.float32)
    cur.unpack("ii", f"{what} context")
    dtype = _read_dtype(cur, what)
    aux: list[tuple[np.dtype[Any], tuple[int, ...]]] = []
    for i in range(n_aux):
        aux.append((_read_dtype(cur, f"{what} aux {i}"), _read_shape(cur, f"{what} aux {i} shape")))
    if stype == _DENSE:
        return _read_data(cur, dtype, shape, f"{what} data {shape}")
    assert storage_shape is not None
    values = _read_data(cur, dtype, storage_shape, f"{what} data {storage_shape}")
    aux_arrays = [_read_data(cur, t, s, f"{what} aux data {s}") for t, s in aux]
    return _densify(cur.where, what, stype, shape, values, aux_arrays)


def _densify(
    where: str, what: str, stype: int, shape: tuple[int, ...], values: np.ndarray, aux: list[np.ndarray]
) -> np.ndarray:
    """Return the dense array of a row_sparse or csr entry, after checking its indices fit ``shape``.

    A corrupt index would otherwise surface as an IndexError, or silently overwrite a row.
    """

    def bad(problem: str) -> ArtifactError:
        return ArtifactError(f"{where}: {what} ({_STORAGE_NAMES[stype]}, shape {shape}): {problem}")

    if math.prod(shape) * values.dtype.itemsize > MAX_DENSE_BYTES:
        raise bad(f"larger than {MAX_DENSE_BYTES} bytes once dense: a corrupt shape")
    if any(a.ndim != 1 or a.dtype.kind not in "iu" for a in aux):
        raise bad(f"its index arrays must be 1-D integers, got {[(a.dtype.str, a.shape) for a in aux]}")
    dense = np.zeros(shape, dtype=values.dtype)
    if stype == _ROW_SPARSE:
        rows = aux[0].astype(np.int64)
        if values.shape != (len(rows), *shape[1:]):
            raise bad(f"{len(rows)} row indices for stored values of shape {values.shape}")
        if len(rows) and (rows[0] < 0 or rows[-1] >= shape[0] or (np.diff(rows) <= 0).any()):
            raise bad(f"row indices must increase strictly within [0, {shape[0]}), got {_preview(rows)}")
        dense[rows] = values
        return dense
    # csr: aux 0 = indptr, aux 1 = column indices
    indptr, columns = (a.astype(np.int64) for a in aux)
    if len(shape) != 2 or values.ndim != 1 or len(columns) != len(values):
        raise bad(f"{len(columns)} column indices for stored values of shape {values.shape}")
    rising = len(indptr) == shape[0] + 1 and indptr[0] == 0 and (np.diff(indptr) >= 0).all()
    if not rising or indptr[-1] != len(values):
        raise bad(f"indptr must rise from 0 to {len(values)} in {shape[0] + 1} steps, got {_preview(indptr)}")
    if len(columns) and (columns.min() < 0 or columns.max() >= shape[1]):
        raise bad(f"column indices must lie in [0, {shape[1]}), got {_preview(columns)}")
    dense[np.repeat(np.arange(shape[0]), np.diff(indptr)), columns] = values
    return dense


def _preview(values: np.ndarray, n: int = 8) -> str:
    shown = ", ".join(str(v) for v in values[:n])
    return f"[{shown}{', ...' if len(values) > n else ''}] ({len(values)} values)"


def read_ndarray_list(f: FileLike) -> tuple[list[np.ndarray], list[str]]:
    """Return the arrays and names of an MXNet NDArray list file (what ``mx.nd.save`` writes).

    Parameters
    ----------
    f : bytes, str, os.PathLike or binary file object
        The file's contents or where to read them.

    Returns
    -------
    arrays : list of numpy.ndarray
        In file order, in their stored dtype; sparse arrays (row_sparse, csr) are made dense.
    names : list of str
        One per array (``"arg:w0_weight"`` ...), or empty when the file stores none.

    Raises
    ------
    ArtifactError
        On a wrong list magic, an unknown array magic, storage or type flag, a truncated file,
        trailing bytes, a name count that is neither 0 nor the array count, a name that is not
        UTF-8, sparse indices outside the array's shape, or a sparse array larger than
        ``MAX_DENSE_BYTES`` once dense.
    """
    data = read_bytes(f)
    cur = _Cursor(data, "NDArray list")
    magic = cur.unpack("Q", "list magic")
    if magic != LIST_MAGIC:
        raise ArtifactError(
            f"not an MXNet NDArray list: magic 0x{magic:X} at byte offset 0, expected 0x{LIST_MAGIC:X}"
        )
    cur.unpack("Q", "reserved word")
    count = cur.unpack("Q", "array count")
    if count > len(data):  # each array takes several bytes: a huge count is a corrupt file
        raise ArtifactError(f"NDArray list: implausible array count {count} for {len(data)} bytes")
    arrays = [_read_array(cur, i) for i in range(count)]
    n_names = cur.unpack("Q", "name count")
    if n_names not in (0, count):
        raise ArtifactError(f"NDArray list: {n_names} names for {count} arrays")
    names = []
    for i in range(n_names):
        length = cur.unpack("Q", f"name {i} length")
        raw = cur.take(length, f"name {i}")
        try:
            names.append(raw.decode("utf-8"))
        except UnicodeDecodeError as err:
            raise ArtifactError(f"NDArray list: name {i} is not UTF-8 text: {raw[:40]!r}") from err
    if cur.pos != len(data):
        raise ArtifactError(f"NDArray list: {len(data) - cur.pos} unexpected bytes after the names")
    return arrays, names


def write_ndarray_list(arrays: Sequence[np.ndarray], names: Sequence[str] | None = None) -> bytes:
    """Return the bytes of an MXNet NDArray list (dense V2 arrays), as ``mx.nd.save`` writes it.

    The inverse of `read_ndarray_list`; it lets tests (and anyone deploying weights trained
    elsewhere) build SageMaker artifacts without MXNet. ``names`` must be None or one per array.
    """
    names = list(names or [])
    if names and len(names) != len(arrays):
        raise ArtifactError(f"{len(names)} names for {len(arrays)} arrays")
    out = [struct.pack("<QQQ", LIST_MAGIC, 0, len(arrays))]
    for array in arrays:
        array = np.asarray(array)
        flag = _FLAGS.get(array.dtype.newbyteorder("<"))
        if flag is None:
            raise ArtifactError(f"dtype {array.dtype} has no MXNet type flag")
        out.append(struct.pack("<Iii", V2_MAGIC, _DENSE, array.ndim))
        out.append(struct.pack(f"<{array.ndim}q", *array.shape))
        out.append(struct.pack("<iii", 1, 0, flag))  # cpu(0)
        out.append(np.ascontiguousarray(array, dtype=_DTYPES[flag]).tobytes())
    out.append(struct.pack("<Q", len(names)))
    for name in names:
        encoded = name.encode("utf-8")
        out.append(struct.pack("<Q", len(encoded)) + encoded)
    return b"".join(out)
