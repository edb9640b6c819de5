"""Model folders: atomic saves with a manifest, verified loads, the registry's entry points."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from movierec._core import folder as _folder
from movierec._core import persist as _persist
from movierec.base import Recommender
from movierec.exceptions import InvalidParameterError, ModelFileError
from movierec.models.baseline import BiasedBaseline
from movierec.registry import ENTRY_POINT_GROUP, model_class, registered_name
from movierec.testing import synthetic_ratings

RATINGS = synthetic_ratings(n_users=12, n_items=15, seed=3)


def fitted(damping=0.0) -> BiasedBaseline:
    return BiasedBaseline(damping=damping).fit(RATINGS)


def predictions(model) -> np.ndarray:
    return model.predict(RATINGS).to_numpy()


def hidden_siblings(path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir() if p.name.startswith(f".{path.name}."))


# -- the manifest -------------------------------------------------------------------------------
def test_manifest_lists_every_other_file_with_its_sha256_and_size(tmp_path):
    fitted().save(tmp_path / "m")
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    on_disk = {p.name: p.read_bytes() for p in (tmp_path / "m").iterdir() if p.name != "manifest.json"}
    assert set(on_disk) == {"params.json", "arrays.npz"}
    assert manifest["files"] == {
        name: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)} for name, data in on_disk.items()
    }


def test_a_nested_save_writes_in_place_and_the_outer_manifest_covers_it(tmp_path):
    with _persist.atomic_folder(tmp_path / "outer") as folder:
        fitted().save(folder / "member_0")
        assert hidden_siblings(folder / "member_0") == []  # no rename dance inside the outer folder
        assert (folder / "member_0" / "manifest.json").is_file()
    outer = json.loads((tmp_path / "outer" / "manifest.json").read_text())["files"]
    assert set(outer) == {"member_0/params.json", "member_0/arrays.npz", "member_0/manifest.json"}
    np.testing.assert_array_equal(predictions(BiasedBaseline.load(tmp_path / "outer" / "member_0")), predictions(fitted()))
    assert hidden_siblings(tmp_path / "outer") == []


def test_read_folder_verifies_nested_files_too(tmp_path):
    with _persist.atomic_folder(tmp_path / "outer") as folder:
        fitted().save(folder / "member_0")
        (folder / "params.json").write_text("{}")
    (tmp_path / "outer" / "member_0" / "arrays.npz").write_bytes(b"changed")
    with pytest.raises(ModelFileError, match=r"member_0/arrays.npz: size or SHA-256 differs"):
        _folder.read_verified(tmp_path / "outer", keep=())


# -- atomic replacement -------------------------------------------------------------------------
def test_overwrite_replaces_the_model_whole_and_leaves_no_sibling(tmp_path):
    path = tmp_path / "m"
    fitted(0.0).save(path)
    fitted(40.0).save(path)
    loaded = BiasedBaseline.load(path)
    assert loaded.damping == 40.0
    np.testing.assert_array_equal(predictions(loaded), predictions(fitted(40.0)))
    assert hidden_siblings(path) == []


def test_overwrite_without_an_atomic_exchange_uses_two_renames(tmp_path, monkeypatch):
    monkeypatch.setattr(_folder, "exchange", lambda a, b: None)
    path = tmp_path / "m"
    fitted(0.0).save(path)
    fitted(40.0).save(path)
    assert BiasedBaseline.load(path).damping == 40.0
    assert hidden_siblings(path) == []


def test_the_exchange_swaps_two_folders(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "x").write_text("from a")
    assert _folder.exchange(tmp_path / "a", tmp_path / "b") is True
    assert (tmp_path / "b" / "x").read_text() == "from a" and not any((tmp_path / "a").iterdir())
    assert _folder.exchange(tmp_path / "a", tmp_path / "missing") is False


def test_save_into_an_empty_folder_works(tmp_path):
    fitted().save(tmp_path)
    np.testing.assert_array_equal(predictions(BiasedBaseline.load(tmp_path)), predictions(fitted()))


def test_save_refuses_to_replace_a_folder_that_holds_no_model_or_a_file(tmp_path):
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="holds no saved model"):
        fitted().save(tmp_path / "home")
    assert (tmp_path / "home" / "notes.txt").read_text() == "mine"
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileExistsError, match="is not a folder"):
        fitted().save(tmp_path / "file")
    assert hidden_siblings(tmp_path / "home") == [] and hidden_siblings(tmp_path / "file") == []


def test_an_error_inside_atomic_folder_leaves_the_old_model_and_no_sibling(tmp_path):
    path = tmp_path / "m"
    fitted().save(path)
    before = sorted((p.name, p.read_bytes()) for p in path.iterdir())
    with pytest.raises(RuntimeError, match="half way"), _persist.atomic_folder(path) as folder:
        (folder / "params.json").write_text("{}")
        raise RuntimeError("half way")
    assert sorted((p.name, p.read_bytes()) for p in path.iterdir()) == before
    assert hidden_siblings(path) == []


def test_a_save_removes_siblings_left_by_dead_processes_only(tmp_path):
    path = tmp_path / "m"
    host = _folder._host()
    dead = tmp_path / f".m.saving-{host}-999999999-0000"  # above any pid_max
    alive = tmp_path / f".m.saving-{host}-{os.getpid()}-1111"
    other_host = tmp_path / ".m.saving-elsewhere-999999999-2222"
    for folder in (dead, alive, other_host):
        folder.mkdir()
    fitted().save(path)
    assert not dead.exists() and alive.exists() and other_host.exists()


def test_a_loaded_folder_knows_when_a_later_save_replaced_it(tmp_path):
    path = tmp_path / "m"
    fitted(0.0).save(path)
    files = _persist.read_folder(path, BiasedBaseline)
    assert files.is_current() and files.cls is BiasedBaseline and files.params["damping"] == 0.0
    fitted(40.0).save(path)
    assert not files.is_current()


# -- what save refuses to write -----------------------------------------------------------------
def test_save_refuses_object_arrays_and_nan_values(tmp_path):
    with pytest.raises(TypeError, match="would need pickle"):
        _persist.write_arrays(tmp_path, {"ids": np.array([1, "a"], dtype=object)})
    model = fitted()
    model.global_mean_ = float("nan")
    with pytest.raises(ValueError, match="Out of range float"):
        model.save(tmp_path / "nan")
    assert not (tmp_path / "nan").exists() and hidden_siblings(tmp_path / "nan") == []


# -- checks on restored arrays ------------------------------------------------------------------
def test_check_arrays_binds_named_dimensions_across_arrays():
    shapes = {"user_factors": ("users", "k"), "item_factors": ("items", "k")}
    good = {"user_factors": np.zeros((3, 2)), "item_factors": np.zeros((4, 2))}
    _persist.check_arrays("f", good, shapes, {"users": 3, "items": 4})
    with pytest.raises(ModelFileError, match=r"f: item_factors has 5 entries on axis 1, expected 2 \(k\)"):
        _persist.check_arrays("f", {**good, "item_factors": np.zeros((4, 5))}, shapes, {"users": 3, "items": 4})
    with pytest.raises(ModelFileError, match="user_factors has 2 entries on axis 0, expected 3"):
        _persist.check_arrays("f", {**good, "user_factors": np.zeros((2, 2))}, shapes, {"users": 3, "items": 4})
    with pytest.raises(ModelFileError, match="missing array 'item_factors'"):
        _persist.check_arrays("f", {"user_factors": good["user_factors"]}, shapes, {"users": 3, "items": 4})
    with pytest.raises(ModelFileError, match="NaN or infinite"):
        _persist.check_arrays("f", {**good, "item_factors": np.full((4, 2), np.inf)}, shapes, {"users": 3, "items": 4})


def test_check_arrays_checks_a_declared_csr_matrix_against_its_shape():
    shapes = {"w": ("features",), "rows": ("users", "features")}
    arrays = {"w": np.zeros(3), "rows_data": np.ones(2), "rows_indices": np.array([0, 2]), "rows_indptr": np.array([0, 1, 2])}
    _persist.check_arrays("f", arrays, shapes, {"users": 2})
    with pytest.raises(ModelFileError, match=r"rows_indices must lie in \[0, 3\)"):
        _persist.check_arrays("f", {**arrays, "rows_indices": np.array([0, 3])}, shapes, {"users": 2})
    with pytest.raises(ModelFileError, match="rows_indptr must rise from 0 to 2"):
        _persist.check_arrays("f", {**arrays, "rows_indptr": np.array([0, 2, 1])}, shapes, {"users": 2})
    with pytest.raises(ModelFileError, match="of one length"):
        _persist.check_arrays("f", {**arrays, "rows_data": np.ones(3)}, shapes, {"users": 2})


def test_restored_parameters_are_checked_against_the_class_constraints(tmp_path):
    path = tmp_path / "m"
    fitted().save(path)
    document = json.loads((path / "params.json").read_text())
    document["params"]["n_iter"] = -3
    (path / "params.json").write_text(json.dumps(document))
    _folder.write_manifest(path)
    with pytest.raises(ModelFileError, match=r"params.json: .*n_iter") as caught:
        BiasedBaseline.load(path)
    assert not isinstance(caught.value, InvalidParameterError)


# -- the registry's entry points ----------------------------------------------------------------
@pytest.fixture
def third_party(tmp_path, monkeypatch):
    """An installed distribution with a movierec.models entry point, on sys.path."""
    site = tmp_path / "site"
    package = site / "thirdparty_recs"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(
        textwrap.dedent(
            """
            from movierec.models.baseline import BiasedBaseline

            class ShrunkBaseline(BiasedBaseline):
                pass
            """
        )
    )
    info = site / "thirdparty_recs-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: thirdparty-recs\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\nShrunkBaseline = thirdparty_recs:ShrunkBaseline\n")
    monkeypatch.syspath_prepend(str(site))
    yield "thirdparty_recs"
    sys.modules.pop("thirdparty_recs", None)


def test_an_entry_point_class_is_loaded_only_when_its_name_is_asked_for(third_party):
    with pytest.raises(KeyError, match="ShrunkBaseline"):  # listed as known, by name only
        model_class("NoSuchModel")
    assert third_party not in sys.modules
    cls = model_class("ShrunkBaseline")
    assert cls.__module__ == third_party and issubclass(cls, Recommender)
    assert registered_name(cls) == "ShrunkBaseline"


def test_an_entry_point_model_saves_and_loads(third_party, tmp_path):
    cls = model_class("ShrunkBaseline")
    model = cls(damping=0.0).fit(RATINGS)
    model.save(tmp_path / "m")
    loaded = cls.load(tmp_path / "m")
    assert type(loaded) is cls
    np.testing.assert_array_equal(predictions(loaded), predictions(model))


def test_an_entry_point_cannot_shadow_a_movierec_model(third_party, tmp_path):
    info = next((tmp_path / "site").glob("*.dist-info"))
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\nBiasedBaseline = thirdparty_recs:ShrunkBaseline\n")
    assert model_class("BiasedBaseline") is BiasedBaseline
    assert third_party not in sys.modules


def test_predictions_survive_a_round_trip_bit_for_bit(tmp_path):
    model = fitted(15.0)
    model.save(tmp_path / "m")
    loaded = BiasedBaseline.load(tmp_path / "m")
    pd.testing.assert_series_equal(loaded.predict(RATINGS), model.predict(RATINGS))
    pd.testing.assert_frame_equal(loaded.top_n(n=3), model.top_n(n=3))
