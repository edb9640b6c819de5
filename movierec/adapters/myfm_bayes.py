"""MyFMBayes: the ``myfm`` package's Bayesian factorization machine (Gibbs sampling) as a Recommender.

myfm samples the posterior of ``w0 + w_u + w_i + <v_u, v_i>`` by MCMC and predicts the mean over
the kept samples. That mean is linear in each sample, so after ``fit`` the samples are folded into
plain numpy arrays (mean biases, and every sample's factors side by side, scaled by
``1 / sqrt(n_samples)``): ``predict`` and the vectorized ``top_n`` then need neither myfm nor its
objects, as the other adapters do with their backends.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import importlib.util
import sys
import types
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy import sparse

from movierec._extras import require
from movierec._params import Bool, Constraint, Int, Real, Seed
from movierec.base import ArrayRecommender
from movierec.exceptions import BackendError, InvalidParameterError

__all__ = ["MyFMBayes"]


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


class MyFMBayes(ArrayRecommender):
    """Bayesian factorization machine over one-hot users and movies, fitted by myfm's Gibbs sampler.

    Scores ``w0 + w_u + w_i + <v_u, v_i>`` averaged over the posterior samples kept after burn-in.
    The regularization is not a hyperparameter to tune: each group's prior precision is itself
    sampled (gamma hyperpriors), which is why this model needs no grid search to reach ~0.91 RMSE
    on ml-100k's u1 at rank 10.

    Parameters
    ----------
    rank : int, default 10
        Dimension of the factor vectors.
    n_iter : int, default 200
        Gibbs sweeps.
    n_kept_samples : int or None, default None
        Samples averaged for prediction, the last ones drawn; None keeps ``n_iter - 5`` (myfm's
        default), i.e. a burn-in of 5. Memory of the fitted model grows as
        ``(n_users + n_movies) * rank * n_kept_samples``.
    grouped : bool, default True
        Give users and movies separate hyperpriors (two groups) rather than one shared prior.
    init_stdev : float, default 0.1
        Standard deviation of the initial factors.
    random_state : int or None, default None
        Seed of the sampler; None draws one from the operating system.

    ``fit`` checks every parameter first and raises
    :class:`~movierec.exceptions.InvalidParameterError` naming a bad one.

    Attributes
    ----------
    global_bias_ : float
        Posterior mean of ``w0``.
    user_bias_, item_bias_ : ndarray
        Posterior means of ``w_u`` and ``w_i`` by internal index.
    user_factors_, item_factors_ : ndarray of shape (n_users, rank * n_samples), (n_movies, ...)
        Every kept sample's factors side by side, divided by ``sqrt(n_samples)``, so that a row
        product is the posterior mean of ``<v_u, v_i>``.

    Examples
    --------
    >>> from movierec import official_folds
    >>> from movierec.adapters.myfm_bayes import MyFMBayes
    >>> fold = official_folds("ml-100k", which=("u1",))[0]
    >>> MyFMBayes(random_state=0).fit(fold.train).rmse(fold.test)  # doctest: +SKIP
    0.909
    """

    _parameter_constraints: ClassVar[Mapping[str, Constraint]] = {
        "rank": Int(1),
        "n_iter": Int(1),
        "n_kept_samples": Int(1, none=True),
        "grouped": Bool(),
        "init_stdev": Real(0, open_low=True),
        "random_state": Seed(),
    }

    def __init__(
        self,
        rank: int = 10,
        n_iter: int = 200,
        n_kept_samples: int | None = None,
        grouped: bool = True,
        init_stdev: float = 0.1,
        random_state: int | None = None,
    ) -> None:
        self.rank = rank
        self.n_iter = n_iter
        self.n_kept_samples = n_kept_samples
        self.grouped = grouped
        self.init_stdev = init_stdev
        self.random_state = random_state

    def _validate_params(self) -> dict[str, Any]:
        """Return the checked parameters; ``n_kept_samples`` may not exceed ``n_iter`` either."""
        params = super()._validate_params()
        kept, n_iter = params["n_kept_samples"], params["n_iter"]
        if kept is not None and kept > n_iter:  # the one rule that ties two parameters together
            raise InvalidParameterError(
                f"{type(self).__name__}: n_kept_samples must be None or an int in [1, n_iter={n_iter}], "
                f"got {kept!r}"
            )
        return params

    def _kept_samples(self) -> int:
        """Return how many samples to keep: ``n_kept_samples``, or myfm's default ``n_iter - 5``."""
        if self.n_kept_samples is not None:
            return int(self.n_kept_samples)
        return min(max(int(self.n_iter) - 5, 5), int(self.n_iter))

    def _fit_indexed(self, user_idx, item_idx, ratings, frame: pd.DataFrame) -> None:
        kept = self._kept_samples()
        n_users, n_items = len(self.users_), len(self.items_)
        n = len(ratings)
        rows = np.repeat(np.arange(n), 2)
        cols = np.column_stack([user_idx, n_users + item_idx]).ravel()
        X = sparse.csr_matrix((np.ones(2 * n), (rows, cols)), shape=(n, n_users + n_items))
        seed = int(np.random.SeedSequence().entropy % 2**31) if self.random_state is None else int(self.random_state)
        model = myfm.MyFMRegressor(rank=int(self.rank), init_stdev=float(self.init_stdev), random_seed=seed)
        try:
            with _no_progress_bar():
                model.fit(
                    X,
                    ratings,
                    n_iter=int(self.n_iter),
                    n_kept_samples=kept,
                    group_shapes=[n_users, n_items] if self.grouped else None,
                    # replaces myfm's default callback, which writes the RMSE into the bar; never stops
                    callback=lambda *_: (False, None),
                )
        except Exception as err:
            raise BackendError(f"myfm failed to fit: {err}") from err
        samples = model.predictor_.samples
        w0 = np.array([s.w0 for s in samples])
        w = np.stack([np.asarray(s.w) for s in samples])
        V = np.stack([np.asarray(s.V) for s in samples])  # (samples, features, rank)
        if not (np.isfinite(w0).all() and np.isfinite(w).all() and np.isfinite(V).all()):
            raise BackendError("NaN or infinite values in myfm's posterior samples")
        scale = 1.0 / np.sqrt(len(samples))
        # (features, samples * rank): the row product sums <v_u, v_i> over samples, times 1 / S.
        factors = np.ascontiguousarray(V.transpose(1, 0, 2).reshape(V.shape[1], -1)) * scale
        mean_w = w.mean(axis=0)
        self.global_bias_ = float(w0.mean())
        self.user_bias_, self.item_bias_ = mean_w[:n_users], mean_w[n_users:]
        self.user_factors_, self.item_factors_ = factors[:n_users], factors[n_users:]

    def _score_pairs(self, user_idx, item_idx):
        dot = np.einsum("ij,ij->i", self.user_factors_[user_idx], self.item_factors_[item_idx])
        return self.global_bias_ + self.user_bias_[user_idx] + self.item_bias_[item_idx] + dot

    def _score_users(self, user_idx):
        scores = self.user_factors_[user_idx] @ self.item_factors_.T
        scores += self.global_bias_ + self.user_bias_[user_idx][:, None] + self.item_bias_[None, :]
        return scores

    def _get_arrays(self) -> dict[str, np.ndarray]:
        return {
            "user_bias": self.user_bias_,
            "item_bias": self.item_bias_,
            "user_factors": self.user_factors_,
            "item_factors": self.item_factors_,
        }

    def _get_extra(self) -> dict[str, Any]:
        return {"global_bias": self.global_bias_}

    def _set_arrays(self, arrays, extra) -> None:
        self.user_bias_, self.item_bias_ = arrays["user_bias"], arrays["item_bias"]
        self.user_factors_, self.item_factors_ = arrays["user_factors"], arrays["item_factors"]
        self.global_bias_ = float(extra["global_bias"])
