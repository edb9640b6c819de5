"""Saving and loading models as folders of JSON and ``.npz`` arrays, never pickle.

``params.json`` holds the registered class name, the movierec version, the constructor arguments
and JSON-safe learned scalars (``extra``); ``arrays.npz`` holds the arrays, read with
``allow_pickle=False``. Class names resolve through :mod:`movierec.registry` only, and the one
configuration dataclass a parameter may hold is looked up in a fixed table: nothing a saved folder
names is imported (docs/architecture.md, "Trust and files").
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from movierec._ids import IdIndex
from movierec._version import __version__
from movierec.exceptions import DataValidationError, MovieRecWarning

if TYPE_CHECKING:  # pragma: no cover
    from movierec.base import Recommender

__all__ = ["ARRAYS_FILE", "PARAMS_FILE", "read_arrays", "read_params", "restore_state", "state_arrays", "write_params"]

PARAMS_FILE, ARRAYS_FILE = "params.json", "arrays.npz"
_DATACLASS_KEY = "__dataclass__"
# Configuration dataclasses a saved parameter may hold: class name -> module.
_CONFIG_CLASSES = {"SageMakerConfig": "movierec.sagemaker.config"}


def state_arrays(users: IdIndex, items: IdIndex, seen: Any) -> dict[str, np.ndarray]:
    """Return the id maps and seen matrix as plain arrays for ``np.savez`` (no pickle)."""
    seen = seen.tocsr()
    return {
        "user_ids": users.to_array(),
        "item_ids": items.to_array(),
        "seen_indptr": seen.indptr,
        "seen_indices": seen.indices,
    }


def restore_state(arrays: Any) -> tuple[IdIndex, IdIndex, Any]:
    """Return ``(users, items, seen)`` from arrays written by :func:`state_arrays`."""
    from scipy import sparse

    users, items = IdIndex.from_array(arrays["user_ids"]), IdIndex.from_array(arrays["item_ids"])
    indices = arrays["seen_indices"]
    seen = sparse.csr_matrix(
        (np.ones(len(indices), dtype=bool), indices, arrays["seen_indptr"]), shape=(len(users), len(items))
    )
    return users, items, seen


def read_arrays(path: Path) -> dict[str, np.ndarray]:
    """Return every array of ``path/arrays.npz``, read without pickle."""
    with np.load(path / ARRAYS_FILE, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


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


def _rebuild(value: Any) -> Any:
    if isinstance(value, dict) and _DATACLASS_KEY in value:
        name = str(value[_DATACLASS_KEY]).rpartition(".")[2]  # older saves wrote module.Class
        if name not in _CONFIG_CLASSES:
            raise DataValidationError(f"a saved parameter names the unknown class {value[_DATACLASS_KEY]!r}")
        cls = getattr(importlib.import_module(_CONFIG_CLASSES[name]), name)
        defaults = {f.name: f.default for f in dataclasses.fields(cls)}
        fields = {
            k: tuple(v) if isinstance(v, list) and isinstance(defaults.get(k), tuple) else v
            for k, v in value["fields"].items()
        }
        return cls(**fields)
    return value


def write_params(
    path: Path, model: Recommender, *, params: dict[str, Any] | None = None, extra: dict | None = None
) -> None:
    """Write ``params.json``: class, movierec version, constructor arguments and ``extra``."""
    from movierec.registry import registered_name

    document = {
        "class": registered_name(type(model)),
        "movierec_version": __version__,
        "params": model.get_params() if params is None else params,
        "extra": extra or {},
    }
    (path / PARAMS_FILE).write_text(json.dumps(document, indent=2, default=_json_default))


def read_params(path: Path, cls: type[Recommender], *, build: bool = True) -> tuple[Any, dict[str, Any]]:
    """Return ``(model built from params.json, extra)``, warning when the version differs.

    With ``build=False`` the first item is the parameters dict instead of a model. The saved class
    must be registered (:mod:`movierec.registry`) and be ``cls`` or a subclass of it.
    """
    from movierec.registry import model_class

    file = path / PARAMS_FILE
    if not file.is_file():
        raise FileNotFoundError(f"{file} not found: {path} is not a saved movierec model")
    document = json.loads(file.read_text())
    name = str(document.get("class", "")).rpartition(".")[2]  # older saves wrote module.Class
    try:
        saved_cls = model_class(name)
    except KeyError as err:
        raise DataValidationError(f"{path} holds an unknown model class {document.get('class')!r}") from err
    if not issubclass(saved_cls, cls):
        raise DataValidationError(f"{path} holds a {name}, not a {cls.__name__}")
    if document.get("movierec_version") != __version__:
        warnings.warn(
            f"{path} was saved by movierec {document.get('movierec_version')}, this is {__version__}",
            MovieRecWarning,
            stacklevel=3,
        )
    params = {key: _rebuild(value) for key, value in document["params"].items()}
    signature = inspect.signature(saved_cls.__init__).parameters
    unknown = sorted(set(params) - set(signature))
    if unknown:
        raise DataValidationError(f"{path} gives {name} unknown parameter(s) {unknown}")
    for key, value in params.items():
        if isinstance(value, list) and isinstance(signature[key].default, tuple):
            params[key] = tuple(value)
    return (saved_cls(**params) if build else params), document.get("extra", {})
