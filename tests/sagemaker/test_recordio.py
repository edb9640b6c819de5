"""Tests of movierec.sagemaker.recordio against SageMaker SDK v2 files, and round trips."""

from __future__ import annotations

import hashlib
import io
import json
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

pytest.importorskip("google.protobuf", reason="the sagemaker extra (protobuf) is not installed")

from movierec.exceptions import DataValidationError, MovieRecError
from movierec.sagemaker import recordio
from movierec.sagemaker.recordio import (
    MAGIC,
    RecordIOError,
    iter_records,
    read_dense,
    read_sparse,
    write_dense,
    write_sparse,
)

FIXTURE_NAMES = [
    "dense_ratings.recordio",
    "sparse_labeled.recordio",
    "sparse_ratings.recordio",
    "sparse_unlabeled.recordio",
]
HYPOTHESIS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def recordio_dir(shared_fixtures) -> Path:
    return shared_fixtures / "recordio"


@pytest.fixture(scope="module")
def meta(recordio_dir) -> dict:
    return json.loads((recordio_dir / "README.json").read_text())


def _fixture_inputs(meta: dict, name: str) -> tuple[object, np.ndarray | None, dict]:
    info = meta["files"][name]
    labels = None if info["labels"] is None else np.asarray(info["labels"], dtype=np.float32)
    if "dense_matrix" in info:
        return np.asarray(info["dense_matrix"], dtype=np.float32), labels, info
    m = meta["sparse_matrix"]
    X = sp.coo_matrix(
        (np.asarray(m["values"], dtype=np.float32), (np.asarray(m["rows"]), np.asarray(m["cols"]))),
        shape=tuple(m["shape"]),
    )
    return X, labels, info


def _payloads(data: bytes) -> list[bytes]:
    return list(iter_records(io.BytesIO(data)))


def _frame(payload: bytes, flag: int = 0) -> bytes:
    pad = -len(payload) & 3
    return struct.pack("<II", MAGIC, len(payload) | (flag << 29)) + payload + b"\x00" * pad


# --------------------------------------------------------------------------- fixtures (SDK v2)


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_fixture_written_byte_for_byte(name: str, meta, recordio_dir) -> None:
    X, labels, info = _fixture_inputs(meta, name)
    buf = io.BytesIO()
    if sp.issparse(X):
        write_sparse(buf, X, labels)
    else:
        write_dense(buf, X, labels)
    data = buf.getvalue()
    expected = (recordio_dir / name).read_bytes()
    assert len(data) == info["bytes"] == len(expected)
    assert hashlib.sha256(data).hexdigest() == info["sha256"]
    assert data == expected


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_fixture_read_back(name: str, meta, recordio_dir) -> None:
    X, labels, _ = _fixture_inputs(meta, name)
    expected = X.toarray() if sp.issparse(X) else X
    path = recordio_dir / name

    got_sparse, got_labels = read_sparse(path)
    assert isinstance(got_sparse, sp.csr_matrix)
    assert got_sparse.dtype == np.float32
    assert got_sparse.shape == expected.shape
    np.testing.assert_array_equal(got_sparse.toarray(), expected)

    with open(path, "rb") as fh:
        got_dense, got_labels2 = read_dense(fh)
        assert not fh.closed
    assert got_dense.dtype == np.float32
    np.testing.assert_array_equal(got_dense, expected)

    for got in (got_labels, got_labels2):
        if labels is None:
            assert got is None
        else:
            assert got is not None and got.dtype == np.float32
            np.testing.assert_array_equal(got, labels)
    assert len(list(iter_records(str(path)))) == expected.shape[0]


def test_fixture_readme_lists_the_files(meta, recordio_dir) -> None:
    files = meta["files"]
    assert set(files) == set(FIXTURE_NAMES)
    for name in files:
        assert (recordio_dir / name).stat().st_size == files[name]["bytes"]


def test_fixture_sparse_formats_give_same_bytes(meta) -> None:
    X, labels, info = _fixture_inputs(meta, "sparse_labeled.recordio")
    for fmt in ("csr", "csc", "coo", "lil", "dok"):
        buf = io.BytesIO()
        write_sparse(buf, X.asformat(fmt), labels)
        assert hashlib.sha256(buf.getvalue()).hexdigest() == info["sha256"], fmt
    buf = io.BytesIO()
    write_sparse(buf, sp.csr_array(X), labels)
    assert hashlib.sha256(buf.getvalue()).hexdigest() == info["sha256"]


# --------------------------------------------------------------------------- dtypes / encoding


def test_import_is_lazy() -> None:
    code = (
        "import sys, movierec.sagemaker.recordio as r; "
        "assert 'google.protobuf' not in sys.modules, 'protobuf imported'"
    )
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=root
    )
    assert result.returncode == 0, result.stderr


def test_error_hierarchy() -> None:
    assert issubclass(RecordIOError, DataValidationError)
    assert issubclass(RecordIOError, MovieRecError)
    assert issubclass(RecordIOError, ValueError)


def test_int64_dense_encodes_int32_tensor_bytes() -> None:
    # field numbers from record.proto: Value.int32_tensor = 7, Int32Tensor.values = 1 (packed).
    buf = io.BytesIO()
    write_dense(buf, np.array([[1, -1]], dtype=np.int64), np.array([2], dtype=np.int64))
    tensor = b"\x0a\x0b\x01" + b"\xff" * 9 + b"\x01"
    features = b"\x0a\x06values\x12\x0f\x3a\x0d" + tensor
    label = b"\x0a\x06values\x12\x05\x3a\x03\x0a\x01\x02"
    payload = b"\x0a" + bytes([len(features)]) + features + b"\x12" + bytes([len(label)]) + label
    assert buf.getvalue() == _frame(payload)
    X, y = read_dense(io.BytesIO(buf.getvalue()), dtype=np.int64)
    np.testing.assert_array_equal(X, [[1, -1]])
    np.testing.assert_array_equal(y, [2])


def test_float64_sparse_encodes_float64_tensor_bytes() -> None:
    # Value.float64_tensor = 3; values (1, packed double), keys (2), shape (3).
    buf = io.BytesIO()
    write_sparse(buf, sp.csr_matrix(np.array([[0.0, 2.5]])))
    tensor = b"\x0a\x08" + struct.pack("<d", 2.5) + b"\x12\x01\x01" + b"\x1a\x01\x02"
    features = b"\x0a\x06values\x12\x12\x1a\x10" + tensor
    payload = b"\x0a" + bytes([len(features)]) + features
    assert len(payload) % 4 == 2
    assert buf.getvalue() == _frame(payload)


@pytest.mark.parametrize(
    ("x_dtype", "y_dtype", "x_kind", "y_kind"),
    [
        (np.float32, np.float32, "float32_tensor", "float32_tensor"),
        (np.float64, np.float64, "float64_tensor", "float64_tensor"),
        (np.int64, np.int64, "int32_tensor", "int32_tensor"),
        (np.int32, np.float64, "int32_tensor", "float64_tensor"),
        (np.float32, np.int64, "float32_tensor", "int32_tensor"),
        (np.uint8, np.float32, "int32_tensor", "float32_tensor"),
    ],
)
@pytest.mark.parametrize("writer", ["sparse", "dense"])
def test_tensor_type_follows_dtype(x_dtype, y_dtype, x_kind, y_kind, writer) -> None:
    dense = np.array([[0, 1, 2], [3, 0, 0]], dtype=x_dtype)
    labels = np.array([1, 0], dtype=y_dtype)
    buf = io.BytesIO()
    if writer == "sparse":
        write_sparse(buf, sp.csr_matrix(dense), labels)
    else:
        write_dense(buf, dense, labels)
    record = recordio._messages().Record()
    for payload in _payloads(buf.getvalue()):
        record.ParseFromString(payload)
        assert record.features["values"].WhichOneof("value") == x_kind
        assert record.label["values"].WhichOneof("value") == y_kind
        tensor = getattr(record.features["values"], x_kind)
        if writer == "sparse":
            assert list(tensor.shape) == [3]
        else:
            assert len(tensor.keys) == 0 and len(tensor.shape) == 0
    X, y = read_dense(io.BytesIO(buf.getvalue()))
    np.testing.assert_array_equal(X, dense.astype(np.float32))
    np.testing.assert_array_equal(y, labels.astype(np.float32))


def test_python_lists_become_float64() -> None:
    buf = io.BytesIO()
    write_dense(buf, [[1.0, 2.0]], [3.0])
    record = recordio._messages().Record()
    record.ParseFromString(_payloads(buf.getvalue())[0])
    assert record.features["values"].WhichOneof("value") == "float64_tensor"
    assert record.label["values"].WhichOneof("value") == "float64_tensor"


@pytest.mark.parametrize("dtype", [np.float16, np.bool_, np.complex64, object])
def test_unsupported_dtype_rejected(dtype) -> None:
    with pytest.raises(RecordIOError, match="dtype"):
        write_dense(io.BytesIO(), np.ones((2, 2), dtype=dtype))
    with pytest.raises(RecordIOError, match="dtype"):
        write_dense(io.BytesIO(), np.ones((2, 2), dtype=np.float32), np.ones(2, dtype=dtype))
    if dtype in (np.bool_, np.complex64):  # scipy.sparse has no float16 or object matrices
        with pytest.raises(RecordIOError, match="dtype"):
            write_sparse(io.BytesIO(), sp.csr_matrix(np.ones((2, 2), dtype=dtype)))


def test_int32_overflow_rejected() -> None:
    with pytest.raises(RecordIOError, match="int32"):
        write_dense(io.BytesIO(), np.array([[2**31]], dtype=np.int64))
    with pytest.raises(RecordIOError, match="int32"):
        write_sparse(io.BytesIO(), sp.csr_matrix(np.array([[0, -(2**31) - 1]], dtype=np.int64)))
    with pytest.raises(RecordIOError, match="int32"):
        write_dense(io.BytesIO(), np.zeros((1, 1), np.float32), np.array([2**40]))


def test_bad_writer_inputs() -> None:
    with pytest.raises(RecordIOError, match="write_dense"):
        write_sparse(io.BytesIO(), np.eye(2, dtype=np.float32))
    with pytest.raises(RecordIOError, match="write_sparse"):
        write_dense(io.BytesIO(), sp.eye(2, dtype=np.float32, format="csr"))
    with pytest.raises(RecordIOError, match="2-D"):
        write_dense(io.BytesIO(), np.zeros((2, 2, 2), np.float32))
    with pytest.raises(RecordIOError, match="labels"):
        write_dense(io.BytesIO(), np.zeros((3, 2), np.float32), np.zeros(2, np.float32))
    with pytest.raises(RecordIOError, match="labels"):
        write_sparse(io.BytesIO(), sp.csr_matrix((3, 2), dtype=np.float32), np.zeros(2, np.float32))
    with pytest.raises(RecordIOError, match="1-D"):
        write_dense(io.BytesIO(), np.zeros((3, 2), np.float32), np.zeros((3, 1), np.float32))


def test_paths_and_open_files(tmp_path: Path) -> None:
    X = sp.random(5, 4, density=0.5, format="csr", dtype=np.float32, random_state=1)
    y = np.arange(5, dtype=np.float32)
    write_sparse(tmp_path / "a.rec", X, y)
    write_sparse(str(tmp_path / "b.rec"), X, y)
    with open(tmp_path / "c.rec", "wb") as fh:
        fh.write(b"")
        write_sparse(fh, X, y)
        assert not fh.closed
    blobs = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert len(set(blobs.values())) == 1
    got, labels = read_sparse(str(tmp_path / "a.rec"))
    assert (got != X).nnz == 0
    np.testing.assert_array_equal(labels, y)


def test_empty_inputs() -> None:
    buf = io.BytesIO()
    write_sparse(buf, sp.csr_matrix((0, 5), dtype=np.float32))
    write_dense(buf, np.zeros((0, 5), np.float32))
    assert buf.getvalue() == b""
    X, y = read_sparse(io.BytesIO(b""))
    assert X.shape == (0, 0) and y is None
    D, y = read_dense(io.BytesIO(b""))
    assert D.shape == (0, 0) and D.dtype == np.float32 and y is None


def test_sparse_writer_keeps_stored_order_and_explicit_zeros() -> None:
    # Unsorted indices and explicit zeros are written as stored (as SDK v2's getrow does);
    # the reader returns canonical CSR.
    X = sp.csr_matrix(
        (np.array([3.0, 0.0, 1.0], np.float32), np.array([2, 0, 1]), np.array([0, 3])), shape=(1, 4)
    )
    assert not X.has_sorted_indices
    buf = io.BytesIO()
    write_sparse(buf, X)
    record = recordio._messages().Record()
    record.ParseFromString(_payloads(buf.getvalue())[0])
    tensor = record.features["values"].float32_tensor
    assert list(tensor.keys) == [2, 0, 1]
    assert list(tensor.values) == [3.0, 0.0, 1.0]
    got, _ = read_sparse(io.BytesIO(buf.getvalue()))
    assert got.has_canonical_format
    np.testing.assert_array_equal(got.indices, [0, 1, 2])
    np.testing.assert_array_equal(got.toarray(), [[0, 1, 3, 0]])


# --------------------------------------------------------------------------- round trips


def _sdk_v2_sparse(X: sp.spmatrix, labels: np.ndarray | None) -> bytes:
    """SDK v2's algorithm, as a test oracle: csr.getrow per row, values/keys/label/shape."""
    Record = recordio._messages().Record
    csr = X.tocsr()
    out = io.BytesIO()
    record = Record()
    for i in range(csr.shape[0]):
        record.Clear()
        row = csr.getrow(i)
        record.features["values"].float32_tensor.values.extend(row.data)
        record.features["values"].float32_tensor.keys.extend(row.indices.astype(np.uint64))
        if labels is not None:
            record.label["values"].float32_tensor.values.extend([labels[i]])
        record.features["values"].float32_tensor.shape.extend([csr.shape[1]])
        out.write(_frame(record.SerializeToString()))
    return out.getvalue()


_floats32 = st.one_of(
    st.just(0.0),
    st.floats(width=32, allow_nan=False, allow_infinity=False),
)


@st.composite
def sparse_cases(draw):
    n_rows = draw(st.integers(1, 8))
    n_cols = draw(st.sampled_from([1, 1, 2, 5, 13]))
    dense = draw(hnp.arrays(np.float32, (n_rows, n_cols), elements=_floats32))
    dense[dense == 0] = 0.0  # no negative zeros: they are stored like any value
    zero_rows = draw(st.lists(st.integers(0, n_rows - 1), max_size=n_rows))
    dense[zero_rows] = 0.0
    explicit = draw(st.booleans())
    if explicit:  # store every entry of the zero rows explicitly: rows of all zeros
        coo = sp.coo_matrix(dense)
        extra_r = np.repeat(np.asarray(sorted(set(zero_rows)), dtype=np.int64), n_cols)
        extra_c = np.tile(np.arange(n_cols), len(set(zero_rows)))
        X = sp.csr_matrix(
            (
                np.concatenate([coo.data, np.zeros(extra_r.size, np.float32)]),
                (np.concatenate([coo.row, extra_r]), np.concatenate([coo.col, extra_c])),
            ),
            shape=dense.shape,
        )
    else:
        X = sp.csr_matrix(dense)
    fmt = draw(st.sampled_from(["csr", "csc", "coo", "lil"]))
    labels = draw(st.none() | hnp.arrays(np.float32, n_rows, elements=_floats32))
    return dense, X.asformat(fmt), labels


@HYPOTHESIS
@given(sparse_cases())
def test_sparse_round_trip(case) -> None:
    dense, X, labels = case
    buf = io.BytesIO()
    write_sparse(buf, X, labels)
    data = buf.getvalue()
    assert data == _sdk_v2_sparse(X, labels)
    assert len(data) % 4 == 0

    got, got_labels = read_sparse(io.BytesIO(data))
    assert got.shape == dense.shape and got.dtype == np.float32
    np.testing.assert_array_equal(got.toarray(), dense)
    got_dense, got_labels2 = read_dense(io.BytesIO(data))
    np.testing.assert_array_equal(got_dense, dense)
    if labels is None:
        assert got_labels is None and got_labels2 is None
    else:
        np.testing.assert_array_equal(got_labels, labels)
        np.testing.assert_array_equal(got_labels2, labels)


@HYPOTHESIS
@given(
    st.sampled_from([np.float32, np.float64]).flatmap(
        lambda dt: st.tuples(
            hnp.arrays(
                dt,
                hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=9),
                elements=st.floats(width=32 if dt == np.float32 else 64, allow_nan=False),
            ),
            st.booleans(),
        )
    )
)
def test_dense_round_trip(case) -> None:
    array, with_labels = case
    labels = array[:, 0].copy() if with_labels else None
    buf = io.BytesIO()
    write_dense(buf, array, labels)
    got, got_labels = read_dense(io.BytesIO(buf.getvalue()), dtype=array.dtype)
    assert got.dtype == array.dtype
    np.testing.assert_array_equal(got, array)
    if labels is None:
        assert got_labels is None
    else:
        np.testing.assert_array_equal(got_labels, labels)
    # dense records read as sparse: same matrix
    sparse, _ = read_sparse(io.BytesIO(buf.getvalue()), dtype=array.dtype)
    np.testing.assert_array_equal(sparse.toarray(), array)


@HYPOTHESIS
@given(
    hnp.arrays(
        np.int64,
        hnp.array_shapes(min_dims=2, max_dims=2, max_side=6),
        elements=st.integers(-(2**31), 2**31 - 1),
    )
)
def test_int_round_trip(array) -> None:
    buf = io.BytesIO()
    write_dense(buf, array, array[:, 0])
    got, labels = read_dense(io.BytesIO(buf.getvalue()), dtype=np.int64)
    np.testing.assert_array_equal(got, array)
    np.testing.assert_array_equal(labels, array[:, 0])


# --------------------------------------------------------------------------- corrupt input


def _two_by_three() -> bytes:
    buf = io.BytesIO()
    X = sp.csr_matrix(np.array([[1, 0, 2], [0, 3, 0], [4, 0, 0]], dtype=np.float32))
    write_sparse(buf, X, np.array([1, 2, 3], np.float32))
    return buf.getvalue()


def _frame_offsets(data: bytes) -> list[int]:
    offsets, pos = [], 0
    while pos < len(data):
        offsets.append(pos)
        (length,) = struct.unpack_from("<I", data, pos + 4)
        pos += 8 + ((length + 3) & ~3)
    return offsets


@pytest.mark.parametrize("cut", ["header", "payload", "padding"])
def test_truncated_file(cut: str) -> None:
    data = _two_by_three()
    offsets = _frame_offsets(data)
    start = offsets[2]
    (length,) = struct.unpack_from("<I", data, start + 4)
    assert length % 4, "fixture needs padding"
    end = {"header": start + 5, "payload": start + 8 + length - 3, "padding": start + 8 + length}[cut]
    with pytest.raises(RecordIOError, match=f"record 2 at byte offset {start}"):
        read_sparse(io.BytesIO(data[:end]))
    with pytest.raises(RecordIOError, match="record 2"):
        list(iter_records(io.BytesIO(data[:end])))


def test_bad_magic() -> None:
    data = bytearray(_two_by_three())
    start = _frame_offsets(bytes(data))[1]
    data[start : start + 4] = b"RIFF"
    with pytest.raises(RecordIOError, match=f"record 1 at byte offset {start}: bad magic"):
        read_dense(io.BytesIO(bytes(data)))
    with pytest.raises(RecordIOError, match="bad magic"):
        read_sparse(io.BytesIO(b"PK\x03\x04" + bytes(60)))


def test_corrupt_payload() -> None:
    data = bytearray(_two_by_three())
    start = _frame_offsets(bytes(data))[1]
    (length,) = struct.unpack_from("<I", data, start + 4)
    data[start + 8 : start + 8 + length] = b"\xff" * length
    with pytest.raises(RecordIOError, match=f"record 1 at byte offset {start}: payload .* not a Record"):
        read_sparse(io.BytesIO(bytes(data)))


def test_length_beyond_end() -> None:
    data = bytearray(_two_by_three())
    struct.pack_into("<I", data, 4, 10_000)
    with pytest.raises(RecordIOError, match="record 0 at byte offset 0: .*past the end"):
        read_sparse(io.BytesIO(bytes(data)))


def _record(**features) -> bytes:
    M = recordio._messages()
    record = M.Record()
    for name, (values, keys, shape) in features.items():
        tensor = record.features[name].float32_tensor
        tensor.values.extend(values)
        tensor.keys.extend(keys)
        tensor.shape.extend(shape)
    return record.SerializeToString()


def test_missing_values_feature() -> None:
    data = _frame(_record(values=([1.0], [0], [2]))) + _frame(_record(other=([1.0], [], [])))
    with pytest.raises(
        RecordIOError, match=r"record 1 at byte offset \d+: no 'values' feature \(features: other\)"
    ):
        read_sparse(io.BytesIO(data))
    bytes_record = recordio._messages().Record()
    bytes_record.features["values"].bytes.value.append(b"jpeg")
    with pytest.raises(RecordIOError, match="holds bytes"):
        read_dense(io.BytesIO(_frame(bytes_record.SerializeToString())))


@pytest.mark.parametrize(
    ("records", "message"),
    [
        (
            [([1.0], [0], [7]), ([1.0], [0], [5])],
            "record 1 .*inconsistent shapes: 5 columns, but record 0 has 7",
        ),
        ([([1.0, 2.0], [], []), ([1.0, 2.0, 3.0], [], [])], "record 1 .*inconsistent shapes"),
        ([([1.0, 2.0], [], [3])], "record 0 .*dense tensor of 2 values has shape \\[3\\]"),
        ([([1.0, 2.0], [0], [3])], "record 0 .*2 values but 1 keys"),
        ([([1.0], [0], [3]), ([1.0], [3], [3])], "record 1 .*key 3 is outside the 3 columns"),
        ([([1.0], [0], [2, 2])], "record 0 .*rank 1"),
    ],
)
def test_inconsistent_shapes(records, message) -> None:
    data = b"".join(_frame(_record(values=r)) for r in records)
    with pytest.raises(RecordIOError, match=message):
        read_sparse(io.BytesIO(data))
    with pytest.raises(RecordIOError, match=message):
        read_dense(io.BytesIO(data))


def test_labels_on_some_records_only() -> None:
    M = recordio._messages()
    a, b = M.Record(), M.Record()
    for r in (a, b):
        r.features["values"].float32_tensor.values.extend([1.0])
    a.label["values"].float32_tensor.values.append(1.0)
    data = _frame(a.SerializeToString()) + _frame(b.SerializeToString())
    with pytest.raises(RecordIOError, match="record 1 .*has no label"):
        read_sparse(io.BytesIO(data))
    b.label["values"].float32_tensor.values.extend([1.0, 2.0])
    data = _frame(a.SerializeToString()) + _frame(b.SerializeToString())
    with pytest.raises(RecordIOError, match="record 1 .*label has 2 values"):
        read_dense(io.BytesIO(data))


def test_sparse_records_without_shape_infer_width() -> None:
    data = _frame(_record(values=([1.0], [4], []))) + _frame(_record(values=([2.0, 5.0], [0, 1], [])))
    X, _ = read_sparse(io.BytesIO(data))
    assert X.shape == (2, 5)
    np.testing.assert_array_equal(X.toarray(), [[0, 0, 0, 0, 1], [2, 5, 0, 0, 0]])


def test_multipart_records_reassembled() -> None:
    magic_value = np.frombuffer(struct.pack("<I", MAGIC), dtype=np.float32)
    array = np.array([[1.0, magic_value[0], 2.0]], dtype=np.float32)
    buf = io.BytesIO()
    write_dense(buf, array)
    payload = _payloads(buf.getvalue())[0]
    cut = payload.index(struct.pack("<I", MAGIC))
    split = _frame(payload[:cut], flag=1) + _frame(payload[cut + 4 :], flag=3)
    assert list(iter_records(io.BytesIO(split))) == [payload]
    got, _ = read_dense(io.BytesIO(split + buf.getvalue()))
    np.testing.assert_array_equal(got, np.vstack([array, array]))

    with pytest.raises(RecordIOError, match="record 0 .*without a first part"):
        list(iter_records(io.BytesIO(_frame(payload, flag=3))))
    with pytest.raises(RecordIOError, match="record 0 .*no final part"):
        list(iter_records(io.BytesIO(_frame(payload[:cut], flag=1))))
    with pytest.raises(RecordIOError, match="record 0 .*interrupted"):
        list(iter_records(io.BytesIO(_frame(payload[:cut], flag=1) + _frame(payload))))
