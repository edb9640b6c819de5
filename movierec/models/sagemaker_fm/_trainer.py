"""Factorization machines in numpy/scipy: the formula, its gradients and the local trainer.

The model is Rendle's degree-2 factorization machine, as SageMaker's built-in algorithm learns it::

    y(x) = w0 + sum_f w_f x_f + sum_{f<g} <v_f, v_g> x_f x_g
         = w0 + x.w + 0.5 * (||x V||^2 - (x*x) . rowsum(V*V))          # O(k * nnz(x))

A (user, movie) pair's feature row is the sum of a *user row* (the user's one-hot column plus their
side features) and a *movie row* (the movie's one-hot column plus its genres), with disjoint columns.
The score of a pair then splits into a user part, a movie part and one dot product, which is how
`block_terms` lets ``top_n`` score the whole catalogue with one matrix product.

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
#: The local trainer's precision: float32, as SageMaker's (MXNet's) trainer. Its elementwise Adam
#: passes, which dominate a step, run twice as fast as in float64 (tests set float64 to compare
#: with plain reference code).
_DTYPE = np.float32
#: Values per block of an Adam step (512 rows of 64 factors, 128 KB an array in float32), so a
#: step's arrays stay in a core's L2 cache; a whole batch's (~1750 rows) ran twice as slow under load.
_BLOCK = 32768
#: factors_wd=None resolves to this per predictor_type (chosen on validation splits of ml-100k).
_FACTORS_WD = {"regressor": 3e-4, "binary_classifier": 1.5e-4}
#: SageMakerFM parameters that are not SageMaker hyperparameters and are not sent to a backend
_NOT_HYPERPARAMETERS = (
    "positive_rating", "negatives_per_positive", "side_features", "side_feature_value", "backend",
    "sagemaker", "random_state",
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
    """What a backend's ``fit`` returns: ``w0``, ``w`` and ``V``, as `FMWeights` holds them.

    The local trainer returns an `FMWeights`; the SageMaker backend a handle on its training
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
    (binary_classifier). ``w`` and ``V`` may be the restriction to ``X``'s columns. Computed in
    float32 if ``w`` and ``V`` are float32 (as the local trainer does), else in float64.
    """
    dtype = np.result_type(w, V, np.float32)
    X = sparse.csr_matrix(X, dtype=dtype)
    rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
    w, V = np.asarray(w, dtype=dtype), np.asarray(V, dtype=dtype)
    return _gradients(X, rows, np.asarray(y, dtype=dtype), float(w0), w, V, predictor_type)


def _gradients(
    X: sparse.csr_matrix, rows: np.ndarray, y: np.ndarray, w0: float, w: np.ndarray, V: np.ndarray,
    predictor_type: str, rescale: float = 1.0, wd: tuple[float, float] = (0.0, 0.0),
) -> tuple[float, float, np.ndarray, np.ndarray]:
    """Return (loss, dL/dw0, g_w, g_V) with ``g = rescale * dL/d(weight) + wd * weight`` (``wd`` of w, of V).

    ``g`` is the gradient MXNet's optimizers step with (``rescale_grad``, then weight decay);
    with the defaults it is `batch_gradients`'. ``rows[e]`` is the row of ``X``'s ``e``-th
    stored entry. The terms of ``x * x`` (the FM formula subtracts each feature's square) are sums
    over the stored entries (``np.bincount``), so no squared copy of ``X`` is built. ``rescale``
    multiplies the residuals (one value per row) and the decay joins the per-column factor of the
    ``x * x`` term, so neither costs a pass over the (columns, k) gradient.
    """
    dtype = V.dtype  # np.bincount sums in float64: its sums are cast back
    XV = X @ V
    squares = X.data * X.data
    own = np.bincount(rows, weights=squares * np.einsum("fk,fk->f", V, V)[X.indices], minlength=X.shape[0])
    pred = w0 + X @ w + 0.5 * (np.einsum("nk,nk->n", XV, XV) - own.astype(dtype, copy=False))
    if predictor_type == "binary_classifier":
        # log(1 + e^p) - y p, written to stay finite for large |p|
        loss = float(np.sum(np.logaddexp(0.0, pred) - y * pred, dtype=np.float64))
        residual = _sigmoid(pred) - y
    else:
        residual = pred - y
        wide = residual.astype(np.float64, copy=False)  # a float32 sum could overflow before the weights do
        loss = 0.5 * float(wide @ wide)
    g0 = float(residual.sum(dtype=np.float64))
    if rescale != 1.0:
        residual *= rescale
    by_entry = residual[rows]
    grad_w = np.bincount(X.indices, weights=X.data * by_entry, minlength=len(w)).astype(dtype, copy=False)
    if wd[0]:
        grad_w += wd[0] * w
    grad_V = X.T @ (residual[:, None] * XV)  # CSC: the product needs no conversion
    own_grad = np.bincount(X.indices, weights=squares * by_entry, minlength=len(w)) - wd[1]
    grad_V -= V * own_grad.astype(dtype, copy=False)[:, None]
    return loss, g0, grad_w, grad_V


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


def _step_size(lr: float, t: int) -> float:
    """Return Adam's step size at global step ``t`` (as MXNet counts): lr * sqrt(1-b2^t) / (1-b1^t)."""
    return lr * math.sqrt(1.0 - _ADAM_BETA2**t) / (1.0 - _ADAM_BETA1**t)


class _Adam:
    """MXNet's Adam on the rows a batch touches (lazy update), with clipping.

    A step takes ``g = rescale_grad * grad + wd * weight`` (`_gradients` folds both in),
    clips it to ``[-clip_gradient, clip_gradient]``, then ``m = b1 m + (1 - b1) g``,
    ``v = b2 v + (1 - b2) g^2``, ``weight -= lr sqrt(1 - b2^t) / (1 - b1^t) m / (sqrt(v) + eps)``
    with ``t`` the global step count. Rows a batch does not touch keep their weights and moments,
    as MXNet's ``lazy_update`` does for sparse gradients: a step costs O(rows touched), whatever the
    number of rows. The moments are kept as ``m / (1 - b1)`` and ``v / (1 - b2)``, which update in
    two and three elementwise passes instead of three and four; their factors move into ``eps`` and
    the step size (the same update, up to rounding).
    """

    def __init__(self, weight: np.ndarray, lr: float, wd: float, clip: float | None, eps: float) -> None:
        self.weight, self.lr, self.wd, self.clip, self.eps = weight, lr, wd, clip, eps
        self.mean = np.zeros_like(weight)  # m / (1 - b1)
        self.var = np.zeros_like(weight)  # v / (1 - b2)
        self.block = max(1, _BLOCK // (weight.size // max(1, len(weight))))  # rows per block

    def step(self, rows: np.ndarray, weight: np.ndarray, grad: np.ndarray, t: int) -> None:
        """Update ``rows`` (unique) given ``weight = self.weight[rows]`` and their ``g`` (``grad``).

        ``weight`` and ``grad`` are overwritten. The arithmetic goes by blocks of `_BLOCK`
        values, so its elementwise passes run in cache.
        """
        root = math.sqrt(1.0 - _ADAM_BETA2)
        size, eps = _step_size(self.lr, t) * (1.0 - _ADAM_BETA1) / root, self.eps / root
        mean, var = np.take(self.mean, rows, axis=0), np.take(self.var, rows, axis=0)
        for start in range(0, len(rows), self.block):
            block = slice(start, start + self.block)
            self._update(weight[block], mean[block], var[block], grad[block], size, eps)
        self.weight[rows], self.mean[rows], self.var[rows] = weight, mean, var

    def _update(
        self, weight: np.ndarray, mean: np.ndarray, var: np.ndarray, grad: np.ndarray, size: float, eps: float
    ) -> None:
        if self.clip is not None:
            np.clip(grad, -self.clip, self.clip, out=grad)
        mean *= _ADAM_BETA1
        mean += grad
        var *= _ADAM_BETA2
        grad *= grad
        var += grad
        step = np.sqrt(var)
        step += eps
        np.divide(mean, step, out=step)
        step *= size
        weight -= step


class _ScalarAdam:
    """`_Adam` for the global bias ``w0``, which every step touches, in Python floats."""

    def __init__(self, weight: float, lr: float, wd: float, clip: float | None, eps: float) -> None:
        self.weight, self.lr, self.wd, self.clip, self.eps = weight, lr, wd, clip, eps
        self.mean = self.var = 0.0

    def step(self, grad: float, rescale: float, t: int) -> None:
        """Update the weight given its summed gradient ``dL/dw0`` and ``rescale_grad``."""
        grad = grad * rescale + self.wd * self.weight
        if self.clip is not None:
            grad = min(max(grad, -self.clip), self.clip)
        self.mean = self.mean * _ADAM_BETA1 + (1.0 - _ADAM_BETA1) * grad
        self.var = self.var * _ADAM_BETA2 + (1.0 - _ADAM_BETA2) * (grad * grad)
        self.weight -= self.mean / (math.sqrt(self.var) + self.eps) * _step_size(self.lr, t)


class _Shuffled:
    """The CSR arrays of ``X[order]`` and ``y[order]`` for each epoch's order, in buffers kept across epochs.

    Rows of one width (a user's and a movie's one-hot columns, without side features) are gathered
    with ``np.take`` into the same buffers every epoch: no new arrays to page in (at 10M ratings,
    a fresh copy took several times as long as the gather itself), and all-one values are not
    gathered at all. Other designs go through scipy's row indexing.
    """

    def __init__(self, X: sparse.csr_matrix, y: np.ndarray) -> None:
        self.X, self.y = X, y
        n = X.shape[0]
        lengths = np.diff(X.indptr)
        self.width = int(lengths[0]) if n and (lengths == lengths[0]).all() else None
        self.y_buffer = np.empty_like(y)
        if self.width is not None:
            self.indptr = np.arange(0, n * self.width + 1, self.width, dtype=X.indptr.dtype)
            self.indices = np.empty((n, self.width), dtype=X.indices.dtype)
            self.gather_data = not (X.data == 1.0).all()
            self.data = (np.empty if self.gather_data else np.ones)((n, self.width), dtype=X.data.dtype)

    def __call__(self, order: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Return (indptr, indices, data, y) of the rows in ``order``; valid until the next call."""
        np.take(self.y, order, out=self.y_buffer)
        if self.width is None:
            Xe = self.X[order]
            return Xe.indptr, Xe.indices, Xe.data, self.y_buffer
        n = len(order)
        np.take(self.X.indices.reshape(n, self.width), order, axis=0, out=self.indices)
        if self.gather_data:
            np.take(self.X.data.reshape(n, self.width), order, axis=0, out=self.data)
        return self.indptr, self.indices.reshape(-1), self.data.reshape(-1), self.y_buffer

    def entry_rows(self, indptr: np.ndarray, start: int, stop: int) -> np.ndarray:
        """Return the batch row of each stored entry of rows ``start:stop``."""
        if self.width is not None:
            return np.repeat(np.arange(stop - start), self.width)
        return np.repeat(np.arange(stop - start), np.diff(indptr[start : stop + 1]))


class LocalTrainer:
    """Trains a factorization machine with mini-batch Adam in numpy/scipy (the ``local`` backend).

    Each epoch shuffles the rows; each mini-batch is a CSR slice whose columns are compressed to
    the ones it touches, so a step costs O(k * nnz(batch)) whatever ``feature_dim`` is: the
    gradient and the Adam update read and write only the touched rows of ``w``, ``V`` and their
    moments (lazy update, see `_Adam`). Python loops over mini-batches and, within an Adam
    step, over a few blocks of rows; the arithmetic is float32 (`_DTYPE`).

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
        X = sparse.csr_matrix(X, dtype=_DTYPE)
        y = np.asarray(y, dtype=_DTYPE)
        dim, k = X.shape[1], int(hp["num_factors"])
        eps = _DEFAULT_EPS if hp.get("eps") is None else float(hp["eps"])
        clip = hp.get("clip_gradient")
        with np.errstate(over="ignore"):  # an init too wide for float32 is reported as a divergence
            w0 = _init(rng, (1,), hp, "bias")
            w = _init(rng, (dim,), hp, "linear").astype(_DTYPE)
            V = _init(rng, (dim, k), hp, "factors").astype(_DTYPE)
        bias = _ScalarAdam(float(w0[0]), float(hp["bias_lr"]), float(hp["bias_wd"]), clip, eps)
        linear, factors = (
            _Adam(array, float(hp[f"{name}_lr"]), float(hp[f"{name}_wd"]), clip, eps)
            for name, array in (("linear", w), ("factors", V))
        )
        with np.errstate(over="ignore", invalid="ignore"):  # divergence is reported by the caller
            self._epochs(X, y, rng, bias, linear, factors)
        return FMWeights(bias.weight, w.astype(np.float64), V.astype(np.float64))

    def _epochs(self, X, y, rng, bias: _ScalarAdam, linear: _Adam, factors: _Adam) -> None:
        hp = self.hyperparameters
        n, batch, kind = X.shape[0], int(hp["mini_batch_size"]), hp["predictor_type"]
        shuffled = _Shuffled(X, y)
        t = 0
        for epoch in range(int(hp["epochs"])):
            indptr, indices, data, ye = shuffled(rng.permutation(n))
            total = 0.0
            for start in range(0, n, batch):
                stop = min(start + batch, n)
                lo, hi = indptr[start], indptr[stop]
                cols, local = np.unique(indices[lo:hi], return_inverse=True)
                Xb = sparse.csr_matrix(
                    (data[lo:hi], local.ravel().astype(indices.dtype), indptr[start : stop + 1] - lo),
                    shape=(stop - start, len(cols)),
                )
                w, V = np.take(linear.weight, cols), np.take(factors.weight, cols, axis=0)
                rows = shuffled.entry_rows(indptr, start, stop)
                rescale = (
                    1.0 / (stop - start) if hp.get("rescale_grad") is None else float(hp["rescale_grad"])
                )
                loss, g0, gw, gV = _gradients(
                    Xb, rows, ye[start:stop], bias.weight, w, V, kind, rescale, (linear.wd, factors.wd)
                )
                t += 1
                bias.step(g0, rescale, t)
                linear.step(cols, w, gw, t)
                factors.step(cols, V, gV, t)
                total += loss
            if not np.isfinite(total):
                break  # the caller checks the weights and reports the failure
            logger.debug("epoch %d: mean training loss %.5f", epoch + 1, total / n)

    def close(self) -> None:
        """Nothing to release for the local backend."""
