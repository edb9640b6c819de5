"""WeightedEnsemble: standardized member scores weighted by 1 / RMSE (ARCHITECTURE.md section 4)."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np
import pandas as pd

from movierec._validation import ITEM, USER, check_fraction, check_n, check_pairs, check_ratings
from movierec._ids import index_ratings, resolve_users, sample_pairs
from movierec._persist import ARRAYS_FILE, read_params, restore_state, state_arrays, write_params
from movierec._ranking import empty_top_n, rank_frame
from movierec.base import Recommender
from movierec.registry import model_class, registered_name
from movierec.exceptions import DataValidationError, MovieRecWarning

__all__ = ["WeightedEnsemble"]

# Size of the fixed random sample of (user, movie) pairs whose member scores give mu_m, sigma_m.
REFERENCE_PAIRS = 50_000
# Pairs sent to each member's predict at once when every unseen movie is scored.
_CHUNK_PAIRS = 1_000_000


class WeightedEnsemble(Recommender):
    """Combines any Recommenders: standardized scores, each divided by its member's RMSE, summed.

    For member ``m`` with error ``e_m`` and raw score ``s_m(u, i)`` the ensemble's ranking score is
    ``sum_m (s_m(u, i) - mu_m) / sigma_m / e_m``, where ``mu_m`` and ``sigma_m`` are the mean and
    standard deviation of ``m``'s scores over a reference population fixed at ``fit`` (a random
    sample of ``REFERENCE_PAIRS`` (user, movie) pairs of the training catalogue, drawn with
    ``random_state``). :meth:`predict` returns the rating-scale blend
    ``sum_m (s_m / e_m) / sum_m (1 / e_m)`` over the members that can score a pair.

    Parameters
    ----------
    models : sequence of Recommender
        The members. ``fit`` fits them in place (they end up fitted on all of ``ratings``).
    errors : sequence of float, optional
        Each member's error (RMSE). When not given, ``fit`` holds out ``validation_size`` of each
        user's ratings, fits every member on the rest, measures ``member.rmse(holdout)``, then
        refits every member on all the data.
    validation_size : float, default 0.1
    candidates : int, optional
        ``None`` scores every unseen movie of the user with every member. An int ``k`` lets each
        member propose its own top ``k``; a pair is scored by the members that proposed it (the
        others add 0), so at most ``k * len(models)`` candidates per user.
    random_state : int, optional
        Seeds the validation split and the reference sample.

    Attributes
    ----------
    errors_ : ndarray
        The error used for each member.
    weights_ : ndarray
        ``1 / errors_``.
    score_mean_, score_std_ : ndarray
        ``mu_m`` and ``sigma_m`` per member.
    """

    def __init__(
        self,
        models: Sequence[Recommender],
        *,
        errors: Sequence[float] | None = None,
        validation_size: float = 0.1,
        candidates: int | None = None,
        random_state: int | None = None,
    ) -> None:
        self.models = models
        self.errors = errors
        self.validation_size = validation_size
        self.candidates = candidates
        self.random_state = random_state

    # -- fit -----------------------------------------------------------------------------------
    def _check_params(self) -> tuple[list[Recommender], np.ndarray | None]:
        """Return the members and the given errors as floats (None when they are to be measured)."""
        models = list(self.models)
        if not models:
            raise DataValidationError("models must hold at least one Recommender")
        for model in models:
            missing = [m for m in ("fit", "predict", "top_n", "rmse") if not callable(getattr(model, m, None))]
            if missing:
                raise DataValidationError(f"member {model!r} lacks the Recommender method(s) {missing}")
        errors = None if self.errors is None else np.asarray(list(self.errors), dtype=float)
        if errors is not None:
            if errors.shape != (len(models),):
                raise DataValidationError(f"errors must give one float per model ({len(models)}), got {self.errors!r}")
            if not (np.isfinite(errors) & (errors > 0)).all():
                raise DataValidationError(f"errors must be positive finite floats, got {self.errors!r}")
        check_fraction(self.validation_size, "validation_size")
        if self.candidates is not None:
            check_n(self.candidates, "candidates")
        return models, errors

    def fit(self, ratings: pd.DataFrame) -> Self:
        """Measure (or take) each member's error, fit every member on ``ratings``, fix mu and sigma."""
        from movierec.split import stratified_split

        check_ratings(ratings)
        models, errors = self._check_params()
        self._reset()
        if errors is None:
            train, holdout = stratified_split(ratings, self.validation_size, random_state=self.random_state)
            errors = np.array([model.fit(train).rmse(holdout) for model in models], dtype=float)
        for model in models:
            model.fit(ratings)
        self.users_, self.items_, _, _, self.seen_ = index_ratings(ratings)
        self.errors_ = errors
        self.score_mean_, self.score_std_ = self._reference_stats(models)
        return self

    @property
    def weights_(self) -> np.ndarray:
        """``1 / errors_``: each member's weight."""
        return 1.0 / self.errors_

    def _reference_stats(self, models: list[Recommender]) -> tuple[np.ndarray, np.ndarray]:
        pairs = sample_pairs(self.users_, self.items_, REFERENCE_PAIRS, self.random_state)
        means, stds = [], []
        for position, model in enumerate(models):
            scores = model.predict(pairs).to_numpy(dtype=float)
            finite = scores[np.isfinite(scores)]
            if finite.size == 0:
                raise DataValidationError(f"member {position} ({type(model).__name__}) scored none of the reference pairs")
            mean, std = float(finite.mean()), float(finite.std())
            if not std > 0:
                warnings.warn(
                    f"member {position} ({type(model).__name__}) gives the same score to every reference "
                    "pair; its standardized scores are 0",
                    MovieRecWarning,
                    stacklevel=3,
                )
                std = 0.0
            means.append(mean)
            stds.append(std)
        return np.array(means), np.array(stds)

    # -- scoring -------------------------------------------------------------------------------
    def _weighted(self, position: int, scores: np.ndarray) -> np.ndarray:
        """Return ``z_m / e_m`` for member ``position``; NaN (cannot score) counts as 0."""
        std = self.score_std_[position]
        if std == 0:
            z = np.zeros_like(scores)
        else:
            z = (scores - self.score_mean_[position]) / std
        return np.nan_to_num(z, nan=0.0) * self.weights_[position]

    def predict(self, pairs: pd.DataFrame) -> pd.Series:
        """Return ``sum_m (s_m / e_m) / sum_m (1 / e_m)`` over members that score each pair."""
        self._check_fitted()
        check_pairs(pairs)
        total = np.zeros(len(pairs))
        weight = np.zeros(len(pairs))
        for position, model in enumerate(self.models):
            scores = model.predict(pairs).to_numpy(dtype=float)
            known = np.isfinite(scores)
            total[known] += scores[known] * self.weights_[position]
            weight[known] += self.weights_[position]
        with np.errstate(invalid="ignore", divide="ignore"):
            blended = np.where(weight > 0, total / weight, np.nan)
        return pd.Series(blended, index=pairs.index, name="prediction")

    def top_n(
        self, users: Iterable[Any] | None = None, n: int = 5, *, exclude_seen: bool = True
    ) -> pd.DataFrame:
        """Return the ``n`` best movies per user by summed weighted standardized score.

        Ties break by movieId. With ``candidates=k`` at most ``k * len(models)`` movies per user
        are candidates, so fewer than ``n`` rows come back when ``n`` exceeds that.
        """
        self._check_fitted()
        n = check_n(n)
        user_idx = resolve_users(users, self.users_)
        if len(user_idx) == 0:
            return empty_top_n()
        if self.candidates is None:
            frame = self._score_all(user_idx, n, exclude_seen)
        else:
            frame = self._score_candidates(self.users_.ids[user_idx], exclude_seen)
        return rank_frame(frame, n)

    def _score_all(self, user_idx: np.ndarray, n: int, exclude_seen: bool) -> pd.DataFrame:
        n_items = len(self.items_)
        block = max(1, _CHUNK_PAIRS // n_items)
        parts = []
        for start in range(0, len(user_idx), block):
            chunk = user_idx[start : start + block]
            u = np.repeat(chunk, n_items)
            i = np.tile(np.arange(n_items), len(chunk))
            if exclude_seen:
                keep = ~self.seen_[chunk].toarray().ravel()
                u, i = u[keep], i[keep]
            pairs = pd.DataFrame({USER: self.users_.ids[u], ITEM: self.items_.ids[i]})
            score = np.zeros(len(pairs))
            for position, model in enumerate(self.models):
                score += self._weighted(position, model.predict(pairs).to_numpy(dtype=float))
            # Keep only each user's best n before the next block, to bound memory.
            parts.append(rank_frame(pairs.assign(score=score), n).drop(columns="rank"))
        return pd.concat(parts, ignore_index=True)

    def _score_candidates(self, users: np.ndarray, exclude_seen: bool) -> pd.DataFrame:
        parts = []
        for position, model in enumerate(self.models):
            proposed = model.top_n(users=list(users), n=self.candidates, exclude_seen=exclude_seen)
            weighted = self._weighted(position, proposed["score"].to_numpy(dtype=float))
            parts.append(pd.DataFrame({USER: proposed[USER].to_numpy(), ITEM: proposed[ITEM].to_numpy(), "score": weighted}))
        frame = pd.concat(parts, ignore_index=True)
        return frame.groupby([USER, ITEM], as_index=False, sort=False)["score"].sum()

    # -- persistence --------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write the ensemble to the directory ``path``: its own state, and each member in ``member_<i>/``."""
        self._check_fitted()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        _save_ensemble(self, path)

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """Read an ensemble written by :meth:`save`, members included."""
        path = Path(path)
        params, extra = read_params(path, cls, build=False)
        members = []
        for position, qualified in enumerate(extra["members"]):
            members.append(model_class(qualified.rpartition(".")[2]).load(path / f"member_{position}"))
        model = cls(members, **params)
        with np.load(path / ARRAYS_FILE, allow_pickle=False) as data:
            model.users_, model.items_, model.seen_ = restore_state(data)
            model.errors_ = data["errors"]
            model.score_mean_, model.score_std_ = data["score_mean"], data["score_std"]
        return model

    def __repr__(self) -> str:
        names = ", ".join(type(m).__name__ for m in self.models)
        return f"WeightedEnsemble([{names}], errors={self.errors!r}, candidates={self.candidates!r})"



def _save_ensemble(model: WeightedEnsemble, path: Path) -> None:
    params = {k: v for k, v in model.get_params().items() if k != "models"}
    params["errors"] = None if model.errors is None else [float(e) for e in model.errors]
    members = []
    for position, member in enumerate(model.models):
        member.save(path / f"member_{position}")
        members.append(registered_name(type(member)))
    write_params(path, model, params=params, extra={"members": members})
    np.savez(
        path / ARRAYS_FILE,
        **state_arrays(model.users_, model.items_, model.seen_),
        errors=model.errors_,
        score_mean=model.score_mean_,
        score_std=model.score_std_,
    )
