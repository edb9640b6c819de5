"""Factorization machines in numpy/scipy: the formula, its gradients and the local trainer.

The model is Rendle's degree-2 factorization machine, as SageMaker's built-in algorithm learns it::

    y(x) = w0 + sum_f w_f x_f + sum_{f<g} <v_f, v_g> x_f x_g
         = w0 + x.w + 0.5 * (||x V||^2 - (x*x) . rowsum(V*V))          # O(k * nnz(x))

A (user, movie) pair's feature row is the sum of a *user row* (the user's one-hot column plus their
side features) and a *movie row* (the movie's one-hot column plus its genres), with disjoint columns.
The score of a pair then splits into a user part, a movie part and one dot product, which is how
:func:`block_terms` lets ``top_n`` score the whole catalogue with one matrix product.

Nothing here knows about raw ids or pandas frames; ``_features.py`` builds the rows and
``_model.py`` maps ids.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from scipy import sparse

__all__ = [
    "FMBackend",
    "FMWeights",
    "LearnedWeights",
    "LocalTrainer",
    "batch_gradients",
    "block_terms",
    "fm_predict",
    "sagemaker_hyperparameters",
    "sigmoid",
]

logger = logging.getLogger(__name__)

_ADAM_BETA1, _ADAM_BETA2 = 0.9, 0.999  # MXNet's Adam defaults; SageMaker does not expose them
_DEFAULT_EPS = 1e-8
_FIRST = np.zeros(1, dtype=np.intp)  # the rows of the one-element bias array
#: factors_wd=None resolves to this per predictor_type (chosen on validation splits of ml-100k).
_FACTORS_WD = {"regressor": 3e-4, "binary_classifier": 1.5e-4}
#: SageMakerFM parameters that are not SageMaker hyperparameters and are not sent to a backend
_NOT_HYPERPARAMETERS = (
    "positive_rating", "negatives_per_positive", "side_features", "side_feature_value", "backend", "sagemaker",
    "random_state",
)


# -- the backend interface ---------------------------------------------------------------------
@dataclass(frozen=True)
class FMWeights:
    """The learned parameters of a factorization machine (SageMaker's ``w0``, ``w``, ``V``).

    Attributes
    ----------
    w0 : float
        Global bias.
    w : ndarray of shape (feature_dim,)
        Linear weights.
    V : ndarray of shape (feature_dim, num_factors)
        Factor vectors, one row per feature.
    """

    w0: float
    w: np.ndarray
    V: np.ndarray


class LearnedWeights(Protocol):
    """What a backend's ``fit`` returns: ``w0``, ``w`` and ``V``, as :class:`FMWeights` holds them.

    The local trainer returns an :class:`FMWeights`; the SageMaker backend a handle on its training
    job's artifact that downloads ``model.tar.gz`` the first time one of the three is read.
    """

    @property
    def w0(self) -> float: ...

    @property
    def w(self) -> np.ndarray: ...

    @property
    def V(self) -> np.ndarray: ...


class FMBackend(Protocol):
    """What ``SageMakerFM`` needs from a trainer: local numpy here, a SageMaker training job there.

    A backend is built with the model's hyperparameters (SageMaker's names, ``feature_dim``
    filled in from the data; see ``SageMakerFM.hyperparameters``) and a ``random_state``.
    ``fit`` gets the design matrix (CSR, float64, one row per rating, then one per sampled negative)
    and the labels (ratings for ``regressor``, 0/1 for ``binary_classifier``) and returns the
    learned weights; ``close`` releases whatever the backend created (a no-op locally).
    """

    def fit(self, X: sparse.csr_matrix, y: np.ndarray) -> LearnedWeights: ...

    def close(self) -> None: ...


def sagemaker_hyperparameters(params: Mapping[str, Any]) -> dict[str, Any]:
    """Return the SageMaker hyperparameters of a model's ``params``: defaults resolved, None left out."""
    hp = {k: v for k, v in params.items() if k not in _NOT_HYPERPARAMETERS}
    if hp["factors_wd"] is None:
        hp["factors_wd"] = _FACTORS_WD[hp["predictor_type"]]
    return {k: v for k, v in hp.items() if v is not None}


# -- scoring -----------------------------------------------------------------------------------
def fm_predict(X: sparse.spmatrix, w0: float, w: np.ndarray, V: np.ndarray) -> np.ndarray:
    """Return the FM score of each row of ``X`` with the O(k * nnz) formula."""
    X = sparse.csr_matrix(X)
    XV = X @ V
    squares = X.multiply(X) @ np.einsum("fk,fk->f", V, V)
    return w0 + X @ w + 0.5 * (np.einsum("nk,nk->n", XV, XV) - squares)


def block_terms(rows: sparse.csr_matrix, w: np.ndarray, V: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (bias, vector) of each row: its linear term plus its own pairwise term, and ``row @ V``.

    For a pair row ``x = a + b`` with disjoint columns, ``fm_predict(x) = w0 + bias_a + bias_b +
    <vector_a, vector_b>``.
    """
    vectors = np.asarray(rows @ V)
    return fm_predict(rows, 0.0, w, V), vectors


# -- training ----------------------------------------------------------------------------------
def batch_gradients(
    X: sparse.csr_matrix, y: np.ndarray, w0: float, w: np.ndarray, V: np.ndarray, predictor_type: str
) -> tuple[float, float, np.ndarray, np.ndarray]:
    """Return (loss, dL/dw0, dL/dw, dL/dV) of the summed loss over the rows of ``X``.

    Loss is ``0.5 * (y_hat - y)^2`` (regressor) or the logistic loss of ``y`` in {0, 1}
    (binary_classifier). ``w`` and ``V`` may be the restriction to ``X``'s columns.
    """
    XV = X @ V
    X2 = X.copy()
    X2.data = X2.data * X2.data
    pred = w0 + X @ w + 0.5 * (np.einsum("nk,nk->n", XV, XV) - X2 @ np.einsum("fk,fk->f", V, V))
    if predictor_type == "binary_classifier":
        # log(1 + e^p) - y p, written to stay finite for large |p|
        loss = float(np.sum(np.logaddexp(0.0, pred) - y * pred))
        residual = _sigmoid(pred) - y
    else:
        diff = pred - y
        loss = float(0.5 * diff @ diff)
        residual = diff
    XT = X.T  # CSC: products with it need no conversion
    grad_w = XT @ residual
    grad_V = XT @ (residual[:, None] * XV) - V * (X2.T @ residual)[:, None]
    return loss, float(residual.sum()), np.asarray(grad_w), np.asarray(grad_V)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # = 1 / (1 + e^-x), without overflow warnings


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Return the logistic function of ``x``, computed without overflow."""
    return _sigmoid(np.asarray(x, dtype=np.float64))


def _init(rng: np.random.Generator, shape: tuple[int, ...], hp: Mapping[str, Any], group: str) -> np.ndarray:
    method = hp[f"{group}_init_method"]
    if method == "normal":
        return rng.normal(0.0, hp[f"{group}_init_sigma"], size=shape)
    if method == "uniform":
        scale = hp[f"{group}_init_scale"]
        return rng.uniform(-scale, scale, size=shape)
    return np.full(shape, float(hp[f"{group}_init_value"]))


class _Adam:
    """MXNet-style Adam on the rows a batch touches (lazy update), with weight decay and clipping.

    ``grad = rescale_grad * grad + wd * weight``, clipped to ``[-clip_gradient, clip_gradient]``,
    then the Adam step with bias correction by the global step count. Rows a batch does not touch
    keep their weights and moments, as MXNet's ``lazy_update`` does for sparse gradients.
    """

    def __init__(self, weight: np.ndarray, lr: float, wd: float, clip: float | None, eps: float) -> None:
        self.weight, self.lr, self.wd, self.clip, self.eps = weight, lr, wd, clip, eps
        self.mean = np.zeros_like(weight)
        self.var = np.zeros_like(weight)

    def step(self, rows: np.ndarray, grad: np.ndarray, rescale: float, t: int) -> None:
        """Update the weights of ``rows`` (sorted unique indices) given their summed gradient."""
        weight = np.take(self.weight, rows, axis=0)
        mean = np.take(self.mean, rows, axis=0)
        var = np.take(self.var, rows, axis=0)
        grad = grad * rescale
        grad += self.wd * weight
        if self.clip is not None:
            np.clip(grad, -self.clip, self.clip, out=grad)
        mean *= _ADAM_BETA1
        mean += (1.0 - _ADAM_BETA1) * grad
        var *= _ADAM_BETA2
        grad *= grad
        var += (1.0 - _ADAM_BETA2) * grad
        self.mean[rows], self.var[rows] = mean, var
        step = np.sqrt(var)
        step += self.eps
        np.divide(mean, step, out=step)
        step *= self.lr * math.sqrt(1.0 - _ADAM_BETA2**t) / (1.0 - _ADAM_BETA1**t)
        weight -= step
        self.weight[rows] = weight


class LocalTrainer:
    """Trains a factorization machine with mini-batch Adam in numpy/scipy (the ``local`` backend).

    Each epoch shuffles the rows; each mini-batch is a CSR slice whose columns are compressed to
    the ones it touches, so a step costs O(k * nnz(batch)) whatever ``feature_dim`` is. The only
    Python loop is over mini-batches.

    Parameters
    ----------
    hyperparameters : mapping
        SageMaker's names: ``num_factors, predictor_type, epochs, mini_batch_size``,
        ``{bias,linear,factors}_{lr,wd,init_method,init_sigma,init_scale,init_value}``,
        ``clip_gradient, eps, rescale_grad`` (``None`` for the last three: no clipping, 1e-8,
        1 / batch size).
    random_state : int or None
        Seeds the initialisation and the shuffling.
    """

    def __init__(self, hyperparameters: Mapping[str, Any], random_state: int | None = None) -> None:
        self.hyperparameters = dict(hyperparameters)
        self.random_state = random_state

    def fit(self, X: sparse.csr_matrix, y: np.ndarray) -> FMWeights:
        """Return the weights learned from the design matrix ``X`` and labels ``y``."""
        hp = self.hyperparameters
        rng = np.random.default_rng(self.random_state)
        X = sparse.csr_matrix(X, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        dim, k = X.shape[1], int(hp["num_factors"])
        eps = _DEFAULT_EPS if hp.get("eps") is None else float(hp["eps"])
        clip = hp.get("clip_gradient")
        w0 = _init(rng, (1,), hp, "bias")
        w = _init(rng, (dim,), hp, "linear")
        V = _init(rng, (dim, k), hp, "factors")
        opt = {
            name: _Adam(array, float(hp[f"{name}_lr"]), float(hp[f"{name}_wd"]), clip, eps)
            for name, array in (("bias", w0), ("linear", w), ("factors", V))
        }
        with np.errstate(over="ignore", invalid="ignore"):  # divergence is reported by the caller
            self._epochs(X, y, rng, w0, w, V, opt)
        return FMWeights(float(w0[0]), w, V)

    def _epochs(self, X, y, rng, w0, w, V, opt) -> None:
        hp = self.hyperparameters
        n, batch, kind = X.shape[0], int(hp["mini_batch_size"]), hp["predictor_type"]
        t = 0
        for epoch in range(int(hp["epochs"])):
            order = rng.permutation(n)
            Xe, ye = X[order], y[order]
            total = 0.0
            for start in range(0, n, batch):
                stop = min(start + batch, n)
                lo, hi = Xe.indptr[start], Xe.indptr[stop]
                cols, local = np.unique(Xe.indices[lo:hi], return_inverse=True)
                Xb = sparse.csr_matrix(
                    (Xe.data[lo:hi], local.ravel(), Xe.indptr[start : stop + 1] - lo),
                    shape=(stop - start, len(cols)),
                )
                loss, g0, gw, gV = batch_gradients(Xb, ye[start:stop], float(w0[0]), w[cols], V[cols], kind)
                rescale = (
                    1.0 / (stop - start) if hp.get("rescale_grad") is None else float(hp["rescale_grad"])
                )
                t += 1
                opt["bias"].step(_FIRST, np.array([g0]), rescale, t)
                opt["linear"].step(cols, gw, rescale, t)
                opt["factors"].step(cols, gV, rescale, t)
                total += loss
            if not np.isfinite(total):
                break  # the caller checks the weights and reports the failure
            logger.debug("epoch %d: mean training loss %.5f", epoch + 1, total / n)

    def close(self) -> None:
        """Nothing to release for the local backend."""
