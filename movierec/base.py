"""The ``Recommender`` interface and the fitted-state helpers its numpy-backed models share."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import json
import logging
import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal, Self

import numpy as np
import pandas as pd

from movierec._validation import ITEM, RATING, USER, check_choice, check_n, check_pairs, check_ratings
from movierec._version import __version__
from movierec.exceptions import DataValidationError, MovieRecWarning, NotFittedError

__all__ = [
    "Recommender",
    "ArrayRecommender",
    "IdIndex",
    "import_name",
    "index_ratings",
    "TOP_N_COLUMNS",
    "rank_frame",
    "read_params",
    "resolve_users",
    "sample_pairs",
    "restore_state",
    "state_arrays",
    "top_k",
    "write_params",
]

logger = logging.getLogger(__name__)

TOP_N_COLUMNS = [USER, ITEM, "score", "rank"]
PARAMS_FILE, ARRAYS_FILE = "params.json", "arrays.npz"
_DATACLASS_KEY = "__dataclass__"
# Users scored per block in top_n: keeps one block's score matrix near 32 MB.
_BLOCK_CELLS = 4_000_000


class Recommender(ABC):
    """A model that learns from a ratings frame and scores (user, movie) pairs.

    Hyperparameters are keyword arguments of ``__init__``, stored unchanged; learned state ends in
    ``_``. Subclasses implement :meth:`fit`, :meth:`predict` and :meth:`top_n`; :meth:`rmse`
    works through :meth:`predict`.
    """

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
        """Return the root mean squared error of :meth:`predict` on ``test``'s ratings.

        Pairs the model cannot score are skipped with a warning giving their count
        (``cold_start="drop"``, as Spark's ``coldStartStrategy="drop"``) or raise (``"error"``).
        """
        from movierec.metrics import rmse

        check_choice(cold_start, "cold_start", ("drop", "error"))
        check_pairs(test, name="test")
        if RATING not in test.columns:
            raise DataValidationError(f"test needs a {RATING!r} column; it has {list(test.columns)}")
        predicted = self.predict(test)
        missing = predicted.isna().to_numpy()
        if missing.any():
            message = f"{int(missing.sum())} of {len(test)} test pairs have a user or movie unseen in fit"
            if cold_start == "error":
                raise DataValidationError(message + " (cold_start='error')")
            if missing.all():
                raise DataValidationError(message + ": no pair can be scored")
            warnings.warn(message + "; they are left out of the RMSE", MovieRecWarning, stacklevel=2)
        return rmse(self._rmse_targets(test[RATING].to_numpy()[~missing]), predicted.to_numpy()[~missing])

    def _rmse_targets(self, ratings: np.ndarray) -> np.ndarray:
        """Return what :meth:`rmse` compares predictions with: the ratings, unless a model predicts labels."""
        return ratings

    def save(self, path: str | Path) -> None:
        """Write the fitted model to the directory ``path``."""
        raise NotImplementedError(f"{type(self).__name__} cannot be saved")

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """Read a model written by :meth:`save`."""
        raise NotImplementedError(f"{cls.__name__} cannot be loaded")

    # -- helpers for subclasses ---------------------------------------------------------------
    def _fitted_keys(self) -> list[str]:
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


class IdIndex:
    """Maps raw ids (any hashable scalars) to contiguous indices ``0..n-1`` and back.

    Ids are sorted when they are mutually comparable, so index order is id order (ties in
    rankings then break by id); otherwise they keep their order of first appearance.
    """

    def __init__(self, ids: Iterable[Any], *, sort: bool = True) -> None:
        values = pd.unique(pd.Series(list(ids) if not hasattr(ids, "__array__") else ids))
        values = np.asarray(values)
        if sort:
            try:
                values = np.sort(values, kind="stable")
            except TypeError:
                pass
        self.ids: np.ndarray = values
        self._index = pd.Index(values)
        if not self._index.is_unique:
            raise DataValidationError("ids must be unique")

    def __len__(self) -> int:
        return len(self.ids)

    def lookup(self, values: Any) -> np.ndarray:
        """Return the index of each value, ``-1`` where the value is unknown."""
        return np.asarray(self._index.get_indexer(pd.Index(np.asarray(values))), dtype=np.int64)

    def to_array(self) -> np.ndarray:
        """Return the ids as a non-object array that ``np.savez`` stores without pickle."""
        if self.ids.dtype != object:
            return self.ids
        if all(isinstance(v, str) for v in self.ids):
            return self.ids.astype(str)
        if all(isinstance(v, (int, np.integer)) for v in self.ids):
            return self.ids.astype(np.int64)
        raise DataValidationError("ids must be all integers or all strings to be saved")

    @classmethod
    def from_array(cls, ids: np.ndarray) -> IdIndex:
        """Rebuild an index saved with :meth:`to_array`, keeping its order."""
        values = ids.astype(object) if ids.dtype.kind == "U" else ids
        return cls(values, sort=False)


def index_ratings(
    ratings: pd.DataFrame, user_ids: Any = None, item_ids: Any = None, *, sort_items: bool = True
) -> tuple[IdIndex, IdIndex, np.ndarray, np.ndarray, Any]:
    """Return ``(users, items, user_idx, item_idx, seen)`` for a validated ratings frame.

    ``users``/``items`` index ``user_ids``/``item_ids`` (the frame's own ids by default; pass more to
    cover ids with no rating), ``user_idx``/``item_idx`` are the rows' indices and ``seen`` is a
    boolean CSR matrix marking the rated (user, item) pairs.
    """
    from scipy import sparse  # imported here so that `import movierec` stays fast

    users = IdIndex(ratings[USER] if user_ids is None else user_ids)
    items = IdIndex(ratings[ITEM] if item_ids is None else item_ids, sort=sort_items)
    user_idx, item_idx = users.lookup(ratings[USER]), items.lookup(ratings[ITEM])
    data = np.ones(len(user_idx), dtype=bool)
    seen = sparse.csr_matrix((data, (user_idx, item_idx)), shape=(len(users), len(items)), dtype=bool)
    seen.sort_indices()
    return users, items, user_idx, item_idx, seen


def state_arrays(users: IdIndex, items: IdIndex, seen: Any) -> dict[str, np.ndarray]:
    """Return the id maps and seen matrix as plain arrays for ``np.savez`` (no pickle)."""
    seen = seen.tocsr()
    return {
        "user_ids": users.to_array(),
        "item_ids": items.to_array(),
        "seen_indptr": seen.indptr,
        "seen_indices": seen.indices,
    }


def restore_state(arrays: Any) -> tuple[IdIndex, IdIndex, Any]:
    """Return ``(users, items, seen)`` from arrays written by :func:`state_arrays`."""
    from scipy import sparse

    users, items = IdIndex.from_array(arrays["user_ids"]), IdIndex.from_array(arrays["item_ids"])
    indices = arrays["seen_indices"]
    seen = sparse.csr_matrix(
        (np.ones(len(indices), dtype=bool), indices, arrays["seen_indptr"]), shape=(len(users), len(items))
    )
    return users, items, seen


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (row, column, score) of the ``k`` highest finite scores of each row.

    Vectorized with ``np.partition``; ordered by row, then descending score, then column (so
    ties break by column). Rows with fewer finite scores give fewer entries.
    """
    scores = np.where(np.isnan(scores), -np.inf, scores)
    n_cols = scores.shape[1]
    k = min(k, n_cols)
    if k < n_cols:
        kth = np.partition(scores, n_cols - k, axis=1)[:, n_cols - k]
        mask = scores >= kth[:, None]
    else:
        mask = np.ones_like(scores, dtype=bool)
    mask &= np.isfinite(scores)
    rows, cols = np.nonzero(mask)
    values = scores[rows, cols]
    order = np.lexsort((cols, -values, rows))
    rows, cols, values = rows[order], cols[order], values[order]
    rank = np.arange(len(rows)) - np.searchsorted(rows, rows, side="left")
    keep = rank < k
    return rows[keep], cols[keep], values[keep]


def rank_frame(frame: pd.DataFrame, n: int) -> pd.DataFrame:
    """Return the top ``n`` rows per user of a (userId, movieId, score) frame, with ``rank``.

    Sorted by userId, then descending score, ties broken by movieId.
    """
    ordered = frame.sort_values([USER, "score", ITEM], ascending=[True, False, True], kind="stable")
    rank = ordered.groupby(USER, sort=False).cumcount() + 1
    result = ordered.assign(rank=rank.to_numpy())
    result = result[result["rank"] <= n]
    return result[TOP_N_COLUMNS].reset_index(drop=True)


def sample_pairs(users: IdIndex, items: IdIndex, size: int, seed: Any) -> pd.DataFrame:
    """Return ``size`` (userId, movieId) pairs drawn uniformly with replacement, at most users x items."""
    rng = np.random.default_rng(seed)
    size = min(size, len(users) * len(items))
    return pd.DataFrame(
        {USER: users.ids[rng.integers(len(users), size=size)], ITEM: items.ids[rng.integers(len(items), size=size)]}
    )


def resolve_users(users: Iterable[Any] | None, index: IdIndex) -> np.ndarray:
    """Return the sorted indices of ``users`` known to ``index`` (all when None), warning once on unknowns."""
    if users is None:
        return np.arange(len(index))
    if isinstance(users, (str, bytes)) or not isinstance(users, Iterable):
        users = [users]
    wanted = pd.unique(pd.Series(list(users), dtype=object))
    idx = index.lookup(wanted)
    unknown = wanted[idx < 0]
    if len(unknown):
        warnings.warn(
            f"{len(unknown)} user(s) were not seen in fit and get no recommendations, "
            f"e.g. {unknown[:5].tolist()}",
            MovieRecWarning,
            stacklevel=3,
        )
    return np.sort(idx[idx >= 0])


class ArrayRecommender(Recommender):
    """A Recommender whose fitted state is numpy arrays plus id maps.

    Subclasses implement :meth:`_fit_indexed`, :meth:`_score_pairs` and :meth:`_score_users`
    (all on contiguous indices) and :meth:`_get_arrays` / :meth:`_set_arrays` for saving; this
    class does validation, id mapping, cold start, the vectorized top-N and save/load.
    """

    _sort_item_ids = True

    def fit(self, ratings: pd.DataFrame) -> Self:
        """Learn from ``ratings`` and return self; a second call starts from scratch."""
        check_ratings(ratings)
        self._reset()
        self.users_, self.items_, user_idx, item_idx, self.seen_ = index_ratings(
            ratings, sort_items=self._sort_item_ids
        )
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
            out[known] = self._score_pairs(user_idx[known], item_idx[known])
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
        user_idx = resolve_users(users, self.users_)
        block = max(1, _BLOCK_CELLS // max(1, len(self.items_)))
        parts = []
        for start in range(0, len(user_idx), block):
            chunk = user_idx[start : start + block]
            scores = np.array(self._score_users(chunk), dtype=np.float64)
            if exclude_seen:
                seen = self.seen_[chunk].tocoo()
                scores[seen.row, seen.col] = -np.inf
            rows, cols, values = top_k(scores, n)
            parts.append((chunk[rows], cols, values))
        if parts:
            u, i, s = (np.concatenate(p) for p in zip(*parts))
        else:
            u = i = np.zeros(0, dtype=np.int64)
            s = np.zeros(0)
        return self._top_n_frame(u, i, s)

    def _top_n_frame(self, u: np.ndarray, i: np.ndarray, s: np.ndarray) -> pd.DataFrame:
        """Return the top-N frame of (user index, item index, score) triples grouped by user in order."""
        rank = np.arange(len(u)) - np.searchsorted(u, u, side="left") + 1
        # Users come in index order, which is sorted id order when ids are comparable.
        frame = pd.DataFrame({USER: self.users_.ids[u], ITEM: self.items_.ids[i], "score": s, "rank": rank})
        return frame.astype({"rank": np.int64})

    # -- persistence --------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write ``params.json`` and ``arrays.npz`` (no pickle) to the directory ``path``."""
        self._check_fitted()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        arrays = state_arrays(self.users_, self.items_, self.seen_)
        arrays.update({f"model_{k}": np.asarray(v) for k, v in self._get_arrays().items()})
        write_params(path, self, params=self._saved_params(), extra=self._get_extra())
        np.savez(path / ARRAYS_FILE, **arrays)

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """Read a model written by :meth:`save`; it predicts without refitting."""
        path = Path(path)
        model, extra = read_params(path, cls)
        with np.load(path / ARRAYS_FILE, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        model.users_, model.items_, model.seen_ = restore_state(arrays)
        model._set_arrays({k[6:]: v for k, v in arrays.items() if k.startswith("model_")}, extra)
        return model

    def _saved_params(self) -> dict[str, Any]:
        """Return the constructor arguments to write; subclasses leave out live objects (sessions)."""
        return self.get_params()

    # -- for subclasses -----------------------------------------------------------------------
    @abstractmethod
    def _fit_indexed(
        self, user_idx: np.ndarray, item_idx: np.ndarray, ratings: np.ndarray, frame: pd.DataFrame
    ) -> None:
        """Learn from index-coded ratings; ``frame`` is the validated input, for side data."""

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
        """Restore the learned arrays (and JSON ``extra``) written by :meth:`_get_arrays`."""

    def _get_extra(self) -> dict[str, Any]:
        """Return JSON-safe learned scalars to save next to the parameters."""
        return {}


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        # Config objects (SageMakerConfig) are saved by class name and fields, rebuilt on load.
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value) if f.init}
        return {_DATACLASS_KEY: f"{type(value).__module__}.{type(value).__qualname__}", "fields": fields}
    raise TypeError(f"parameter value {value!r} of type {type(value).__name__} cannot be saved as JSON")


def import_name(qualified: str) -> Any:
    """Return the object named by a dotted ``module.name`` string."""
    module, _, name = qualified.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _rebuild(value: Any) -> Any:
    if isinstance(value, dict) and _DATACLASS_KEY in value:
        cls = import_name(value[_DATACLASS_KEY])
        defaults = {f.name: f.default for f in dataclasses.fields(cls)}
        fields = {
            k: tuple(v) if isinstance(v, list) and isinstance(defaults.get(k), tuple) else v
            for k, v in value["fields"].items()
        }
        return cls(**fields)
    return value


def write_params(path: Path, model: Recommender, *, params: dict[str, Any] | None = None, extra: dict | None = None) -> None:
    """Write ``params.json``: class, movierec version, constructor arguments and ``extra``."""
    document = {
        "class": f"{type(model).__module__}.{type(model).__qualname__}",
        "movierec_version": __version__,
        "params": model.get_params() if params is None else params,
        "extra": extra or {},
    }
    (path / PARAMS_FILE).write_text(json.dumps(document, indent=2, default=_json_default))


def read_params(path: Path, cls: type[Recommender], *, build: bool = True) -> tuple[Any, dict[str, Any]]:
    """Return ``(model built from params.json, extra)``, warning when the version differs.

    With ``build=False`` the first item is the parameters dict instead of a model.
    """
    file = path / PARAMS_FILE
    if not file.is_file():
        raise FileNotFoundError(f"{file} not found: {path} is not a saved movierec model")
    document = json.loads(file.read_text())
    saved_cls = import_name(document["class"])
    if not issubclass(saved_cls, cls):
        raise DataValidationError(f"{path} holds a {document['class']}, not a {cls.__name__}")
    if document.get("movierec_version") != __version__:
        warnings.warn(
            f"{path} was saved by movierec {document.get('movierec_version')}, this is {__version__}",
            MovieRecWarning,
            stacklevel=3,
        )
    params = {key: _rebuild(value) for key, value in document["params"].items()}
    signature = inspect.signature(saved_cls.__init__).parameters
    for key, value in params.items():
        if isinstance(value, list) and isinstance(signature[key].default, tuple):
            params[key] = tuple(value)
    return (saved_cls(**params) if build else params), document.get("extra", {})
