"""The Gibbs sampler (myfm) and the folding of its posterior samples into plain numpy arrays.

A fitted FM's feature row for a rating is ``[month part | user part | movie part]`` (disjoint column
ranges, `_features`). Each of the three parts is one row of a small per-period, per-user or
per-movie matrix, so a sample's score splits into ``w0`` + one bias per part + three dot products
of per-part factor vectors. The prediction, the mean over the kept samples, is linear in each
sample: the biases are averaged and every sample's factor vectors are laid side by side, scaled by
``1 / sqrt(n_samples)``, so that one row product gives the posterior mean of a dot product.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import importlib.util
import sys
import types
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from movierec._core.extras import require
from movierec.exceptions import BackendError

__all__ = ["Folded", "fold_samples", "myfm", "sample_posterior"]


def _import_myfm() -> types.ModuleType:
    # myfm <= 0.4 imports pkg_resources (unused) at import time; setuptools >= 81 no longer ships
    # it. A stand-in built on importlib.metadata lets the import succeed without downgrading.
    # The stand-in is removed again once myfm is imported, so no other library ever sees it.
    if "pkg_resources" in sys.modules or importlib.util.find_spec("pkg_resources") is not None:
        return require("myfm", "myfm")
    stand_in = types.ModuleType("pkg_resources")
    stand_in.DistributionNotFound = importlib.metadata.PackageNotFoundError  # type: ignore[attr-defined]
    stand_in.get_distribution = importlib.metadata.distribution  # type: ignore[attr-defined]
    sys.modules["pkg_resources"] = stand_in
    try:
        return require("myfm", "myfm")
    finally:
        if sys.modules.get("pkg_resources") is stand_in:
            del sys.modules["pkg_resources"]


myfm = _import_myfm()


@contextlib.contextmanager
def _no_progress_bar() -> Iterator[None]:
    # myfm always wraps sampling in a tqdm bar written to stderr; library code must not print, so
    # the bar is disabled for the duration of the fit.
    base = sys.modules.get("myfm.base")
    original = getattr(base, "tqdm", None)
    if original is None:
        yield
        return
    base.tqdm = functools.partial(original, disable=True)
    try:
        yield
    finally:
        base.tqdm = original


def sample_posterior(
    X: sparse.csr_matrix,
    y: np.ndarray,
    *,
    relations: Sequence[tuple[np.ndarray, sparse.csr_matrix]] = (),
    rank: int,
    n_iter: int,
    n_kept_samples: int,
    init_stdev: float,
    seed: int,
    grouping: list[int] | None = None,
) -> tuple[list, list]:
    """Return myfm's kept posterior samples (objects with ``w0``, ``w``, ``V``) of a Gibbs run, and their hyperparameters.

    The second list holds, for each kept sample, the hyperparameters drawn in the same sweep
    (``alpha``, the noise precision; ``mu_w``, ``lambda_w``, ``mu_V``, ``lambda_V`` per group).

    ``relations`` are (row of each rating, matrix) pairs passed as myfm ``RelationBlock``s: their
    columns follow ``X``'s, and the sampler's cost grows with the matrices' rows, not the ratings'.
    ``grouping`` (a group per column) gives each group of columns its own prior; None: one prior
    for every column.
    """
    blocks = [myfm.RelationBlock(np.asarray(rows, dtype=np.int64), matrix) for rows, matrix in relations]
    model = myfm.MyFMRegressor(rank=rank, init_stdev=init_stdev, random_seed=seed)
    try:
        with _no_progress_bar():
            model.fit(
                X,
                y,
                X_rel=blocks,
                n_iter=n_iter,
                n_kept_samples=n_kept_samples,
                grouping=grouping,
                # replaces myfm's default callback, which writes the RMSE into the bar; never stops
                callback=lambda *_: (False, None),
            )
    except Exception as err:
        raise BackendError(f"myfm failed to fit: {err}") from err
    samples = list(model.predictor_.samples)
    return samples, list(model.history_.hypers)[-len(samples) :]


@dataclass(frozen=True)
class Folded:
    """The posterior means a model scores from: ``w0`` and, for each part, biases and factor rows.

    Attributes
    ----------
    global_bias : float
        Mean of ``w0`` over the samples.
    biases : list of ndarray
        For each part's matrix, the mean over samples of each row's ``x.w`` plus the interactions
        of the row's own features with each other (``sum_{f<g} <v_f, v_g> x_f x_g``).
    factors : list of ndarray of shape (n_rows, n_samples * rank)
        Each row's ``x.V`` in every sample, side by side, divided by ``sqrt(n_samples)``.
    """

    global_bias: float
    biases: list[np.ndarray]
    factors: list[np.ndarray]


def fold_samples(samples: Sequence, parts: Sequence[sparse.csr_matrix]) -> Folded:
    """Return the folded posterior of ``samples`` for the row matrices ``parts``, in column order.

    ``parts[j]`` holds the rows (periods, users or movies) of the ``j``-th column range; together
    the ranges cover every column of the samples' ``w`` and ``V``. Raises `BackendError` on
    NaN or infinite values in a sample.
    """
    w0 = np.array([sample.w0 for sample in samples])
    w = np.stack([np.asarray(sample.w) for sample in samples], axis=1)  # (features, samples)
    V = np.stack([np.asarray(sample.V) for sample in samples], axis=1)  # (features, samples, rank)
    if not (np.isfinite(w0).all() and np.isfinite(w).all() and np.isfinite(V).all()):
        raise BackendError("NaN or infinite values in myfm's posterior samples")
    n_samples, rank = V.shape[1], V.shape[2]
    edges = np.cumsum([0] + [part.shape[1] for part in parts])
    biases, factors = [], []
    for j, part in enumerate(parts):
        V_part = V[edges[j] : edges[j + 1]].reshape(-1, n_samples * rank)
        vectors = part @ V_part  # (rows, samples * rank): every sample's x.V side by side
        # sum_{f<g} <v_f, v_g> x_f x_g per sample, from per-factor terms: exactly 0 for a one-hot row
        own = 0.5 * (vectors**2 - part.power(2) @ V_part**2).reshape(-1, n_samples, rank).sum(axis=2)
        linear = part @ w[edges[j] : edges[j + 1]] + own
        # averaged over samples as rows of a (samples, rows) array: the sum order of a plain w.mean(0)
        biases.append(np.ascontiguousarray(linear.T).mean(axis=0))
        factors.append(np.asarray(vectors))
    scale = 1.0 / np.sqrt(n_samples)
    return Folded(
        global_bias=float(w0.mean()),
        biases=biases,
        factors=[f * scale for f in factors],
    )
