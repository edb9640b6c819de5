"""Loads bounded by what is really in a model folder, whatever its files and manifest claim.

A folder's manifest is as untrusted as the rest of it, so its sizes bound nothing: the caps of
``movierec._core.verify`` do. Each case runs the load in a fresh process and measures that
process's peak RSS (``getrusage(RUSAGE_CHILDREN)`` in a wrapper) and time: a folder whose files
claim gigabytes is refused under 200 MB and 2 s. Symlinked folders and deep nesting are refused
before any file is hashed.
"""

from __future__ import annotations

import io
import json
import os
import re
import struct
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from movierec._core import folder as _folder
from movierec._core import verify as _verify
from movierec._core.instances import load_model
from movierec._core.verify import MAX_JSON_BYTES, MAX_JSON_CONTAINERS
from movierec.ensemble import WeightedEnsemble
from movierec.exceptions import ModelFileError
from movierec.models.baseline import BiasedBaseline
from movierec.models.popularity import Popularity
from movierec.testing import synthetic_ratings

RATINGS = synthetic_ratings(n_users=12, n_items=15, seed=3)
GIB = 1 << 30

# Runs the load in a child and prints its peak RSS (MB), its seconds and how it ended.
WRAPPER = """
import resource, subprocess, sys, time
start = time.monotonic()
child = subprocess.run([sys.executable, "-c", sys.argv[1], sys.argv[2]], capture_output=True, text=True)
seconds = time.monotonic() - start
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, seconds)
print(child.stdout.strip()[-2000:] + child.stderr.strip()[-2000:])
"""
LOADER = """
import sys
from movierec._core.instances import load_model
from movierec._core.verify import MAX_JSON_BYTES, MAX_JSON_CONTAINERS
from movierec.exceptions import ModelFileError
try:
    load_model(sys.argv[1])
except ModelFileError as err:
    print("refused:", err)
else:
    print("loaded")
"""


def measured_load(path: Path) -> tuple[float, float, str]:
    """Return (peak RSS in MB, seconds, output) of loading ``path`` in a fresh process."""
    out = subprocess.run([sys.executable, "-c", WRAPPER, LOADER, str(path)], capture_output=True, text=True,
                         check=True, timeout=120).stdout
    first, _, rest = out.partition("\n")
    rss, seconds = (float(v) for v in first.split())
    return rss, seconds, rest


def saved(path: Path) -> Path:
    BiasedBaseline().fit(RATINGS).save(path)
    return path


def claim(path: Path, rel: str, size: int) -> None:
    """Make ``rel`` a sparse file of ``size`` bytes and edit the manifest's size to match (no re-hash)."""
    with open(path / rel, "r+b") as handle:
        handle.truncate(size)
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["files"][rel]["size"] = size
    (path / "manifest.json").write_text(json.dumps(manifest))


def ensemble(ratings=RATINGS) -> WeightedEnsemble:
    return WeightedEnsemble([BiasedBaseline(), Popularity()], errors=[1.0, 2.0], random_state=0).fit(ratings)


# -- files that claim gigabytes -----------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize(
    ("rel", "size", "match"),
    [
        ("arrays.npz", 4 * GIB, r"arrays.npz: 4294967296 bytes, over the 3221225472"),
        ("arrays.npz", 2 * GIB, r"arrays.npz: a sparse file"),  # under the cap: its blocks give it away
        ("params.json", 4 * GIB, rf"params.json: 4294967296 bytes, over the {MAX_JSON_BYTES}"),
    ],
)
def test_a_file_that_claims_gigabytes_is_refused_in_little_memory_and_time(tmp_path, rel, size, match):
    path = saved(tmp_path / "m")
    claim(path, rel, size)
    rss, seconds, output = measured_load(path)
    assert output.startswith("refused:"), output
    assert re.search(match, output), output
    assert rss < 200 and seconds < 2 + _startup(), (rss, seconds)


def _startup() -> float:
    """Return the seconds a fresh process takes to import movierec (the loader's fixed cost)."""
    start = time.monotonic()
    subprocess.run([sys.executable, "-c", "import movierec._core.instances"], check=True)
    return time.monotonic() - start


@pytest.mark.slow
def test_a_zip_bomb_member_is_refused_without_inflating_it(tmp_path):
    path = saved(tmp_path / "m")
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False, "shape": (GIB // 4,)})
    with (zipfile.ZipFile(path / "arrays.npz", "a", compression=zipfile.ZIP_DEFLATED) as archive,
          archive.open("bomb.npy", "w", force_zip64=True) as member):
        member.write(header.getvalue())
        zeros = bytes(1 << 20)
        for _ in range(256):  # 256 MiB of zeros, a few hundred KB deflated
            member.write(zeros)
    _folder.write_manifest(path)
    assert (path / "arrays.npz").stat().st_size < 4 << 20
    rss, seconds, output = measured_load(path)
    assert "refused:" in output and "'bomb.npy' is not a stored .npy array" in output, output
    assert rss < 200 and seconds < 2 + _startup(), (rss, seconds)


def _central_sizes(data: bytearray, name: bytes, size: int) -> None:
    """Set the compressed and uncompressed sizes of ``name``'s central directory entry to ``size``."""
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        name_length = struct.unpack_from("<H", data, at + 28)[0]
        if data[at + 46 : at + 46 + name_length] == name:
            struct.pack_into("<LL", data, at + 20, size, size)
            return
        at = data.find(b"PK\x01\x02", at + 4)
    raise AssertionError(f"{name!r} not in the archive")


def test_a_member_that_claims_more_than_the_archive_stores_is_refused(tmp_path):
    path = saved(tmp_path / "m")
    data = bytearray((path / "arrays.npz").read_bytes())
    _central_sizes(data, b"user_ids.npy", 2 * GIB - 1)
    (path / "arrays.npz").write_bytes(bytes(data))
    _folder.write_manifest(path)
    with pytest.raises(ModelFileError, match=r"'user_ids.npy' claims 2147483647 bytes"):
        load_model(path)


def test_an_archive_that_claims_a_million_members_is_refused_before_zipfile_reads_it(tmp_path):
    path = saved(tmp_path / "m")
    data = bytearray((path / "arrays.npz").read_bytes())
    end = data.rfind(b"PK\x05\x06")
    struct.pack_into("<HH", data, end + 8, 0xFFFE, 0xFFFE)
    (path / "arrays.npz").write_bytes(bytes(data))
    _folder.write_manifest(path)
    with pytest.raises(ModelFileError, match="claims 65534 members"):
        load_model(path)


def test_a_folder_over_the_folder_cap_is_refused_before_any_read(tmp_path, monkeypatch):
    path = saved(tmp_path / "m")
    monkeypatch.setattr(_verify, "MAX_FOLDER_BYTES", (path / "arrays.npz").stat().st_size)
    with pytest.raises(ModelFileError, match="its files add up to more than"):
        load_model(path)


def test_more_files_than_the_cap_are_refused(tmp_path, monkeypatch):
    path = saved(tmp_path / "m")
    monkeypatch.setattr(_verify, "MAX_FILES", 2)
    with pytest.raises(ModelFileError, match="holds more than 2 files"):
        load_model(path)


def test_a_size_that_differs_from_the_manifest_is_refused_before_hashing(tmp_path, monkeypatch):
    path = saved(tmp_path / "m")
    with open(path / "arrays.npz", "ab") as handle:
        handle.write(b"\0")
    monkeypatch.setattr(_verify.hashlib, "sha256", lambda: pytest.fail("hashed a file of the wrong size"))
    with pytest.raises(ModelFileError, match="arrays.npz: size or SHA-256 differs"):
        load_model(path)


# -- links and nesting ----------------------------------------------------------------------------
def test_a_member_folder_that_is_a_symlink_out_of_the_folder_is_refused(tmp_path):
    path = tmp_path / "e"
    ensemble().save(path)
    outside = tmp_path / "elsewhere"
    (path / "member_0").rename(outside)
    (path / "member_0").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ModelFileError, match=r"member_0: cannot be opened as a regular file \(a symlink to a folder"):
        WeightedEnsemble.load(path)
    _folder.write_manifest(path)  # a manifest that lists the link's files changes nothing
    with pytest.raises(ModelFileError, match="a symlink to a folder"):
        load_model(path)


def test_a_symlink_to_a_folder_inside_the_model_is_refused_too(tmp_path):
    path = saved(tmp_path / "m")
    (path / "sub").mkdir()
    (path / "sub" / "x.bin").write_bytes(b"x")
    (path / "alias").symlink_to(path / "sub", target_is_directory=True)
    with pytest.raises(ModelFileError, match="alias: cannot be opened as a regular file"):
        BiasedBaseline.load(path)


def test_400_nested_folders_are_refused_before_hashing(tmp_path, monkeypatch):
    path = tmp_path / "e"
    ensemble().save(path)
    deep = path / "member_0" / "/".join(["member_0"] * 400)
    deep.mkdir(parents=True)
    (deep / "params.json").write_text("{}")
    monkeypatch.setattr(_verify.hashlib, "sha256", lambda: pytest.fail("hashed a file"))
    start = time.monotonic()
    with pytest.raises(ModelFileError, match=f"folders nest more than {_verify.MAX_DEPTH} deep"):
        WeightedEnsemble.load(path)
    assert time.monotonic() - start < 1


def test_ensembles_nested_past_the_limit_are_refused_before_hashing(tmp_path, monkeypatch):
    from movierec.ensemble._files import MAX_NESTING

    model = BiasedBaseline()
    for _ in range(MAX_NESTING + 1):
        model = WeightedEnsemble([model], errors=[1.0], random_state=0)
    model.fit(RATINGS)
    model.save(tmp_path / "deep")
    monkeypatch.setattr(_verify.hashlib, "sha256", lambda: pytest.fail("hashed a file"))
    with pytest.raises(ModelFileError, match=f"ensembles nest 5 deep, more than the {MAX_NESTING}"):
        WeightedEnsemble.load(tmp_path / "deep")
    monkeypatch.undo()
    inner = model.models_[0]
    inner.save(tmp_path / "ok")  # MAX_NESTING deep: loads
    loaded = WeightedEnsemble.load(tmp_path / "ok")
    np.testing.assert_array_equal(loaded.predict(RATINGS), inner.predict(RATINGS))


def test_members_from_another_ensemble_are_refused(tmp_path):
    big, small = tmp_path / "big", tmp_path / "small"
    ensemble().save(big)
    ensemble(RATINGS[RATINGS["userId"].isin(RATINGS["userId"].unique()[:5])]).save(small)
    for rel in ("member_0", "member_1"):
        _folder.remove_tree(big / rel)
        (small / rel).rename(big / rel)
    _folder.write_manifest(big)
    with pytest.raises(ModelFileError, match=r"member 0 \(BiasedBaseline\) knows 5 users.*the ensemble, which knows 12"):
        WeightedEnsemble.load(big)


def test_a_stale_generation_marks_a_folder_as_replaced(tmp_path):
    from movierec._core.persist import read_folder

    path = saved(tmp_path / "m")
    files = read_folder(path, BiasedBaseline)
    assert files.generation and files.is_current()
    os.utime(path)  # touching changes nothing
    assert files.is_current()
    saved(path)
    assert not files.is_current() and read_folder(path, BiasedBaseline).generation != files.generation


def test_an_ensemble_and_its_members_share_one_generation(tmp_path):
    path = tmp_path / "e"
    ensemble().save(path)
    tokens = {json.loads(p.read_text())["generation"] for p in path.rglob("manifest.json")}
    assert len(tokens) == 1 and len(next(iter(tokens))) == 32


def test_a_json_file_of_many_containers_is_refused_before_it_is_parsed(tmp_path):
    payload = b'{"a": [' + b"[]," * (MAX_JSON_CONTAINERS + 1) + b"1]}"
    assert len(payload) < MAX_JSON_BYTES
    with pytest.raises(ModelFileError, match="lists and objects"):
        _verify.parse_json(tmp_path / "params.json", payload)
    # as many as movierec writes parse
    assert _verify.parse_json(tmp_path / "params.json", b'{"a": [' + b"[]," * 1000 + b"1]}")["a"][-1] == 1
