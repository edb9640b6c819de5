"""The MXNet NDArray reader on real SageMaker output, round trips, other versions, FM weights."""

from __future__ import annotations

import io
import struct
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from movierec.exceptions import DataValidationError
from movierec.sagemaker.artifact import (
    ArtifactError,
    read_fm_artifact,
    read_fm_params,
    read_model_tar,
    read_ndarray_list,
    write_fm_artifact,
    write_ndarray_list,
)


@pytest.fixture(scope="module")
def kmeans_path(shared_fixtures) -> Path:
    return shared_fixtures / "sagemaker-artifact" / "kmeans-model.tar.gz"


@pytest.fixture(scope="module")
def kmeans_params(kmeans_path) -> bytes:
    return read_model_tar(kmeans_path)["model_algo-1"]


def test_kmeans_fixture_reads_as_the_readme_says(kmeans_params):
    arrays, names = read_ndarray_list(kmeans_params)
    assert names == []
    assert len(arrays) == 1
    centroids = arrays[0]
    assert centroids.shape == (10, 10) and centroids.dtype == np.float32
    # README's first row. Its 2nd and 3rd values equal the stored float32s exactly; its 1st and
    # 4th differ from the stored bits in the last digits (file: 0x44FB747D and 0x3D2F4FBA, README:
    # 0x44FB747E and 0x3D2F501A), hence the relative tolerance.
    assert centroids[0, 1] == np.float32(12.79208755493164)
    assert centroids[0, 2] == np.float32(6.764232158660889)
    np.testing.assert_allclose(
        centroids[0, :4], [2011.640380859375, 12.79208755493164, 6.764232158660889, 0.04280100017786026], rtol=1e-5
    )
    assert round(float(centroids.sum()), 3) == 20561.775


def test_kmeans_fixture_layout_decoded_independently(kmeans_params):
    # header 24 bytes, V2 magic, stype, ndim, 2 dims, context, type flag: data starts at byte 64
    magic, reserved, count = struct.unpack_from("<QQQ", kmeans_params, 0)
    assert (magic, reserved, count) == (0x112, 0, 1)
    first = struct.unpack_from("<f", kmeans_params, 64)[0]
    arrays, _ = read_ndarray_list(kmeans_params)
    assert arrays[0][0, 0] == np.float32(first)
    assert len(kmeans_params) == 64 + 400 + 8


def test_kmeans_fixture_writes_back_byte_for_byte(kmeans_params):
    arrays, names = read_ndarray_list(kmeans_params)
    assert write_ndarray_list(arrays, names) == kmeans_params


def test_kmeans_artifact_is_not_an_fm_artifact(kmeans_path):
    with pytest.raises(ArtifactError, match="not a zip"):
        read_fm_artifact(kmeans_path)


DTYPES = st.sampled_from(["<f4", "<f8", "<f2", "u1", "<i4", "i1", "<i8"])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        DTYPES.flatmap(lambda d: hnp.arrays(d, hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5))),
        max_size=4,
    ),
    st.booleans(),
)
def test_ndarray_list_round_trip(arrays, named):
    names = [f"arg:p{i}" for i in range(len(arrays))] if named else None
    back, back_names = read_ndarray_list(write_ndarray_list(arrays, names))
    assert back_names == (names or [])
    assert len(back) == len(arrays)
    for a, b in zip(arrays, back):
        assert b.dtype == a.dtype and b.shape == a.shape
        np.testing.assert_array_equal(a, b)


def _list(*arrays: bytes, names: list[str] | None = None) -> bytes:
    out = struct.pack("<QQQ", 0x112, 0, len(arrays)) + b"".join(arrays)
    names = names or []
    out += struct.pack("<Q", len(names)) + b"".join(struct.pack("<Q", len(n)) + n.encode() for n in names)
    return out


def test_reads_v1_arrays():
    data = np.arange(6, dtype="<f8").reshape(2, 3)
    v1 = struct.pack("<Ii2q", 0xF993FAC8, 2, 2, 3) + struct.pack("<iii", 1, 0, 1) + data.tobytes()
    (back,), _ = read_ndarray_list(_list(v1))
    np.testing.assert_array_equal(back, data)


def test_reads_legacy_arrays():
    data = np.array([1, -2, 3], dtype="<i4")
    legacy = struct.pack("<II", 1, 3) + struct.pack("<iii", 1, 0, 4) + data.tobytes()
    (back,), _ = read_ndarray_list(_list(legacy))
    np.testing.assert_array_equal(back, data)


def test_reads_empty_v2_array_and_v3_scalar():
    empty = struct.pack("<Iii", 0xF993FAC9, 0, 0)  # ndim 0: nothing follows
    scalar = struct.pack("<Iii", 0xF993FACA, 0, 0) + struct.pack("<iii", 1, 0, 0) + struct.pack("<f", 2.5)
    (a, b), _ = read_ndarray_list(_list(empty, scalar))
    assert a.size == 0
    assert b.shape == () and float(b) == 2.5


def test_reads_row_sparse_and_csr_arrays():
    values = np.arange(6, dtype="<f4").reshape(2, 3)
    row_sparse = (
        struct.pack("<Ii", 0xF993FAC9, 1)
        + struct.pack("<i2q", 2, 2, 3)  # storage shape
        + struct.pack("<i2q", 2, 4, 3)  # shape
        + struct.pack("<iii", 1, 0, 0)
        + struct.pack("<i", 6) + struct.pack("<iq", 1, 2)  # aux: int64 row indices, shape (2,)
        + values.tobytes()
        + np.array([0, 2], dtype="<i8").tobytes()
    )
    csr = (
        struct.pack("<Ii", 0xF993FAC9, 2)
        + struct.pack("<iq", 1, 2)
        + struct.pack("<i2q", 2, 2, 2)
        + struct.pack("<iii", 1, 0, 0)
        + struct.pack("<i", 6) + struct.pack("<iq", 1, 3)  # indptr
        + struct.pack("<i", 6) + struct.pack("<iq", 1, 2)  # column indices
        + np.array([5, 7], dtype="<f4").tobytes()
        + np.array([0, 1, 2], dtype="<i8").tobytes()
        + np.array([1, 0], dtype="<i8").tobytes()
    )
    (a, b), _ = read_ndarray_list(_list(row_sparse, csr))
    expected = np.zeros((4, 3), dtype=np.float32)
    expected[[0, 2]] = values
    np.testing.assert_array_equal(a, expected)
    np.testing.assert_array_equal(b, [[0, 5], [7, 0]])


@pytest.mark.parametrize(
    "data, message",
    [
        (b"\x00" * 24, "magic 0x0"),
        (struct.pack("<QQQ", 0x112, 0, 1) + struct.pack("<I", 0xDEADBEEF), "magic 0xDEADBEEF"),
        (struct.pack("<QQQ", 0x112, 0, 1) + struct.pack("<Ii", 0xF993FAC9, 7), "storage type 7"),
        (
            struct.pack("<QQQ", 0x112, 0, 1) + struct.pack("<Iiiq", 0xF993FAC9, 0, 1, 2) + struct.pack("<iii", 1, 0, 12),
            "type flag 12",
        ),
        (
            struct.pack("<QQQ", 0x112, 0, 1) + struct.pack("<Iiiq", 0xF993FAC9, 0, 1, 4) + struct.pack("<iii", 1, 0, 0) + b"\0" * 8,
            "truncated",
        ),
        (struct.pack("<QQQ", 0x112, 0, 0) + struct.pack("<Q", 0) + b"x", "unexpected bytes"),
        (struct.pack("<QQQ", 0x112, 0, 0) + struct.pack("<Q", 2), "2 names for 0 arrays"),
        (b"\x12\x01", "truncated"),
    ],
)
def test_malformed_lists_are_clear_errors(data, message):
    with pytest.raises(ArtifactError, match=message):
        read_ndarray_list(data)


def test_artifact_error_is_a_value_error():
    assert issubclass(ArtifactError, DataValidationError) and issubclass(ArtifactError, ValueError)


@pytest.fixture
def fm_weights():
    rng = np.random.default_rng(3)
    return 0.25, rng.normal(size=9), rng.normal(size=(9, 4))


@pytest.mark.parametrize("naming", ["w0_weight", "Linear_Plus_Bias"])
def test_fm_artifact_round_trip_in_both_namings(fm_weights, naming):
    w0, w, V = fm_weights
    params = read_fm_artifact(write_fm_artifact(w0, w, V, naming=naming), feature_dim=9)
    assert params.w0 == pytest.approx(w0)
    np.testing.assert_allclose(params.w, w, rtol=1e-6)
    np.testing.assert_allclose(params.V, V, rtol=1e-6)
    assert params.V.shape == (9, 4) and params.V.dtype == np.float64
    _, w_, _ = params  # unpacks like the (w0, w, V) tuple
    assert w_.shape == (9,)


def test_fm_artifact_layout(fm_weights):
    tar = read_model_tar(write_fm_artifact(*fm_weights))
    with zipfile.ZipFile(io.BytesIO(tar["model_algo-1"])) as archive:
        assert {"symbol.json", "params"} <= set(archive.namelist())
        _, names = read_ndarray_list(archive.read("params"))
    assert names == ["arg:w0_weight", "arg:w1_weight", "arg:v"]


def test_fm_params_accept_names_without_prefix_and_check_shapes(fm_weights):
    w0, w, V = fm_weights
    params = read_fm_params({"Linear_Plus_Bias_bias": np.array([w0]), "Linear_Plus_Bias_weight": w[None], "v": V.T})
    np.testing.assert_array_equal(params.V, V)
    with pytest.raises(ArtifactError, match="expected parameters"):
        read_fm_params({"weight": w})
    with pytest.raises(ArtifactError, match="feature_dim=10"):
        read_fm_params({"w0_weight": np.array([w0]), "w1_weight": w[:, None], "v": V}, feature_dim=10)
    with pytest.raises(ArtifactError, match="factors have shape"):
        read_fm_params({"w0_weight": np.array([w0]), "w1_weight": w[:, None], "v": V[:5]})


def test_fm_artifact_errors():
    with pytest.raises(ArtifactError, match="not a readable model.tar.gz"):
        read_fm_artifact(b"not a tarball")
    empty = io.BytesIO()
    with tarfile.open(fileobj=empty, mode="w:gz") as tar:
        info = tarfile.TarInfo("other")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(ArtifactError, match="no model_algo"):
        read_fm_artifact(empty.getvalue())
