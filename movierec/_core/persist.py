"""Model folders: written atomically with a manifest, read back trusting nothing in them.

A saved model is a folder: ``params.json`` (the registered class name, the movierec version, the
constructor arguments and JSON-safe learned scalars, ``extra``), ``arrays.npz`` (numpy arrays,
never pickle), any backend files, and ``manifest.json`` (SHA-256 and size of every other file),
written last. Trust model (docs/architecture.md, "Trust and files"):

- class names resolve through [`movierec.registry`][movierec.registry] only, the one configuration dataclass a
  parameter may hold comes from a fixed table, and nothing else the folder names is imported;
- every file is checked against the manifest, from bytes read once, so a load never mixes files of
  two saves; anything malformed raises [`ModelFileError`][movierec.exceptions.ModelFileError] at load time.

Saves go through `atomic_folder`: a temporary sibling folder, fsynced, then swapped into place.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import json
import os
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from movierec._core.folder import (
    MANIFEST_FILE,
    VerifiedFolder,
    folder_identity,
    generation_at,
    new_generation,
    new_sibling,
    parse_json,
    remove_stale,
    remove_tree,
    replace_folder,
    saving_generation,
    verified_folder,
    write_manifest,
)
from movierec._core.ids import IdIndex
from movierec._core.npz import read_npz
from movierec._version import __version__
from movierec.exceptions import ModelFileError, MovieRecWarning

if TYPE_CHECKING:  # pragma: no cover
    from movierec.base import Recommender

__all__ = [
    "ARRAYS_FILE",
    "MANIFEST_FILE",
    "PARAMS_FILE",
    "ModelFiles",
    "atomic_folder",
    "check_arrays",
    "check_save_target",
    "is_model_file",
    "model_files",
    "read_folder",
    "restore_state",
    "saved_class",
    "state_arrays",
    "write_arrays",
    "write_manifest",
    "write_params",
]

PARAMS_FILE, ARRAYS_FILE = "params.json", "arrays.npz"
_DATACLASS_KEY = "__dataclass__"
# Configuration dataclasses a saved parameter may hold: class name -> module.
_CONFIG_CLASSES = {"SageMakerConfig": "movierec.sagemaker.config"}
# Folders being written by atomic_folder in this context: a save inside one writes in place.
_WRITING: ContextVar[tuple[Path, ...]] = ContextVar("movierec_atomic_folders", default=())


# -- writing ------------------------------------------------------------------------------------
@contextmanager
def atomic_folder(path: str | Path) -> Iterator[Path]:
    """Yield an empty folder to write a model into; on success it replaces ``path`` whole.

    The folder is a temporary sibling of ``path``. On leaving the block without error every file
    is fsynced, `write_manifest` runs, and the folder is swapped into place (on Linux an
    atomic exchange with the old folder, which is then deleted), so a reader, a crash or a
    concurrent saver sees the old model or the new one, never a mix; the last complete save wins.
    On error the temporary folder is removed and ``path`` is untouched.

    Saving into a folder that is being written this way, or a subfolder of one (an ensemble's
    ``member_<i>/``), writes in place: the outer swap already makes it atomic. So
    ``with atomic_folder(p) as f: model.save(f); write_card(f, card)`` keeps a model card inside
    the model's folder, under its manifest (movierec.model_card.save_with_card).

    Raises
    ------
    FileExistsError
        If ``path`` is a file, or a non-empty folder that holds no saved model (never replaced).
    """
    path = Path(path).absolute()
    if any(outer == path or outer in path.parents for outer in _WRITING.get()):
        path.mkdir(parents=True, exist_ok=True)
        yield path
        write_manifest(path)
        return
    check_save_target(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(path)
    tmp = new_sibling(path)
    token = _WRITING.set((*_WRITING.get(), tmp))
    try:
        with saving_generation(new_generation()):  # one token in the manifests of the model and its members
            yield tmp
            write_manifest(tmp)
        replace_folder(tmp, path)
    except BaseException:
        remove_tree(tmp)
        raise
    finally:
        _WRITING.reset(token)


def check_save_target(path: str | Path) -> None:
    """Raise `FileExistsError` unless a model may be saved at ``path``; nothing is written.

    A save may create ``path``, fill an empty folder or replace a saved model; it refuses a symlink,
    a file, or a non-empty folder that holds no saved model. Callers that fit before saving (the
    command line's ``fit --save``) call this first, so a bad target fails before the fit, not after.
    """
    path = Path(path).absolute()
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        kind = "a symlink" if path.is_symlink() else "not a folder"
        raise FileExistsError(f"{path} exists and is {kind}; save will not replace it")
    is_model = (path / MANIFEST_FILE).is_file() or (path / PARAMS_FILE).is_file()
    if path.is_dir() and not is_model and any(path.iterdir()):
        raise FileExistsError(f"{path} is a non-empty folder that holds no saved model; save will not replace it")


def write_params(
    folder: Path, model: Recommender, *, params: dict[str, Any] | None = None, extra: dict | None = None
) -> None:
    """Write ``params.json``: class, movierec version, constructor arguments and ``extra``."""
    from movierec.registry import registered_name

    document = {
        "class": registered_name(type(model)),
        "movierec_version": __version__,
        "params": model.get_params() if params is None else params,
        "extra": extra or {},
    }
    # allow_nan=False: a NaN would be refused at load, so refuse it now, where it is made.
    (folder / PARAMS_FILE).write_text(json.dumps(document, indent=2, default=_json_default, allow_nan=False))


def write_arrays(folder: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays.npz``; object arrays (which numpy would pickle) are refused."""
    arrays = {name: np.asarray(value) for name, value in arrays.items()}
    for name, value in arrays.items():
        if value.dtype.hasobject:
            raise TypeError(f"array {name!r} holds Python objects, which would need pickle; convert it first")
    np.savez(folder / ARRAYS_FILE, **arrays)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        name = type(value).__name__
        if _CONFIG_CLASSES.get(name) != type(value).__module__:
            raise TypeError(f"parameter value {value!r} of class {name} cannot be saved")
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value) if f.init}
        return {_DATACLASS_KEY: name, "fields": fields}
    raise TypeError(f"parameter value {value!r} of type {type(value).__name__} cannot be saved as JSON")


def state_arrays(users: IdIndex, items: IdIndex, seen: Any) -> dict[str, np.ndarray]:
    """Return the id maps and seen matrix as plain arrays for ``np.savez`` (no pickle)."""
    seen = seen.tocsr()
    return {
        "user_ids": users.to_array(),
        "item_ids": items.to_array(),
        "seen_indptr": seen.indptr,
        "seen_indices": seen.indices,
    }


# -- reading ------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class ModelFiles:
    """A saved model folder, checked against its manifest and parsed; nothing in it imported.

    Attributes
    ----------
    path : Path
        The folder.
    cls : type
        The saved class, resolved through the registry.
    params : dict
        Constructor arguments, checked against ``cls``'s signature (not yet its constraints).
    extra : dict
        The JSON-safe learned values.
    arrays : dict of str to numpy.ndarray
        Every array of ``arrays.npz`` (empty when the folder has none).
    """

    path: Path
    cls: type
    params: dict[str, Any]
    extra: dict[str, Any]
    arrays: dict[str, np.ndarray]
    identity: tuple[int, int] = dataclasses.field(repr=False, default=(0, 0))
    generation: str | None = dataclasses.field(repr=False, default=None)

    def is_current(self) -> bool:
        """Return whether ``path`` is still the folder read: False once a later save replaced it.

        A loader that reads more by path after `read_folder` (Spark's own files) checks this
        at the end and reads again when it is False. The save's generation token decides; the
        folder's (device, inode) only for folders saved before saves wrote one, since a filesystem
        may hand a freed inode straight back out to the next save's folder.
        """
        if self.generation is not None:
            return generation_at(self.path) == self.generation
        return folder_identity(self.path) == self.identity


def is_model_file(rel: str) -> bool:
    """Return whether the relative path ``rel`` is a ``params.json`` or ``arrays.npz``, at any depth."""
    return rel.rpartition("/")[2] in (PARAMS_FILE, ARRAYS_FILE)


def read_folder(path: str | Path, cls: type) -> ModelFiles:
    """Return the model folder ``path``, checked against its manifest, as saved by a ``cls``.

    Raises
    ------
    FileNotFoundError
        If ``path`` is not a folder.
    ModelFileError
        If a file is missing, extra, changed or malformed, or the saved class is not a registered
        ``cls`` (or subclass); the message names the file and what is wrong.
    """
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path} not found: it is not a saved movierec model")
    with verified_folder(path, keep=(PARAMS_FILE, ARRAYS_FILE)) as folder:
        return model_files(folder, "", cls)


def model_files(folder: VerifiedFolder, prefix: str, cls: type) -> ModelFiles:
    """Return the model saved in the subfolder ``prefix`` (``""``, ``"member_0/"``) of a verified folder.

    Its ``params.json`` and ``arrays.npz`` must be among the folder's kept files: the bytes come
    from the handles that were hashed, so a member is never read by path again.
    """
    path = folder.path / prefix.rstrip("/") if prefix else folder.path
    if prefix + PARAMS_FILE not in folder.handles:
        raise ModelFileError(f"{path / PARAMS_FILE}: missing; {path} is not a saved movierec model")
    document = _parse_params(path / PARAMS_FILE, folder.read(prefix + PARAMS_FILE))
    saved_cls = saved_class(document["class"], cls, path / PARAMS_FILE)
    params = _build_params(path / PARAMS_FILE, saved_cls, document["params"])
    handle = folder.handles.get(prefix + ARRAYS_FILE)
    arrays = {} if handle is None else read_npz(path / ARRAYS_FILE, handle, os.fstat(handle.fileno()).st_size)
    return ModelFiles(path, saved_cls, params, document["extra"], arrays, folder.identity, folder.generation)


def _parse_params(file: Path, data: bytes) -> dict[str, Any]:
    document = parse_json(file, data)
    for key, kind in (("class", str), ("params", dict), ("extra", dict), ("movierec_version", str)):
        if key not in document or not isinstance(document[key], kind):
            raise ModelFileError(f"{file}: {key!r} must be a JSON {'string' if kind is str else 'object'}")
    if document["movierec_version"] != __version__:
        warnings.warn(
            f"{file.parent} was saved by movierec {document['movierec_version']}, this is {__version__}",
            MovieRecWarning,
            stacklevel=4,
        )
    return document


def saved_class(name: Any, base: type, file: str | Path) -> type:
    """Return the registered class a saved ``name`` stands for, which must be ``base`` or a subclass.

    Only the registry is asked ([`movierec.registry.model_class`][movierec.registry.model_class]): an unknown name imports
    nothing and raises `ModelFileError` naming ``file``.
    """
    from movierec.registry import model_class

    if not isinstance(name, str):
        raise ModelFileError(f"{file}: a class name must be a string, got {name!r}")
    try:
        cls = model_class(name.rpartition(".")[2])  # older saves wrote module.Class
    except KeyError as err:
        raise ModelFileError(f"{file}: names the unknown model class {name!r} ({err.args[0]})") from None
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise ModelFileError(f"{file}: holds a {name}, not a {base.__name__}")
    return cls


def _build_params(file: Path, cls: type, raw: dict[str, Any]) -> dict[str, Any]:
    signature = inspect.signature(cls.__init__).parameters
    named = {n for n, p in signature.items() if n != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    unknown = sorted(set(raw) - named)
    if unknown:
        raise ModelFileError(f"{file}: gives {cls.__name__} unknown parameter(s) {unknown}")
    params = {}
    for key, value in raw.items():
        value = _rebuild(file, key, value)
        params[key] = tuple(value) if isinstance(value, list) and isinstance(signature[key].default, tuple) else value
    return params


def _rebuild(file: Path, key: str, value: Any) -> Any:
    if not (isinstance(value, dict) and _DATACLASS_KEY in value):
        return value
    name = str(value[_DATACLASS_KEY]).rpartition(".")[2]  # older saves wrote module.Class
    if name not in _CONFIG_CLASSES or not isinstance(value.get("fields"), dict):
        raise ModelFileError(f"{file}: parameter {key!r} names the unknown class {value[_DATACLASS_KEY]!r}")
    cls = getattr(importlib.import_module(_CONFIG_CLASSES[name]), name)
    defaults = {f.name: f.default for f in dataclasses.fields(cls)}
    fields = {
        k: tuple(v) if isinstance(v, list) and isinstance(defaults.get(k), tuple) else v
        for k, v in value["fields"].items()
    }
    try:
        return cls(**fields)
    except (TypeError, ValueError) as err:
        raise ModelFileError(f"{file}: parameter {key!r} is not a valid {name} ({err})") from None


# -- checking restored state --------------------------------------------------------------------
def restore_state(arrays: Mapping[str, np.ndarray], file: str | Path = ARRAYS_FILE) -> tuple[IdIndex, IdIndex, Any]:
    """Return ``(users, items, seen)`` from arrays written by `state_arrays`, checked.

    Raises `ModelFileError` naming ``file`` when a key is missing, ids are not unique ints or
    strings, or the seen matrix's CSR arrays do not fit the ids.
    """
    from scipy import sparse

    missing = sorted({"user_ids", "item_ids", "seen_indptr", "seen_indices"} - set(arrays))
    if missing:
        raise ModelFileError(f"{file}: missing array(s) {missing}")
    indexes = []
    for key in ("user_ids", "item_ids"):
        ids = arrays[key]
        if ids.ndim != 1 or ids.dtype.kind not in "iuU" or len(ids) == 0:
            raise ModelFileError(f"{file}: {key} must be a non-empty 1-d array of ints or strings")
        index = IdIndex.from_array(ids)
        if len(index) != len(ids):  # IdIndex keeps one of each id: a repeat would shift every index
            raise ModelFileError(f"{file}: {key} must be unique ids; {len(ids) - len(index)} repeat")
        indexes.append(index)
    users, items = indexes
    indptr, indices = arrays["seen_indptr"], arrays["seen_indices"]
    _check_csr(file, "seen", indptr, indices, (len(users), len(items)))
    seen = sparse.csr_matrix((np.ones(len(indices), dtype=bool), indices, indptr), shape=(len(users), len(items)))
    return users, items, seen


def _check_csr(file: str | Path, name: str, indptr: np.ndarray, indices: np.ndarray, shape: tuple[int, int]) -> None:
    for key, value in (("indptr", indptr), ("indices", indices)):
        if value.ndim != 1 or value.dtype.kind not in "iu":
            raise ModelFileError(f"{file}: {name}_{key} must be a 1-d integer array")
    if len(indptr) != shape[0] + 1 or indptr[0] != 0 or indptr[-1] != len(indices) or np.any(np.diff(indptr) < 0):
        raise ModelFileError(
            f"{file}: {name}_indptr must rise from 0 to {len(indices)} in {shape[0] + 1} steps (one per row + 1)"
        )
    if len(indices) and (indices.min() < 0 or indices.max() >= shape[1]):
        raise ModelFileError(f"{file}: {name}_indices must lie in [0, {shape[1]})")


def check_arrays(
    file: str | Path,
    arrays: Mapping[str, np.ndarray],
    shapes: Mapping[str, tuple[int | str, ...]],
    sizes: Mapping[str, int],
) -> None:
    """Raise `ModelFileError` unless every array has the declared shape and finite values.

    ``shapes`` maps an array name to its shape; a dimension is an int or a name: ``sizes`` gives
    some names (``"users"``, ``"items"``), and any other name (``"k"``) must have one value across
    arrays. A name saved as three arrays ``<name>_data``, ``_indices``, ``_indptr`` is a CSR matrix
    of that 2-d shape, whose indices must lie in range. Float arrays must be finite.
    """
    bound = dict(sizes)
    dense = {k: v for k, v in shapes.items() if k in arrays or f"{k}_indptr" not in arrays}
    for key, shape in dense.items():
        if key not in arrays:
            raise ModelFileError(f"{file}: missing array {key!r}")
        value = arrays[key]
        if value.ndim != len(shape) or value.dtype.kind not in "biuf":
            raise ModelFileError(f"{file}: {key} must be a {len(shape)}-d numeric array, got {value.dtype} {value.shape}")
        for axis, (dim, size) in enumerate(zip(shape, value.shape)):
            want = bound.setdefault(dim, size) if isinstance(dim, str) else dim
            if size != want:
                raise ModelFileError(f"{file}: {key} has {size} entries on axis {axis}, expected {want} ({dim})")
    for key in shapes.keys() - dense.keys():
        parts = [arrays.get(f"{key}_{part}") for part in ("data", "indices", "indptr")]
        if parts[0] is None or parts[1] is None or parts[0].shape != parts[1].shape:
            raise ModelFileError(f"{file}: {key}_data and {key}_indices must both be there, of one length")
        rows, cols = (bound.get(dim, -1) if isinstance(dim, str) else dim for dim in shapes[key])
        _check_csr(file, key, parts[2], parts[1], (rows, cols))
    for key, value in arrays.items():
        if value.dtype.kind in "fc" and not np.isfinite(value).all():
            raise ModelFileError(f"{file}: {key} holds NaN or infinite values")
