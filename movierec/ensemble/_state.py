"""A WeightedEnsemble's fitted state in one place: what ``fit`` learns, ``save`` writes and ``load`` restores.

``fit``, `movierec.ensemble._files.load_ensemble` and the blends forward selection scores
(`movierec.ensemble._holdout.select_members`) all build a `FittedState` and
`apply` it, so the list of fitted attributes lives here and nowhere else.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from movierec._core.ids import IdIndex
from movierec.exceptions import ModelFileError

if TYPE_CHECKING:  # pragma: no cover
    from movierec.base import Recommender
    from movierec.ensemble._weighted import WeightedEnsemble

__all__ = ["FittedState"]


@dataclasses.dataclass(frozen=True)
class FittedState:
    """The fitted attributes of a `WeightedEnsemble`, each ``<field>_`` on it.

    ``models`` are the fitted members (``models_``), ``members`` their positions in the ensemble's
    ``models``; the arrays hold one value per fitted member, except ``candidate_errors`` (one per
    position of ``models``; ``errors`` when not given) and ``fit_seconds`` (zeros when not given).
    ``intercept`` and ``stacked_error`` are NaN unless the weights are stacked; ``rating_scale``,
    ``[lowest, highest]``, clips stacked predictions (``[-inf, inf]``: no clipping).
    """

    models: list[Recommender]
    members: np.ndarray
    users: IdIndex
    items: IdIndex
    seen: Any
    errors: np.ndarray
    weights: np.ndarray
    score_mean: np.ndarray
    score_std: np.ndarray
    candidate_errors: np.ndarray | None = None
    selection: pd.DataFrame | None = None
    fit_seconds: np.ndarray | None = None
    intercept: float = np.nan
    stacked_error: float = np.nan
    rating_scale: np.ndarray = dataclasses.field(default_factory=lambda: np.array([-np.inf, np.inf]))

    def apply(self, ensemble: WeightedEnsemble) -> WeightedEnsemble:
        """Set every fitted attribute of ``ensemble`` (``models_``, ``users_``, ...) from this state; return it."""
        for field in dataclasses.fields(self):
            setattr(ensemble, f"{field.name}_", getattr(self, field.name))
        if self.candidate_errors is None:
            ensemble.candidate_errors_ = self.errors
        if self.fit_seconds is None:
            ensemble.fit_seconds_ = np.zeros(len(self.models))
        return ensemble

    @classmethod
    def from_ensemble(cls, ensemble: WeightedEnsemble) -> FittedState:
        """Return the fitted state of ``ensemble`` (raises AttributeError when it is not fitted)."""
        return cls(**{field.name: getattr(ensemble, f"{field.name}_") for field in dataclasses.fields(cls)})

    def check(self, file: str | Path, *, same_ids: bool) -> None:
        """Raise `ModelFileError` naming ``file`` unless the state is one an ensemble's ``fit`` makes.

        Errors, weights and sigmas are non-negative (inverse-error weights are finite, so those errors
        are positive), the rating scale ``lowest <= highest``
        (equal when every rating had one value, as clicks do), and every member knows only the
        ensemble's users and movies: all of them when ``same_ids`` (members refitted on all the
        ratings), a part of them otherwise (members kept from the hold-out fit, ``refit=False``).
        """
        low, high = (float(v) for v in self.rating_scale)
        # An error may be 0: a stacked ensemble's member can predict its held-out ratings exactly (clicks).
        if not ((self.errors >= 0).all() and (self.score_std >= 0).all() and (self.weights >= 0).all()):
            raise ModelFileError(f"{file}: errors, weights and score_std must be non-negative")
        if not low <= high:  # NaN fails too
            raise ModelFileError(f"{file}: rating_scale must be [lowest, highest] with lowest <= highest, "
                                 f"got [{low}, {high}]")
        for position, member in enumerate(self.models):
            for name, ours in (("users", self.users), ("movies", self.items)):
                theirs = getattr(member, "users_" if name == "users" else "items_", None)
                if not isinstance(theirs, IdIndex):
                    continue  # a model that keeps no id map (a third party's) is not checked
                unknown = int((ours.lookup(theirs.ids) < 0).sum())
                if unknown or (same_ids and len(theirs) != len(ours)):
                    raise ModelFileError(
                        f"{file}: member {position} ({type(member).__name__}) knows {len(theirs)} {name}, "
                        f"{unknown} of them unknown to the ensemble, which knows {len(ours)}: the member "
                        "folders are not the ensemble's"
                    )
