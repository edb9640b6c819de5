"""The ensemble's arithmetic on arrays: member score blocks, standardized and weighted sums, member selection.

``WeightedEnsemble`` (docs/architecture.md, section 4) keeps its parameters and fitted state; the
scoring it does for whole user blocks lives here so the ensemble's full ``top_n`` never builds a
(user, movie) pair frame: each member gives a ``users x movies`` score matrix
([`Recommender.score_matrix`][movierec.Recommender.score_matrix]: matrix products for array-backed members, ``predict`` of the
block's pairs for the others).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from movierec._core.validation import ITEM, USER
from movierec.exceptions import DataValidationError, MovieRecWarning

if TYPE_CHECKING:  # pragma: no cover
    from movierec.base import Recommender

__all__ = ["blend_block", "candidate_scores", "forward_select", "reference_stats", "weighted_z"]


def weighted_z(scores: np.ndarray, mean: float, std: float, weight: float) -> np.ndarray:
    """Return ``z / e`` (``weight = 1 / e``) of raw scores; NaN (cannot score) counts as 0, sigma 0 gives 0."""
    z = np.zeros_like(scores) if std == 0 else (scores - mean) / std
    return np.nan_to_num(z, nan=0.0) * weight


def blend_block(
    models: Sequence[Recommender],
    means: np.ndarray,
    stds: np.ndarray,
    weights: np.ndarray,
    users: np.ndarray,
    items: np.ndarray,
) -> np.ndarray:
    """Return the ensemble's ranking scores ``sum_m w_m z_m`` for a block of users x every item."""
    total = np.zeros((len(users), len(items)))
    for position, model in enumerate(models):
        scores = model.score_matrix(users, items)
        total += weighted_z(scores, means[position], stds[position], weights[position])
    return total


def candidate_scores(proposed: Sequence[pd.DataFrame], means: np.ndarray, stds: np.ndarray,
                     weights: np.ndarray) -> pd.DataFrame:
    """Return ``userId, movieId, score``: the summed ``z / e`` of every pair a member proposed (the others add 0).

    ``proposed[m]`` is member ``m``'s top-N frame (``userId, movieId, score``).
    """
    parts = []
    for position, frame in enumerate(proposed):
        weighted = weighted_z(frame["score"].to_numpy(dtype=float), means[position], stds[position], weights[position])
        parts.append(pd.DataFrame({USER: frame[USER].to_numpy(), ITEM: frame[ITEM].to_numpy(), "score": weighted}))
    frame = pd.concat(parts, ignore_index=True)
    return frame.groupby([USER, ITEM], as_index=False, sort=False)["score"].sum()


def forward_select(n_members: int, error_of: Callable[[list[int]], float]) -> tuple[list[int], list[dict[str, Any]]]:
    """Return the members chosen by greedy forward selection, and the trace of every subset tried.

    Starts from the best single member; adds, one at a time, the member that lowers
    ``error_of(subset)`` most; stops when no addition lowers it. Subsets keep member order.
    """
    trace: list[dict[str, Any]] = []

    def scored(subset: list[int]) -> float:
        error = float(error_of(subset))
        trace.append({"members": tuple(subset), "error": error})
        return error

    singles = {i: scored([i]) for i in range(n_members)}
    chosen = [min(singles, key=lambda i: (singles[i], i))]
    best = singles[chosen[0]]
    while len(chosen) < n_members:
        tries = {i: scored(sorted(chosen + [i])) for i in range(n_members) if i not in chosen}
        candidate = min(tries, key=lambda i: (tries[i], i))
        if not tries[candidate] < best:
            break
        chosen, best = sorted(chosen + [candidate]), tries[candidate]
    return chosen, trace


def reference_stats(models: Sequence[Recommender], pairs: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Return each member's mean and standard deviation over the reference ``pairs`` (mu_m, sigma_m).

    Pairs a member cannot score are left out; a member that scores none raises, and a member that
    scores them all alike gets sigma 0 (its standardized scores are 0) and a warning.
    """
    means, stds = [], []
    for position, model in enumerate(models):
        scores = model.predict(pairs).to_numpy(dtype=float)
        finite = scores[np.isfinite(scores)]
        if finite.size == 0:
            raise DataValidationError(f"member {position} ({type(model).__name__}) scored none of the reference pairs")
        mean, std = float(finite.mean()), float(finite.std())
        if not std > 0:
            warnings.warn(
                f"member {position} ({type(model).__name__}) gives the same score to every reference "
                "pair; its standardized scores are 0",
                MovieRecWarning,
                stacklevel=4,
            )
            std = 0.0
        means.append(mean)
        stds.append(std)
    return np.array(means), np.array(stds)
