"""A visitor folded into MyFMBayes (ids only): each kept sample's conditional posterior mean of the user.

In a Gibbs sweep a user's bias and factors are drawn from their conditional posterior given the
movies' and the hyperparameters: Gaussian, with mean

    theta = mu + (alpha X'X + Lambda)^-1 alpha X'(e - X mu)

over the user's ratings, where ``X`` has rows ``[1, v_j]`` (the movie's factors in that sample),
``e_j = r_j - w0 - b_j`` is what is left of the rating, ``alpha`` the noise precision and
``N(mu, Lambda^-1)`` the user group's prior (``mu_w``, ``lambda_w`` for the bias; ``mu_V``,
``lambda_V`` per factor). The fold-in takes that mean for every kept sample with the sample's own
movie factors and hyperparameters (a ridge regression each, penalty ``Lambda / alpha``) and
averages the scores over the samples, as the model's predictions average its samples: the score
of movie ``i`` is ``w0 + b_i + mean_s(w_u^s + <v_u^s, v_i^s>)``. ``w0`` and ``b_i`` are the
posterior means the model keeps (the samples' own are not kept). Averaging per-sample fits, rather
than fitting to the mean factors, is unaffected by the samples' rotations of the factor space.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["UserPrior", "fold_in_user", "user_prior"]


@dataclass(frozen=True)
class UserPrior:
    """Each kept sample's noise precision and user-group prior, shape (samples,) or (samples, rank)."""

    alpha: np.ndarray
    mu_w: np.ndarray
    lambda_w: np.ndarray
    mu_V: np.ndarray
    lambda_V: np.ndarray

    def to_json(self) -> dict[str, Any]:
        """Return the prior as lists, for a saved model's ``extra``."""
        return {name: np.asarray(getattr(self, name)).tolist() for name in self.__dataclass_fields__}

    @classmethod
    def from_json(cls, values: dict[str, Any]) -> UserPrior:
        """Return the prior `to_json` wrote."""
        return cls(**{name: np.asarray(values[name], dtype=np.float64) for name in cls.__dataclass_fields__})


def user_prior(hypers: Sequence[Any], group: int) -> UserPrior:
    """Return the ``group``'s prior and the noise precision of each of myfm's hyperparameter samples."""
    return UserPrior(
        alpha=np.array([h.alpha for h in hypers], dtype=np.float64),
        mu_w=np.array([np.asarray(h.mu_w)[group] for h in hypers], dtype=np.float64),
        lambda_w=np.array([np.asarray(h.lambda_w)[group] for h in hypers], dtype=np.float64),
        mu_V=np.array([np.asarray(h.mu_V)[group] for h in hypers], dtype=np.float64),
        lambda_V=np.array([np.asarray(h.lambda_V)[group] for h in hypers], dtype=np.float64),
    )


def fold_in_user(
    item_factors: np.ndarray, residuals: np.ndarray, prior: UserPrior
) -> tuple[float, np.ndarray]:
    """Return the visitor's mean bias and user vector laid out as the model's ``user_factors_`` rows.

    ``item_factors`` are the history movies' rows of ``item_factors_`` (every sample's factors side
    by side, divided by ``sqrt(samples)``); ``residuals`` their ratings minus ``w0 + b_j``. The
    returned vector, dotted with a movie's ``item_factors_`` row, gives ``mean_s <v_u^s, v_i^s>``.
    """
    n_samples, rank = prior.mu_V.shape
    V = item_factors.reshape(len(item_factors), n_samples, rank).transpose(1, 0, 2) * np.sqrt(n_samples)
    X = np.concatenate([np.ones((n_samples, len(item_factors), 1)), V], axis=2)  # (samples, m, 1 + rank)
    center = np.concatenate([prior.mu_w[:, None], prior.mu_V], axis=1)  # (samples, 1 + rank)
    penalty = np.concatenate([prior.lambda_w[:, None], prior.lambda_V], axis=1) / prior.alpha[:, None]
    A = np.einsum("smk,sml->skl", X, X)
    A[:, np.arange(rank + 1), np.arange(rank + 1)] += penalty
    left = residuals[None, :] - np.einsum("smk,sk->sm", X, center)
    theta = center + np.linalg.solve(A, np.einsum("smk,sm->sk", X, left)[..., None])[..., 0]
    return float(theta[:, 0].mean()), theta[:, 1:].reshape(-1) / np.sqrt(n_samples)
