"""New model instances: a clone from another's parameters, or whatever model a saved folder holds."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from movierec._core.folder import parse_json
from movierec._core.persist import PARAMS_FILE, saved_class
from movierec._core.verify import MAX_JSON_BYTES, check_file_size
from movierec.base import Recommender
from movierec.exceptions import ModelFileError

__all__ = ["clone", "load_model"]


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
    # Only the class name is read here, from a regular file (no symlink, fifo or device) and at most
    # the JSON cap; the class's load then checks every file against the manifest.
    try:
        fd = os.open(file, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise ModelFileError(f"{file}: missing; {path} is not a saved movierec model") from None
    except OSError as err:
        raise ModelFileError(f"{file}: cannot be opened as a regular file ({err.strerror})") from None
    with os.fdopen(fd, "rb") as handle:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            raise ModelFileError(f"{file}: not a regular file")
        check_file_size(path, PARAMS_FILE, status)
        document = parse_json(file, handle.read(MAX_JSON_BYTES + 1))
    return saved_class(document.get("class"), Recommender, file).load(path)
