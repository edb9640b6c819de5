"""The model card: what a saved model was fitted on, with which settings, how well it did, by which code.

A card is a JSON object kept as ``model-card.json`` INSIDE the saved model's folder, so the folder's
manifest covers it: a card changed after the save makes the model's load fail, like any other file
(docs/architecture.md, "Trust and files"). [`save_with_card`][movierec.model_card.save_with_card] writes the model and its card in
one atomic folder swap; [`read_card`][movierec.model_card.read_card] reads it back, checked against the manifest.
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

from movierec._core.folder import MANIFEST_FILE, parse_json, read_verified
from movierec._core.persist import atomic_folder
from movierec._core.validation import ITEM, USER
from movierec._version import __version__
from movierec.base import Recommender
from movierec.exceptions import ModelFileError
from movierec.registry import registered_name

if TYPE_CHECKING:  # pragma: no cover
    from movierec.data.ratings_file import RatingsFile

__all__ = ["CARD_FILE", "ITEMS_FILE", "MAX_ITEMS_BYTES", "build_card", "read_card", "read_items", "read_kept",
           "save_with_card", "write_card", "write_items"]

CARD_FILE = "model-card.json"
CARD_FORMAT = 1
# The movies' titles and other columns, kept beside the model as JSON rows (ids keep their type:
# 7 stays an int, "007" a string), never pickle.
ITEMS_FILE = "items.json"
ITEMS_FORMAT = 1
#: Largest ``items.json`` a load reads (bytes). MovieLens 32M's 87,585 movies with titles and
#: genres take about 5 MB; 64 MiB leaves room for a catalogue ten times larger with long titles,
#: while a damaged or hostile folder cannot make a load (and the service's memory) grow without bound.
MAX_ITEMS_BYTES = 64 << 20
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
        [`WeightedEnsemble`][movierec.WeightedEnsemble]'s ``models``) is recorded as its class and arguments.
    data_path : str or os.PathLike, optional
        The ratings file the model was fitted from; ``None`` when the frame came from elsewhere.
    ratings : pandas.DataFrame
        The ratings the model was fitted on: their row, user and item counts are recorded.
    validation_metrics : mapping, optional
        Metric name -> value (or a nested mapping, such as one row per model); NaN becomes null.
    sha256 : str, optional
        The file's SHA-256 when already known ([`sha256`][movierec.data.ratings_file.RatingsFile.sha256]);
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
    """Return [`build_card`][movierec.model_card.build_card] for a model fitted on a whole `load_ratings` result."""
    return build_card(model, data.path, data.ratings, validation_metrics, sha256=data.sha256,
                      implicit=data.implicit, **kwargs)


def write_card(folder: str | os.PathLike[str], card: Mapping[str, Any]) -> Path:
    """Write ``card`` as ``model-card.json`` into ``folder`` and return its path.

    ``folder`` must be one that `movierec._core.persist.atomic_folder` is writing, so the manifest
    written when the block ends lists the card; [`save_with_card`][movierec.model_card.save_with_card] does that. A card written into
    a folder saved earlier is not in its manifest, and the model's load then refuses the folder.
    """
    path = Path(folder) / CARD_FILE
    # allow_nan=False: the card is read back by strict JSON parsers, which refuse NaN.
    path.write_text(json.dumps(json_safe(dict(card)), indent=2, sort_keys=True, allow_nan=False) + "\n")
    return path


def save_with_card(model: Recommender, path: str | os.PathLike[str], card: Mapping[str, Any],
                   items: pd.DataFrame | None = None) -> None:
    """Save ``model`` to the folder ``path`` with ``card`` (and ``items``) inside it, in one atomic swap.

    The model writes its files into the new folder first (a save into a folder being written is
    part of that write), then the card and [`write_items`][movierec.model_card.write_items] are added, and the manifest covers
    them all. ``items`` is the data's ``movieId, title[, ...]`` frame (``load_ratings(...).items``).
    """
    with atomic_folder(path) as folder:
        model.save(folder)
        write_card(folder, card)
        if items is not None:
            write_items(folder, items, getattr(model, "items_", None))


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


def read_kept(path: str | os.PathLike[str]) -> tuple[dict[str, Any] | None, pd.DataFrame | None]:
    """Return the card and the items of the saved model folder ``path`` (each None when absent),
    from one read checked against the manifest.

    Raises
    ------
    FileNotFoundError
        If ``path`` is not a folder.
    ModelFileError
        If the folder does not match its manifest, the card is not a JSON object, or ``items.json``
        is over [`MAX_ITEMS_BYTES`][movierec.model_card.MAX_ITEMS_BYTES] or malformed.
    """
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path} not found: it is not a saved movierec model")
    _check_items_size(path)
    _, contents = read_verified(path, keep=(CARD_FILE, ITEMS_FILE))
    card = parse_json(path / CARD_FILE, contents[CARD_FILE]) if CARD_FILE in contents else None
    items = _parse_items(path / ITEMS_FILE, contents[ITEMS_FILE]) if ITEMS_FILE in contents else None
    return card, items


def read_items(path: str | os.PathLike[str]) -> pd.DataFrame | None:
    """Return the ``movieId, title[, ...]`` frame kept in the saved model folder ``path``, or None."""
    return read_kept(path)[1]


def write_items(folder: str | os.PathLike[str], items: pd.DataFrame, known: Any = None) -> Path | None:
    """Write the movies of ``items`` as ``items.json`` into ``folder`` (one being written, as
    [`write_card`][movierec.model_card.write_card]); return its path, or None when ``items`` has no ``movieId`` and ``title``.

    Only the movies of ``known`` (the model's ``items_`` index, when given) are kept. Columns of
    numbers, booleans and text are kept as they are, dates as ISO text; others are left out.
    """
    if ITEM not in items.columns or "title" not in items.columns:
        return None
    frame = items.drop_duplicates(ITEM)
    if known is not None:
        frame = frame[known.lookup(frame[ITEM].to_numpy()) >= 0]
    columns, values = [], []
    for name in frame.columns:
        column = frame[name]
        if pd.api.types.is_datetime64_any_dtype(column):
            column = column.dt.strftime("%Y-%m-%d").astype(object)
        elif not (pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)
                  or pd.api.types.is_string_dtype(column) or name in (ITEM, "title")):
            continue
        columns.append(str(name))
        values.append(json_safe(column.astype(object).where(column.notna(), None).tolist()))
    document = {"format": ITEMS_FORMAT, "columns": columns, "rows": [list(row) for row in zip(*values)]}
    path = Path(folder) / ITEMS_FILE
    path.write_text(json.dumps(document, ensure_ascii=False, allow_nan=False, separators=(",", ":")), encoding="utf-8")
    return path


def _check_items_size(path: Path) -> None:
    # Refuse an oversized items file from the manifest's word, before a byte of it is read.
    manifest = path / MANIFEST_FILE
    try:
        with open(manifest, "rb") as handle:
            listed = parse_json(manifest, handle.read(MAX_ITEMS_BYTES)).get("files")
    except FileNotFoundError:
        return  # read_verified names the missing manifest
    entry = listed.get(ITEMS_FILE) if isinstance(listed, dict) else None
    size = entry.get("size") if isinstance(entry, dict) else None
    if isinstance(size, int) and size > MAX_ITEMS_BYTES:
        raise ModelFileError(f"{path / ITEMS_FILE}: {size:,} bytes, over the {MAX_ITEMS_BYTES:,} a load reads")


def _parse_items(file: Path, data: bytes) -> pd.DataFrame:
    if len(data) > MAX_ITEMS_BYTES:
        raise ModelFileError(f"{file}: {len(data):,} bytes, over the {MAX_ITEMS_BYTES:,} a load reads")
    document = parse_json(file, data)
    columns, rows = document.get("columns"), document.get("rows")
    if (document.get("format") != ITEMS_FORMAT or not isinstance(columns, list) or not isinstance(rows, list)
            or not all(isinstance(c, str) for c in columns) or columns[:2] != [ITEM, "title"]
            or len(set(columns)) != len(columns)):
        raise ModelFileError(f"{file}: must be {{'format': {ITEMS_FORMAT}, 'columns': ['{ITEM}', 'title', ...], "
                             "'rows': [...]}")
    for position, row in enumerate(rows):
        if (not isinstance(row, list) or len(row) != len(columns)
                or not all(v is None or isinstance(v, (bool, int, float, str)) for v in row)
                or isinstance(row[0], bool) or not isinstance(row[0], (int, str))):
            raise ModelFileError(f"{file}: row {position} must be {len(columns)} plain values, an int or text id "
                                 f"first; got {str(row)[:100]}")
    frame = pd.DataFrame(rows, columns=columns)
    if frame[ITEM].duplicated().any():
        raise ModelFileError(f"{file}: movie {frame[ITEM][frame[ITEM].duplicated()].iloc[0]!r} is listed twice")
    frame["title"] = frame["title"].map(lambda t: "" if t is None else str(t))
    return frame


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

    A `Recommender` becomes its class and arguments; NaN and infinities
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
