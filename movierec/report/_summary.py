"""A run of the main job as one JSON document (``metrics.json``): the table, the settings, the data,
the split, the members, the metric@k curves and the versions, for a script to read."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from movierec._core.validation import ITEM, USER

if TYPE_CHECKING:
    from movierec.pipeline import Result

__all__ = ["SUMMARY_FORMAT", "frame_sha256", "run_summary", "summary_table"]

#: The ``format`` field of ``metrics.json``; it changes when a field changes meaning.
SUMMARY_FORMAT = "movierec-metrics/1"


def frame_sha256(frame: pd.DataFrame) -> str:
    """Return a SHA-256 of ``frame``'s values and column names (row order counts, the index does not)."""
    digest = hashlib.sha256(",".join(map(str, frame.columns)).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def _part(frame: pd.DataFrame) -> dict[str, Any]:
    return {"ratings": len(frame), "users": int(frame[USER].nunique()), "movies": int(frame[ITEM].nunique()),
            "sha256": frame_sha256(frame)}


def _number(value: Any) -> float | int | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return int(value) if isinstance(value, (int, np.integer)) else float(value)


def run_summary(result: Result, *, dataset: str, split: str, train: pd.DataFrame, test: pd.DataFrame,
                source_sha256: str | Mapping[str, str] | None = None, curves: pd.DataFrame | None = None,
                files: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Return the ``metrics.json`` document of a run of [`movierec.pipeline.run`][movierec.pipeline.run].

    Parameters
    ----------
    result : movierec.pipeline.Result
        The run.
    dataset, split : str
        The data's name and how it was split (as the report says it).
    train, test : pandas.DataFrame
        The two parts: their sizes and a SHA-256 of their contents are recorded.
    source_sha256 : str or mapping, optional
        The SHA-256 of the source file (your own ratings file), or of each archive member read (a
        MovieLens fold), when known.
    curves : pandas.DataFrame, optional
        [`metric_curves`][movierec.report.metric_curves] of the run, recorded per model.
    files : mapping, optional
        The other files written, by role (``{"report": "report.html"}``).

    Returns
    -------
    dict
        JSON types only (NaN as null). ``table`` holds one row per model, in the printed table's
        order: ``model``, each column of ``result.metrics`` and ``fit_seconds`` (null for the
        reference and the ensemble). ``members`` holds each member asked for, kept or not.
    """
    from movierec.model_card import package_versions

    settings = result.settings
    ensemble = result.ensemble
    chosen = set(result.members)
    weights = dict(zip(result.members, (float(w) for w in ensemble.weights_)))
    table = []
    for name, row in result.metrics.iterrows():
        values = {column: _number(value) for column, value in row.items()}
        table.append({"model": str(name), **values, "fit_seconds": _number(result.fit_seconds.get(name))})
    members = [{"name": name, "holdout_error": float(error), "kept": name in chosen, "weight": weights.get(name),
                "fit_seconds": _number(result.fit_seconds.get(name))}
               for name, error in zip(result.names, ensemble.candidate_errors_)]
    document: dict[str, Any] = {
        "format": SUMMARY_FORMAT,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "task": settings.task,
        "metric": ensemble.metric,
        "k": settings.k,
        "settings": {**{key: (list(value) if isinstance(value, tuple) else value)
                        for key, value in dataclasses.asdict(settings).items()},
                     "members": list(settings.members), "candidates_used": result.candidates},
        "data": {"dataset": dataset, "source_sha256": source_sha256},
        "split": split,
        "train": _part(train),
        "test": _part(test),
        "table": table,
        "members": members,
        "timings": {key: round(float(value), 3) for key, value in result.timings.items()},
        "versions": package_versions(),
        "files": dict(files or {}),
    }
    if curves is not None:
        document["curves"] = {str(name): {"k": rows["k"].astype(int).tolist(), "ndcg": rows["ndcg"].tolist(),
                                          "precision": rows["precision"].tolist()}
                              for name, rows in curves.groupby("model", sort=False)}
    return document


def summary_table(summary: Mapping[str, Any]) -> pd.DataFrame:
    """Return ``summary["table"]`` as a frame indexed by model (the figures as numbers, null as NaN)."""
    frame = pd.DataFrame(summary["table"]).set_index("model")
    return frame.astype(float)
