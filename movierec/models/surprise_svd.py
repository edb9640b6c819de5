"""SurpriseSVD: Surprise's SVD (Funk-style matrix factorization by SGD) as a movierec Recommender.

Surprise trains the model; right after ``fit`` the learned ``pu, qi, bu, bi`` and the id maps are
copied into numpy arrays (as LensKit's adapters do), so prediction, the vectorized top-N and
saving never touch the Surprise objects again and a loaded model needs no Surprise trainset.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd

from movierec._core.extras import require
from movierec._core.params import Bool, Constraint, Int, Options, Real, Seed, check_grid, check_value
from movierec._core.validation import ITEM, RATING, USER, check_ratings, check_scale
from movierec.base import ArrayRecommender, TuneResult
from movierec.exceptions import BackendError
from movierec.models._fold_in import cosine_similarities, ridge_contributions, ridge_fold_in

surprise = require("surprise", "surprise")

__all__ = ["SurpriseSVD"]

logger = logging.getLogger(__name__)

#: constructor arguments ``tune`` may search over (the others are fixed for a search); they are
#: also exactly the keyword arguments movierec passes to ``surprise.SVD``
TUNABLE = ("n_factors", "n_epochs", "lr_all", "reg_all", "biased")
#: accuracy measures Surprise's ``GridSearchCV`` knows; all but ``fcp`` are lower-is-better
METRICS = ("rmse", "mae", "mse", "fcp")

_FINITE = Real()


@dataclass(frozen=True)
class _RatingScale(Constraint):
    """None, or a (lowest, highest) pair of finite numbers with lowest < highest.

    A list passes as well as a tuple: a saved model's params.json gives the pair back as a list.
    """

    def accepts(self, value: Any) -> bool:
        if value is None:
            return True
        return (
            isinstance(value, (tuple, list))
            and len(value) == 2
            and all(_FINITE.accepts(v) for v in value)
            and value[0] < value[1]
        )

    def convert(self, value: Any) -> tuple[float, float] | None:
        return None if value is None else (float(value[0]), float(value[1]))

    def describe(self) -> str:
        return "None or a (lowest, highest) pair of floats with lowest < highest"


class SurpriseSVD(ArrayRecommender):
    """Predicts ``mu + b_u + b_i + p_u . q_i`` learned by Surprise's ``SVD``, clipped to the scale.

    ``fit`` builds Surprise's trainset from the ratings frame (rows in the order given) and runs
    ``surprise.SVD``; predictions then equal Surprise's own ``algo.predict(u, i).est`` for the same
    ``random_state`` and the same row order, **including Surprise's clipping of every estimate to
    the rating scale** (so 5.3 is reported as 5.0 on a 1-5 scale). The one deliberate difference:
    a user or movie unseen in ``fit`` gets NaN, where Surprise silently falls back to the global
    mean (or to ``mu + b_i`` / ``mu + b_u``).

    ``top_n`` scores the whole catalogue from the copied arrays with matrix products and ranks by
    the clipped estimate, as Surprise's FAQ ``get_top_n`` recipe does over the anti-testset. Ties
    (common at the top of the scale, where many estimates clip to the maximum) break by the
    movie's order of first appearance in the training frame, which is Surprise's inner-id order and
    so the recipe's order; unlike most movierec models, ties therefore do not break by movieId.

    Parameters
    ----------
    n_factors : int, default 100
        Number of latent factors.
    n_epochs : int, default 20
        SGD passes over the training ratings.
    lr_all : float, default 0.005
        Learning rate of every parameter (Surprise's ``lr_all``).
    reg_all : float, default 0.02
        L2 regularization of every parameter (Surprise's ``reg_all``).
    biased : bool, default True
        Learn ``mu + b_u + b_i`` as well as the factors; ``False`` gives plain ``p_u . q_i``.
    random_state : int or None, default None
        Seed of the factor initialization (Surprise's ``random_state``). ``None`` draws a fresh
        seed from the operating system instead of using (and advancing) numpy's global RNG as
        Surprise would.
    rating_scale : (float, float) or None, default None
        ``(lowest, highest)`` rating, the range estimates are clipped to. ``None`` takes the scale
        the training frame declares in ``attrs["rating_scale"]`` (the MovieLens loaders declare
        1-5 or 0.5-5), else the smallest and largest rating in the training data. Training
        ratings outside the given or declared scale raise
        [`DataValidationError`][movierec.exceptions.DataValidationError] showing a bad row, so a stray rating
        can never widen the clip range of MovieLens data.

    Raises
    ------
    InvalidParameterError
        From ``fit``, which checks every parameter first, naming a bad one.
    BackendError
        From ``fit``, if Surprise fails or its SGD diverges (NaN or infinite factors); the model
        is left unfitted.

    Attributes
    ----------
    global_mean_ : float
        Mean training rating (Surprise's ``trainset.global_mean``); used only when ``biased``.
    user_factors_, item_factors_ : ndarray of shape (n_users, n_factors), (n_items, n_factors)
        Surprise's ``pu`` and ``qi``, rows in movierec's index order (``users_``, ``items_``).
    user_bias_, item_bias_ : ndarray
        Surprise's ``bu`` and ``bi`` (zeros when ``biased=False``).
    rating_scale_ : (float, float)
        The scale used for clipping.

    Notes
    -----
    Surprise's SGD visits ratings user by user in order of first appearance, so the learned model
    (as Surprise's own) depends on the row order of the training frame, not only on its content.

    Examples
    --------
    >>> from movierec import SurpriseSVD, official_folds
    >>> fold = official_folds("ml-100k", which=("u1",))[0]
    >>> model = SurpriseSVD(random_state=0).fit(fold.train)  # doctest: +SKIP
    >>> round(model.rmse(fold.test), 3)  # doctest: +SKIP
    0.951
    >>> model.top_n(users=[1], n=5)  # doctest: +SKIP
    """

    # Item index order = first appearance = Surprise's inner ids, so top_k's tie-break by column
    # reproduces the FAQ recipe's stable sort over the anti-testset.
    _sort_item_ids = False

    _array_shapes: ClassVar[Mapping[str, tuple[int | str, ...]]] = {
        "user_factors": ("users", "k"),
        "item_factors": ("items", "k"),
        "user_bias": ("users",),
        "item_bias": ("items",),
    }
    _parameter_constraints: ClassVar[Mapping[str, Constraint]] = {
        "n_factors": Int(1),
        "n_epochs": Int(1),
        "lr_all": Real(0, open_low=True),
        "reg_all": Real(0),
        "biased": Bool(),
        "random_state": Seed(),
        "rating_scale": _RatingScale(),
    }

    def __init__(
        self,
        n_factors: int = 100,
        n_epochs: int = 20,
        lr_all: float = 0.005,
        reg_all: float = 0.02,
        biased: bool = True,
        random_state: int | None = None,
        rating_scale: tuple[float, float] | None = None,
    ) -> None:
        self.n_factors = n_factors
        self.n_epochs = n_epochs
        self.lr_all = lr_all
        self.reg_all = reg_all
        self.biased = biased
        self.random_state = random_state
        self.rating_scale = rating_scale

    # -- parameters -----------------------------------------------------------------------------
    def _svd_params(self) -> dict[str, Any]:
        """Return ``surprise.SVD``'s keyword arguments as plain Python values (fit checked them)."""
        return {name: self._parameter_constraints[name].convert(getattr(self, name)) for name in TUNABLE}

    def _scale(self, ratings: np.ndarray, frame: pd.DataFrame) -> tuple[float, float]:
        """Return the rating scale, checked against the data: the given one, else the one the frame
        declares (MovieLens frames do), else the data's range."""
        scale = check_scale(frame, self._parameter_constraints["rating_scale"].convert(self.rating_scale))
        return (float(ratings.min()), float(ratings.max())) if scale is None else scale

    def _seed(self) -> int | np.random.RandomState:
        # Surprise's None means numpy's global RNG; a fresh OS-seeded state keeps that untouched.
        return np.random.RandomState() if self.random_state is None else int(self.random_state)

    # -- fit ------------------------------------------------------------------------------------
    def _fit_indexed(self, user_idx, item_idx, ratings, frame: pd.DataFrame) -> None:
        params = self._svd_params()
        scale = self._scale(ratings, frame)
        trainset = _trainset(frame, scale)
        algo = surprise.SVD(**params, random_state=self._seed(), verbose=False)
        logger.debug("fitting surprise.SVD(%s) on %d ratings", params, len(frame))
        try:
            algo.fit(trainset)
        except Exception as err:  # a failure inside the wrapped library, not in our input checks
            raise BackendError(f"surprise.SVD failed to fit: {err}") from err
        # Surprise numbers users and movies by first appearance; movierec's indices are its own.
        inner_users = [trainset.to_raw_uid(u) for u in range(trainset.n_users)]
        inner_items = [trainset.to_raw_iid(i) for i in range(trainset.n_items)]
        users = self.users_.lookup(pd.Series(inner_users, dtype=frame[USER].dtype))
        items = self.items_.lookup(pd.Series(inner_items, dtype=frame[ITEM].dtype))
        if (users < 0).any() or (items < 0).any():  # pragma: no cover - Surprise keeps raw ids as given
            raise BackendError("surprise.SVD returned ids that are not in the training data")
        user_factors = np.empty_like(algo.pu)
        item_factors = np.empty_like(algo.qi)
        user_bias, item_bias = np.empty_like(algo.bu), np.empty_like(algo.bi)
        user_factors[users], user_bias[users] = algo.pu, algo.bu
        item_factors[items], item_bias[items] = algo.qi, algo.bi
        if not all(np.isfinite(a).all() for a in (user_factors, item_factors, user_bias, item_bias)):
            raise BackendError(
                f"NaN or infinite values in the learned factors: SGD diverged (lr_all={self.lr_all!r} "
                "is probably too large)"
            )
        self.global_mean_ = float(trainset.global_mean)
        self.rating_scale_ = scale
        self.user_factors_, self.item_factors_ = np.ascontiguousarray(user_factors), np.ascontiguousarray(item_factors)
        self.user_bias_, self.item_bias_ = user_bias, item_bias

    # -- scoring --------------------------------------------------------------------------------
    def _clip(self, estimates: np.ndarray) -> np.ndarray:
        """Clip ``estimates`` to the rating scale in place, as Surprise's ``predict(clip=True)``."""
        low, high = self.rating_scale_
        return np.clip(estimates, low, high, out=estimates)

    def _score_pairs(self, user_idx, item_idx):
        # Same summation order as Surprise's estimate(): ((mu + b_u) + b_i) + q_i . p_u
        dot = np.einsum("ij,ij->i", self.item_factors_[item_idx], self.user_factors_[user_idx])
        if not self.biased:
            return self._clip(dot)
        return self._clip(self.global_mean_ + self.user_bias_[user_idx] + self.item_bias_[item_idx] + dot)

    def _score_users(self, user_idx):
        dot = self.user_factors_[user_idx] @ self.item_factors_.T
        if not self.biased:
            return self._clip(dot)
        scores = self.global_mean_ + self.user_bias_[user_idx][:, None] + self.item_bias_[None, :]
        scores += dot  # after the biases: Surprise's summation order, so equal to _score_pairs
        return self._clip(scores)

    # -- a visitor's history --------------------------------------------------------------------
    def _fold_in_terms(self, item_idx: np.ndarray, ratings: np.ndarray | None) -> tuple[np.ndarray, float, float | None]:
        """Return (targets, factor penalty, bias penalty or None) of the visitor's least squares.

        Surprise's SGD applies ``reg_all`` at every rating it visits, so at its fixed point a user's
        penalty is ``reg_all`` times their rating count: the fold-in uses the same scaling.
        """
        targets = np.asarray(self._history_ratings(ratings, len(item_idx)), dtype=np.float64)
        penalty = float(self.reg_all) * len(item_idx)
        if not self.biased:
            return targets, penalty, None
        return targets - self.global_mean_ - self.item_bias_[item_idx], penalty, penalty

    def _score_history(self, item_idx: np.ndarray, ratings: np.ndarray | None) -> np.ndarray:
        """Return every movie's clipped estimate for a visitor, their bias and factors fitted to the history.

        With the movies' ``qi`` and ``bi`` (and ``mu``) fixed, the visitor's ``b_u`` and ``p_u``
        minimize ``sum_j (r_j - mu - b_j - b_u - q_j.p_u)^2 + reg_all n (b_u^2 + |p_u|^2)``, a ridge
        regression on ``[1, q_j]`` solved in closed form (``n``: the history's size; ``reg_all``
        is scaled as Surprise's SGD, which applies it once per rating). Without ratings each
        movie counts as liked.
        """
        targets, penalty, bias_penalty = self._fold_in_terms(item_idx, ratings)
        b_u, p_u = ridge_fold_in(self.item_factors_[item_idx], targets, penalty, bias_penalty=bias_penalty)
        scores = self.item_factors_ @ p_u
        if self.biased:
            scores = self.global_mean_ + b_u + self.item_bias_ + scores
        return self._clip(scores)

    def _history_contributions(self, item_idx, ratings, target_idx) -> np.ndarray:
        """Return each history movie's exact share of the targets' unclipped estimates.

        The fold-in is linear in its targets ``t_j``: ``b_u + q_i.p_u = sum_j t_j x_j' A^-1 x_i``
        with ``x = [1, q]`` and ``A`` the ridge matrix; the terms sum to the estimate minus an
        empty history's (``mu + b_i``), before clipping.
        """
        targets, penalty, bias_penalty = self._fold_in_terms(item_idx, ratings)
        return ridge_contributions(
            self.item_factors_[item_idx], targets, penalty, self.item_factors_[target_idx], bias_penalty=bias_penalty
        )

    def _similar_items(self, item: int) -> np.ndarray:
        """Return the cosine of every movie's ``qi`` with ``item``'s."""
        return cosine_similarities(self.item_factors_, item)

    # -- persistence ----------------------------------------------------------------------------
    def _get_arrays(self) -> dict[str, np.ndarray]:
        return {
            "user_factors": self.user_factors_,
            "item_factors": self.item_factors_,
            "user_bias": self.user_bias_,
            "item_bias": self.item_bias_,
        }

    def _get_extra(self) -> dict[str, Any]:
        return {"global_mean": self.global_mean_, "rating_scale": list(self.rating_scale_)}

    def _set_arrays(self, arrays, extra) -> None:
        self.user_factors_, self.item_factors_ = arrays["user_factors"], arrays["item_factors"]
        self.user_bias_, self.item_bias_ = arrays["user_bias"], arrays["item_bias"]
        self.global_mean_ = float(extra["global_mean"])
        low, high = extra["rating_scale"]
        self.rating_scale_ = (float(low), float(high))

    # -- tuning ---------------------------------------------------------------------------------
    def tune(
        self,
        ratings: pd.DataFrame,
        grid: Mapping[str, Sequence[Any]],
        *,
        folds: int = 3,
        metric: Literal["rmse", "mae", "mse", "fcp"] = "rmse",
    ) -> TuneResult:
        """Return the best grid point found by Surprise's ``GridSearchCV``, after refitting on it.

        Every combination of ``grid`` is scored by ``folds``-fold cross-validation on ``ratings``
        (Surprise's ``KFold``, shuffled with ``random_state``; the same folds for every
        combination). Parameters not in ``grid`` keep their current values. The best values are
        then set on this model (``set_params``) and it is fitted on all of ``ratings``.

        Parameters
        ----------
        ratings : DataFrame
            Training ratings (userId, movieId, rating[, timestamp]).
        grid : mapping of str to sequence
            Candidate values per parameter, e.g. ``{"n_factors": [50, 100], "reg_all": [0.02, 0.05]}``;
            keys among ``n_factors, n_epochs, lr_all, reg_all, biased``. Not modified.
        folds : int, default 3
            Number of cross-validation folds (>= 2).
        metric : {"rmse", "mae", "mse", "fcp"}, default "rmse"
            The measure to select on; ``fcp`` is maximized, the others minimized.

        Returns
        -------
        TuneResult
            ``best_params`` (the best values of the grid's keys), ``best_score`` (their mean
            cross-validated ``metric``), ``metric``, and ``results``: one row per combination, its
            values of the grid's keys and its mean score in the column named ``metric``.

        Raises
        ------
        DataValidationError
            If ``ratings`` is invalid.
        InvalidParameterError
            If ``grid``, ``folds`` or ``metric`` is invalid, a grid value is not a valid value of its
            parameter, or one of the model's own parameters is.
        """
        check_ratings(ratings)
        owner = f"{type(self).__name__}.tune"
        check_value(owner, "metric", metric, Options(METRICS))
        folds = check_value(owner, "folds", folds, Int(2))
        # fail here, not deep inside a joblib worker
        tunable = {name: self._parameter_constraints[name] for name in TUNABLE}
        candidates = check_grid(owner, grid, tunable)
        fixed = self._validate_params()
        scale = self._scale(ratings[RATING].to_numpy(dtype=np.float64), ratings)
        seed = fixed["random_state"]
        if seed is None:  # the folds and every candidate share one seed, drawn here
            seed = int(np.random.default_rng().integers(2**31))
        param_grid = {name: [fixed[name]] for name in TUNABLE}
        param_grid.update(candidates)
        param_grid["random_state"] = [int(seed)]
        param_grid["verbose"] = [False]

        model_selection = require("surprise.model_selection", "surprise")
        data = surprise.Dataset.load_from_df(ratings[[USER, ITEM, RATING]], surprise.Reader(rating_scale=scale))
        search = model_selection.GridSearchCV(
            surprise.SVD,
            param_grid,
            measures=[metric],
            cv=model_selection.KFold(n_splits=folds, random_state=int(seed), shuffle=True),
        )
        logger.info("tuning SurpriseSVD over %s with %d-fold CV on %s", candidates, folds, metric)
        try:
            search.fit(data)
        except Exception as err:
            raise BackendError(f"surprise GridSearchCV failed: {err}") from err
        best = {name: search.best_params[metric][name] for name in candidates}
        score = float(search.best_score[metric])
        points = search.cv_results["params"]
        results = pd.DataFrame([{name: point[name] for name in candidates} for point in points])
        results[metric] = np.asarray(search.cv_results[f"mean_test_{metric}"], dtype=np.float64)
        logger.info("best %s = %.5f with %s", metric, score, best)
        self.set_params(**best)
        self.fit(ratings)
        return TuneResult(best_params=best, best_score=score, metric=metric, results=results)


def _trainset(frame: pd.DataFrame, scale: tuple[float, float]) -> Any:
    """Return Surprise's full trainset of the validated ratings frame, rows in their order."""
    reader = surprise.Reader(rating_scale=scale)
    return surprise.Dataset.load_from_df(frame[[USER, ITEM, RATING]], reader).build_full_trainset()
