"""Saving and loading a WeightedEnsemble: one atomic folder, its members in ``member_<i>/``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from movierec._core.persist import (
    ARRAYS_FILE,
    PARAMS_FILE,
    atomic_folder,
    check_arrays,
    read_folder,
    restore_state,
    saved_class,
    state_arrays,
    write_arrays,
    write_params,
)
from movierec.base import Recommender
from movierec.exceptions import ModelFileError
from movierec.registry import registered_name

if TYPE_CHECKING:  # pragma: no cover
    from movierec.ensemble._weighted import WeightedEnsemble

__all__ = ["load_ensemble", "save_ensemble"]

# The ensemble's own saved arrays, one value per member.
_STATE = ("errors", "score_mean", "score_std", "fit_seconds", "weights")


def save_ensemble(model: WeightedEnsemble, path: str | Path) -> None:
    """Write a fitted ensemble and its members to ``path`` atomically (one manifest over every file)."""
    params = {k: v for k, v in model.get_params().items() if k != "models"}
    params["errors"] = None if model.errors is None else [float(e) for e in model.errors]
    with atomic_folder(path) as folder:
        for position, member in enumerate(model.models_):
            member.save(folder / f"member_{position}")
        members = [registered_name(type(m)) for m in model.models_]
        write_params(folder, model, params=params, extra={"members": members})
        write_arrays(folder, {
            **state_arrays(model.users_, model.items_, model.seen_),
            "errors": model.errors_,
            "score_mean": model.score_mean_,
            "score_std": model.score_std_,
            "fit_seconds": model.fit_seconds_[model.members_],
            "weights": model.weights_,
            # [1, b, stacked error] for weights="stacked", zeros otherwise: saved arrays must be finite.
            "stacking": (np.array([1.0, model.intercept_, model.stacked_error_]) if not np.isnan(model.intercept_)
                         else np.zeros(3)),
            "rating_scale": model.rating_scale_,
        })


def load_ensemble(cls: type[WeightedEnsemble], path: str | Path) -> Any:
    """Return the ensemble saved at ``path``; a save that replaces the folder mid-read makes it read again."""
    while True:
        files = read_folder(path, cls)
        params_file = files.path / PARAMS_FILE
        names = files.extra.get("members")
        if not (isinstance(names, list) and names):
            raise ModelFileError(f"{params_file}: extra.members must be a non-empty list of class names")
        members = [
            saved_class(name, Recommender, params_file).load(files.path / f"member_{position}")
            for position, name in enumerate(names)
        ]
        if files.is_current():
            break
    where = files.path / ARRAYS_FILE
    users, items, seen = restore_state(files.arrays, where)
    n = len(members)
    shapes = {**{k: ("members",) for k in _STATE}, "stacking": (3,)}
    # Files written before the rating scale was saved have none: their stacked predictions are not clipped.
    if "rating_scale" in files.arrays:
        shapes["rating_scale"] = (2,)
    arrays = {k: files.arrays.get(k, np.zeros(0)) for k in shapes}
    check_arrays(where, arrays, shapes, {"members": n})
    scale = arrays.get("rating_scale", np.array([-np.inf, np.inf]))
    if not ((arrays["errors"] > 0).all() and (arrays["score_std"] >= 0).all() and (arrays["weights"] >= 0).all()
            and scale[0] < scale[1]):
        raise ModelFileError(f"{where}: errors must be positive, weights and score_std non-negative, "
                             "rating_scale increasing")
    model = cls(members, **files.params)
    model.models_, model.members_ = members, np.arange(n)
    model.users_, model.items_, model.seen_ = users, items, seen
    model.errors_, model.weights_, model.fit_seconds_ = arrays["errors"], arrays["weights"], arrays["fit_seconds"]
    model.candidate_errors_, model.selection_ = model.errors_, None
    model.score_mean_, model.score_std_ = arrays["score_mean"], arrays["score_std"]
    stacked, intercept, error = (float(v) for v in arrays["stacking"])
    model.intercept_, model.stacked_error_ = (intercept, error) if stacked else (np.nan, np.nan)
    model.rating_scale_ = scale.astype(float)
    return model
