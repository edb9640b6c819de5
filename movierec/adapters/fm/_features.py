"""SageMakerFM's feature columns: one-hot ids plus, with ``side_features=True``, the side frames'."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from movierec._validation import ITEM, USER
from movierec.adapters import _fm
from movierec.exceptions import DataValidationError, MovieRecWarning

if TYPE_CHECKING:  # pragma: no cover
    from movierec.adapters.sagemaker_fm import SageMakerFM

__all__ = ["check_side_frames", "design"]


def check_side_frames(model: SageMakerFM, users: Any, items: Any) -> None:
    """Raise if side frames are given without ``side_features``, or ``side_features`` without them."""
    given = [name for name, frame in (("users", users), ("items", items)) if frame is not None]
    if given and not model.side_features:
        raise DataValidationError(
            f"{' and '.join(given)} given but side_features=False: pass side_features=True to use them"
        )
    if model.side_features and not given:
        raise DataValidationError("side_features=True needs users=, items= or both in fit")


def design(
    model: SageMakerFM,
    user_idx: np.ndarray,
    item_idx: np.ndarray,
    users: pd.DataFrame | None,
    items: pd.DataFrame | None,
) -> tuple[Any, Any, list[str]]:
    """Return the user rows, movie rows and feature names of the model's ids.

    Ids with ratings get a one-hot column; side features (scaled by ``side_feature_value``) follow.
    Raises :class:`DataValidationError` if ``feature_dim`` is set and the data gives another width.
    """
    rated_users = np.bincount(user_idx, minlength=len(model.users_)) > 0
    rated_items = np.bincount(item_idx, minlength=len(model.items_)) > 0
    user_side = user_names = item_side = item_names = None
    if users is not None:
        user_side, user_names = _fm.user_side_features(users, model.users_.ids)
        user_side *= model.side_feature_value
        _warn_absent(users[USER], model.users_.ids[rated_users], "users")
    if items is not None:
        item_side, item_names = _fm.item_side_features(items, model.items_.ids)
        item_side *= model.side_feature_value
        _warn_absent(items[ITEM], model.items_.ids[rated_items], "items")
    user_rows, item_rows = _fm.design_rows(rated_users, rated_items, user_side, item_side)
    feature_names = (
        [f"user={u}" for u in model.users_.ids[rated_users]]
        + [f"movie={i}" for i in model.items_.ids[rated_items]]
        + (user_names or [])
        + (item_names or [])
    )
    dim = len(feature_names)
    if model.feature_dim is not None and model.feature_dim != dim:
        raise DataValidationError(f"feature_dim={model.feature_dim!r} but the data gives {dim} features")
    return user_rows, item_rows, feature_names


def _warn_absent(side_ids: pd.Series, rated_ids: np.ndarray, frame_name: str) -> None:
    absent = rated_ids[pd.Index(side_ids).get_indexer(pd.Index(rated_ids)) < 0]
    if len(absent):
        warnings.warn(
            f"{len(absent)} rated ids are not in {frame_name}, e.g. {absent[:3].tolist()}: they "
            "have no side features and are scored from their ratings alone",
            MovieRecWarning,
            stacklevel=5,  # _warn_absent, design, _fit_all, fit: the caller of fit
        )
