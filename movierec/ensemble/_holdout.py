"""The ensemble's hold-out: which ratings are held out, and a member's error on them (docs/architecture.md, section 4)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from movierec._core.ids import index_ratings
from movierec._core.random import rng
from movierec._core.validation import USER, trusted_ratings
from movierec.ensemble._blend import forward_select
from movierec.ensemble._state import FittedState
from movierec.metrics import model_error

if TYPE_CHECKING:  # pragma: no cover
    from movierec.base import Recommender
    from movierec.ensemble._weighted import WeightedEnsemble

__all__ = ["HOLDOUT_PREFIX", "holdout_error", "holdout_split", "select_members"]

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
    ([`movierec.data.split.sample_users`][movierec.data.split.sample_users]) gives the hold-out and every rating of the other users
    stays in ``train``: the errors are measured on a fixed number of users whatever the data's size.
    """
    from movierec.data.split import sample_users, stratified_split

    # Named streams: which users, then which of their ratings (the root stream, as stratified_split alone).
    sampled = sample_users(ratings, max_users, rng(random_state, "hold-out users"))
    with trusted_ratings(sampled):  # rows of ratings: checked once already when ratings is
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


def select_members(
    ensemble: WeightedEnsemble, models: list[Recommender], errors: np.ndarray, train: pd.DataFrame,
    holdout: pd.DataFrame, reference_stats: Callable[..., tuple[np.ndarray, np.ndarray]],
) -> tuple[list[int], pd.DataFrame]:
    """Return the members of ``ensemble`` chosen on the hold-out (greedy forward selection) and every subset tried.

    ``models`` are the hold-out fits; each subset is scored as the ensemble of those members would rank
    it, in the ensemble's own top-N mode (``candidates``), standardized by ``reference_stats(models,
    users, items)``. A member alone ranks as it does by itself (its standardized score is an
    increasing function of its score), so its error is ``errors``'s.
    """
    users, items, _, _, seen = index_ratings(train)
    means, stds = reference_stats(models, users, items)

    def error_of(subset: list[int]) -> float:
        if len(subset) == 1:
            return float(errors[subset[0]])
        blend = type(ensemble)([ensemble.models[p] for p in subset], metric=ensemble.metric,
                               candidates=ensemble.candidates, random_state=ensemble.random_state)
        FittedState(models=[models[p] for p in subset], members=np.array(subset), users=users, items=items,
                    seen=seen, errors=errors[subset], weights=1.0 / errors[subset], score_mean=means[subset],
                    score_std=stds[subset]).apply(blend)
        return holdout_error(blend, holdout, ensemble.metric)

    chosen, trace = forward_select(len(models), error_of)
    return chosen, pd.DataFrame(trace)
