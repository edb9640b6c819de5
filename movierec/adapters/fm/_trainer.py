"""Factorization machines in numpy/scipy: the design matrix, the local trainer and scoring.

The model is Rendle's degree-2 factorization machine, as SageMaker's built-in algorithm learns it::

    y(x) = w0 + sum_f w_f x_f + sum_{f<g} <v_f, v_g> x_f x_g
         = w0 + x.w + 0.5 * (||x V||^2 - (x*x) . rowsum(V*V))          # O(k * nnz(x))

A (user, movie) pair's feature row is the sum of a *user row* (the user's one-hot column plus their
side features) and a *movie row* (the movie's one-hot column plus its genres), with disjoint columns.
The score of a pair then splits into a user part, a movie part and one dot product, which is how
:func:`block_terms` lets ``top_n`` score the whole catalogue with one matrix product.

Nothing here knows about raw ids or pandas validation; ``sagemaker_fm.py`` does that.
"""

from __future__ import annotations

import logging
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd
from scipy import sparse

from movierec.exceptions import DataValidationError

__all__ = [
    "AGE_EDGES",
    "LIKE_THRESHOLD",
    "FMBackend",
    "FMWeights",
    "LocalTrainer",
    "batch_gradients",
    "block_terms",
    "design_rows",
    "draw",
    "fm_predict",
    "item_side_features",
    "objective_value",
    "sigmoid",
    "user_side_features",
]

logger = logging.getLogger(__name__)

#: binary_classifier label: a rating of at least this many stars is a "like" (the seed and AWS blog).
LIKE_THRESHOLD = 4.0
#: Age buckets of MovieLens 1M's own coding: <18, 18-24, 25-34, 35-44, 45-49, 50-55, 56+.
AGE_EDGES = (18, 25, 35, 45, 50, 56)
_AGE_LABELS = ("<18", "18-24", "25-34", "35-44", "45-49", "50-55", "56+")
_ADAM_BETA1, _ADAM_BETA2 = 0.9, 0.999  # MXNet's Adam defaults; SageMaker does not expose them
_DEFAULT_EPS = 1e-8
_FIRST = np.zeros(1, dtype=np.intp)  # the rows of the one-element bias array


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


class FMBackend(Protocol):
    """What ``SageMakerFM`` needs from a trainer: local numpy here, a SageMaker training job later.

    A backend is built with the model's hyperparameters (SageMaker's names, ``feature_dim``
    filled in from the data; see ``SageMakerFM.hyperparameters``) and a ``random_state``.
    ``fit`` gets the design matrix (CSR, float64, one row per rating) and the labels (ratings for
    ``regressor``, 0/1 for ``binary_classifier``) and returns the learned weights; ``close``
    releases whatever the backend created (a no-op locally).
    """

    def fit(self, X: sparse.csr_matrix, y: np.ndarray) -> FMWeights: ...

    def close(self) -> None: ...


# -- side features -----------------------------------------------------------------------------
def _side_frame(frame: Any, id_column: str, name: str) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise DataValidationError(f"{name} must be a pandas DataFrame, got {type(frame).__name__}")
    if id_column not in frame.columns:
        raise DataValidationError(f"{name} needs an {id_column!r} column; it has {list(frame.columns)}")
    dup = frame[id_column].duplicated()
    if dup.any():
        raise DataValidationError(
            f"{name}.{id_column} has duplicate ids, e.g. {frame[id_column][dup].iloc[0]!r}"
        )
    return frame


def _categorical_block(values: pd.Series, prefix: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Return (row, column, names) of the one-hot coding of ``values``; missing values set nothing."""
    codes, categories = pd.factorize(values, sort=True)
    rows = np.flatnonzero(codes >= 0)
    return rows, codes[rows], [f"{prefix}={c}" for c in categories]


def _stack(
    n_rows: int, blocks: list[tuple[np.ndarray, np.ndarray, list[str]]]
) -> tuple[sparse.csr_matrix, list[str]]:
    rows, cols, names, offset = [], [], [], 0
    for r, c, block_names in blocks:
        rows.append(r)
        cols.append(c + offset)
        names.extend(block_names)
        offset += len(block_names)
    r = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    c = np.concatenate(cols) if cols else np.zeros(0, np.int64)
    matrix = sparse.csr_matrix((np.ones(len(r)), (r, c)), shape=(n_rows, offset))
    matrix.sort_indices()
    return matrix, names


def user_side_features(users: pd.DataFrame, user_ids: np.ndarray) -> tuple[sparse.csr_matrix, list[str]]:
    """Return the user side features of ``user_ids`` (rows in that order) and their names.

    From the columns the frame has: ``age`` in the buckets of :data:`AGE_EDGES`, ``gender`` and
    ``occupation`` one-hot (categories as found in ``users``). Ids absent from ``users`` and
    missing values get no feature. Other columns (``zip``) are ignored.
    """
    users = _side_frame(users, "userId", "users")
    used = [c for c in ("age", "gender", "occupation") if c in users.columns]
    if not used:
        raise DataValidationError(
            "users needs at least one of the columns 'age', 'gender', 'occupation'; "
            f"it has {list(users.columns)}"
        )
    position = pd.Index(users["userId"]).get_indexer(pd.Index(user_ids))
    frame = users.iloc[np.maximum(position, 0)].reset_index(drop=True)
    present = position >= 0
    blocks = []
    if "age" in used:
        age = pd.to_numeric(frame["age"], errors="coerce").to_numpy(dtype=float)
        ok = present & np.isfinite(age)
        rows = np.flatnonzero(ok)
        blocks.append(
            (rows, np.searchsorted(AGE_EDGES, age[rows], side="right"), [f"age={a}" for a in _AGE_LABELS])
        )
    for column in ("gender", "occupation"):
        if column in used:
            values = frame[column].where(present)
            blocks.append(_categorical_block(values, column))
    return _stack(len(user_ids), blocks)


def item_side_features(items: pd.DataFrame, item_ids: np.ndarray) -> tuple[sparse.csr_matrix, list[str]]:
    """Return the genre features of ``item_ids`` (rows in that order) and their names.

    Genres are the frame's boolean columns (ml-100k's 19 genre flags) or, when it has none, a
    ``genres`` column of '|'-separated names (the other MovieLens datasets). A movie with several
    genres has several ones. Ids absent from ``items`` get no feature.
    """
    items = _side_frame(items, "movieId", "items")
    flags = [c for c in items.columns if c != "movieId" and pd.api.types.is_bool_dtype(items[c].dtype)]
    if flags:
        table = items[flags].to_numpy(dtype=bool)
        names = list(flags)
    elif "genres" in items.columns:
        dummies = items["genres"].fillna("").astype(str).str.get_dummies(sep="|")
        table, names = dummies.to_numpy(dtype=bool), list(dummies.columns)
    else:
        raise DataValidationError(
            f"items needs boolean genre columns or a 'genres' column; it has {list(items.columns)}"
        )
    position = pd.Index(items["movieId"]).get_indexer(pd.Index(item_ids))
    gathered = table[np.maximum(position, 0)] & (position >= 0)[:, None]
    rows, cols = np.nonzero(gathered)
    return _stack(len(item_ids), [(rows, cols, [f"genre={g}" for g in names])])


def design_rows(
    rated_users: np.ndarray,
    rated_items: np.ndarray,
    user_side: sparse.csr_matrix | None,
    item_side: sparse.csr_matrix | None,
) -> tuple[sparse.csr_matrix, sparse.csr_matrix]:
    """Return the (user rows, movie rows) of the design matrix; a pair's row is their sum.

    Columns: one per user with ratings, one per movie with ratings, then the user side features,
    then the movie side features. A user or movie without ratings (known from side data only) has
    no one-hot column, so it is scored from its side features alone.
    """
    n_users, n_items = len(rated_users), len(rated_items)
    n_ucols, n_icols = int(rated_users.sum()), int(rated_items.sum())
    n_uside = 0 if user_side is None else user_side.shape[1]
    n_iside = 0 if item_side is None else item_side.shape[1]
    dim = n_ucols + n_icols + n_uside + n_iside

    def rows(rated, start, side, side_start, n):
        onehot = sparse.csr_matrix(
            (np.ones(int(rated.sum())), (np.flatnonzero(rated), start + np.arange(int(rated.sum())))),
            shape=(n, dim),
        )
        if side is None or side.shape[1] == 0:
            return onehot
        side = side.tocoo()
        placed = sparse.csr_matrix((side.data, (side.row, side.col + side_start)), shape=(n, dim))
        out = (onehot + placed).tocsr()
        out.sort_indices()
        return out

    user_rows = rows(rated_users, 0, user_side, n_ucols + n_icols, n_users)
    item_rows = rows(rated_items, n_ucols, item_side, n_ucols + n_icols + n_uside, n_items)
    return user_rows, item_rows


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
    random_state : int, numpy Generator or None
        Seeds the initialisation and the shuffling.
    """

    def __init__(self, hyperparameters: Mapping[str, Any], random_state: Any = None) -> None:
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


# -- tuning ------------------------------------------------------------------------------------
def draw(rng: np.random.Generator, name: str, spec: Any, *, integer: bool) -> Any:
    """Return one value of hyperparameter ``name`` drawn from ``spec``, a (low, high) pair or a list.

    Integers are uniform in ``[low, high]``; floats log-uniform when ``low > 0``, else uniform; a
    list gives one of its values.
    """
    if isinstance(spec, list):
        if not spec:
            raise DataValidationError(f"ranges[{name!r}] is an empty list")
        return spec[int(rng.integers(len(spec)))]
    is_pair = isinstance(spec, tuple) and len(spec) == 2
    if not (
        is_pair
        and all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in spec)
        and spec[0] <= spec[1]
    ):
        raise DataValidationError(
            f"ranges[{name!r}] must be (low, high) with low <= high or a list, got {spec!r}"
        )
    low, high = spec
    if integer:
        return int(rng.integers(int(low), int(high) + 1))
    if low > 0:
        return float(np.exp(rng.uniform(np.log(low), np.log(high))))
    return float(rng.uniform(low, high))


def objective_value(ratings: np.ndarray, predicted: np.ndarray, objective: str) -> float:
    """Return SageMaker's tuning metric ``objective`` of ``predicted`` against star ``ratings``.

    ``test:rmse`` compares with the ratings; the binary metrics with the labels ``rating >= 4``
    (accuracy at threshold 0.5; cross entropy with probabilities clipped to [1e-15, 1 - 1e-15]).
    Pairs predicted NaN (ids unseen in training) are left out; NaN if none is left.
    """
    known = np.isfinite(predicted)
    if not known.any():
        return float("nan")
    if not known.all():
        logger.debug("%d validation pairs cannot be scored and are left out", int((~known).sum()))
    truth, predicted = ratings[known], predicted[known]
    if objective == "test:rmse":
        return float(np.sqrt(np.mean((truth - predicted) ** 2)))
    labels = truth >= LIKE_THRESHOLD
    if objective == "test:binary_classification_accuracy":
        return float(np.mean((predicted >= 0.5) == labels))
    if objective == "test:binary_classification_cross_entropy":
        p = np.clip(predicted, 1e-15, 1 - 1e-15)
        return float(-np.mean(np.where(labels, np.log(p), np.log1p(-p))))
    raise DataValidationError(f"unknown objective {objective!r}")
