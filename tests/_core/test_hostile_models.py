"""Hostile and faulty model folders (issue 15): nothing imported, everything checked at load, saves atomic.

Each class of hole has its cases here: names that try to import code, malformed or changed files
(checked at load, never later at predict), fuzzed ``params.json`` and arrays, ``kill -9`` during an
overwrite, concurrent savers with a loader, and a disk that fills up half way through a save.
"""

from __future__ import annotations

import errno
import io
import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from movierec._core import folder as _folder
from movierec.exceptions import ModelFileError
from movierec.models.baseline import BiasedBaseline
from movierec.registry import model_class
from movierec.testing import synthetic_ratings

ROOT = Path(__file__).resolve().parents[2]
RATINGS = synthetic_ratings(n_users=12, n_items=15, seed=3)
REFERENCE = BiasedBaseline(damping=5.0).fit(RATINGS)
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def saved(path: Path) -> Path:
    REFERENCE.save(path)
    return path


def edit_params(path: Path, change) -> None:
    """Apply ``change`` to the parsed params.json, write it back and re-sign the manifest."""
    document = json.loads((path / "params.json").read_text())
    change(document)
    (path / "params.json").write_text(json.dumps(document))
    _folder.write_manifest(path)


def arrays_of(path: Path) -> dict[str, np.ndarray]:
    with np.load(path / "arrays.npz", allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def write_arrays(path: Path, arrays: dict, *, compressed: bool = False) -> None:
    (np.savez_compressed if compressed else np.savez)(path / "arrays.npz", **arrays)
    _folder.write_manifest(path)


def hidden_siblings(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir() if p.name.startswith(f".{path.name}."))


def assert_usable(model: BiasedBaseline) -> None:
    """A model that loaded must work: predict and top_n run and give no infinite score."""
    predicted = model.predict(RATINGS).to_numpy()
    assert not np.isinf(predicted).any()
    assert np.isfinite(model.top_n(n=2)["score"]).all()


def new_modules(action) -> set[str]:
    before = set(sys.modules)
    action()
    return set(sys.modules) - before


# -- 1. a saved folder names no code that runs --------------------------------------------------
@pytest.fixture
def payload_beside(tmp_path, monkeypatch):
    """A payload.py next to the model folder, whose folder is on sys.path (python -c, notebooks)."""
    (tmp_path / "payload.py").write_text(
        "import pathlib\npathlib.Path(__file__).with_name('PAYLOAD_RAN').write_text('x')\nclass Evil:\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(KeyError):  # warm up the registry's own lazy imports before counting modules
        model_class("warm-up")
    yield tmp_path / "PAYLOAD_RAN"
    sys.modules.pop("payload", None)


@pytest.mark.parametrize(
    "name", ["payload", "payload.Evil", "os.system", "joblib.numpy_pickle", "subprocess.Popen", "builtins.eval", ""]
)
def test_a_class_name_in_params_json_imports_nothing(tmp_path, payload_beside, name):
    path = saved(tmp_path / "m")
    edit_params(path, lambda d: d.update({"class": name}))

    def attempt():
        with pytest.raises(ModelFileError, match=r"params.json: names the unknown model class"):
            BiasedBaseline.load(path)

    assert new_modules(attempt) == set()
    assert not payload_beside.exists()


@pytest.mark.parametrize("name", ["payload.Evil", "os.system", "joblib.numpy_pickle.NumpyArrayWrapper"])
def test_a_dataclass_parameter_naming_another_class_imports_nothing(tmp_path, payload_beside, name):
    path = saved(tmp_path / "m")
    edit_params(path, lambda d: d["params"].update({"damping": {"__dataclass__": name, "fields": {"command": "id"}}}))

    def attempt():
        with pytest.raises(ModelFileError, match="parameter 'damping' names the unknown class"):
            BiasedBaseline.load(path)

    assert new_modules(attempt) == set()
    assert not payload_beside.exists()


def test_a_model_of_another_class_is_refused(tmp_path):
    path = saved(tmp_path / "m")
    edit_params(path, lambda d: d.update({"class": "WeightedEnsemble"}))
    with pytest.raises(ModelFileError, match="holds a WeightedEnsemble, not a BiasedBaseline"):
        BiasedBaseline.load(path)


# -- 2. malformed params.json: one ModelFileError naming the file, at load ----------------------
@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"not json", "not valid JSON"),
        (b"\xff\xfe\x00", "not valid JSON"),
        (b"[" * 100_000, "not valid JSON"),
        (b"[]", "must hold a JSON object"),
        (b'{"class": "BiasedBaseline"}', "'params' must be a JSON object"),
        (b'{"class": 5, "params": {}, "extra": {}, "movierec_version": "0"}', "'class' must be a JSON string"),
        (b'{"class": "BiasedBaseline", "params": {"damping": NaN}, "extra": {}, "movierec_version": "0"}', "NaN"),
    ],
)
def test_a_malformed_params_json_is_refused_at_load(tmp_path, content, match):
    path = saved(tmp_path / "m")
    (path / "params.json").write_bytes(content)
    _folder.write_manifest(path)
    with pytest.raises(ModelFileError, match=match) as caught:
        BiasedBaseline.load(path)
    assert "params.json" in str(caught.value)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda d: d["params"].update({"gamma": 1}), r"unknown parameter\(s\) \['gamma'\]"),
        (lambda d: d["params"].update({"n_iter": "ten"}), "n_iter"),
        (lambda d: d["params"].update({"damping": [1, 2, 3]}), "damping"),
        (lambda d: d["extra"].pop("global_mean"), "KeyError"),
        (lambda d: d["extra"].update({"global_mean": "high"}), "ValueError"),
        (lambda d: d["extra"].update({"global_mean": [1]}), "TypeError"),
    ],
)
def test_wrong_parameters_or_values_are_refused_at_load(tmp_path, change, match):
    path = saved(tmp_path / "m")
    edit_params(path, change)
    with pytest.raises(ModelFileError, match=match):
        BiasedBaseline.load(path)


# -- 3. malformed or changed arrays: refused at load, never later at predict --------------------
def _flip(data: bytes, position: int) -> bytes:
    return data[:position] + bytes([data[position] ^ 0xFF]) + data[position + 1 :]


def test_a_changed_file_fails_the_manifest(tmp_path):
    path = saved(tmp_path / "m")
    data = (path / "arrays.npz").read_bytes()
    (path / "arrays.npz").write_bytes(_flip(data, len(data) // 2))
    with pytest.raises(ModelFileError, match=r"arrays.npz: size or SHA-256 differs from manifest.json"):
        BiasedBaseline.load(path)


@pytest.mark.parametrize("keep", [0, 10, 200, -30])
def test_a_truncated_npz_is_refused_even_with_a_matching_manifest(tmp_path, keep):
    path = saved(tmp_path / "m")
    data = (path / "arrays.npz").read_bytes()
    (path / "arrays.npz").write_bytes(data[:keep])
    _folder.write_manifest(path)
    with pytest.raises(ModelFileError, match="arrays.npz"):
        BiasedBaseline.load(path)


@FUZZ
@given(position=st.integers(0, 10_000))
def test_a_bit_flipped_npz_is_refused_or_loads_the_same_model(tmp_path_factory, position):
    path = saved(tmp_path_factory.mktemp("flip") / "m")
    data = (path / "arrays.npz").read_bytes()
    (path / "arrays.npz").write_bytes(_flip(data, position % len(data)))
    _folder.write_manifest(path)
    try:
        loaded = BiasedBaseline.load(path)
    except ModelFileError as err:
        assert "arrays.npz" in str(err)
    else:  # the flip hit bytes numpy ignores (a timestamp): the arrays are the same
        np.testing.assert_array_equal(loaded.predict(RATINGS), REFERENCE.predict(RATINGS))


def _with(arrays: dict, **changes) -> dict:
    out = {**arrays, **{k: v for k, v in changes.items() if v is not None}}
    return {k: v for k, v in out.items() if not (k in changes and changes[k] is None)}


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda a: _with(a, model_user_bias=a["model_user_bias"][:-1]), r"user_bias has 11 entries on axis 0, expected 12"),
        (lambda a: _with(a, model_item_bias=np.append(a["model_item_bias"], 0.0)), r"item_bias has 16 entries"),
        (lambda a: _with(a, model_user_bias=a["model_user_bias"][:, None]), "user_bias must be a 1-d numeric array"),
        (lambda a: _with(a, model_item_bias=np.full_like(a["model_item_bias"], np.nan)), "NaN or infinite"),
        (lambda a: _with(a, model_user_bias=None), "missing array 'user_bias'"),
        (lambda a: _with(a, user_ids=None), r"missing array\(s\) \['user_ids'\]"),
        (lambda a: _with(a, user_ids=np.zeros(len(a["user_ids"]), dtype=int)), "user_ids must be unique ids; 11 repeat"),
        (lambda a: _with(a, user_ids=a["user_ids"].astype(float)), "ints or strings"),
        (lambda a: _with(a, item_ids=a["item_ids"][:0]), "non-empty"),
        (lambda a: _with(a, seen_indices=a["seen_indices"] + 100), r"seen_indices must lie in \[0, 15\)"),
        (lambda a: _with(a, seen_indices=a["seen_indices"] - 100), r"seen_indices must lie in \[0, 15\)"),
        (lambda a: _with(a, seen_indptr=a["seen_indptr"][::-1]), "seen_indptr must rise from 0"),
        (lambda a: _with(a, seen_indptr=a["seen_indptr"][:-1]), "seen_indptr must rise from 0"),
        (lambda a: _with(a, seen_indices=a["seen_indices"].astype(float)), "seen_indices must be a 1-d integer"),
    ],
)
def test_arrays_that_do_not_fit_are_refused_at_load(tmp_path, change, match):
    path = saved(tmp_path / "m")
    write_arrays(path, change(arrays_of(path)))
    with pytest.raises(ModelFileError, match=match):
        BiasedBaseline.load(path)


def test_object_arrays_and_compressed_members_are_refused(tmp_path):
    path = saved(tmp_path / "m")
    arrays = arrays_of(path)
    np.savez(path / "arrays.npz", **arrays, extra=np.array([{"a": 1}], dtype=object))  # a pickle inside
    _folder.write_manifest(path)
    with pytest.raises(ModelFileError, match="holds objects"):
        BiasedBaseline.load(path)
    write_arrays(path, arrays, compressed=True)  # could inflate without bound
    with pytest.raises(ModelFileError, match="is not a stored .npy array"):
        BiasedBaseline.load(path)


def test_an_array_header_that_promises_more_than_the_member_holds_is_refused(tmp_path):
    path = saved(tmp_path / "m")
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "<f8", "fortran_order": False, "shape": (10**12,)})
    with zipfile.ZipFile(path / "arrays.npz", "a") as archive:
        archive.writestr("huge.npy", buffer.getvalue() + b"\0" * 64)
    _folder.write_manifest(path)
    with pytest.raises(ModelFileError, match="'huge.npy' holds objects or is truncated"):
        BiasedBaseline.load(path)


# -- 4. the manifest: missing, extra or odd files -----------------------------------------------
def test_a_folder_without_manifest_is_refused(tmp_path):
    path = saved(tmp_path / "m")
    (path / "manifest.json").unlink()
    with pytest.raises(ModelFileError, match="manifest.json: missing"):
        BiasedBaseline.load(path)


def test_an_added_or_removed_file_is_refused(tmp_path):
    path = saved(tmp_path / "m")
    (path / "payload.py").write_text("print('hi')")
    with pytest.raises(ModelFileError, match="payload.py: not listed in manifest.json"):
        BiasedBaseline.load(path)
    (path / "payload.py").unlink()
    (path / "arrays.npz").unlink()
    with pytest.raises(ModelFileError, match="arrays.npz: listed in manifest.json but missing"):
        BiasedBaseline.load(path)


def test_symlinks_and_fifos_are_refused_without_reading_them(tmp_path):
    path = saved(tmp_path / "m")
    (path / "arrays.npz").unlink()
    (path / "arrays.npz").symlink_to("/dev/zero")
    with pytest.raises(ModelFileError, match="arrays.npz: cannot be opened as a regular file"):
        BiasedBaseline.load(path)
    (path / "arrays.npz").unlink()
    os.mkfifo(path / "arrays.npz")  # opening it for reading would block without O_NONBLOCK
    with pytest.raises(ModelFileError, match="arrays.npz: not a regular file"):
        BiasedBaseline.load(path)


@pytest.mark.parametrize(
    "manifest",
    [b"{", b'{"files": []}', b'{"files": {"params.json": {"sha256": "00", "size": -1}}}', b'{"files": {"a": 1}}'],
)
def test_a_malformed_manifest_is_refused(tmp_path, manifest):
    path = saved(tmp_path / "m")
    (path / "manifest.json").write_bytes(manifest)
    with pytest.raises(ModelFileError, match="manifest.json"):
        BiasedBaseline.load(path)


def test_a_file_larger_than_its_manifest_says_is_not_read_past_that_size(tmp_path):
    path = saved(tmp_path / "m")
    with open(path / "arrays.npz", "ab") as handle:
        handle.write(b"\0" * (8 << 20))
    with pytest.raises(ModelFileError, match="arrays.npz: size or SHA-256 differs"):
        BiasedBaseline.load(path)


# -- 5. fuzzing: any params.json or arrays -> a working model or ModelFileError -----------------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.floats(allow_nan=False) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
params_keys = st.sampled_from(["damping", "n_iter", "__dataclass__", "fields", "x"])
places = st.sampled_from(["class", "params", "extra", "movierec_version", "params.damping", "params.n_iter",
                          "extra.global_mean", "params.__dataclass__"])


@FUZZ
@given(changes=st.lists(st.tuples(places, json_values), min_size=1, max_size=3))
def test_fuzzed_params_json_loads_a_working_model_or_raises_model_file_error(tmp_path_factory, changes):
    path = saved(tmp_path_factory.mktemp("fuzz") / "m")

    def change(document):
        for place, value in changes:
            head, _, key = place.partition(".")
            if key and isinstance(document.get(head), dict):
                document[head][key] = value
            elif not key:
                document[head] = value

    edit_params(path, change)
    try:
        loaded = BiasedBaseline.load(path)
    except ModelFileError as err:
        assert "params.json" in str(err) or str(path) in str(err)
    else:
        assert_usable(loaded)


array_dtypes = st.sampled_from([np.float64, np.float32, np.int64, np.int32, np.uint8, np.bool_, np.dtype("<U3")])


@FUZZ
@given(
    key=st.sampled_from(["user_ids", "item_ids", "seen_indptr", "seen_indices", "model_user_bias", "model_item_bias"]),
    array=hnp.arrays(array_dtypes, hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=20)),
)
def test_fuzzed_arrays_load_a_working_model_or_raise_model_file_error(tmp_path_factory, key, array):
    path = saved(tmp_path_factory.mktemp("fuzz") / "m")
    write_arrays(path, {**arrays_of(path), key: array})
    try:
        loaded = BiasedBaseline.load(path)
    except ModelFileError as err:
        assert "arrays.npz" in str(err) or str(path) in str(err)
    else:
        assert_usable(loaded)


# -- 6. crashes, concurrent savers and full disks ------------------------------------------------
SAVER = """
import sys
from movierec.models.baseline import BiasedBaseline
from movierec.testing import synthetic_ratings

ratings = synthetic_ratings(n_users=200, n_items=300, seed=3)
models = [BiasedBaseline(damping=float(d)).fit(ratings) for d in sys.argv[2].split(",")]
print("ready", flush=True)
for i in range(int(sys.argv[3])):
    models[i % len(models)].save(sys.argv[1])
"""
BIG = synthetic_ratings(n_users=200, n_items=300, seed=3)
EXPECTED = {d: BiasedBaseline(damping=d).fit(BIG).predict(BIG).to_numpy() for d in (0.0, 40.0)}


def start_saver(path: Path, dampings: str, times: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    child = subprocess.Popen(
        [sys.executable, "-c", SAVER, str(path), dampings, str(times)], stdout=subprocess.PIPE, env=env, text=True
    )
    assert child.stdout.readline().strip() == "ready"
    return child


def assert_whole(path: Path) -> float:
    """Load the model at path and check it is one of the two saved ones, not a mix; return its damping."""
    loaded = BiasedBaseline.load(path)
    np.testing.assert_array_equal(loaded.predict(BIG).to_numpy(), EXPECTED[loaded.damping])
    return loaded.damping


@pytest.mark.slow
def test_kill_9_during_an_overwrite_leaves_a_whole_model(tmp_path):
    path = tmp_path / "m"
    BiasedBaseline(damping=0.0).fit(BIG).save(path)
    killed_mid_write = 0
    for _ in range(5):
        child = start_saver(path, "40,0", 10**6)
        deadline = time.monotonic() + 20
        while not hidden_siblings(path) and time.monotonic() < deadline:
            pass  # spin until a save is under way
        child.kill()  # SIGKILL: no clean-up runs
        child.wait()
        killed_mid_write += bool(hidden_siblings(path))
        assert_whole(path)
    assert killed_mid_write >= 1  # at least one kill landed while a new model was half written
    BiasedBaseline(damping=0.0).fit(BIG).save(path)
    assert hidden_siblings(path) == []  # the dead savers' folders are cleared by the next save
    assert assert_whole(path) == 0.0


@pytest.mark.slow
def test_concurrent_savers_never_leave_a_mixed_model_for_a_reader(tmp_path):
    path = tmp_path / "m"
    BiasedBaseline(damping=0.0).fit(BIG).save(path)
    savers = [start_saver(path, "0", 40), start_saver(path, "40", 40)]
    seen = []
    while any(s.poll() is None for s in savers):
        seen.append(assert_whole(path))
    assert [s.returncode for s in savers] == [0, 0]
    assert len(seen) >= 5 and assert_whole(path) in (0.0, 40.0)
    assert hidden_siblings(path) == []


def _fail_savez(file, **arrays):
    Path(file).write_bytes(b"PK\x03\x04 half an archive")
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("where", ["params", "arrays", "fsync", "manifest"])
def test_a_full_disk_half_way_keeps_the_old_model_and_leaves_no_temporary_folder(tmp_path, monkeypatch, where):
    path = tmp_path / "m"
    BiasedBaseline(damping=0.0).fit(BIG).save(path)
    new = BiasedBaseline(damping=40.0).fit(BIG)
    full = OSError(errno.ENOSPC, "No space left on device")
    if where == "params":
        monkeypatch.setattr(Path, "write_text", lambda *a, **k: (_ for _ in ()).throw(full))
    elif where == "arrays":
        monkeypatch.setattr(np, "savez", _fail_savez)
    elif where == "fsync":
        calls = []
        real = os.fsync

        def fsync(fd):
            calls.append(fd)
            if len(calls) == 2:
                raise full
            real(fd)

        monkeypatch.setattr(os, "fsync", fsync)
    else:
        monkeypatch.setattr(json, "dump", lambda *a, **k: (_ for _ in ()).throw(full))
    with pytest.raises(OSError, match="No space left on device"):
        new.save(path)
    monkeypatch.undo()
    assert assert_whole(path) == 0.0
    assert hidden_siblings(path) == []
