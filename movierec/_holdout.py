"""The ensemble's hold-out: which ratings are held out, and a member's error on them (docs/architecture.md, section 4)."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import pandas as pd

from movierec._validation import USER
from movierec.metrics import model_error

if TYPE_CHECKING:  # pragma: no cover
    from movierec.base import Recommender

__all__ = ["HOLDOUT_PREFIX", "holdout_error", "holdout_split"]

# The smallest error a ranking metric gives (1 - a perfect score), so weights stay finite.
_MIN_ERROR = 1e-9
# Prefix of the warnings a member raises while its hold-out error is measured, so they are not
# mistaken for warnings about the caller's own test data.
HOLDOUT_PREFIX = "ensemble hold-out: "


def holdout_split(
    ratings: pd.DataFrame, size: float, max_users: int | None, random_state: int | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return ``(train, holdout)``: ``size`` of each rating user's ratings held out, for at most ``max_users`` users.

    With ``max_users`` below the number of users, a seeded sample of that many users
    (:func:`movierec.split.sample_users`) gives the hold-out and every rating of the other users
    stays in ``train``: the errors are measured on a fixed number of users whatever the data's size.
    """
    from movierec.split import sample_users, stratified_split

    sampled = sample_users(ratings, max_users, random_state)
    train, holdout = stratified_split(sampled, size, random_state=random_state)
    if sampled is not ratings:
        rest = ratings[~ratings[USER].isin(pd.unique(sampled[USER]))]
        train = pd.concat([rest, train]).sort_index()
    return train, holdout


def holdout_error(model: Recommender, holdout: pd.DataFrame, metric: str) -> float:
    """Return ``model``'s error on the hold-out; its warnings are raised again, marked as the hold-out's."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        error = model_error(model, holdout, metric)
    for warning in caught:
        warnings.warn_explicit(f"{HOLDOUT_PREFIX}{warning.message}", warning.category, warning.filename, warning.lineno)
    return max(float(error), _MIN_ERROR)
