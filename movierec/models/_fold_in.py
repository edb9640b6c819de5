"""Folding a visitor into a fitted factor model: the least squares the models' user steps solve.

A visitor who is not in the fit arrives with a few movies (and maybe their ratings). With the item
side fixed, each factor model's user step is a small regularized least-squares problem in the
visitor's own parameters (a bias and a factor vector); these functions solve it in numpy, for the
models' ``_score_history`` hooks (`movierec.base`):

- `ridge_fold_in`: weighted ridge regression on ``[1, q_j]`` (SurpriseSVD, SageMakerFM's
  regressor, MyFMBayes's conditional posterior mean, explicit ALS without the bias);
- `logistic_fold_in`: Newton steps on the L2-penalized logistic loss (SageMakerFM's binary
  classifier);
- `als_user_step`: ALS's user step, explicit (ridge on the rated items) or implicit (Hu,
  Koren and Volinsky's weighted least squares against every item), and
  `als_contributions`, its exact split into one term per history movie, as ``implicit``'s
  ``explain`` computes it;
- `cosine_similarities`: every item's cosine with one item, as ``implicit``'s
  ``similar_items`` ranks them.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg

__all__ = [
    "als_contributions",
    "als_user_step",
    "als_user_system",
    "cosine_similarities",
    "logistic_fold_in",
    "nonnegative_solve",
    "ridge_contributions",
    "ridge_fold_in",
]

#: Newton steps of :func:`logistic_fold_in`; the penalized logistic loss is strictly convex in the
#: visitor's parameters and starts from zero, so a handful reach machine precision.
NEWTON_STEPS = 25
_NEWTON_TOL = 1e-10


def cosine_similarities(factors: np.ndarray, item: int) -> np.ndarray:
    """Return the cosine of every row of ``factors`` with row ``item``; rows of zero norm give 0."""
    factors = np.asarray(factors, dtype=np.float64)
    norms = np.linalg.norm(factors, axis=1)
    dots = factors @ factors[item]
    scale = norms * norms[item]
    out = np.zeros(len(factors))
    np.divide(dots, scale, out=out, where=scale > 0)
    return out


def _design(Q: np.ndarray, bias: bool) -> np.ndarray:
    Q = np.asarray(Q, dtype=np.float64)
    return np.column_stack([np.ones(len(Q)), Q]) if bias else Q


def ridge_fold_in(
    Q: np.ndarray,
    targets: np.ndarray,
    penalty: float | np.ndarray,
    *,
    bias_penalty: float | None = None,
    weights: np.ndarray | None = None,
    prior: np.ndarray | None = None,
) -> tuple[float, np.ndarray]:
    """Return ``(b, p)`` minimizing ``sum_j w_j (t_j - b - q_j.p)^2 + bias_penalty b^2 + |penalty^0.5 (p - prior)|^2``.

    Parameters
    ----------
    Q : ndarray of shape (m, k)
        The history movies' factor rows.
    targets : ndarray of shape (m,)
        What ``b + q_j.p`` should fit: each rating minus the model's fixed terms.
    penalty : float or ndarray of shape (k,)
        Ridge penalty of the factors (one per dimension if an array).
    bias_penalty : float or None
        Ridge penalty of the bias; None fits no bias (``b`` is 0).
    weights : ndarray of shape (m,), optional
        Weight of each squared error (1 when None).
    prior : ndarray of shape (k,), optional
        The value the penalty pulls ``p`` toward (0 when None).
    """
    bias = bias_penalty is not None
    X = _design(Q, bias)
    k = X.shape[1]
    w = np.ones(len(X)) if weights is None else np.asarray(weights, dtype=np.float64)
    diagonal = np.broadcast_to(np.asarray(penalty, dtype=np.float64), (Q.shape[1],))
    if bias:
        diagonal = np.concatenate([[bias_penalty], diagonal])
    center = np.zeros(k)
    if prior is not None:
        center[-Q.shape[1] :] = prior
    A = (X.T * w) @ X + np.diag(diagonal)
    rhs = (X.T * w) @ (np.asarray(targets, dtype=np.float64) - X @ center)
    solution = center + _solve_spd(A, rhs)
    return (float(solution[0]), solution[1:]) if bias else (0.0, solution)


def ridge_contributions(
    Q: np.ndarray,
    targets: np.ndarray,
    penalty: float | np.ndarray,
    targets_Q: np.ndarray,
    *,
    bias_penalty: float | None = None,
) -> np.ndarray:
    """Return the ``(m, len(targets_Q))`` terms ``t_j x_j' A^-1 x_i`` of `ridge_fold_in` (no prior, unit weights).

    ``x = [1, q]`` with a bias, else ``q``; ``A`` is the fold-in's matrix. Summed over the history
    they give ``b + q_i.p`` of each target: the fold-in's score minus what an empty history scores.
    """
    bias = bias_penalty is not None
    X = _design(Q, bias)
    diagonal = np.broadcast_to(np.asarray(penalty, dtype=np.float64), (Q.shape[1],))
    if bias:
        diagonal = np.concatenate([[bias_penalty], diagonal])
    A = X.T @ X + np.diag(diagonal)
    weighted = _solve_spd(A, _design(targets_Q, bias).T)  # A^-1 x_i, one column per target
    return np.asarray(targets, dtype=np.float64)[:, None] * (X @ weighted)


def _solve_spd(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Solve ``A x = b`` for a symmetric matrix: Cholesky when positive definite, else least squares."""
    try:
        return linalg.cho_solve(linalg.cho_factor(A), b)
    except linalg.LinAlgError:  # no penalty and fewer movies than factors: the minimum-norm solution
        return np.linalg.lstsq(A, b, rcond=None)[0]


def nonnegative_solve(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Return ``argmin_{x >= 0} 0.5 x'Ax - b'x`` for positive definite ``A`` (Spark ALS's NNLS step).

    With ``A = L L'`` the objective is ``0.5 |L'x - L^-1 b|^2`` plus a constant, which is a
    non-negative least-squares problem scipy solves exactly.
    """
    from scipy import optimize  # only non-negative ALS needs it

    L = linalg.cholesky(A, lower=True)
    return optimize.nnls(L.T, linalg.solve_triangular(L, b, lower=True))[0]


def als_user_system(
    Y: np.ndarray, gram: np.ndarray | None, item_idx: np.ndarray, extra: np.ndarray, pull: np.ndarray,
    penalty: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(A, b)`` of an ALS user step: ``A = G + sum_j e_j y_j y_j' + penalty I``, ``b = sum_j u_j y_j``.

    ``G`` is ``gram`` (``Y'Y``, implicit ALS: every item counts, at confidence 1 and preference 0)
    or zero (explicit ALS: only the rated items count). ``extra`` (``e_j``) is the history's
    confidence beyond that (``c_j - 1`` implicit, 1 explicit) and ``pull`` (``u_j``) its
    confidence times preference (``c_j p_j`` implicit, the rating explicit).
    """
    Yh = Y[item_idx]
    A = (Yh.T * extra) @ Yh + penalty * np.eye(Y.shape[1])
    if gram is not None:
        A += gram
    return A, Yh.T @ pull


def als_user_step(
    Y: np.ndarray, gram: np.ndarray | None, item_idx: np.ndarray, extra: np.ndarray, pull: np.ndarray,
    penalty: float, *, nonnegative: bool = False,
) -> np.ndarray:
    """Return the visitor's factors ``A^-1 b`` of `als_user_system` (non-negative: Spark's NNLS)."""
    A, b = als_user_system(Y, gram, item_idx, extra, pull, penalty)
    return nonnegative_solve(A, b) if nonnegative else _solve_spd(A, b)


def als_contributions(
    Y: np.ndarray, gram: np.ndarray | None, item_idx: np.ndarray, extra: np.ndarray, pull: np.ndarray,
    penalty: float, target_idx: np.ndarray,
) -> np.ndarray:
    """Return the ``(len(item_idx), len(target_idx))`` terms ``u_j y_j' W y_i`` with ``W = A^-1``.

    They sum over the history to the fold-in's score of each target, ``b' W y_i``: the split
    ``implicit``'s ``AlternatingLeastSquares.explain`` makes (section 5 of Hu, Koren and Volinsky,
    where ``u_j = c_j p_j``); with explicit ratings ``u_j`` is the rating.
    """
    A, _ = als_user_system(Y, gram, item_idx, extra, pull, penalty)
    weighted = _solve_spd(A, Y[target_idx].T)  # W y_i, one column per target
    return pull[:, None] * (Y[item_idx] @ weighted)


def logistic_fold_in(
    X: np.ndarray,
    labels: np.ndarray,
    offsets: np.ndarray,
    penalty: np.ndarray,
    *,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Return ``theta`` minimizing ``sum_j w_j logloss(labels_j, offsets_j + X_j.theta) + 0.5 theta' diag(penalty) theta``.

    Newton's method from zero (IRLS) with backtracking: a step is halved until the loss does not
    grow, so it converges from any start (the loss is strictly convex when every penalty is
    positive). ``penalty`` has one entry per column of ``X``; `NEWTON_STEPS` bounds the steps.
    """
    X = np.asarray(X, dtype=np.float64)
    w = np.ones(len(X)) if weights is None else np.asarray(weights, dtype=np.float64)

    def loss(theta: np.ndarray) -> float:
        margin = offsets + X @ theta
        return float(w @ (np.logaddexp(0.0, margin) - labels * margin) + 0.5 * theta @ (penalty * theta))

    theta = np.zeros(X.shape[1])
    current = loss(theta)
    for _ in range(NEWTON_STEPS):
        prob = 0.5 * (1.0 + np.tanh(0.5 * (offsets + X @ theta)))
        gradient = X.T @ (w * (prob - labels)) + penalty * theta
        hessian = X.T @ (X * (w * prob * (1.0 - prob))[:, None]) + np.diag(penalty)
        step = _solve_spd(hessian, gradient)
        size = 1.0
        while (trial := loss(theta - size * step)) > current and size > 1e-6:
            size *= 0.5
        if trial > current:
            break  # no decrease along the Newton direction: at the minimum up to rounding
        theta, current = theta - size * step, trial
        if np.max(np.abs(size * step)) < _NEWTON_TOL:
            break
    return theta
