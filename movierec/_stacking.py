"""Stacked member weights: non-negative least squares on hold-out standardized scores, cross-fitted.

``WeightedEnsemble(weights="stacked")`` (docs/architecture.md, section 4) keeps its score a weighted
sum of standardized member scores, ``sum_m w_m z_m``; only the ``w_m`` change: instead of ``1 / e_m``
they minimise the squared error of ``b + sum_m w_m z_m`` against the hold-out ratings with every
``w_m >= 0`` (Breiman's stacked regressions). The error reported for the stacked blend is
cross-fitted: each fold of the hold-out is predicted with weights learned on the other folds, so no
rating both chooses the weights and scores them.
"""

from __future__ import annotations

import warnings

import numpy as np

from movierec.exceptions import MovieRecWarning

__all__ = ["STACKING_FOLDS", "cross_fitted_rmse", "stack", "stacked_weights"]

#: Folds of the hold-out for the cross-fitted error.
STACKING_FOLDS = 5


def stack(z: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """Return ``(w, b)``: ``w >= 0`` and intercept ``b`` minimising ``||b + z w - y||^2``.

    ``z`` is ``(n_pairs, n_members)`` of standardized scores (0 where a member cannot score).
    """
    from scipy.optimize import nnls

    z_mean, y_mean = z.mean(axis=0), float(y.mean())
    w, _ = nnls(z - z_mean, y - y_mean)
    return w, y_mean - float(z_mean @ w)


def cross_fitted_rmse(z: np.ndarray, y: np.ndarray, seed: int | None) -> float:
    """Return the RMSE of the stacked blend on ``y``, each fold predicted by weights fitted on the others."""
    folds = np.random.default_rng(seed).permutation(len(y)) % min(STACKING_FOLDS, len(y))
    predicted = np.empty(len(y))
    for fold in np.unique(folds):
        inside = folds == fold
        if inside.all():  # a single fold: nothing to fit on but itself
            w, b = stack(z, y)
        else:
            w, b = stack(z[~inside], y[~inside])
        predicted[inside] = b + z[inside] @ w
    return float(np.sqrt(np.mean((predicted - y) ** 2)))


def stacked_weights(z: np.ndarray, y: np.ndarray, seed: int | None) -> tuple[np.ndarray, float, float]:
    """Return ``(w, b, cross-fitted RMSE)`` of the hold-out's standardized scores ``z`` and ratings ``y``.

    If every weight is 0 (no member's scores rise with the ratings) the members are weighed equally,
    which is as free of scale as ``z`` itself, with a warning; ``b`` and the error are then NaN.
    """
    weights, intercept = stack(z, y)
    if not weights.any():
        warnings.warn("stacking gave every member weight 0; weighing the members equally", MovieRecWarning,
                      stacklevel=4)
        return np.ones(z.shape[1]), np.nan, np.nan
    return weights, intercept, cross_fitted_rmse(z, y, seed)
