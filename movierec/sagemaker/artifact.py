"""SageMaker model artifacts: ``model.tar.gz``, MXNet NDArray lists and Factorization Machines weights.

SageMaker's MXNet-based built-in algorithms (k-means, Factorization Machines, Linear Learner, ...)
write their trained model to ``{OutputDataConfig.S3OutputPath}/{job}/output/model.tar.gz``. The
archive holds ``model_algo-1``:

- k-means: ``model_algo-1`` *is* an MXNet NDArray list file;
- Factorization Machines: ``model_algo-1`` is a zip holding ``symbol.json`` (the MXNet graph),
  ``params`` (an NDArray list file) and sometimes ``meta.json``.

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

Nothing here needs MXNet, boto3 or network access.
"""

from __future__ import annotations

import io
import json
import os
import struct
import tarfile
import zipfile
from collections.abc import Mapping, Sequence
from typing import IO, Any, Literal, NamedTuple

import numpy as np

from movierec.exceptions import DataValidationError

__all__ = [
    "ArtifactError",
    "FMParameters",
    "read_fm_artifact",
    "read_fm_params",
    "read_model_tar",
    "read_ndarray_list",
    "write_fm_artifact",
    "write_ndarray_list",
]

LIST_MAGIC = 0x112
V1_MAGIC, V2_MAGIC, V3_MAGIC = 0xF993FAC8, 0xF993FAC9, 0xF993FACA
_DENSE, _ROW_SPARSE, _CSR = 0, 1, 2
_AUX_COUNT = {_DENSE: 0, _ROW_SPARSE: 1, _CSR: 2}
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

FileLike = str | os.PathLike[str] | bytes | IO[bytes]


class ArtifactError(DataValidationError):
    """A model artifact (tarball, zip or NDArray list) is malformed or not what was expected."""


class FMParameters(NamedTuple):
    """The weights of a factorization machine: ``y = w0 + x.w + sum_{f<g} <V_f, V_g> x_f x_g``."""

    w0: float
    w: np.ndarray  # (feature_dim,)
    V: np.ndarray  # (feature_dim, num_factors)


def _read_bytes(f: FileLike) -> bytes:
    if isinstance(f, (bytes, bytearray, memoryview)):
        return bytes(f)
    if isinstance(f, (str, os.PathLike)):
        with open(f, "rb") as fh:
            return fh.read()
    return f.read()


# ---------------------------------------------------------------------------------------------
# NDArray lists
# ---------------------------------------------------------------------------------------------


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
    count = int(np.prod(shape, dtype=np.int64))
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
    dense = np.zeros(shape, dtype=dtype)
    if stype == _ROW_SPARSE:
        dense[aux_arrays[0].astype(np.int64)] = values
    else:  # csr: aux 0 = indptr, aux 1 = column indices
        indptr, indices = (a.astype(np.int64) for a in aux_arrays)
        rows = np.repeat(np.arange(shape[0]), np.diff(indptr))
        dense[rows, indices] = values
    return dense


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
        trailing bytes, or a name count that is neither 0 nor the array count.
    """
    data = _read_bytes(f)
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
        names.append(cur.take(length, f"name {i}").decode("utf-8"))
    if cur.pos != len(data):
        raise ArtifactError(f"NDArray list: {len(data) - cur.pos} unexpected bytes after the names")
    return arrays, names


def write_ndarray_list(arrays: Sequence[np.ndarray], names: Sequence[str] | None = None) -> bytes:
    """Return the bytes of an MXNet NDArray list (dense V2 arrays), as ``mx.nd.save`` writes it.

    The inverse of :func:`read_ndarray_list`; it lets tests (and anyone deploying weights trained
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


# ---------------------------------------------------------------------------------------------
# model.tar.gz and the Factorization Machines zip
# ---------------------------------------------------------------------------------------------


def read_model_tar(f: FileLike) -> dict[str, bytes]:
    """Return ``{member name: bytes}`` of the regular files in a ``model.tar.gz``.

    Members are read in memory, never extracted to disk (so no path in the archive can escape).
    """
    data = _read_bytes(f)
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
            members = {}
            for member in tar.getmembers():
                if member.isfile():
                    handle = tar.extractfile(member)
                    assert handle is not None
                    members[member.name.lstrip("./") or member.name] = handle.read()
    except tarfile.TarError as err:
        raise ArtifactError(f"not a readable model.tar.gz ({len(data)} bytes): {err}") from err
    return members


def _strip(name: str) -> str:
    return name.split(":", 1)[1] if name.startswith(("arg:", "aux:")) else name


def read_fm_params(arrays: Mapping[str, np.ndarray], feature_dim: int | None = None) -> FMParameters:
    """Return ``(w0, w, V)`` from FM's named parameters, in either naming public code has met.

    - ``w0_weight`` (1,), ``w1_weight`` (feature_dim, 1), ``v`` (feature_dim, k);
    - ``Linear_Plus_Bias_bias`` (1,), ``Linear_Plus_Bias_weight`` (1, feature_dim),
      ``v`` (k, feature_dim).

    Names may carry MXNet's ``arg:`` / ``aux:`` prefix. ``V`` comes back as (feature_dim, k), float64.
    """
    params = {_strip(k): np.asarray(v) for k, v in arrays.items()}
    if {"w0_weight", "w1_weight", "v"} <= params.keys():
        b, w, V, v_features_first = params["w0_weight"], params["w1_weight"], params["v"], True
    elif {"Linear_Plus_Bias_bias", "Linear_Plus_Bias_weight", "v"} <= params.keys():
        b, w, V = params["Linear_Plus_Bias_bias"], params["Linear_Plus_Bias_weight"], params["v"]
        v_features_first = False
    else:
        raise ArtifactError(
            "not a Factorization Machines model: expected parameters w0_weight, w1_weight, v or "
            f"Linear_Plus_Bias_bias, Linear_Plus_Bias_weight, v; found {sorted(params)}"
        )
    if b.size != 1:
        raise ArtifactError(f"the FM bias has {b.size} values, expected 1 (shape {b.shape})")
    if w.ndim > 2 or (w.ndim == 2 and 1 not in w.shape):
        raise ArtifactError(f"the FM linear weights have shape {w.shape}, expected a vector")
    w = w.reshape(-1).astype(np.float64)
    dim = len(w)
    if V.ndim != 2:
        raise ArtifactError(f"the FM factors have shape {V.shape}, expected 2-D")
    if not v_features_first:
        V = V.T
    if V.shape[0] != dim and V.shape[1] == dim:  # an artifact that stores the other orientation
        V = V.T
    if V.shape[0] != dim:
        raise ArtifactError(f"the FM factors have shape {V.shape} but the linear weights {dim} features")
    if feature_dim is not None and dim != feature_dim:
        raise ArtifactError(f"the artifact has {dim} features, expected feature_dim={feature_dim}")
    return FMParameters(float(b.reshape(-1)[0]), w, np.ascontiguousarray(V, dtype=np.float64))


def _fm_zip_member(members: Mapping[str, bytes]) -> bytes:
    names = sorted(n for n in members if os.path.basename(n).startswith("model_algo-"))
    if not names:
        raise ArtifactError(f"model.tar.gz holds no model_algo-* file; members: {sorted(members)}")
    return members[names[0]]


def read_fm_artifact(f: FileLike, feature_dim: int | None = None) -> FMParameters:
    """Return ``(w0, w, V)`` from a Factorization Machines ``model.tar.gz``.

    Parameters
    ----------
    f : bytes, str, os.PathLike or binary file object
        The archive (as downloaded from ``ModelArtifacts.S3ModelArtifacts``).
    feature_dim : int, optional
        Checked against the artifact's number of features (and its ``meta.json`` when present).

    Raises
    ------
    ArtifactError
        If the archive has no ``model_algo-*`` member, that member is not a zip with ``params``,
        the parameters are not an NDArray list or not FM's, or the shapes disagree.
    """
    inner = _fm_zip_member(read_model_tar(f))
    try:
        with zipfile.ZipFile(io.BytesIO(inner)) as archive:
            files = {info.filename: archive.read(info) for info in archive.infolist() if not info.is_dir()}
    except zipfile.BadZipFile as err:
        raise ArtifactError(
            "model_algo-1 is not a zip (symbol.json + params): not a Factorization Machines "
            f"artifact ({err})"
        ) from err
    if "params" not in files:
        raise ArtifactError(f"model_algo-1 has no 'params' file; it holds {sorted(files)}")
    arrays, names = read_ndarray_list(files["params"])
    if len(names) != len(arrays):
        raise ArtifactError("the FM params file stores no parameter names")
    params = read_fm_params(dict(zip(names, arrays)), feature_dim)
    if "meta.json" in files:
        try:
            meta_dim = json.loads(files["meta.json"])["training_parameters"]["feature_dim"]
        except (ValueError, KeyError, TypeError):
            meta_dim = None
        if meta_dim is not None and int(meta_dim) != len(params.w):
            raise ArtifactError(f"meta.json says feature_dim={meta_dim}, params hold {len(params.w)}")
    return params


def write_fm_artifact(
    w0: float,
    w: np.ndarray,
    V: np.ndarray,
    *,
    naming: Literal["w0_weight", "Linear_Plus_Bias"] = "w0_weight",
    dtype: Any = np.float32,
) -> bytes:
    """Return a ``model.tar.gz`` laid out as SageMaker's Factorization Machines writes it.

    ``model_algo-1`` is a zip of ``symbol.json`` (a stub graph naming the parameters; MXNet itself
    is never used here), ``params`` (NDArray list, names prefixed ``arg:``) and ``meta.json``.
    ``naming`` picks either parameter naming :func:`read_fm_params` accepts.
    """
    w = np.asarray(w).reshape(-1)
    V = np.asarray(V)
    if V.ndim != 2 or V.shape[0] != len(w):
        raise ArtifactError(f"V must have shape (feature_dim={len(w)}, k), got {V.shape}")
    if naming == "w0_weight":
        params = {"w0_weight": np.array([w0]), "w1_weight": w[:, None], "v": V}
    elif naming == "Linear_Plus_Bias":
        params = {"Linear_Plus_Bias_bias": np.array([w0]), "Linear_Plus_Bias_weight": w[None, :], "v": V.T}
    else:
        raise ArtifactError(f"naming must be 'w0_weight' or 'Linear_Plus_Bias', got {naming!r}")
    blob = write_ndarray_list(
        [np.asarray(a, dtype=dtype) for a in params.values()], [f"arg:{k}" for k in params]
    )
    symbol = {"nodes": [{"op": "null", "name": k, "inputs": []} for k in params], "heads": []}
    meta = {"training_parameters": {"feature_dim": len(w), "num_factors": V.shape[1]}}
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as archive:
        archive.writestr("symbol.json", json.dumps(symbol))
        archive.writestr("params", blob)
        archive.writestr("meta.json", json.dumps(meta))
    outer = io.BytesIO()
    with tarfile.open(fileobj=outer, mode="w:gz") as tar:
        info = tarfile.TarInfo("model_algo-1")
        info.size = len(inner.getvalue())
        tar.addfile(info, io.BytesIO(inner.getvalue()))
    return outer.getvalue()
