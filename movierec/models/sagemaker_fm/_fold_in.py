"""A visitor's one-hot weight and factor vector, fitted to their history with every other weight fixed.

A visitor is a new user column of the design: weight ``w_u`` and factors ``v_u``, value 1. With side
features the visitor has no user side columns (the app knows no age, gender or occupation): they
are zeros, so only ``w_u`` and ``v_u`` are fitted. A pair's score is then
``w0 + w_u + bias_i + <v_u, vec_i>`` (``bias_i``, ``vec_i``: the movie row's terms,
``_trainer.block_terms``), linear in ``theta = [w_u, v_u]`` with features ``[1, vec_i]``:

- ``regressor``: squared loss, so ridge regression on the ratings minus ``w0 + bias_i``;
- ``binary_classifier``: logistic loss on the labels (``rating >= positive_rating``; every history
  movie when ``positive_rating`` is None or no ratings are given), minimized by Newton steps. With
  ``negatives_per_positive = k > 0`` the fit also trained on ``k`` sampled unrated movies per
  positive, labelled 0; the fold-in takes their expectation instead of a draw: every movie
  outside the history, labelled 0, weighted ``k * positives / (movies outside the history)``.

The L2 penalties come from the model's own weight decay. The trainer steps with
``g = rescale_grad * grad + wd * weight`` and, as MXNet's lazy update, decays a row once per
mini-batch that touches it; at its fixed point ``sum_j grad_j + (wd / rescale_grad) * touches * theta
= 0``, the stationarity of a penalty ``wd * touches / rescale_grad`` (``rescale_grad`` defaults to
``1 / mini_batch_size``). ``touches`` is the expected count of mini-batches holding the visitor's
``n`` rows among an epoch of ``m`` batches, ``m (1 - (1 - 1/m)^n)``, with the fit's row count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from movierec.models._fold_in import logistic_fold_in, ridge_contributions, ridge_fold_in

__all__ = ["FMFoldIn"]


@dataclass(frozen=True)
class FMFoldIn:
    """What the fold-in needs of a fitted FM: the fixed terms and the training schedule.

    Attributes
    ----------
    w0 : float
    item_bias, item_vec : ndarray
        Each movie row's linear-plus-own term and its ``row @ V``.
    binary : bool
        ``binary_classifier`` (logistic loss) rather than ``regressor``.
    positive_rating : float or None
    negatives_per_positive : float
    linear_wd, factors_wd : float
        Weight decay of ``w`` and ``V`` (``factors_wd`` resolved).
    rescale : float
        ``rescale_grad`` (``1 / mini_batch_size`` when None).
    batches : int
        Mini-batches per epoch of the fit (its rows, ratings and negatives, over ``mini_batch_size``).
    """

    w0: float
    item_bias: np.ndarray
    item_vec: np.ndarray
    binary: bool
    positive_rating: float | None
    negatives_per_positive: float
    linear_wd: float
    factors_wd: float
    rescale: float
    batches: int

    def _penalty(self, rows: float) -> np.ndarray:
        """Return the penalty of ``[w_u, v_u]`` for a visitor with ``rows`` training rows."""
        m = max(1, self.batches)
        touches = m * (1.0 - (1.0 - 1.0 / m) ** rows) if m > 1 else 1.0
        scale = touches / self.rescale
        k = self.item_vec.shape[1]
        return np.concatenate([[self.linear_wd * scale], np.full(k, self.factors_wd * scale)])

    def _labels(self, ratings: np.ndarray | None, n: int) -> np.ndarray:
        if ratings is None or self.positive_rating is None:
            return np.ones(n)
        return (np.asarray(ratings) >= self.positive_rating).astype(np.float64)

    def theta(self, item_idx: np.ndarray, ratings: np.ndarray | None) -> np.ndarray:
        """Return the visitor's ``[w_u, v_u]``; ``ratings`` are the history's (liked ones when None)."""
        if not self.binary:
            penalty = self._penalty(len(item_idx))
            targets = np.asarray(ratings, dtype=np.float64) - self.w0 - self.item_bias[item_idx]
            b, v = ridge_fold_in(self.item_vec[item_idx], targets, penalty[1:], bias_penalty=float(penalty[0]))
            return np.concatenate([[b], v])
        labels = self._labels(ratings, len(item_idx))
        weights, index = np.ones(len(item_idx)), item_idx
        k = self.negatives_per_positive
        n_rows = float(len(item_idx))
        if k > 0:
            outside = np.setdiff1d(np.arange(len(self.item_bias)), item_idx)
            expected = k * labels.sum()
            n_rows += expected
            if len(outside) and expected > 0:
                index = np.concatenate([item_idx, outside])
                labels = np.concatenate([labels, np.zeros(len(outside))])
                weights = np.concatenate([weights, np.full(len(outside), expected / len(outside))])
        X = np.column_stack([np.ones(len(index)), self.item_vec[index]])
        offsets = self.w0 + self.item_bias[index]
        # logistic_fold_in's penalty is 0.5 theta' P theta: the trainer's decay gradient is P theta
        return logistic_fold_in(X, labels, offsets, self._penalty(n_rows), weights=weights)

    def raw_scores(self, theta: np.ndarray) -> np.ndarray:
        """Return every movie's score before the link: ``w0 + w_u + bias_i + <v_u, vec_i>``."""
        return self.w0 + theta[0] + self.item_bias + self.item_vec @ theta[1:]

    def contributions(self, item_idx: np.ndarray, ratings: np.ndarray, target_idx: np.ndarray) -> np.ndarray:
        """Return the regressor's exact split of ``w_u + <v_u, vec_i>`` over the history movies."""
        penalty = self._penalty(len(item_idx))
        targets = np.asarray(ratings, dtype=np.float64) - self.w0 - self.item_bias[item_idx]
        return ridge_contributions(
            self.item_vec[item_idx], targets, penalty[1:], self.item_vec[target_idx], bias_penalty=float(penalty[0])
        )


def batches_per_epoch(rows: int, mini_batch_size: int) -> int:
    """Return the mini-batches of an epoch over ``rows`` training rows."""
    return max(1, math.ceil(rows / mini_batch_size))
