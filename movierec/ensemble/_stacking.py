"""Stacked member weights: non-negative least squares on out-of-fold standardized scores, cross-fitted.

``WeightedEnsemble(weights="stacked")`` (docs/architecture.md, section 4) keeps its score a weighted
sum of standardized member scores, ``sum_m w_m z_m``; only the ``w_m`` change: instead of ``1 / e_m``
they minimise the squared error of ``b + sum_m w_m z_m`` against held-out ratings with every
``w_m >= 0`` (Breiman's stacked regressions).

The held-out scores come from ``stacking_folds`` parts of the ratings (`user_folds`): each
member is fitted on all parts but one and scores the one left out, standardized by the ``mu`` and
``sigma`` of that fit, so every rating is scored once by a member that did not see it and the
weights learn from all of them (`out_of_fold`). ``stacking_folds=None`` uses the single
hold-out of ``validation_size`` instead. The error reported for the stacked blend is cross-fitted:
each part of the held-out rows is predicted with weights learned on the other parts, so no rating
both chooses the weights and scores them.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from movierec._core.validation import RATING, USER, declared_scale
from movierec.ensemble._blend import weighted_z
from movierec.exceptions import DataValidationError, MovieRecWarning

if TYPE_CHECKING:  # pragma: no cover
    from movierec.base import Recommender

__all__ = ["STACKING_FOLDS", "cross_fitted_rmse", "out_of_fold", "parts_of", "rating_scale", "stack",
           "stacked_weights", "user_folds"]

#: Parts of the held-out rows for the cross-fitted error.
STACKING_FOLDS = 5


def rating_scale(ratings: pd.DataFrame) -> np.ndarray:
    """Return ``[lowest, highest]``: the scale ``ratings`` declares, else the range of its ratings."""
    scale = declared_scale(ratings)
    if scale is None:
        values = ratings[RATING].to_numpy(dtype=float)
        scale = (float(values.min()), float(values.max()))
    return np.array(scale, dtype=float)


def user_folds(users: pd.Series, n_folds: int, seed: int | None) -> np.ndarray:
    """Return a part in ``[0, n_folds)`` for each row: each user's ratings dealt round-robin in random order.

    A user's ratings are spread evenly over the parts (counts differ by at most one), so each
    part's complement holds about ``(n_folds - 1) / n_folds`` of every user's ratings.
    """
    order = np.random.default_rng(seed).permutation(len(users))
    codes, _ = pd.factorize(users, sort=False)
    grouped = order[np.argsort(codes[order], kind="stable")]
    counts = np.bincount(codes)
    starts = np.cumsum(counts) - counts
    folds = np.empty(len(users), dtype=np.int64)
    folds[grouped] = (np.arange(len(grouped)) - starts[codes[grouped]]) % n_folds
    return folds


def out_of_fold(
    n_members: int,
    parts: Sequence[tuple[pd.DataFrame, pd.DataFrame]],
    fit_member: Callable[[int, pd.DataFrame], Recommender],
    reference_stats: Callable[[Recommender, pd.DataFrame], tuple[float, float]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return ``(z, y, errors)`` of every member over the held-out rows of ``parts``.

    ``parts`` are ``(fit on, held out)`` frames. For each part and member, ``fit_member(position,
    fit_on)`` returns the fitted member; its scores of the held-out rows are standardized by
    ``reference_stats(member, fit_on)`` (its own ``mu``, ``sigma``), 0 where it cannot score.
    ``z`` is ``(held-out rows, members)``, ``y`` the held-out ratings, ``errors`` each member's
    RMSE against its [`prediction_targets`][movierec.Recommender.prediction_targets] over the rows it scored.
    """
    y = np.concatenate([held[RATING].to_numpy(dtype=float) for _, held in parts])
    z = np.zeros((len(y), n_members))
    squares, scored = np.zeros(n_members), np.zeros(n_members, dtype=np.int64)
    start = 0
    for fit_on, held in parts:
        rows = slice(start, start + len(held))
        for position in range(n_members):
            model = fit_member(position, fit_on)
            scores = model.predict(held).to_numpy(dtype=float)
            mean, std = reference_stats(model, fit_on)
            z[rows, position] = weighted_z(scores, mean, std, 1.0)
            known = np.isfinite(scores)
            targets = model.prediction_targets(y[rows][known])
            squares[position] += float(np.sum((targets - scores[known]) ** 2))
            scored[position] += int(known.sum())
        start += len(held)
    if not scored.all():
        position = int(np.flatnonzero(scored == 0)[0])
        raise DataValidationError(f"member {position} could score none of the held-out ratings")
    return z, y, np.sqrt(squares / scored)


def stack(z: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """Return ``(w, b)``: ``w >= 0`` and intercept ``b`` minimising ``||b + z w - y||^2``.

    ``z`` is ``(n_pairs, n_members)`` of standardized scores (0 where a member cannot score).
    """
    from scipy.optimize import nnls

    z_mean, y_mean = z.mean(axis=0), float(y.mean())
    w, _ = nnls(z - z_mean, y - y_mean)
    return w, y_mean - float(z_mean @ w)


def cross_fitted_rmse(z: np.ndarray, y: np.ndarray, seed: int | None, scale: np.ndarray | None = None) -> float:
    """Return the RMSE of the stacked blend on ``y``, each part predicted by weights fitted on the others.

    With ``scale`` (``[lowest, highest]``) the blend is clipped to it, as `predict` does.
    """
    folds = np.random.default_rng(seed).permutation(len(y)) % min(STACKING_FOLDS, len(y))
    predicted = np.empty(len(y))
    for fold in np.unique(folds):
        inside = folds == fold
        if inside.all():  # a single part: nothing to fit on but itself
            w, b = stack(z, y)
        else:
            w, b = stack(z[~inside], y[~inside])
        predicted[inside] = b + z[inside] @ w
    if scale is not None:
        np.clip(predicted, scale[0], scale[1], out=predicted)
    return float(np.sqrt(np.mean((predicted - y) ** 2)))


def stacked_weights(
    z: np.ndarray, y: np.ndarray, seed: int | None, scale: np.ndarray | None = None
) -> tuple[np.ndarray, float, float]:
    """Return ``(w, b, cross-fitted RMSE)`` of the held-out standardized scores ``z`` and ratings ``y``.

    If every weight is 0 (no member's scores rise with the ratings) the members are weighed equally,
    which is as free of scale as ``z`` itself, with a warning; ``b`` and the error are then NaN.
    """
    weights, intercept = stack(z, y)
    if not weights.any():
        warnings.warn("stacking gave every member weight 0; weighing the members equally", MovieRecWarning,
                      stacklevel=4)
        return np.ones(z.shape[1]), np.nan, np.nan
    return weights, intercept, cross_fitted_rmse(z, y, seed, scale)


def parts_of(ratings: pd.DataFrame, n_folds: int, seed: int | None) -> list[tuple[pd.DataFrame, pd.DataFrame]]:
    """Return the ``(fit on, held out)`` frames of `user_folds`; parts that would be empty are skipped."""
    folds = user_folds(ratings[USER], n_folds, seed)
    return [(ratings.iloc[np.flatnonzero(folds != k)], ratings.iloc[np.flatnonzero(folds == k)])
            for k in range(n_folds) if (folds == k).any() and (folds != k).any()]
