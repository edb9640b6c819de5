"""The model card: what a saved model was fitted on, with which settings, how well it did, by which code.

A card is a JSON object kept as ``model-card.json`` INSIDE the saved model's folder, so the folder's
manifest covers it: a card changed after the save makes the model's load fail, like any other file
(docs/architecture.md, "Trust and files"). :func:`save_with_card` writes the model and its card in
one atomic folder swap; :func:`read_card` reads it back, checked against the manifest.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import importlib.metadata
import json
import math
import os
import platform
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from movierec._core.folder import parse_json, read_verified
from movierec._core.persist import atomic_folder
from movierec._core.validation import ITEM, USER
from movierec._version import __version__
from movierec.base import Recommender
from movierec.registry import registered_name

if TYPE_CHECKING:  # pragma: no cover
    from movierec.data.ratings_file import RatingsFile

__all__ = ["CARD_FILE", "build_card", "read_card", "save_with_card", "write_card"]

CARD_FILE = "model-card.json"
CARD_FORMAT = 1
# Distributions whose version a card records always, then those of the extras when imported.
_ALWAYS = ("numpy", "pandas", "scipy")
_EXTRAS = {  # imported module -> distribution
    "pyspark": "pyspark", "pyarrow": "pyarrow", "surprise": "scikit-surprise", "myfm": "myfm",
    "boto3": "boto3", "sagemaker_core": "sagemaker-core", "matplotlib": "matplotlib",
    "starlette": "starlette", "uvicorn": "uvicorn",
}
_CHUNK = 1 << 20


def build_card(
    model: Recommender,
    data_path: str | os.PathLike[str] | None,
    ratings: pd.DataFrame,
    validation_metrics: Mapping[str, Any] | None = None,
    *,
    sha256: str | None = None,
    implicit: bool | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Return the card of ``model``, fitted on ``ratings`` read from ``data_path``, as a JSON-safe dict.

    Parameters
    ----------
    model : Recommender
        The fitted model. Its constructor arguments are recorded; a member model among them (a
        :class:`~movierec.WeightedEnsemble`'s ``models``) is recorded as its class and arguments.
    data_path : str or os.PathLike, optional
        The ratings file the model was fitted from; ``None`` when the frame came from elsewhere.
    ratings : pandas.DataFrame
        The ratings the model was fitted on: their row, user and item counts are recorded.
    validation_metrics : mapping, optional
        Metric name -> value (or a nested mapping, such as one row per model); NaN becomes null.
    sha256 : str, optional
        The file's SHA-256 when already known (:attr:`~movierec.data.ratings_file.RatingsFile.sha256`);
        otherwise it is computed from ``data_path``.
    implicit : bool, optional
        Whether the data is implicit feedback (every rating 1.0).
    extra : mapping, optional
        Anything else to record under ``"extra"`` (the CLI's task and chosen members, say).

    Returns
    -------
    dict
        ``format``, ``created`` (UTC, ISO 8601), ``model`` (class, params), ``data`` (file, sha256,
        rows, users, items, implicit), ``validation``, ``versions`` and ``extra``.
    """
    if data_path is not None and sha256 is None:
        sha256 = _file_sha256(Path(data_path))
    return {
        "format": CARD_FORMAT,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "model": _describe(model),
        "data": {
            "file": None if data_path is None else str(data_path),
            "sha256": sha256,
            "rows": len(ratings),
            "users": int(ratings[USER].nunique()),
            "items": int(ratings[ITEM].nunique()),
            "implicit": implicit,
        },
        "validation": json_safe(dict(validation_metrics or {})),
        "versions": package_versions(),
        "extra": json_safe(dict(extra or {})),
    }


def card_for(model: Recommender, data: RatingsFile, validation_metrics: Mapping[str, Any] | None = None,
             **kwargs: Any) -> dict[str, Any]:
    """Return :func:`build_card` for a model fitted on a whole :func:`~movierec.load_ratings` result."""
    return build_card(model, data.path, data.ratings, validation_metrics, sha256=data.sha256,
                      implicit=data.implicit, **kwargs)


def write_card(folder: str | os.PathLike[str], card: Mapping[str, Any]) -> Path:
    """Write ``card`` as ``model-card.json`` into ``folder`` and return its path.

    ``folder`` must be one that :func:`movierec._core.persist.atomic_folder` is writing, so the manifest
    written when the block ends lists the card; :func:`save_with_card` does that. A card written into
    a folder saved earlier is not in its manifest, and the model's load then refuses the folder.
    """
    path = Path(folder) / CARD_FILE
    # allow_nan=False: the card is read back by strict JSON parsers, which refuse NaN.
    path.write_text(json.dumps(json_safe(dict(card)), indent=2, sort_keys=True, allow_nan=False) + "\n")
    return path


def save_with_card(model: Recommender, path: str | os.PathLike[str], card: Mapping[str, Any]) -> None:
    """Save ``model`` to the folder ``path`` with ``card`` inside it, in one atomic swap.

    The model writes its files into the new folder first (a save into a folder being written is
    part of that write), then the card is added, and the manifest covers both.
    """
    with atomic_folder(path) as folder:
        model.save(folder)
        write_card(folder, card)


def read_card(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """Return the card of the saved model folder ``path``, or None when it has none.

    Raises
    ------
    FileNotFoundError
        If ``path`` is not a folder.
    ModelFileError
        If the folder does not match its manifest or the card is not a JSON object.
    """
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path} not found: it is not a saved movierec model")
    _, contents = read_verified(path, keep=(CARD_FILE,))
    if CARD_FILE not in contents:
        return None
    return parse_json(path / CARD_FILE, contents[CARD_FILE])


def package_versions() -> dict[str, str | None]:
    """Return the versions of Python, movierec, numpy, pandas, scipy and every imported extra."""
    versions: dict[str, str | None] = {"python": platform.python_version(), "movierec": __version__}
    names = [*_ALWAYS, *(dist for module, dist in _EXTRAS.items() if module in sys.modules)]
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def json_safe(value: Any) -> Any:
    """Return ``value`` with numpy scalars and arrays, tuples, paths and frames made JSON types.

    A :class:`~movierec.base.Recommender` becomes its class and arguments; NaN and infinities
    become None; anything else JSON cannot hold becomes its ``repr``.
    """
    if isinstance(value, Recommender):
        return _describe(value)
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, pd.DataFrame):
        return json_safe(value.to_dict("index"))
    if isinstance(value, (pd.Series, np.ndarray, list, tuple, set, frozenset)):
        items = value.tolist() if isinstance(value, (pd.Series, np.ndarray)) else list(value)
        return [json_safe(v) for v in items]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return repr(value)


def _describe(model: Recommender) -> dict[str, Any]:
    return {"class": registered_name(type(model)), "params": json_safe(model.get_params())}


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
