"""The ``Recommender`` contract (docs/architecture.md, section 3) and ``ArrayRecommender``, its numpy form.

Only the contract lives here: ids (`movierec._core.ids`), ranking (`movierec._core.ranking`),
persistence (`movierec._core.persist`) and parameter checks (`movierec._core.params`) each have their
own module; the history methods and hooks are mixed in from `movierec._core.history_methods`.
"""

from __future__ import annotations

import inspect
import logging
import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

import numpy as np
import pandas as pd

from movierec._core.history_methods import LIKED_RATING_DEFAULT, HistoryHooks, HistoryMethods
from movierec._core.ids import index_ratings, resolve_users
from movierec._core.params import Bool, Constraint, check_params, check_value
from movierec._core.persist import (
    ARRAYS_FILE,
    PARAMS_FILE,
    ModelFiles,
    atomic_folder,
    check_arrays,
    read_folder,
    restore_state,
    state_arrays,
    write_arrays,
    write_params,
)
from movierec._core.ranking import joined_parts, top_k, top_n_frame, user_block
from movierec._core.validation import ITEM, RATING, USER, check_n, check_pairs, check_ratings
from movierec.exceptions import (
    BackendError,
    InvalidParameterError,
    ModelFileError,
    MovieRecWarning,
    NotFittedError,
)

__all__ = ["ArrayRecommender", "Recommender", "TuneResult"]

logger = logging.getLogger(__name__)



@dataclass(frozen=True)
class TuneResult:
    """What every ``tune`` returns; the model it was called on is left fitted with ``best_params``.

    Attributes
    ----------
    best_params : dict
        The chosen values of the tuned parameters.
    best_score : float
        Their validation score under ``metric`` (NaN when the backend reported none).
    metric : str
        What was measured, e.g. ``"rmse"`` or ``"test:rmse"``.
    results : pandas.DataFrame
        One row per candidate: its parameter values and its score in a column named ``metric``.
    """

    best_params: dict[str, Any]
    best_score: float
    metric: str
    results: pd.DataFrame


class Recommender(HistoryMethods, ABC):
    """A model that learns from a ratings frame and scores (user, movie) pairs.

    Hyperparameters are keyword arguments of ``__init__``, stored unchanged; learned state ends in
    ``_``. Subclasses implement [`fit`][movierec.Recommender.fit], [`predict`][movierec.Recommender.predict] and [`top_n`][movierec.Recommender.top_n]; [`rmse`][movierec.Recommender.rmse]
    works through [`predict`][movierec.Recommender.predict].
    """

    #: Constraints on constructor arguments, checked once at the start of fit (movierec._core.params).
    _parameter_constraints: ClassVar[Mapping[str, Constraint]] = {}

    # -- scikit-learn style parameters -------------------------------------------------------
    @classmethod
    def _param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return [
            p.name
            for p in signature.parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]

    def get_params(self, deep: bool = False) -> dict[str, Any]:
        """Return the constructor arguments as a dict (``deep`` is accepted for scikit-learn)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> Self:
        """Set constructor arguments by name and return ``self``; unknown names raise."""
        valid = set(self._param_names())
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"{type(self).__name__} has no parameter {name!r}; valid: {sorted(valid)}")
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def _validate_params(self) -> dict[str, Any]:
        """Return the constrained parameters, normalized; raise InvalidParameterError on a bad one."""
        return check_params(self)

    # -- lifecycle ----------------------------------------------------------------------------
    def close(self) -> None:
        """Release what the model holds outside Python (a Spark session, an endpoint); safe to call twice.

        The base does nothing; models that hold such resources override it.
        """

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the interface ------------------------------------------------------------------------
    @abstractmethod
    def fit(self, ratings: pd.DataFrame) -> Self:
        """Learn from ``ratings`` (columns userId, movieId, rating[, timestamp]) and return self."""

    @abstractmethod
    def predict(self, pairs: pd.DataFrame) -> pd.Series:
        """Return one score per row of ``pairs`` (same index); NaN where user or movie is unknown."""

    @abstractmethod
    def top_n(
        self, users: Iterable[Any] | None = None, n: int = 5, *, exclude_seen: bool = True
    ) -> pd.DataFrame:
        """Return the ``n`` best movies per user: columns userId, movieId, score, rank."""

    def rmse(self, test: pd.DataFrame, *, cold_start: Literal["drop", "error"] = "drop") -> float:
        """Return the root mean squared error of [`predict`][movierec.Recommender.predict] on ``test``'s ratings.

        Pairs the model cannot score are skipped with a warning giving their count
        (``cold_start="drop"``, as Spark's ``coldStartStrategy="drop"``) or raise (``"error"``).
        The comparison is with [`prediction_targets`][movierec.Recommender.prediction_targets] of the ratings.
        """
        from movierec.metrics import rmse, scored_predictions

        truth, predicted, missing = scored_predictions(self, test, cold_start=cold_start)
        if missing:
            warnings.warn(
                f"{missing} of {len(test)} test pairs have a user or movie unseen in fit; "
                "they are left out of the RMSE",
                MovieRecWarning,
                stacklevel=2,
            )
        return rmse(truth, predicted)

    def score_matrix(self, users: Any, items: Any) -> np.ndarray:
        """Return the ``(len(users), len(items))`` matrix of [`predict`][movierec.Recommender.predict] for raw ids; NaN where unknown.

        This default predicts every (user, movie) pair of the block; array-backed models compute it
        with matrix products instead ([`ArrayRecommender.score_matrix`][movierec.ArrayRecommender.score_matrix]).
        """
        users, items = np.asarray(users), np.asarray(items)
        pairs = pd.DataFrame({USER: np.repeat(users, len(items)), ITEM: np.tile(items, len(users))})
        return self.predict(pairs).to_numpy(dtype=np.float64).reshape(len(users), len(items))

    def uses_side_data(self) -> bool:
        """Return whether [`fit`][movierec.Recommender.fit] takes ``users=`` / ``items=`` frames (side features); False here.

        An ensemble passes its side frames to the members that say True, and only to them.
        """
        return False

    def prediction_targets(self, ratings: np.ndarray) -> np.ndarray:
        """Return what [`predict`][movierec.Recommender.predict] estimates for these ratings: the ratings themselves by default.

        A model that predicts labels (a binary FM: 1 for rating >= 4) returns the labels, so RMSE
        compares like with like wherever it is computed.
        """
        return np.asarray(ratings, dtype=np.float64)

    def save(self, path: str | Path) -> None:
        """Write the fitted model to the directory ``path``."""
        raise NotImplementedError(f"{type(self).__name__} cannot be saved")

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """Read a model written by [`save`][movierec.Recommender.save]."""
        raise NotImplementedError(f"{cls.__name__} cannot be loaded")

    # -- helpers for subclasses ---------------------------------------------------------------
    def _fitted_keys(self) -> list[str]:
        # Fitted state: public attributes ending in "_" (scikit-learn's convention).
        return [k for k in vars(self) if k.endswith("_") and not k.startswith("_")]

    def _is_fitted(self) -> bool:
        return bool(self._fitted_keys())

    def _check_fitted(self) -> None:
        if not self._is_fitted():
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call fit(ratings) first")

    def _reset(self) -> None:
        """Forget every fitted attribute, so a second ``fit`` starts from scratch."""
        for key in self._fitted_keys():
            delattr(self, key)


class ArrayRecommender(HistoryHooks, Recommender):
    """A Recommender whose fitted state is numpy arrays plus id maps.

    Subclasses implement [`_fit_indexed`][movierec.ArrayRecommender._fit_indexed], [`_score_pairs`][movierec.ArrayRecommender._score_pairs] and [`_score_users`][movierec.ArrayRecommender._score_users]
    (all on contiguous indices) and [`_get_arrays`][movierec.ArrayRecommender._get_arrays] / [`_set_arrays`][movierec.ArrayRecommender._set_arrays] for saving; this
    class does validation, id mapping, cold start, the vectorized top-N and save/load.
    """

    _sort_item_ids = True
    #: Shapes of the arrays :meth:`_get_arrays` returns, checked at load before :meth:`_set_arrays`
    #: (see movierec._core.persist.check_arrays): e.g. ``{"user_factors": ("users", "k"),
    #: "item_factors": ("items", "k")}``; ``"users"`` and ``"items"`` are the fitted id counts.
    _array_shapes: ClassVar[Mapping[str, tuple[int | str, ...]]] = {}

    def fit(self, ratings: pd.DataFrame) -> Self:
        """Learn from ``ratings`` and return self; a second call starts from scratch."""
        check_ratings(ratings)
        self._validate_params()
        self._reset()
        self.users_, self.items_, user_idx, item_idx, self.seen_ = index_ratings(
            ratings, sort_items=self._sort_item_ids
        )
        self.highest_rating_ = float(ratings[RATING].max())  # a history without ratings: each movie liked
        try:
            self._fit_indexed(user_idx, item_idx, ratings[RATING].to_numpy(dtype=np.float64), ratings)
        except BaseException:
            self._reset()  # a failed fit leaves the model unfitted, not half-fitted
            raise
        return self

    def predict(self, pairs: pd.DataFrame) -> pd.Series:
        """Return a score per row of ``pairs``, NaN for users or movies unseen in fit."""
        self._check_fitted()
        check_pairs(pairs)
        user_idx = self.users_.lookup(pairs[USER])
        item_idx = self.items_.lookup(pairs[ITEM])
        known = (user_idx >= 0) & (item_idx >= 0)
        out = np.full(len(pairs), np.nan)
        if known.any():
            out[known] = self._finite(self._score_pairs(user_idx[known], item_idx[known]))
        return pd.Series(out, index=pairs.index, name="prediction")

    def top_n(
        self, users: Iterable[Any] | None = None, n: int = 5, *, exclude_seen: bool = True
    ) -> pd.DataFrame:
        """Return the ``n`` highest-scored movies per user, ties broken by item index order.

        Item index order is movieId order unless a subclass keeps first-appearance order
        (``_sort_item_ids = False``, as SurpriseSVD does to match Surprise's own ranking).

        Scores the whole catalogue in blocks of users with matrix products; movies rated in fit
        are left out unless ``exclude_seen=False``. Unknown users get no rows and one warning.
        """
        self._check_fitted()
        n = check_n(n)
        exclude_seen = check_value(type(self).__name__, "exclude_seen", exclude_seen, Bool())
        user_idx = resolve_users(users, self.users_)
        block = user_block(len(self.items_))
        parts = []
        for start in range(0, len(user_idx), block):
            chunk = user_idx[start : start + block]
            scores = np.array(self._finite(self._score_users(chunk)), dtype=np.float64)
            if exclude_seen:
                seen = self.seen_[chunk].tocoo()
                scores[seen.row, seen.col] = -np.inf
            rows, cols, values = top_k(scores, n)
            parts.append((chunk[rows], cols, values))
        return self._top_n_frame(*joined_parts(parts))

    def score_matrix(self, users: Any, items: Any) -> np.ndarray:
        """Return the ``(len(users), len(items))`` matrix of scores for raw ids; NaN where an id is unknown.

        The array form of [`predict`][movierec.ArrayRecommender.predict] for every pair of a user block and a catalogue, computed
        with the same matrix products as [`top_n`][movierec.ArrayRecommender.top_n] (no pair frame). Seen movies are not masked.
        """
        self._check_fitted()
        user_idx = self.users_.lookup(np.asarray(users))
        item_idx = self.items_.lookup(np.asarray(items))
        out = np.full((len(user_idx), len(item_idx)), np.nan)
        rows, cols = np.flatnonzero(user_idx >= 0), np.flatnonzero(item_idx >= 0)
        if len(rows) and len(cols):
            scores = self._finite(self._score_users(user_idx[rows]))
            out[np.ix_(rows, cols)] = scores[:, item_idx[cols]]
        return out

    def _top_n_frame(self, u: np.ndarray, i: np.ndarray, s: np.ndarray) -> pd.DataFrame:
        """Return the top-N frame of (user index, item index, score) triples grouped by user in order."""
        # Users come in index order, which is sorted id order when ids are comparable.
        return top_n_frame(self.users_.ids, self.items_.ids, u, i, s)

    # -- persistence --------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write the model to the folder ``path``, atomically: the old model there stays whole until
        the new one is complete (``params.json``, ``arrays.npz`` without pickle, ``manifest.json``).

        Raises
        ------
        FileExistsError
            If ``path`` is a file, or a non-empty folder that holds no saved model.
        """
        self._check_fitted()
        with atomic_folder(path) as folder:
            self._write(folder)

    def _write(self, folder: Path) -> None:
        """Write the model's files into the new, empty ``folder``; [`save`][movierec.ArrayRecommender.save] makes it atomic.

        Subclasses with files of their own (Spark's model) write them here and call ``super()``.
        """
        arrays = state_arrays(self.users_, self.items_, self.seen_)
        arrays.update({f"model_{k}": np.asarray(v) for k, v in self._get_arrays().items()})
        extra = {**self._get_extra(), "highest_rating": float(self._history_ratings(None, 1)[0])}
        write_params(folder, self, params=self._saved_params(), extra=extra)
        write_arrays(folder, arrays)

    def scoring_copy(self) -> Self:
        """Return a copy holding only what [`save`][movierec.ArrayRecommender.save] writes: parameters, ids, seen movies, arrays.

        Live objects (a Spark session, an ALSModel, a SageMaker endpoint) stay behind, so the copy
        pickles and scores from its arrays as a loaded model does (``movierec.spark.batch.batch_top_n``
        sends such copies to Spark's executors). The arrays are shared with this model, not copied.
        """
        self._check_fitted()
        arrays, extra = self._get_arrays(), self._get_extra()  # a training job's weights download here
        copy = type(self)(**self._saved_params())
        copy.users_, copy.items_, copy.seen_ = self.users_, self.items_, self.seen_
        copy.highest_rating_ = float(self._history_ratings(None, 1)[0])
        copy._set_arrays({name: np.asarray(value) for name, value in arrays.items()}, extra)
        return copy

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """Read a model written by [`save`][movierec.ArrayRecommender.save]; it predicts without refitting.

        Raises
        ------
        ModelFileError
            If a file is missing, changed or malformed, or arrays and values do not fit the model:
            here, never later at ``predict``.
        """
        files = read_folder(path, cls)
        return files.cls._from_files(files)

    @classmethod
    def _from_files(cls, files: ModelFiles) -> Self:
        """Return the model ``files`` hold, every array checked before any is used."""
        model = cls(**files.params)
        try:
            model._validate_params()
        except InvalidParameterError as err:
            raise ModelFileError(f"{files.path / PARAMS_FILE}: {err}") from None
        where = files.path / ARRAYS_FILE
        model.users_, model.items_, model.seen_ = restore_state(files.arrays, where)
        own = {k[6:]: v for k, v in files.arrays.items() if k.startswith("model_")}
        check_arrays(where, own, cls._array_shapes, {"users": len(model.users_), "items": len(model.items_)})
        try:
            model._set_arrays(own, files.extra)
            model.highest_rating_ = float(files.extra.get("highest_rating", LIKED_RATING_DEFAULT))  # older folders
            if not np.isfinite(model.highest_rating_):
                raise ValueError(f"highest_rating is {model.highest_rating_}")
            model._check_restored()
        except ModelFileError:
            raise
        except (KeyError, IndexError, TypeError, ValueError) as err:
            raise ModelFileError(
                f"{files.path}: the saved arrays and values do not fit a {cls.__name__} ({type(err).__name__}: {err})"
            ) from None
        return model

    def _check_restored(self) -> None:
        """Check sparse state and score the first and last user and movie once, so arrays that do not
        fit fail at load, not at predict."""
        from scipy import sparse

        for value in vars(self).values():
            if sparse.issparse(value):
                value.check_format(full_check=True)  # indices in range: scipy does not check them
        users = np.array([0, len(self.users_) - 1])
        items = np.array([0, len(self.items_) - 1])
        scores = np.asarray(self._score_users(users), dtype=np.float64)
        pairs = np.asarray(self._score_pairs(users, items), dtype=np.float64)
        if scores.shape != (2, len(self.items_)) or pairs.shape != (2,):
            raise ValueError(f"scores have shape {scores.shape} and {pairs.shape}, not (2, {len(self.items_)}) and (2,)")
        if not (np.isfinite(scores).all() and np.isfinite(pairs).all()):
            raise ValueError("scores are NaN or infinite")

    def _saved_params(self) -> dict[str, Any]:
        """Return the constructor arguments to write; subclasses leave out live objects (sessions)."""
        return self.get_params()

    # -- for subclasses -----------------------------------------------------------------------
    @abstractmethod
    def _fit_indexed(
        self, user_idx: np.ndarray, item_idx: np.ndarray, ratings: np.ndarray, frame: pd.DataFrame
    ) -> None:
        """Learn from index-coded ratings; ``frame`` is the validated input, for side data."""

    def _finite(self, scores: Any) -> np.ndarray:
        """Return ``scores`` as floats; NaN or infinite scores of known ids raise BackendError naming the model.

        NaN means "cannot score" only for ids unseen in fit; from a fitted backend (factors, an
        artifact, an endpoint) it is a failure, never a silent cold start.
        """
        scores = np.asarray(scores, dtype=np.float64)
        bad = ~np.isfinite(scores)
        if bad.any():
            raise BackendError(
                f"{type(self).__name__} gave {int(bad.sum())} NaN or infinite score(s) of {scores.size} for users "
                "and movies it was fitted on: its learned state or backend is broken (refit it)"
            )
        return scores

    @abstractmethod
    def _score_pairs(self, user_idx: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
        """Return the score of each (user, item) index pair."""

    @abstractmethod
    def _score_users(self, user_idx: np.ndarray) -> np.ndarray:
        """Return a dense (len(user_idx), n_items) score matrix."""

    @abstractmethod
    def _get_arrays(self) -> dict[str, np.ndarray]:
        """Return the learned arrays to save."""

    @abstractmethod
    def _set_arrays(self, arrays: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        """Restore the learned arrays (and JSON ``extra``) written by [`_get_arrays`][movierec.ArrayRecommender._get_arrays]."""

    def _get_extra(self) -> dict[str, Any]:
        """Return JSON-safe learned scalars to save next to the parameters."""
        return {}

