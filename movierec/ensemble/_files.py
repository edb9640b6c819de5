"""Saving and loading a WeightedEnsemble: one atomic folder, its members in ``member_<i>/``.

A load reads the whole folder, members included, through one handle on it
(`movierec._core.folder.verified_folder`, one walk checked against the top manifest), and
builds every member from the bytes that walk hashed: a save that swaps the folder mid-load can
make the load start again but never mixes the ensemble of one save with members of another.
Members whose class reads more of its folder by path (SparkALS's ``spark_model/``) are loaded by
path, and the save's generation token, read again at the end, tells whether the folder changed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from movierec._core.folder import VerifiedFolder, folder_identity, generation_at, verified_folder
from movierec._core.persist import (
    ARRAYS_FILE,
    PARAMS_FILE,
    atomic_folder,
    check_arrays,
    is_model_file,
    model_files,
    restore_state,
    saved_class,
    state_arrays,
    write_arrays,
    write_params,
)
from movierec.base import ArrayRecommender, Recommender
from movierec.ensemble._state import FittedState
from movierec.exceptions import ModelFileError
from movierec.registry import registered_name

if TYPE_CHECKING:  # pragma: no cover
    from movierec.ensemble._weighted import WeightedEnsemble

__all__ = ["MAX_NESTING", "load_ensemble", "save_ensemble"]

#: Deepest nesting of ensembles a load accepts: an ensemble's members are models, and an ensemble of
#: ensembles is rare; anything deeper is refused before a byte is hashed.
MAX_NESTING = 4
# A save replaced the folder while a member was read by path: read it all again this many times.
_LOAD_ATTEMPTS = 5
# The ensemble's own saved arrays, one value per member.
_STATE = ("errors", "score_mean", "score_std", "fit_seconds", "weights")
_MEMBER = re.compile(r"member_\d+")


def save_ensemble(model: WeightedEnsemble, path: str | Path) -> None:
    """Write a fitted ensemble and its members to ``path`` atomically (one manifest over every file)."""
    state = FittedState.from_ensemble(model)
    params = {k: v for k, v in model.get_params().items() if k != "models"}
    params["errors"] = None if model.errors is None else [float(e) for e in model.errors]
    with atomic_folder(path) as folder:
        for position, member in enumerate(state.models):
            member.save(folder / f"member_{position}")
        members = [registered_name(type(m)) for m in state.models]
        write_params(folder, model, params=params, extra={"members": members})
        stacked = not np.isnan(state.intercept)
        write_arrays(folder, {
            **state_arrays(state.users, state.items, state.seen),
            "errors": state.errors,
            "score_mean": state.score_mean,
            "score_std": state.score_std,
            "fit_seconds": state.fit_seconds[state.members],
            "weights": state.weights,
            # [1, b, stacked error] for weights="stacked", zeros otherwise: saved arrays must be finite.
            "stacking": np.array([1.0, state.intercept, state.stacked_error]) if stacked else np.zeros(3),
            "rating_scale": state.rating_scale,
        })


def load_ensemble(cls: type[WeightedEnsemble], path: str | Path) -> Any:
    """Return the ensemble saved at ``path``, members built from one verified read of the folder.

    Raises
    ------
    FileNotFoundError
        If ``path`` is not a folder.
    ModelFileError
        If any file is missing, changed, malformed or over a cap, ensembles nest deeper than
        `MAX_NESTING`, the members do not fit the ensemble, or saves kept replacing the
        folder while members were read by path.
    """
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path} not found: it is not a saved movierec model")
    for _ in range(_LOAD_ATTEMPTS):
        with verified_folder(path, keep=is_model_file, check_listing=lambda files: _check_nesting(path, files)) as folder:
            model, by_path = _ensemble_at(cls, folder, "")
            if not by_path or _unchanged(path, folder):
                return model
        model.close()
    raise ModelFileError(f"{path}: replaced by other saves {_LOAD_ATTEMPTS} times while it was read; load it again")


def _unchanged(path: Path, folder: VerifiedFolder) -> bool:
    """Return whether ``path`` still holds the save ``folder`` read (its handle is still open)."""
    if folder.generation is None:  # saved before generations: the open handle pins the inode
        return folder_identity(path) == folder.identity
    return generation_at(path) == folder.generation


def _check_nesting(path: Path, files: list[str]) -> None:
    for rel in files:
        depth = 0
        for part in rel.split("/")[:-1]:
            if not _MEMBER.fullmatch(part):
                break
            depth += 1
        if depth > MAX_NESTING:
            raise ModelFileError(f"{path / rel}: ensembles nest {depth} deep, more than the {MAX_NESTING} a load accepts")


def _ensemble_at(cls: type[WeightedEnsemble], folder: VerifiedFolder, prefix: str) -> tuple[Any, bool]:
    """Return the ensemble in the subfolder ``prefix`` of ``folder``, and whether a member was read by path."""
    files = model_files(folder, prefix, cls)
    params_file = files.path / PARAMS_FILE
    names = files.extra.get("members")
    if not (isinstance(names, list) and names):
        raise ModelFileError(f"{params_file}: extra.members must be a non-empty list of class names")
    members, by_path = [], False
    try:
        for position, name in enumerate(names):
            member_cls = saved_class(name, Recommender, params_file)
            member, read_by_path = _member_at(member_cls, folder, f"{prefix}member_{position}/")
            members.append(member)
            by_path |= read_by_path
        return _restore(files.cls, files, members), by_path
    except BaseException:
        for member in members:
            member.close()
        raise


def _member_at(cls: type[Recommender], folder: VerifiedFolder, prefix: str) -> tuple[Recommender, bool]:
    from movierec.ensemble._weighted import WeightedEnsemble

    if issubclass(cls, WeightedEnsemble) and cls.load.__func__ is WeightedEnsemble.load.__func__:
        return _ensemble_at(cls, folder, prefix)
    if issubclass(cls, ArrayRecommender) and cls.load.__func__ is ArrayRecommender.load.__func__:
        files = model_files(folder, prefix, cls)
        return files.cls._from_files(files), False
    # A class with a load of its own reads files past params.json and arrays.npz by path.
    return cls.load(folder.path / prefix.rstrip("/")), True


def _restore(cls: type[WeightedEnsemble], files: Any, members: list[Recommender]) -> Any:
    where = files.path / ARRAYS_FILE
    users, items, seen = restore_state(files.arrays, where)
    n = len(members)
    shapes = {**{k: ("members",) for k in _STATE}, "stacking": (3,)}
    # Files written before the rating scale was saved have none: their stacked predictions are not clipped.
    if "rating_scale" in files.arrays:
        shapes["rating_scale"] = (2,)
    arrays = {k: files.arrays.get(k, np.zeros(0)) for k in shapes}
    check_arrays(where, arrays, shapes, {"members": n})
    stacked, intercept, error = (float(v) for v in arrays["stacking"])
    state = FittedState(
        models=members, members=np.arange(n), users=users, items=items, seen=seen,
        errors=arrays["errors"], weights=arrays["weights"], score_mean=arrays["score_mean"],
        score_std=arrays["score_std"], fit_seconds=arrays["fit_seconds"],
        intercept=intercept if stacked else np.nan, stacked_error=error if stacked else np.nan,
        rating_scale=arrays.get("rating_scale", np.array([-np.inf, np.inf])).astype(float),
    )
    model = cls(members, **files.params)
    # Members are refitted on all the ratings unless the hold-out fits were kept (refit=False).
    kept_holdout_fits = model.refit is False and model.errors is None and not model._out_of_fold()
    state.check(where, same_ids=not kept_holdout_fits)
    return state.apply(model)
