"""New model instances: a clone from another's parameters, or whatever model a saved folder holds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from movierec._core.folder import parse_json
from movierec._core.persist import PARAMS_FILE, saved_class
from movierec.base import Recommender
from movierec.exceptions import ModelFileError

__all__ = ["clone", "load_model"]

# Reads at most this much of params.json before parsing it (a saved folder is untrusted).
_MAX_PARAMS = 16 * 1024 * 1024


def clone(model: Recommender) -> Recommender:
    """Return a new, unfitted model with the same parameters (scikit-learn's ``clone`` convention).

    ``type(model)(**model.get_params())``, where parameters that are Recommenders (alone or in a list
    or tuple) are cloned too; every other value (a SparkSession, a config) is passed as it is.
    """

    def copy(value: Any) -> Any:
        if isinstance(value, Recommender):
            return clone(value)
        if isinstance(value, (list, tuple)) and any(isinstance(v, Recommender) for v in value):
            return type(value)(copy(v) for v in value)
        return value

    return type(model)(**{name: copy(value) for name, value in model.get_params().items()})


def load_model(path: str | Path) -> Recommender:
    """Return the model saved in the folder ``path``, whatever its registered class.

    ``params.json`` names the class, resolved through the registry only; that class's ``load``
    then checks every file against the manifest.

    Raises
    ------
    FileNotFoundError
        If ``path`` is not a folder.
    ModelFileError
        If the folder is not a complete, unchanged movierec model.
    """
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path} not found: it is not a saved movierec model")
    file = path / PARAMS_FILE
    try:
        with open(file, "rb") as handle:
            document = parse_json(file, handle.read(_MAX_PARAMS))
    except FileNotFoundError:
        raise ModelFileError(f"{file}: missing; {path} is not a saved movierec model") from None
    return saved_class(document.get("class"), Recommender, file).load(path)
