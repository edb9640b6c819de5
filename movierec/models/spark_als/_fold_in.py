"""A visitor's factors from SparkALS's fitted item factors: Spark's own user step, in numpy.

Spark's ALS ends each sweep with the user step: every user's factors solve a least-squares problem
against the (then fixed) item factors. The same step, for a history that is not in the fit, gives
the visitor's factors without Spark. As Spark's ``computeFactors`` does:

- explicit (``implicit_prefs=False``): ``(sum_j y_j y_j' + reg n I) x = sum_j r_j y_j`` over the
  ``n`` rated movies;
- implicit: ``(Y'Y + sum_j c1_j y_j y_j' + reg n I) x = sum_{j: r_j > 0} (1 + c1_j) y_j`` with
  ``c1_j = alpha |r_j|`` (confidence minus 1; a rating <= 0 adds confidence, no preference) and
  ``n`` the count of positive ratings;
- the penalty grows with ``n`` ("ALS-WR": Spark weights ``regParam`` by the user's rating count);
- ``nonnegative=True`` solves the same system under ``x >= 0`` (Spark's NNLS).

A user in the fit whose history is their training ratings gets back, up to float32 rounding, the
factors the last sweep gave them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from movierec.models._fold_in import als_contributions, als_user_step

__all__ = ["ALSStep"]


@dataclass(frozen=True)
class ALSStep:
    """The user step of a fitted ALS: item factors ``Y``, their Gram matrix and the fit's parameters."""

    Y: np.ndarray
    gram: np.ndarray
    reg_param: float
    implicit_prefs: bool
    alpha: float
    nonnegative: bool

    def _terms(self, item_idx: np.ndarray, ratings: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """Return (extra confidence, pull, penalty) of the history, as Spark's ``NormalEquation.add``."""
        ratings = np.asarray(ratings, dtype=np.float64)
        if not self.implicit_prefs:
            return np.ones(len(ratings)), ratings, self.reg_param * len(ratings)
        c1 = self.alpha * np.abs(ratings)
        positive = ratings > 0
        return c1, np.where(positive, 1.0 + c1, 0.0), self.reg_param * int(positive.sum())

    def _gram(self) -> np.ndarray | None:
        return self.gram if self.implicit_prefs else None

    def factors(self, item_idx: np.ndarray, ratings: np.ndarray) -> np.ndarray:
        """Return the visitor's factor vector for these history movies and ratings."""
        extra, pull, penalty = self._terms(item_idx, ratings)
        return als_user_step(
            self.Y, self._gram(), item_idx, extra, pull, penalty, nonnegative=self.nonnegative
        )

    def contributions(self, item_idx: np.ndarray, ratings: np.ndarray, target_idx: np.ndarray) -> np.ndarray:
        """Return each history movie's exact share of each target's score (not for ``nonnegative``)."""
        extra, pull, penalty = self._terms(item_idx, ratings)
        return als_contributions(self.Y, self._gram(), item_idx, extra, pull, penalty, target_idx)
