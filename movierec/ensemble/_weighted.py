"""WeightedEnsemble: standardized member scores, each weighted by its error or by stacking, summed (docs/architecture.md, section 4)."""

from __future__ import annotations

import copy
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

import numpy as np
import pandas as pd

from movierec._core.ids import IdIndex, index_ratings, rated_rows, resolve_users, sample_pairs
from movierec._core.instances import clone
from movierec._core.params import Bool, Constraint, Instance, Int, Options, Real, Seed, check_value
from movierec._core.random import rng
from movierec._core.ranking import empty_top_n, rank_frame, top_k, top_n_frame, user_block
from movierec._core.validation import ITEM, USER, check_n, check_pairs, check_ratings, trusted_ratings
from movierec.base import Recommender
from movierec.ensemble._blend import blend_block, candidate_scores, reference_stats, weighted_z
from movierec.ensemble._files import load_ensemble, save_ensemble
from movierec.ensemble._history import EnsembleHistory
from movierec.ensemble._holdout import holdout_error, holdout_split, select_members
from movierec.ensemble._members import FitEvent, close_all
from movierec.ensemble._stacking import out_of_fold, parts_of, rating_scale, stacked_weights
from movierec.ensemble._state import FittedState
from movierec.exceptions import InvalidParameterError, MovieRecWarning
from movierec.metrics import parse_metric

__all__ = ["FitEvent", "WeightedEnsemble"]

# Size of the fixed random sample of (user, movie) pairs whose member scores give mu_m, sigma_m.
REFERENCE_PAIRS = 50_000


class WeightedEnsemble(EnsembleHistory, Recommender):
    """Combines any Recommenders: standardized scores, each divided by its member's RMSE, summed.

    For member ``m`` with error ``e_m`` and raw score ``s_m(u, i)`` the ensemble's ranking score is
    ``sum_m (s_m(u, i) - mu_m) / sigma_m / e_m``, where ``mu_m`` and ``sigma_m`` are the mean and
    standard deviation of ``m``'s scores over a reference population fixed at ``fit`` (a random
    sample of ``REFERENCE_PAIRS`` (user, movie) pairs of the training catalogue, drawn with
    ``random_state``). [`predict`][movierec.WeightedEnsemble.predict] returns the rating-scale blend
    ``sum_m (s_m / e_m) / sum_m (1 / e_m)`` over the members that can score a pair.

    Parameters
    ----------
    models : list or tuple of Recommender
        The members, left untouched: ``fit`` works on clones of them ([`clone`][movierec.clone]), kept in
        ``models_``. A generator is refused, since it can be read only once.
    errors : sequence of float, optional
        Each member's error, positive. When not given, ``fit`` holds out ``validation_size`` of each
        user's ratings, fits every member on the rest, measures its error on the hold-out (see
        ``metric``), then refits every member on all the data.
    metric : str, default "rmse"
        The error that weights the members: ``"rmse"`` (``member.rmse(holdout)``, the default) or
        ``1 -`` a ranking metric at ``k`` such as ``"ndcg@10"``, ``"precision@10"``, ``"map@20"``
        ([`movierec.metrics.model_error`][movierec.metrics.model_error]: each hold-out user's top ``k`` unseen movies, every
        hold-out movie relevant). The formula stays ``z_m / e_m`` summed.
    weights : {"inverse_error", "stacked"}, default "inverse_error"
        ``"inverse_error"``: ``w_m = 1 / e_m`` (the default). ``"stacked"`` (``metric="rmse"`` only):
        ``w_m >= 0`` and an intercept ``b`` learned by non-negative least squares of held-out
        ratings on the members' standardized held-out scores (see ``stacking_folds``);
        [`predict`][movierec.WeightedEnsemble.predict] is then ``b + sum_m w_m z_m`` clipped to the rating scale. The stacked
        blend's own held-out RMSE is cross-fitted (``stacked_error_``). If every learned weight is
        0 (no member's scores rise with the ratings), the members are weighed equally, with a warning.
    stacking_folds : int or None, default 5
        ``weights="stacked"`` only. ``K >= 2``: each user's ratings are dealt into ``K`` parts; each
        member is fitted on all parts but one and scores the part left out, so the weights learn
        from every rating, scored by fits that did not see it (``K + 1`` fits per member with the
        final one); ``errors_`` are the RMSEs of these scores. None: one hold-out of ``validation_size``.
    select : {"all", "forward"}, default "all"
        ``"all"`` keeps every member. ``"forward"`` chooses members on the hold-out: from the
        member with the smallest error, it adds the member that most lowers the hold-out error of
        the ensemble itself (by ``metric``) until none does; only the chosen members are refitted
        on all the data. Needs the errors measured (``errors=None``).
    validation_size : float, default 0.1
        Share of each user's ratings held out to measure the errors, strictly between 0 and 1
        (unused by ``weights="stacked"`` with ``stacking_folds``).
    holdout_users : int, optional
        Hold out ratings of at most this many users (a seeded sample; None: every user's), so
        measuring errors and choosing members costs the same at any size.
    refit : bool, default True
        Refit the chosen members on all the data after the hold-out. False keeps the hold-out fits
        (one fit per member: for large data with ``holdout_users``); lists still exclude every rated movie.
    candidates : int, optional
        ``None`` scores every unseen movie of the user with every member. An int ``k`` lets each
        member propose its own top ``k``; a pair is scored by the members that proposed it (the
        others add 0), so at most ``k * len(models)`` candidates per user.
    random_state : int, optional
        Seeds the validation split and the reference sample: None or an int in ``[0, 2**32 - 1]``.

    Attributes
    ----------
    models_ : list of Recommender
        The fitted clones of the chosen members (every member unless ``select="forward"``), in the
        order of ``models``; [`predict`][movierec.WeightedEnsemble.predict], [`top_n`][movierec.WeightedEnsemble.top_n], [`save`][movierec.WeightedEnsemble.save] and [`close`][movierec.WeightedEnsemble.close] use these.
    members_ : ndarray of int
        The position in ``models`` of each member of ``models_``.
    candidate_errors_ : ndarray
        The error of every member of ``models`` (measured or given).
    selection_ : pandas.DataFrame or None
        With ``select="forward"``: every subset tried (``members``, positions) and its hold-out ``error``.
    errors_ : ndarray
        The error used for each member of ``models_``.
    intercept_ : float
        ``b`` of ``weights="stacked"`` (NaN for ``"inverse_error"``).
    stacked_error_ : float
        The cross-fitted held-out RMSE of the stacked blend (NaN for ``"inverse_error"``).
    rating_scale_ : ndarray
        ``[lowest, highest]`` of ``ratings`` (declared, else their range); stacked predictions are clipped to it.
    weights_ : ndarray
        Each member's weight: ``1 / errors_``, or the stacked weights.
    score_mean_, score_std_ : ndarray
        ``mu_m`` and ``sigma_m`` per member.
    fit_seconds_ : ndarray
        Each member's total fit time in seconds (hold-out or out-of-fold fits and final fit).

    Examples
    --------
    >>> members = [BiasedBaseline(), BiasedBaseline(damping=0.0)]
    >>> ensemble = WeightedEnsemble(members, random_state=0).fit(ratings)
    >>> ensemble.models_[0] is members[0]  # the members stay unfitted
    False
    """

    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "models": Instance((list, tuple), "a list or tuple of Recommenders"),
        "validation_size": Real(0, 1, open_low=True, open_high=True),
        "candidates": Int(1, none=True),
        "select": Options(("all", "forward")),
        "weights": Options(("inverse_error", "stacked")),
        "stacking_folds": Int(2, none=True),
        "holdout_users": Int(1, none=True),
        "refit": Bool(),
        "random_state": Seed(),
    }

    def __init__(
        self,
        models: Sequence[Recommender],
        *,
        errors: Sequence[float] | None = None,
        metric: str = "rmse",
        weights: Literal["inverse_error", "stacked"] = "inverse_error",
        select: Literal["all", "forward"] = "all",
        stacking_folds: int | None = 5,
        validation_size: float = 0.1,
        holdout_users: int | None = None,
        refit: bool = True,
        candidates: int | None = None,
        random_state: int | None = None,
    ) -> None:
        self.models = models
        self.errors = errors
        self.metric = metric
        self.weights = weights
        self.select = select
        self.stacking_folds = stacking_folds
        self.validation_size = validation_size
        self.holdout_users = holdout_users
        self.refit = refit
        self.candidates = candidates
        self.random_state = random_state

    # -- fit -----------------------------------------------------------------------------------
    def _validate_params(self) -> dict[str, Any]:
        """Return the checked parameters; ``errors`` as a float array (None when to be measured)."""
        name = type(self).__name__
        if isinstance(self.models, Iterator):
            raise InvalidParameterError(
                f"{name}: models must be a list or tuple of Recommenders, got the one-shot iterator "
                f"{self.models!r}; pass list(...) of it"
            )
        params = super()._validate_params()
        models = list(self.models)
        if not models:
            raise InvalidParameterError(f"{name}: models must hold at least one Recommender, got {self.models!r}")
        for position, model in enumerate(models):
            if not isinstance(model, Recommender):
                raise InvalidParameterError(f"{name}: models[{position}] must be a Recommender, got {model!r}")
        params["errors"] = None if self.errors is None else self._checked_errors(len(models))
        try:
            parse_metric(self.metric)
        except InvalidParameterError as err:
            raise InvalidParameterError(f"{name}: {err}") from None
        if self.weights == "stacked" and (self.errors is not None or self.metric != "rmse"):
            raise InvalidParameterError(
                f"{name}: weights='stacked' learns from hold-out ratings: it needs errors=None and metric='rmse'"
            )
        if self.select == "forward" and (self.errors is not None or self._out_of_fold()):
            raise InvalidParameterError(f"{name}: select='forward' chooses on a hold-out: it needs errors=None "
                                        "(and stacking_folds=None with weights='stacked')")
        return params

    def _checked_errors(self, n_models: int) -> np.ndarray:
        name = type(self).__name__
        if not isinstance(self.errors, (list, tuple, np.ndarray)) or len(self.errors) != n_models:
            raise InvalidParameterError(
                f"{name}: errors must be None or a list of {n_models} positive floats (one per model), "
                f"got {self.errors!r}"
            )
        positive = Real(0, open_low=True)
        return np.array([check_value(name, f"errors[{i}]", e, positive) for i, e in enumerate(self.errors)])

    def fit(
        self,
        ratings: pd.DataFrame,
        *,
        callback: Callable[[FitEvent], Any] | None = None,
        users: pd.DataFrame | None = None,
        items: pd.DataFrame | None = None,
    ) -> Self:
        """Measure (or take) each member's error, fit a clone of every member on ``ratings``, fix mu and sigma.

        Parameters
        ----------
        ratings : pandas.DataFrame
            Columns ``userId, movieId, rating`` (and optionally ``timestamp``).
        callback : callable, optional
            Called with a [`FitEvent`][movierec.FitEvent] after each member fit (progress bars, timings).
        users, items : pandas.DataFrame, optional
            Side frames (``MovieLens.users`` / ``.items``), passed to the members whose
            [`uses_side_data`][movierec.Recommender.uses_side_data] is True and to no other.

        Returns
        -------
        WeightedEnsemble
            ``self``, with ``models_`` the fitted clones; the given ``models`` are not changed.

        Raises
        ------
        DataValidationError
            If ``ratings`` is not a valid ratings frame.
        InvalidParameterError
            If a parameter is out of range, or ``callback`` is not callable.
        """
        check_ratings(ratings)
        params = self._validate_params()
        if callback is not None and not callable(callback):
            raise InvalidParameterError(f"{type(self).__name__}: callback must be callable or None, got {callback!r}")
        previous = getattr(self, "models_", [])
        self._reset()
        models = [clone(model) for model in self.models]
        seconds = np.zeros(len(models))

        def fit_member(position: int, data: pd.DataFrame, stage: Literal["validation", "final"]) -> Recommender:
            start = time.perf_counter()
            side = {"users": users, "items": items} if models[position].uses_side_data() else {}
            with trusted_ratings(data):  # rows of ratings, checked above: the member does not check again
                models[position].fit(data, **{k: v for k, v in side.items() if v is not None})
            elapsed = time.perf_counter() - start
            seconds[position] += elapsed
            if callback is not None:
                callback(FitEvent(position, type(models[position]).__name__, stage, len(data), elapsed))
            return models[position]

        chosen, selection = list(range(len(models))), None
        refit = True  # False once the hold-out fits are kept as the final ones (refit=False)
        try:
            errors = params["errors"]
            scale = rating_scale(ratings)
            if self._out_of_fold():
                z, y, errors = out_of_fold(len(models), parts_of(ratings, self.stacking_folds, rng(self.random_state, "stacking folds")),
                                           lambda p, data: fit_member(p, data, "validation"), self._member_stats)
            elif errors is None:
                # One clone per member serves both fits: the hold-out fit, then the fit on all.
                refit = self.refit
                with trusted_ratings(ratings):
                    train, holdout = holdout_split(ratings, self.validation_size, self.holdout_users, self.random_state)
                errors = np.array(
                    [holdout_error(fit_member(p, train, "validation"), holdout, self.metric) for p in chosen], dtype=float
                )
                if self.select == "forward" and len(models) > 1:
                    chosen, selection = select_members(self, models, errors, train, holdout, self._reference_stats)
                    close_all([m for p, m in enumerate(models) if p not in chosen])
                if self.weights == "stacked":  # the hold-out fits score the hold-out
                    kept = [models[p] for p in chosen]
                    z, y, _ = out_of_fold(len(kept), [(train, holdout)], lambda p, _: kept[p], self._member_stats)
            stacked = stacked_weights(z, y, rng(self.random_state, "stacking weights"), scale) if self.weights == "stacked" else None
            for position in chosen if refit else ():
                fit_member(position, ratings, "final")
            user_ids, item_ids, _, _, seen = index_ratings(ratings)
            means, stds = self._reference_stats([models[p] for p in chosen], user_ids, item_ids)
        except BaseException:
            self._reset()
            close_all(models)  # a failure to close must not hide the fit's own error
            raise
        finally:
            # The clones of an earlier fit (after load, the members are both models and models_: kept).
            failure = close_all([m for m in previous if not any(m is given for given in self.models)])
            if failure is not None:
                warnings.warn(f"could not close a member of the previous fit: {failure}", MovieRecWarning, stacklevel=2)
        weights, intercept, stacked_error = stacked if self.weights == "stacked" else (1.0 / errors[chosen], np.nan, np.nan)
        FittedState(models=[models[p] for p in chosen], members=np.array(chosen, dtype=np.int64), users=user_ids,
                    items=item_ids, seen=seen, errors=errors[chosen], weights=weights, score_mean=means, score_std=stds,
                    candidate_errors=errors, selection=selection, fit_seconds=seconds, intercept=intercept,
                    stacked_error=stacked_error, rating_scale=scale).apply(self)
        return self

    def _out_of_fold(self) -> bool:
        return self.weights == "stacked" and self.stacking_folds is not None and self.errors is None

    def _member_stats(self, model: Recommender, ratings: pd.DataFrame) -> tuple[float, float]:
        """Return mu and sigma of ``model`` on the reference pairs of the users x movies of ``ratings``."""
        means, stds = self._reference_stats([model], IdIndex(ratings[USER]), IdIndex(ratings[ITEM]))
        return float(means[0]), float(stds[0])

    def close(self) -> None:
        """Close every fitted member (a SparkALS clone's Spark session, for one), even if one fails (the
        first failure is raised afterwards); safe to call twice."""
        failure = close_all(getattr(self, "models_", []))
        if failure is not None:
            raise failure

    def _reference_stats(self, models: list[Recommender], users: Any = None, items: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Return mu and sigma of each member's scores on the reference pairs of ``users`` x ``items``."""
        pairs = sample_pairs(self.users_ if users is None else users, self.items_ if items is None else items,
                             REFERENCE_PAIRS, rng(self.random_state, "reference pairs"))
        return reference_stats(models, pairs)

    # -- scoring -------------------------------------------------------------------------------
    def _weighted(self, position: int, scores: np.ndarray) -> np.ndarray:
        """Return ``z_m / e_m`` for member ``position``; NaN (cannot score) counts as 0."""
        return weighted_z(scores, self.score_mean_[position], self.score_std_[position], self.weights_[position])

    def predict(self, pairs: pd.DataFrame) -> pd.Series:
        """Return ``sum_m (s_m / e_m) / sum_m (1 / e_m)`` over members that score each pair.

        With stacked weights: ``b + sum_m w_m z_m`` clipped to ``rating_scale_``, members that cannot
        score adding 0; NaN where none can.
        """
        self._check_fitted()
        check_pairs(pairs)
        if not np.isnan(self.intercept_):
            return self._predict_stacked(pairs)
        total = np.zeros(len(pairs))
        weight = np.zeros(len(pairs))
        for position, model in enumerate(self.models_):
            scores = model.predict(pairs).to_numpy(dtype=float)
            known = np.isfinite(scores)
            total[known] += scores[known] * self.weights_[position]
            weight[known] += self.weights_[position]
        with np.errstate(invalid="ignore", divide="ignore"):
            blended = np.where(weight > 0, total / weight, np.nan)
        return pd.Series(blended, index=pairs.index, name="prediction")

    def _predict_stacked(self, pairs: pd.DataFrame) -> pd.Series:
        total = np.full(len(pairs), self.intercept_)
        scored = np.zeros(len(pairs), dtype=bool)
        for position, model in enumerate(self.models_):
            scores = model.predict(pairs).to_numpy(dtype=float)
            scored |= np.isfinite(scores)
            total += self._weighted(position, scores)
        np.clip(total, self.rating_scale_[0], self.rating_scale_[1], out=total)
        return pd.Series(np.where(scored, total, np.nan), index=pairs.index, name="prediction")

    def top_n(
        self, users: Iterable[Any] | None = None, n: int = 5, *, exclude_seen: bool = True
    ) -> pd.DataFrame:
        """Return the ``n`` best movies per user by summed weighted standardized score.

        Ties break by movieId. With ``candidates=k`` at most ``k * len(models)`` movies per user
        are candidates, so fewer than ``n`` rows come back when ``n`` exceeds that.
        """
        self._check_fitted()
        n = check_n(n)
        exclude_seen = check_value(type(self).__name__, "exclude_seen", exclude_seen, Bool())
        user_idx = resolve_users(users, self.users_)
        if len(user_idx) == 0:
            return empty_top_n()
        if self.candidates is None:
            return self._score_all(user_idx, n, exclude_seen)
        users = list(self.users_.ids[user_idx])
        proposed = [m.top_n(users=users, n=self.candidates, exclude_seen=exclude_seen) for m in self.models_]
        return rank_frame(self._score_candidates(proposed, exclude_seen), n)

    def _score_all(self, user_idx: np.ndarray, n: int, exclude_seen: bool) -> pd.DataFrame:
        """Score user blocks from each member's score matrix, keeping each block's top ``n`` only."""
        block = user_block(len(self.items_))
        parts = []
        for start in range(0, len(user_idx), block):
            chunk = user_idx[start : start + block]
            scores = blend_block(self.models_, self.score_mean_, self.score_std_, self.weights_,
                                 self.users_.ids[chunk], self.items_.ids)
            if exclude_seen:
                seen = self.seen_[chunk].tocoo()
                scores[seen.row, seen.col] = -np.inf
            rows, cols, values = top_k(scores, n)  # ties by item index: movieId order
            parts.append((chunk[rows], cols, values))
        u, i, v = (np.concatenate(p) for p in zip(*parts))
        return top_n_frame(self.users_.ids, self.items_.ids, u, i, v)

    def _score_candidates(self, proposed: Sequence[pd.DataFrame], exclude_seen: bool) -> pd.DataFrame:
        """Return the summed weighted z-scores of the members' proposals, rated movies dropped with ``exclude_seen``."""
        frame = candidate_scores(proposed, self.score_mean_, self.score_std_, self.weights_)
        if exclude_seen:  # members fitted on a hold-out's train (refit=False) do not know every rated movie
            frame = frame[~rated_rows(frame, self.users_, self.items_, self.seen_)]
        return frame

    def rank_proposals(self, proposed: Sequence[pd.DataFrame], n: int = 5, *, exclude_seen: bool = True) -> pd.DataFrame:
        """Return [`top_n`][movierec.WeightedEnsemble.top_n]'s lists (``candidates`` mode) from the members' own top lists, already ranked.

        ``proposed[m]`` is ``models_[m].top_n(users, n=K, exclude_seen=exclude_seen)`` with ``K >=
        candidates``, the same users for every member; rows past rank ``candidates`` are dropped, so
        the result equals ``top_n(users, n)``. For callers that rank every member anyway (the main job).
        """
        self._check_fitted()
        if self.candidates is None or len(proposed) != len(self.models_):
            raise InvalidParameterError(f"{type(self).__name__}: rank_proposals needs candidates set and one "
                                        f"top-N frame per member ({len(self.models_)}), got {len(proposed)}")
        kept = [frame[frame["rank"] <= self.candidates] for frame in proposed]
        return rank_frame(self._score_candidates(kept, bool(exclude_seen)), check_n(n))

    # -- persistence --------------------------------------------------------------------------
    def scoring_copy(self) -> Self:
        """Return a copy whose fitted members are their ``scoring_copy()``: no live object, so it pickles."""
        self._check_fitted()
        blend = copy.copy(self)
        blend.models = blend.models_ = [member.scoring_copy() for member in self.models_]
        return blend

    def save(self, path: str | Path) -> None:
        """Write the ensemble to the directory ``path`` atomically: its state, each member in ``member_<i>/``.

        The whole folder, members included, is written aside and swapped into place only when complete,
        with one manifest over every file (docs/architecture.md, "Trust and files").
        """
        self._check_fitted()
        save_ensemble(self, path)

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """Read an ensemble written by [`save`][movierec.WeightedEnsemble.save], members included (as both ``models`` and ``models_``).

        Member classes resolve through the registry only; every file is checked against the
        manifest, and a save that replaces the folder while it is read makes the load start again.
        """
        return load_ensemble(cls, path)

    def __repr__(self) -> str:
        # Never iterate a generator here: repr must not consume what fit will refuse.
        listed = isinstance(self.models, (list, tuple))
        models = "[" + ", ".join(type(m).__name__ for m in self.models) + "]" if listed else repr(self.models)
        return f"WeightedEnsemble({models}, errors={self.errors!r}, candidates={self.candidates!r})"
