"""What an ensemble does with its members besides scoring them: report their fits, close them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # pragma: no cover
    from movierec.base import Recommender

__all__ = ["FitEvent", "close_all"]


@dataclass(frozen=True)
class FitEvent:
    """What [`WeightedEnsemble.fit`][movierec.WeightedEnsemble.fit] reports to its ``callback`` after each member fit.

    Attributes
    ----------
    position : int
        The member's position in ``models``.
    model : str
        The member's class name.
    stage : {"validation", "final"}
        ``"validation"``: the fit on the training part of the hold-out split, whose error weights the
        member; ``"final"``: the fit on all the ratings.
    n_ratings : int
        The number of ratings the member was fitted on.
    seconds : float
        How long that fit took.
    """

    position: int
    model: str
    stage: Literal["validation", "final"]
    n_ratings: int
    seconds: float


def close_all(models: Iterable[Recommender]) -> Exception | None:
    """Close every model, even if one fails; return the first failure (None when all closed)."""
    failure: Exception | None = None
    for model in models:
        try:
            model.close()
        except Exception as err:  # noqa: BLE001 - the others must still be closed
            failure = failure or err
    return failure
