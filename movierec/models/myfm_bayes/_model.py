"""MyFMBayes: the ``myfm`` package's Bayesian factorization machine (Gibbs sampling) as a Recommender.

myfm samples the posterior of the FM and predicts the mean over the kept samples. After ``fit`` the
samples are folded into plain numpy arrays (`_sampler`): ``predict`` and the vectorized
``top_n`` then need neither myfm nor its objects, as the other adapters do with their backends.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal, Self

import numpy as np
import pandas as pd

from movierec._core.ids import index_ratings
from movierec._core.params import AnyOf, Bool, Constraint, Int, Options, Real, Seed
from movierec._core.validation import ITEM, RATING, TIMESTAMP, USER, check_pairs, check_ratings
from movierec.base import ArrayRecommender
from movierec.data.features import check_side_frames
from movierec.exceptions import InvalidParameterError
from movierec.models._fold_in import cosine_similarities
from movierec.models.myfm_bayes import _features, _sampler
from movierec.models.myfm_bayes._fold_in import UserPrior, fold_in_user, user_prior

__all__ = ["MyFMBayes"]


class MyFMBayes(ArrayRecommender):
    """Bayesian factorization machine over users and movies (and optional features), by Gibbs sampling.

    With the defaults it scores ``w0 + w_u + w_i + <v_u, v_i>`` averaged over the posterior samples
    kept after burn-in. The regularization is not a hyperparameter to tune: each group's prior
    precision is itself sampled (gamma hyperpriors), which is why this model needs no grid search
    to reach ~0.906 RMSE on ml-100k's u1 at rank 10. Three feature sets can be added, each by its
    parameter; with all three it reaches ~0.887 on u1 (docs/models/myfm-bayes.md).

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
        Give each block of features its own hyperprior (users, movies, and each of the blocks
        below) rather than one prior shared by every feature.
    side_features : bool or "auto", default False
        Add the user attributes of the ``users`` frame given to `fit` (age band, gender,
        occupation, the zip code's first character) and the genres and release year of its
        ``items`` frame. Users and movies of these frames without ratings become known: they are
        scored from their side features alone (see *Cold start*). ``"auto"``: use the frames
        when `fit` is given any, fit on ids without them (the main job's setting, since your own
        ratings file may come without them).
    time_features : bool or "auto", default False
        Add the rating's calendar month as a one-hot (from the ``timestamp`` column, Unix seconds
        or datetimes, which ``fit`` then needs). See `predict` and `top_n` for the
        month they score at. ``"auto"``: when the ratings given to `fit` have a ``timestamp``
        column.
    implicit : bool, default False
        Add implicit feedback, as SVD++: the movies each user rated and the users who rated each
        movie, each weighted ``1 / sqrt(count)``. Passed to myfm as ``RelationBlock``s, so the
        cost grows with the users and movies, not with the ratings.
    init_stdev : float, default 0.1
        Standard deviation of the initial factors.
    random_state : int or None, default None
        Seed of the sampler; None draws one from the operating system.

    Raises
    ------
    InvalidParameterError
        From ``fit``, which checks every parameter first, naming a bad one.

    Attributes
    ----------
    global_bias_ : float
        Posterior mean of ``w0``.
    user_bias_, item_bias_ : ndarray
        Posterior means of each user's and movie's linear terms (their features' ``w`` and the
        interactions of their own features with each other), by internal index.
    user_factors_, item_factors_ : ndarray of shape (n_users, rank * n_samples), (n_movies, ...)
        Every kept sample's factor vector side by side, divided by ``sqrt(n_samples)``, so that a
        row product is the posterior mean of ``<v_u, v_i>``.
    periods_ : ndarray of int
        The training months (``12 * year + month - 1``, sorted); empty without ``time_features``.
    period_bias_, period_factors_ : ndarray
        The months' linear terms and factor vectors, as for users and movies.
    user_prior_ : UserPrior or None
        Each kept sample's noise precision and user prior, which folding in a visitor needs
        (`top_n_from_history`); None with features, or for a model saved without it.

    Cold start
    ----------
    A user or movie in neither the ratings nor (with ``side_features``) the side frames given to
    ``fit`` gets NaN from ``predict`` and no rows from ``top_n``. One in a side frame only is
    scored from its side features: ``top_n`` recommends to such users and may recommend such
    movies. Ids in the ratings but absent from a side frame have no side features.

    Examples
    --------
    >>> from movierec import MyFMBayes, load_movielens, official_folds
    >>> fold = official_folds("ml-100k", which=("u1",))[0]
    >>> MyFMBayes(random_state=0).fit(fold.train).rmse(fold.test)  # doctest: +SKIP
    0.906
    >>> data = load_movielens("ml-100k")
    >>> bfm = MyFMBayes(side_features=True, time_features=True, implicit=True, random_state=0)
    >>> bfm.fit(fold.train, users=data.users, items=data.items).rmse(fold.test)  # doctest: +SKIP
    0.887
    """

    _array_shapes: ClassVar[Mapping[str, tuple[int | str, ...]]] = {
        "user_factors": ("users", "k"),
        "item_factors": ("items", "k"),
        "user_bias": ("users",),
        "item_bias": ("items",),
        "periods": ("periods",),
        "period_bias": ("periods",),
        "period_factors": ("periods", "k"),
    }
    _parameter_constraints: ClassVar[Mapping[str, Constraint]] = {
        "rank": Int(1),
        "n_iter": Int(1),
        "n_kept_samples": Int(1, none=True),
        "grouped": Bool(),
        "side_features": AnyOf((Bool(), Options(("auto",)))),
        "time_features": AnyOf((Bool(), Options(("auto",)))),
        "implicit": Bool(),
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
        *,
        side_features: bool | Literal["auto"] = False,
        time_features: bool | Literal["auto"] = False,
        implicit: bool = False,
    ) -> None:
        self.rank = rank
        self.n_iter = n_iter
        self.n_kept_samples = n_kept_samples
        self.grouped = grouped
        self.init_stdev = init_stdev
        self.random_state = random_state
        self.side_features = side_features
        self.time_features = time_features
        self.implicit = implicit

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

    # -- fit -------------------------------------------------------------------------------------
    def uses_side_data(self) -> bool:
        """Return whether `fit` takes ``users=`` / ``items=`` frames: ``side_features`` True or ``"auto"``."""
        value = self.side_features
        return value == "auto" if isinstance(value, str) else bool(value)

    def fit(
        self, ratings: pd.DataFrame, *, users: pd.DataFrame | None = None, items: pd.DataFrame | None = None
    ) -> Self:
        """Learn from ``ratings`` (and, with ``side_features=True``, ``users`` / ``items``); return self.

        Parameters
        ----------
        ratings : pandas.DataFrame
            Columns userId, movieId, rating and, with ``time_features=True``, timestamp.
        users : pandas.DataFrame, optional
            ``userId`` and any of ``age``, ``gender``, ``occupation``, ``zip`` (``MovieLens.users``).
        items : pandas.DataFrame, optional
            ``movieId``, boolean genre columns or a '|'-separated ``genres`` column, and a
            ``release_date`` or a title ending in ``(year)`` (``MovieLens.items``).

        Raises
        ------
        InvalidParameterError
            A parameter is out of range.
        DataValidationError
            Bad ratings; side frames given with ``side_features=False`` or neither given with
            ``side_features=True``; no usable ``timestamp`` with ``time_features=True``.
        BackendError
            myfm failed, or its samples hold NaN.
        """
        check_ratings(ratings)
        params = self._validate_params()
        if not isinstance(params["side_features"], str):  # "auto" takes the frames it is given, or none
            check_side_frames(params["side_features"], users, items)
        time_features = self._time_features_for(ratings)
        if time_features:
            _features.month_keys(ratings, "ratings")  # fail before the model forgets its last fit
        self._reset()
        user_ids, item_ids = (
            ratings[column] if side is None else pd.concat([ratings[column], side[column]], ignore_index=True)
            for column, side in ((USER, users), (ITEM, items))
        )
        try:
            self.users_, self.items_, user_idx, item_idx, self.seen_ = index_ratings(
                ratings, user_ids, item_ids
            )
            self.highest_rating_ = float(ratings[RATING].max())  # a history without ratings: each movie liked
            self._learn(user_idx, item_idx, ratings, users, items, time_features=time_features)
        except BaseException:
            self._reset()  # a failed fit leaves the model unfitted, not half-fitted
            raise
        return self

    def _fit_indexed(self, user_idx, item_idx, ratings, frame: pd.DataFrame) -> None:
        """Learn from index-coded ratings without side frames (the ``ArrayRecommender`` hook)."""
        self._learn(user_idx, item_idx, frame, None, None, time_features=self._time_features_for(frame))

    def _time_features_for(self, ratings: pd.DataFrame) -> bool:
        """Return whether a fit on ``ratings`` adds the month: ``time_features``, ``"auto"`` by the column."""
        if isinstance(self.time_features, str):
            return TIMESTAMP in ratings.columns
        return bool(self.time_features)

    def _learn(self, user_idx, item_idx, frame: pd.DataFrame, users, items, *, time_features: bool) -> None:
        n_users, n_items = len(self.users_), len(self.items_)
        keys = _features.month_keys(frame, "ratings") if time_features else np.zeros(0, np.int64)
        self.periods_ = np.unique(keys)
        with_features = users is not None or items is not None or time_features or bool(self.implicit)
        if with_features:
            implicit = self.implicit
            design = _features.feature_design(
                _features.month_part(len(self.periods_)),
                _features.period_index(keys, self.periods_) if time_features else None,
                _features.user_part(self.users_, user_idx, item_idx, n_items, users, implicit=implicit),
                user_idx,
                _features.item_part(self.items_, item_idx, user_idx, n_users, items, implicit=implicit),
                item_idx,
            )
        else:
            design = _features.ids_design(user_idx, item_idx, n_users, n_items)
        seed = np.random.SeedSequence().entropy % 2**31 if self.random_state is None else self.random_state
        samples, hypers = _sampler.sample_posterior(
            design.X,
            frame[RATING].to_numpy(dtype=np.float64),
            relations=design.relations,
            grouping=_features.grouping(design.blocks) if self.grouped else None,
            rank=int(self.rank),
            n_iter=int(self.n_iter),
            n_kept_samples=self._kept_samples(),
            init_stdev=float(self.init_stdev),
            seed=int(seed),
        )
        folded = _sampler.fold_samples(samples, design.parts)
        # ids only: the users are prior group 0, grouped or not (_features.ids_design)
        self.user_prior_ = None if with_features else user_prior(hypers, 0)
        self.global_bias_ = folded.global_bias
        self.period_bias_, self.user_bias_, self.item_bias_ = folded.biases
        self.period_factors_, self.user_factors_, self.item_factors_ = folded.factors

    # -- scoring -----------------------------------------------------------------------------------
    def predict(self, pairs: pd.DataFrame) -> pd.Series:
        """Return a score per row of ``pairs``, NaN for users or movies the model does not know.

        With ``time_features=True`` each pair is scored at the month of its ``timestamp`` (the
        latest training month at or before it; the first for earlier times). Pairs without a
        ``timestamp`` column, or with a missing one (NaN, NaT), are scored at the latest training
        month, as `top_n` is.
        """
        self._check_fitted()
        check_pairs(pairs)
        user_idx, item_idx = self.users_.lookup(pairs[USER]), self.items_.lookup(pairs[ITEM])
        known = (user_idx >= 0) & (item_idx >= 0)
        out = np.full(len(pairs), np.nan)
        if known.any():
            periods = self._periods_of(pairs)
            periods = None if periods is None else periods[known]
            out[known] = self._score(user_idx[known], item_idx[known], periods)
        return pd.Series(out, index=pairs.index, name="prediction")

    def _periods_of(self, pairs: pd.DataFrame) -> np.ndarray | None:
        """Return each pair's month index, or None for the latest (no time features or no timestamp)."""
        if not len(self.periods_) or TIMESTAMP not in pairs.columns:
            return None
        return _features.period_index(_features.month_keys(pairs, "pairs"), self.periods_)

    def _score(self, user_idx: np.ndarray, item_idx: np.ndarray, period_idx: np.ndarray | None) -> np.ndarray:
        """Return the scores of (user, movie) index pairs at month indices (None: the latest month)."""
        U, Q = self.user_factors_[user_idx], self.item_factors_[item_idx]
        dot = np.einsum("ij,ij->i", U, Q)
        scores = self.global_bias_ + self.user_bias_[user_idx] + self.item_bias_[item_idx] + dot
        if len(self.periods_):
            if period_idx is None:
                period_idx = np.full(len(user_idx), len(self.periods_) - 1)
            R = self.period_factors_[period_idx]
            scores += self.period_bias_[period_idx] + np.einsum("ij,ij->i", U + Q, R)
        return scores

    def _score_pairs(self, user_idx, item_idx):
        return self._score(user_idx, item_idx, None)

    def _score_users(self, user_idx):
        """Return every movie's score for these users, at the latest training month (``top_n``)."""
        U = self.user_factors_[user_idx]
        scores = U @ self.item_factors_.T
        scores += self.global_bias_ + self.user_bias_[user_idx][:, None] + self.item_bias_[None, :]
        if len(self.periods_):
            latest = self.period_factors_[-1]
            scores += self.period_bias_[-1] + (U @ latest)[:, None] + (self.item_factors_ @ latest)[None, :]
        return scores

    # -- persistence -------------------------------------------------------------------------------
    def _get_arrays(self) -> dict[str, np.ndarray]:
        return {
            "user_bias": self.user_bias_,
            "item_bias": self.item_bias_,
            "user_factors": self.user_factors_,
            "item_factors": self.item_factors_,
            "periods": self.periods_,
            "period_bias": self.period_bias_,
            "period_factors": self.period_factors_,
        }

    def _get_extra(self) -> dict[str, Any]:
        extra: dict[str, Any] = {"global_bias": self.global_bias_}
        if self.user_prior_ is not None:
            extra["user_prior"] = self.user_prior_.to_json()
        return extra

    def _set_arrays(self, arrays, extra) -> None:
        self.user_bias_, self.item_bias_ = arrays["user_bias"], arrays["item_bias"]
        self.user_factors_, self.item_factors_ = arrays["user_factors"], arrays["item_factors"]
        self.periods_, self.period_bias_ = arrays["periods"], arrays["period_bias"]
        self.period_factors_ = arrays["period_factors"]
        self.global_bias_ = float(extra["global_bias"])
        prior = extra.get("user_prior")  # absent from models saved before fold-in
        self.user_prior_ = None if prior is None else UserPrior.from_json(prior)

    # -- a visitor's history -----------------------------------------------------------------------
    def _fold_in_prior(self) -> UserPrior:
        """Return the user prior fold-in needs, or raise NotImplementedError saying what is missing."""
        features = [f"{name}={getattr(self, name)!r}" for name in ("side_features", "time_features", "implicit")
                    if getattr(self, name) is not False]
        if features and self.user_prior_ is None:  # "auto" that found no features fits ids only
            raise NotImplementedError(
                f"{type(self).__name__} with {', '.join(features)} cannot score a "
                "history: a visitor's feature row needs what the fit built from its frames (side features "
                "from the users frame, the rating month, the implicit block of rated movies), and "
                "fold-in here fits the ids-only user part; fit with ids only to fold visitors in"
            )
        if self.user_prior_ is None:
            raise NotImplementedError(
                f"{type(self).__name__} cannot score a history: this model was saved without the samples' "
                "user prior (saved before fold-in existed); fit it again"
            )
        return self.user_prior_

    def _score_history(self, item_idx: np.ndarray, ratings: np.ndarray | None) -> np.ndarray:
        """Return every movie's score for a visitor: each sample's conditional mean of the user, averaged.

        Ids-only models (`_fold_in`); with features this raises NotImplementedError naming
        them. Without ratings each movie counts as liked.
        """
        prior = self._fold_in_prior()
        liked = np.asarray(self._history_ratings(ratings, len(item_idx)), dtype=np.float64)
        residuals = liked - self.global_bias_ - self.item_bias_[item_idx]
        bias, vector = fold_in_user(self.item_factors_[item_idx], residuals, prior)
        return self.global_bias_ + bias + self.item_bias_ + self.item_factors_ @ vector

    def _similar_items(self, item: int) -> np.ndarray:
        """Return the cosine of every movie's ``item_factors_`` row with ``item``'s.

        A row holds every kept sample's factors side by side, so the dot product of two rows is the
        posterior mean of ``<v_i, v_j>``: unlike the mean factors, it does not fade when the samples
        rotate the factor space.
        """
        return cosine_similarities(self.item_factors_, item)
