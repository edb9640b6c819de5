"""SageMaker model artifacts: ``model.tar.gz``, MXNet NDArray lists and Factorization Machines weights.

SageMaker's MXNet-based built-in algorithms (k-means, Factorization Machines, Linear Learner, ...)
write their trained model to ``{OutputDataConfig.S3OutputPath}/{job}/output/model.tar.gz``. The
archive holds ``model_algo-1``:

- k-means: ``model_algo-1`` *is* an MXNet NDArray list file;
- Factorization Machines: ``model_algo-1`` is a zip holding ``symbol.json`` (the MXNet graph),
  ``params`` (an NDArray list file) and sometimes ``meta.json``.

The MXNet NDArray list format itself is read and written by `_ndarray`. Nothing here needs
MXNet, boto3 or network access.
"""

from __future__ import annotations

import io
import json
import lzma
import os
import tarfile
import zipfile
import zlib
from collections.abc import Mapping
from typing import Any, Literal, NamedTuple

import numpy as np

from movierec.sagemaker._ndarray import (
    ArtifactError,
    FileLike,
    read_bytes,
    read_ndarray_list,
    write_ndarray_list,
)

__all__ = [
    "MAX_ARTIFACT_BYTES",
    "ArtifactError",
    "FMParameters",
    "read_fm_artifact",
    "read_fm_params",
    "read_model_tar",
    "read_ndarray_list",
    "write_fm_artifact",
    "write_ndarray_list",
]


#: Cap on an inflated ``model.tar.gz``: far above any FM model that fits in memory, far below what a
#: small compressed bomb can inflate to.
MAX_ARTIFACT_BYTES = 2**31
_GZIP_MAGIC = b"\x1f\x8b"


class FMParameters(NamedTuple):
    """The weights of a factorization machine: ``y = w0 + x.w + sum_{f<g} <V_f, V_g> x_f x_g``."""

    w0: float
    w: np.ndarray  # (feature_dim,)
    V: np.ndarray  # (feature_dim, num_factors)


def read_model_tar(f: FileLike) -> dict[str, bytes]:
    """Return ``{member name: bytes}`` of the regular files in a ``model.tar.gz``.

    Members are read in memory, never extracted to disk (so no path in the archive can escape).
    A gzip stream is inflated whole first, so its length and CRC are checked: a truncated or
    altered download fails here, not as a half-read member.

    Raises
    ------
    ArtifactError
        If the data is not a tar archive, its gzip stream is truncated or corrupt, or it inflates
        past ``MAX_ARTIFACT_BYTES``.
    """
    data = read_bytes(f)
    if data[:2] == _GZIP_MAGIC:
        data = _gunzip(data)
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
            members = {}
            claimed = sum(member.size for member in tar.getmembers() if member.isfile())
            if claimed > MAX_ARTIFACT_BYTES:  # a bz2 or xz tarball is not inflated up front
                raise ArtifactError(
                    f"model.tar.gz claims {claimed} bytes of files, more than MAX_ARTIFACT_BYTES"
                )
            for member in tar.getmembers():
                if member.isfile():
                    handle = tar.extractfile(member)
                    assert handle is not None
                    members[member.name.lstrip("./") or member.name] = handle.read()
    except (tarfile.TarError, EOFError, OSError, zlib.error, lzma.LZMAError) as err:
        raise ArtifactError(f"not a readable model.tar.gz ({len(data)} bytes): {err}") from err
    return members


def _gunzip(data: bytes) -> bytes:
    """Return the inflated bytes of every gzip member in ``data``, checking each one's CRC and length."""
    out: list[bytes] = []
    size = 0
    rest = data
    try:
        while rest:
            inflater = zlib.decompressobj(wbits=31)  # 31: gzip header and trailer
            chunk = inflater.decompress(rest, MAX_ARTIFACT_BYTES + 1 - size)
            size += len(chunk)
            if size > MAX_ARTIFACT_BYTES:
                raise ArtifactError(
                    f"model.tar.gz inflates to more than MAX_ARTIFACT_BYTES={MAX_ARTIFACT_BYTES} bytes"
                )
            if not inflater.eof:
                raise ArtifactError(
                    f"model.tar.gz is truncated: its gzip stream ends without a trailer ({len(data)} bytes)"
                )
            out.append(chunk)
            rest = inflater.unused_data.lstrip(b"\0")  # gzip allows zero padding after a member
    except zlib.error as err:
        raise ArtifactError(f"model.tar.gz is not a valid gzip stream ({len(data)} bytes): {err}") from err
    return b"".join(out)


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
    dim = w.size
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
    w = w.reshape(-1).astype(np.float64)  # converted once the shapes agree
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
    files = _read_zip(_fm_zip_member(read_model_tar(f)))
    if "params" not in files:
        raise ArtifactError(f"model_algo-1 has no 'params' file; it holds {sorted(files)}")
    arrays, names = read_ndarray_list(files["params"])
    if len(names) != len(arrays):
        raise ArtifactError("the FM params file stores no parameter names")
    params = read_fm_params(dict(zip(names, arrays)), feature_dim)
    meta_dim = _meta_feature_dim(files.get("meta.json"))
    if meta_dim is not None and meta_dim != len(params.w):
        raise ArtifactError(f"meta.json says feature_dim={meta_dim}, params hold {len(params.w)}")
    return params


def _read_zip(inner: bytes) -> dict[str, bytes]:
    """Return the files of FM's inner zip; a corrupt or oversized zip raises [`ArtifactError`][movierec.sagemaker.artifact.ArtifactError]."""
    try:
        with zipfile.ZipFile(io.BytesIO(inner)) as archive:
            infos = [info for info in archive.infolist() if not info.is_dir()]
            claimed = sum(info.file_size for info in infos)
            if claimed > MAX_ARTIFACT_BYTES:  # zipfile stops each member at its claimed size
                raise ArtifactError(
                    f"model_algo-1 claims {claimed} bytes once inflated, more than MAX_ARTIFACT_BYTES"
                )
            return {info.filename: archive.read(info) for info in infos}
    except ArtifactError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, ValueError) as err:
        raise ArtifactError(
            f"model_algo-1 is not a readable zip (symbol.json + params): not a Factorization Machines "
            f"artifact, or a corrupt one ({type(err).__name__}: {err})"
        ) from err


def _meta_feature_dim(raw: bytes | None) -> int | None:
    """Return ``feature_dim`` of ``meta.json``, or None when the file or the key is missing or unreadable.

    It sits at the top level in artifacts MXNet's FM wrote, under ``training_parameters`` in others.
    """
    if raw is None:
        return None
    try:
        meta = json.loads(raw)
        value = meta.get("feature_dim", (meta.get("training_parameters") or {}).get("feature_dim"))
        return None if value is None else int(value)
    except (ValueError, TypeError, AttributeError):
        return None


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
    ``naming`` picks either parameter naming [`read_fm_params`][movierec.sagemaker.artifact.read_fm_params] accepts.
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
