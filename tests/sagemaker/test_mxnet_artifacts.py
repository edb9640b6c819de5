"""Factorization Machines artifacts written by real MXNet 1.9.1: the reader reproduces MXNet's predictions.

The fixtures (``sagemaker-artifact/fm-*-model.tar.gz``, see ``../shared/fixtures/README.md``) hold
row_sparse ``w1_weight`` and ``v``, as SageMaker's FM saves them; ``fm-README.json`` gives MXNet's own
predictions for 25 (user, movie) rows. Truncated or corrupted copies must fail with an
:class:`ArtifactError` that says what is wrong, never a raw struct, zip, gzip or index error.
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from movierec import SageMakerFM
from movierec.sagemaker import artifact
from movierec.sagemaker.artifact import (
    ArtifactError,
    read_fm_artifact,
    read_fm_params,
    read_model_tar,
    read_ndarray_list,
)

KINDS = ("regressor", "binary_classifier")
V2_MAGIC, ROW_SPARSE = 0xF993FAC9, 1


@pytest.fixture(scope="module")
def fm_dir(shared_fixtures: Path) -> Path:
    return shared_fixtures / "sagemaker-artifact"


@pytest.fixture(scope="module")
def readme(fm_dir: Path) -> dict:
    return json.loads((fm_dir / "fm-README.json").read_text())


def fixture_bytes(fm_dir: Path, readme: dict, kind: str) -> bytes:
    data = (fm_dir / readme[kind]["file"]).read_bytes()
    assert hashlib.sha256(data).hexdigest() == readme[kind]["sha256"], "the shared fixture changed"
    return data


def fm_scores(params, readme: dict, kind: str) -> np.ndarray:
    """FM's prediction of the README's test rows (one-hot user, one-hot movie), as MXNet computes it."""
    users = np.array(readme["test_user_idx"])
    movies = readme["n_users"] + np.array(readme["test_item_idx"])
    linear = params.w0 + params.w[users] + params.w[movies]
    scores = linear + np.einsum("nk,nk->n", params.V[users], params.V[movies])
    return 1 / (1 + np.exp(-scores)) if kind == "binary_classifier" else scores


def inner_files(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(read_model_tar(data)["model_algo-1"])) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def pack(files: dict[str, bytes] | None = None, *, inner: bytes | None = None, gz: bool = True) -> bytes:
    """Return a model.tar.gz whose model_algo-1 is ``inner`` or a zip of ``files``."""
    if inner is None:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for name, content in (files or {}).items():
                archive.writestr(name, content)
        inner = buffer.getvalue()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz" if gz else "w") as tar:
        info = tarfile.TarInfo("model_algo-1")
        info.size = len(inner)
        tar.addfile(info, io.BytesIO(inner))
    return out.getvalue()


def same_params(a, b) -> bool:
    return a.w0 == b.w0 and np.array_equal(a.w, b.w) and np.array_equal(a.V, b.V)


# -- MXNet's own predictions --------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_the_reader_reproduces_mxnet_predictions(fm_dir, readme, kind):
    params = read_fm_artifact(fixture_bytes(fm_dir, readme, kind), feature_dim=readme["feature_dim"])
    assert params.V.shape == (readme["feature_dim"], readme["num_factors"])
    assert params.w0 == readme[kind]["w0"]  # float32 in the file, printed exactly in the README
    np.testing.assert_allclose(
        fm_scores(params, readme, kind), readme[kind]["mxnet_predictions"], rtol=0, atol=1e-6
    )


@pytest.mark.parametrize("kind", KINDS)
def test_the_fixtures_store_row_sparse_parameters(fm_dir, readme, kind):
    files = inner_files(fixture_bytes(fm_dir, readme, kind))
    assert json.loads(files["meta.json"])["feature_dim"] == readme["feature_dim"]
    arrays, names = read_ndarray_list(files["params"])
    shapes = {name: array.shape for name, array in zip(names, arrays)}
    assert shapes == {"arg:w0_weight": (1,), "arg:w1_weight": (70, 1), "arg:v": (70, 4)}
    # each sparse parameter's header: V2 magic, storage type 1 (row_sparse)
    assert files["params"].count(struct.pack("<Ii", V2_MAGIC, ROW_SPARSE)) == 2


def test_a_wrong_feature_dim_is_refused(fm_dir, readme):
    with pytest.raises(ArtifactError, match="70 features, expected feature_dim=71"):
        read_fm_artifact(fixture_bytes(fm_dir, readme, "regressor"), feature_dim=71)


@pytest.mark.parametrize("kind", KINDS)
def test_sagemaker_fm_scores_the_real_artifact_as_mxnet_does(moto, fm_dir, readme, kind):
    """The whole path: a training job on moto, its model.tar.gz from MXNet, SageMakerFM.predict."""
    n_users, n_items = readme["n_users"], readme["n_items"]
    rows = np.arange(2 * n_items)  # every user and every movie rated at least once
    ratings = pd.DataFrame(
        {"userId": 1 + rows % n_users, "movieId": 1 + rows % n_items, "rating": 1.0 + rows % 5}
    )
    config = moto.config(test_fraction=0)
    model = SageMakerFM(
        backend="sagemaker", sagemaker=config, num_factors=4, predictor_type=kind, random_state=0
    )
    with model.fit(ratings) as fm:
        assert fm.feature_names_ == [f"user={u}" for u in range(1, 31)] + [f"movie={m}" for m in range(1, 41)]
        job = moto.client("sagemaker").describe_training_job(TrainingJobName=fm.training_job_)
        moto.put_artifact(job["ModelArtifacts"]["S3ModelArtifacts"], fixture_bytes(fm_dir, readme, kind))
        pairs = pd.DataFrame(
            {
                "userId": 1 + np.array(readme["test_user_idx"]),
                "movieId": 1 + np.array(readme["test_item_idx"]),
            }
        )
        predicted = fm.predict(pairs)
    np.testing.assert_allclose(predicted, readme[kind]["mxnet_predictions"], rtol=0, atol=1e-6)


# -- truncated and corrupted copies -------------------------------------------------------------
def test_every_truncation_is_an_artifact_error(fm_dir, readme):
    data = fixture_bytes(fm_dir, readme, "regressor")
    for size in range(len(data)):
        with pytest.raises(ArtifactError):
            read_fm_artifact(data[:size])


def test_truncated_gzip_says_so(fm_dir, readme):
    data = fixture_bytes(fm_dir, readme, "regressor")
    with pytest.raises(ArtifactError, match="truncated: its gzip stream ends without a trailer"):
        read_fm_artifact(data[:-4])  # everything but the stream's length


def test_every_flipped_byte_fails_or_changes_nothing(fm_dir, readme):
    """gzip's CRC covers the content: a flip either fails or hit a header field (name, time)."""
    data = fixture_bytes(fm_dir, readme, "regressor")
    original = read_fm_artifact(data)
    unchanged = []
    for i in range(len(data)):
        flipped = data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1 :]
        try:
            params = read_fm_artifact(flipped)
        except ArtifactError:
            continue
        assert same_params(params, original), f"a flip at byte {i} changed the weights silently"
        unchanged.append(i)
    assert max(unchanged) < 40  # only the gzip header (mtime, flags, file name) is not checked


def test_flips_inside_the_zip_fail_or_change_nothing(fm_dir, readme):
    """The zip's CRCs cover symbol.json, params and meta.json (checked on every third byte)."""
    inner = read_model_tar(fixture_bytes(fm_dir, readme, "regressor"))["model_algo-1"]
    original = read_fm_artifact(pack(inner=inner, gz=False))
    for i in range(0, len(inner), 3):
        flipped = inner[:i] + bytes([inner[i] ^ 0xFF]) + inner[i + 1 :]
        try:
            params = read_fm_artifact(pack(inner=flipped, gz=False))
        except ArtifactError:
            continue
        assert same_params(params, original), f"a flip at byte {i} of model_algo-1 changed the weights"


def read_params(blob: bytes):
    """What read_fm_artifact does with the params file, without packing it in a zip and a tarball."""
    arrays, names = read_ndarray_list(blob)
    return read_fm_params(dict(zip(names, arrays)))


def test_every_corrupted_params_byte_is_an_artifact_error_or_a_value(fm_dir, readme):
    """The NDArray list has no checksum: a flip may change a weight, but never escapes as a raw error."""
    blob = inner_files(fixture_bytes(fm_dir, readme, "regressor"))["params"]
    failed = 0
    for i in range(len(blob)):
        for mask in (0xFF, 0x01):
            try:
                read_params(blob[:i] + bytes([blob[i] ^ mask]) + blob[i + 1 :])
            except ArtifactError:
                failed += 1
    assert failed > len(blob) // 4  # headers, shapes, indices and names are checked
    for size in range(len(blob)):
        with pytest.raises(ArtifactError):
            read_params(blob[:size])


def test_a_row_index_out_of_range_is_named(fm_dir, readme):
    files = inner_files(fixture_bytes(fm_dir, readme, "regressor"))
    rows = np.arange(70, dtype="<i8").tobytes()
    assert rows in files["params"]
    wrong = np.append(np.arange(69), 70).astype("<i8").tobytes()
    params = files["params"].replace(rows, wrong, 1)
    with pytest.raises(
        ArtifactError, match=r"row_sparse.*row indices must increase strictly within \[0, 70\)"
    ):
        read_fm_artifact(pack(files | {"params": params}))


def test_a_huge_sparse_shape_is_refused_before_allocating(fm_dir, readme):
    files = inner_files(fixture_bytes(fm_dir, readme, "regressor"))
    header = struct.pack("<qqi", 70, 4, 2) + struct.pack("<qq", 70, 4)  # storage shape, then shape, of v
    assert header in files["params"]
    huge = struct.pack("<qqi", 70, 4, 2) + struct.pack("<qq", 2**40, 4)
    params = files["params"].replace(header, huge, 1)
    with pytest.raises(ArtifactError, match="once dense: a corrupt shape"):
        read_fm_artifact(pack(files | {"params": params}))


def test_a_name_that_is_not_utf8_is_named(fm_dir, readme):
    files = inner_files(fixture_bytes(fm_dir, readme, "regressor"))
    params = files["params"].replace(b"arg:v", b"arg:\xff", 1)
    with pytest.raises(ArtifactError, match="not UTF-8"):
        read_fm_artifact(pack(files | {"params": params}))


def test_an_inflation_bomb_stops_at_the_cap(monkeypatch):
    monkeypatch.setattr(artifact, "MAX_ARTIFACT_BYTES", 10_000)
    bomb = pack({"params": b"\0" * 50_000})
    assert len(bomb) < 1_000
    with pytest.raises(ArtifactError, match="more than MAX_ARTIFACT_BYTES"):
        read_fm_artifact(bomb)
