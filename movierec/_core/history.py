"""A visitor's history: parsing it, and the lists, reasons and similar movies built from it.

``Recommender.top_n_from_history``, ``explain``, ``similar_items`` and ``score_history``
(docs/architecture.md, section 3) are thin methods; the work they share lives here, on arrays and
the callables a model hands over in a `HistoryScorer`: its movie index, its seen-movies
matrix (for the popularity fallback) and its three hooks on contiguous item indices. A model never
needs to parse a history itself.

Rules, in one place:

- ``history`` is a sequence of movie ids (list, tuple, 1-d array, Series, Index) or a DataFrame with
  a ``movieId`` column and optional ``rating`` and ``timestamp`` (other columns are ignored). Ids are
  integers or strings, looked up in the model's ``items_`` as ``top_n`` looks up users.
- A movie listed twice counts once: its last row (with ``timestamp``, the latest; equal times keep
  row order).
- Movies unknown to the model are ignored and counted in one ``MovieRecWarning``.
- An empty or all-unknown history gives the fit's most-rated movies, scored by their rating counts
  (the popularity fallback); history and ``exclude`` movies are still left out.
- Ties break by item index (movieId order), as in ``top_n`` (`movierec._core.ranking.top_k`).
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from movierec._core.ids import IdIndex
from movierec._core.ranking import top_k, top_n_frame
from movierec._core.validation import ITEM, RATING, TIMESTAMP, check_n, plain
from movierec.exceptions import BackendError, DataValidationError, MovieRecWarning

__all__ = [
    "HistoryScorer",
    "explain",
    "leave_one_out",
    "parse_history",
    "parse_ids",
    "rating_counts",
    "score_history",
    "similar_items",
    "top_n_from_history",
]

Scores = Callable[[np.ndarray, "np.ndarray | None"], np.ndarray]
Contributions = Callable[[np.ndarray, "np.ndarray | None", np.ndarray], np.ndarray]


@dataclass(frozen=True)
class HistoryScorer:
    """What a fitted model hands to this module: its catalogue and its history hooks (item indices).

    Attributes
    ----------
    owner : str
        The model's class name, for messages.
    items : IdIndex
        Raw movie ids to contiguous item indices.
    seen : scipy.sparse.csr_matrix
        The fit's users x movies rated matrix; its column sums are the fallback's rating counts.
    score : callable
        ``score(item_idx, ratings) -> (n_items,)`` raw scores for a visitor with that history.
    contributions : callable
        ``contributions(item_idx, ratings, target_idx) -> (len(item_idx), len(target_idx))``.
    similarity : callable
        ``similarity(item) -> (n_items,)`` similarity of every movie to ``item``.
    """

    owner: str
    items: IdIndex
    seen: Any
    score: Scores
    contributions: Contributions
    similarity: Callable[[int], np.ndarray]


# -- parsing ------------------------------------------------------------------------------------
def _id_problem(value: Any) -> str:
    """Return what is wrong with ``value`` as a movie id ("" when it is an int or a str)."""
    if value is None or (isinstance(value, (float, np.floating)) and np.isnan(value)):
        return "a missing (NaN) id"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Integral, str)):
        return f"{plain(value)!r} ({type(value).__name__}), not an integer or string id"
    return ""


def parse_ids(values: Any, name: str) -> np.ndarray:
    """Return ``values`` (a sequence of movie ids) as an object array, after checking every id.

    Raises
    ------
    DataValidationError
        If ``values`` is not a sequence (a string, a set, a mapping, a scalar or an iterator are
        refused), is not one-dimensional, or holds an id that is not an integer or a string.
    """
    if isinstance(values, (pd.Series, pd.Index)):
        array = values.to_numpy(dtype=object)
    elif isinstance(values, np.ndarray):
        if values.ndim != 1:
            raise DataValidationError(f"{name} must be one-dimensional, got an array of shape {values.shape}")
        array = values.astype(object)
    elif isinstance(values, Sequence) and not isinstance(values, (str, bytes)):
        array = np.empty(len(values), dtype=object)
        array[:] = list(values)
    else:
        frame = f" or a DataFrame with a {ITEM!r} column" if name == "history" else ""
        raise DataValidationError(
            f"{name} must be a sequence of movie ids (list, tuple, array, Series){frame}, "
            f"got {type(values).__name__} {values!r:.80}"
        )
    for position, value in enumerate(array):
        problem = _id_problem(value)
        if problem:
            raise DataValidationError(f"{name} holds {problem} at position {position}")
    return np.array([plain(value) for value in array], dtype=object)


def _numbers(frame: pd.DataFrame, column: str, name: str) -> np.ndarray:
    values = frame[column]
    if pd.api.types.is_bool_dtype(values.dtype) or not (
        pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_datetime64_any_dtype(values.dtype)
    ):
        raise DataValidationError(f"{name}.{column} must be numeric, got dtype {values.dtype}")
    array = values.to_numpy(dtype=np.float64) if pd.api.types.is_numeric_dtype(values.dtype) else (
        values.to_numpy(dtype="datetime64[ns]").astype(np.int64).astype(np.float64)
    )
    bad = ~np.isfinite(array) | values.isna().to_numpy()
    if bad.any():
        position = int(np.flatnonzero(bad)[0])
        raise DataValidationError(
            f"{name}.{column} has {int(bad.sum())} NaN or infinite value(s), e.g. row "
            f"{plain(frame.index[position])!r}: {plain(values.iloc[position])!r}"
        )
    return array


def parse_history(history: Any, name: str = "history") -> tuple[np.ndarray, np.ndarray | None]:
    """Return ``(movie ids, ratings or None)`` of ``history``, each movie once (its last row).

    Raises
    ------
    DataValidationError
        If ``history`` is neither a sequence of ids nor a DataFrame with ``movieId``, or holds a bad
        id, or a NaN or infinite ``rating`` or ``timestamp``.
    """
    ratings = None
    if isinstance(history, pd.DataFrame):
        if ITEM not in history.columns:
            raise DataValidationError(f"{name} must have a {ITEM!r} column; it has {list(history.columns)}")
        ids = parse_ids(history[ITEM], f"{name}.{ITEM}")
        if RATING in history.columns:
            ratings = _numbers(history, RATING, name)
        if TIMESTAMP in history.columns:
            order = np.argsort(_numbers(history, TIMESTAMP, name), kind="stable")  # the latest row is last
            ids, ratings = ids[order], None if ratings is None else ratings[order]
    else:
        ids = parse_ids(history, name)
    last = ~pd.Index(ids).duplicated(keep="last") if len(ids) else np.zeros(0, dtype=bool)
    return ids[last], None if ratings is None else ratings[last]


def _known(scorer: HistoryScorer, history: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """Return the item indices (and ratings) of ``history``'s known movies; one warning counts the others."""
    ids, ratings = parse_history(history)
    idx = scorer.items.lookup(ids)
    unknown = idx < 0
    if unknown.any():
        warnings.warn(
            f"{int(unknown.sum())} of {len(ids)} history movie(s) are unknown to {scorer.owner} and ignored, "
            f"e.g. {[plain(value) for value in ids[unknown][:5]]}",
            MovieRecWarning,
            stacklevel=4,
        )
    return idx[~unknown], None if ratings is None else ratings[~unknown]


def _item(scorer: HistoryScorer, movie: Any, name: str = "movie") -> int:
    problem = _id_problem(movie)
    if problem:
        raise DataValidationError(f"{name} must be a movie id: got {problem}")
    idx = int(scorer.items.lookup(np.array([plain(movie)], dtype=object))[0])
    if idx < 0:
        raise DataValidationError(f"{name} {plain(movie)!r} is not a movie {scorer.owner} was fitted on")
    return idx


def _finite(scorer: HistoryScorer, values: Any, shape: tuple[int, ...], what: str) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if values.shape != shape:
        raise BackendError(f"{scorer.owner} gave {what} of shape {values.shape}, not {shape}")
    if not np.isfinite(values).all():
        raise BackendError(f"{scorer.owner} gave NaN or infinite {what} for movies it was fitted on")
    return values


def rating_counts(seen: Any) -> np.ndarray:
    """Return each movie's number of ratings in the fit (the column sums of the seen matrix)."""
    return np.asarray(seen.sum(axis=0), dtype=np.float64).ravel()


# -- the four operations ------------------------------------------------------------------------
def top_n_from_history(
    scorer: HistoryScorer, history: Any, n: int, exclude: Any = None, user: Any = None
) -> pd.DataFrame:
    """Return the top-N frame (``userId`` = ``user``) of a visitor with ``history``; see the module docstring."""
    n = check_n(n)
    idx, ratings = _known(scorer, history)
    excluded = [idx]
    if exclude is not None:
        wanted = scorer.items.lookup(parse_ids(exclude, "exclude"))
        excluded.append(wanted[wanted >= 0])  # a movie the model does not know is never recommended anyway
    n_items = len(scorer.items)
    if len(idx):
        scores = _finite(scorer, scorer.score(idx, ratings), (n_items,), "history scores").copy()
    else:
        scores = rating_counts(scorer.seen)  # the popularity fallback
    scores[np.concatenate(excluded)] = -np.inf
    rows, cols, values = top_k(scores[None, :], n)
    users = np.empty(1, dtype=object)
    users[0] = user
    return top_n_frame(users, scorer.items.ids, rows, cols, values)


def score_history(scorer: HistoryScorer, history: Any, movies: Any) -> np.ndarray:
    """Return the raw scores of ``movies`` for ``history``: NaN for unknown movies, all NaN when none is known."""
    idx, ratings = _known(scorer, history)
    wanted = scorer.items.lookup(parse_ids(movies, "movies"))
    out = np.full(len(wanted), np.nan)
    if len(idx):
        scores = _finite(scorer, scorer.score(idx, ratings), (len(scorer.items),), "history scores")
        out[wanted >= 0] = scores[wanted[wanted >= 0]]
    return out


def explain(scorer: HistoryScorer, history: Any, movie: Any, n: int | None = None) -> pd.DataFrame:
    """Return ``movieId, contribution, share`` of ``history``'s movies to ``movie``'s score, largest first."""
    target = _item(scorer, movie)
    n = None if n is None else check_n(n)
    idx, ratings = _known(scorer, history)
    if len(idx):
        values = scorer.contributions(idx, ratings, np.array([target], dtype=np.int64))
        contribution = _finite(scorer, values, (len(idx), 1), "contributions")[:, 0]
    else:
        contribution = np.zeros(0)
    order = np.argsort(-contribution, kind="stable")[:n]  # equal contributions keep history order
    total = float(np.abs(contribution).sum())
    share = contribution[order] / total if total > 0 else np.zeros(len(order))
    return pd.DataFrame({ITEM: scorer.items.ids[idx[order]], "contribution": contribution[order], "share": share})


def similar_items(scorer: HistoryScorer, movie: Any, n: int) -> pd.DataFrame:
    """Return ``movieId, similarity, rank`` of the ``n`` movies most similar to ``movie`` (itself left out)."""
    item = _item(scorer, movie)
    n = check_n(n)
    similarity = np.asarray(scorer.similarity(item), dtype=np.float64)
    if similarity.shape != (len(scorer.items),):
        raise BackendError(f"{scorer.owner} gave similarities of shape {similarity.shape}, not ({len(scorer.items)},)")
    similarity = similarity.copy()
    similarity[item] = -np.inf
    _, cols, values = top_k(similarity[None, :], n)  # NaN (cannot compare) never appears
    return pd.DataFrame(
        {ITEM: scorer.items.ids[cols], "similarity": values, "rank": np.arange(1, len(cols) + 1, dtype=np.int64)}
    )


def leave_one_out(score: Scores, item_idx: np.ndarray, ratings: np.ndarray | None, target_idx: np.ndarray) -> np.ndarray:
    """Return each history movie's contribution as ``score(all) - score(all but it)`` at ``target_idx``.

    The default of ``ArrayRecommender._history_contributions``: ``len(item_idx) + 1`` calls of ``score``
    (the last one may see an empty history). Exact for scores linear in the history; for others it is
    what removing the movie would change.
    """
    full = np.asarray(score(item_idx, ratings), dtype=np.float64)[target_idx]
    out = np.empty((len(item_idx), len(target_idx)))
    keep = np.ones(len(item_idx), dtype=bool)
    for position in range(len(item_idx)):
        keep[position] = False
        without = score(item_idx[keep], None if ratings is None else ratings[keep])
        out[position] = full - np.asarray(without, dtype=np.float64)[target_idx]
        keep[position] = True
    return out
