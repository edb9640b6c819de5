"""What the routes answer, from one loaded model: top lists, reasons, similar movies, titles.

The service's hot path is a known user's top list. `Scorer` ranks every known user's top
`Scorer.kept_n` movies once, at load, in the model's own vectorized ``top_n`` (ml-100k's
ranking ensemble: 943 users x 100 movies in 0.15 s); a request for ``n <= kept_n`` is then a slice
of two arrays and a few Python lists, answered without a worker thread or a pandas frame. Models
too large for that (more than ``cells`` users x ``kept_n`` entries, or too many users x movies to
rank at load) fill the same lists lazily, per user, in a bounded LRU. Reasons and similar movies
are kept the same way. A larger ``n`` asks the model each time.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from movierec._core.validation import ITEM, USER
from movierec.base import Recommender
from movierec.serve._fast import index_path
from movierec.serve._requests import _DIGITS, typed_ids

__all__ = ["Scorer"]

logger = logging.getLogger(__name__)

# Ranking every user at load is done when users x movies stays under this many scores (ml-1m's
# 6,040 x 3,706 = 22 M takes about 2 s with the ranking ensemble); above it lists fill per request.
_RANK_AT_LOAD_CELLS = 50_000_000


def _in_path(raw: str, at: dict[Any, int]) -> int | None:
    if _DIGITS.fullmatch(raw):
        found = at.get(int(raw))
        if found is not None:
            return found
    return at.get(raw)


class _Lru:
    """A bounded, thread-safe least-recently-used map."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: Hashable, value: Any) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


class Scorer:
    """The answers of one fitted model, kept where a request would otherwise recompute them.

    Parameters
    ----------
    model : Recommender
        The fitted model (``users_``, ``items_`` and ``seen_`` id indexes).
    items : pandas.DataFrame, optional
        ``movieId, title[, ...]`` ([`movierec.model_card.read_items`][movierec.model_card.read_items]); titles are added to
        every movie an answer names.
    kept_n : int
        Length of each kept top list; requests up to this ``n`` are slices of it.
    cells : int
        Most top-list entries kept (users x ``kept_n``); 5 M entries take about 60 MB.
    reasons : int
        History movies given as each recommendation's reasons.
    """

    def __init__(self, model: Recommender, items: pd.DataFrame | None = None, *, kept_n: int = 100,
                 cells: int = 5_000_000, reasons: int = 3) -> None:
        self.model = model
        self.users, self.items = model.users_, model.items_
        self.kept_n = min(kept_n, len(self.items))
        self.reasons_n = reasons
        self.item_ids: list[Any] = self.items.ids.tolist()
        self.user_ids: list[Any] = self.users.ids.tolist()
        # id -> index as plain dicts: a lookup per request costs a hash, not a pandas Index
        self._user_at = {uid: position for position, uid in enumerate(self.user_ids)}
        self._item_at = {iid: position for position, iid in enumerate(self.item_ids)}
        self._int_items = self.items.ids.dtype.kind in "iu"
        self.titles = self._titles(items)
        self.answers = _Lru(10_000)  # encoded answers of known users' GET requests: (user, n, explain) -> bytes
        self._lists = _Lru(max(1, cells // max(1, self.kept_n)))
        self._explained = _Lru(20_000)
        self._similar = _Lru(20_000)
        try:
            self.path = index_path(model)
        except (NotImplementedError, AttributeError):  # no array hooks: the public methods answer
            self.path = None
        self.ranked_at_load = 0
        if len(self.users) * self.kept_n <= cells and len(self.users) * len(self.items) <= _RANK_AT_LOAD_CELLS:
            self._rank_all()

    # -- titles --------------------------------------------------------------------------------
    def _titles(self, items: pd.DataFrame | None) -> list[str | None] | None:
        if items is None or ITEM not in items or "title" not in items:
            return None
        typed, ok = typed_ids(items[ITEM].tolist(), self.items)
        position = self.items.lookup(typed[ok]) if ok.any() else np.array([], dtype=np.int64)
        titles: list[str | None] = [None] * len(self.items)
        for where, title in zip(position, items["title"].to_numpy()[ok]):
            if where >= 0:
                titles[where] = str(title)
        return titles

    def movie(self, index: int, **fields: Any) -> dict[str, Any]:
        """Return ``{"movieId", "title"?, **fields}`` for the item index ``index``."""
        row = {ITEM: self.item_ids[index]}
        if self.titles is not None:
            row["title"] = self.titles[index]
        row.update(fields)
        return row

    def movie_index(self, values: Sequence[Any]) -> np.ndarray:
        """Return the item index of each raw id in ``values`` (ints or strings), -1 where unknown.

        A model with integer ids knows ``"7"`` as 7; one with string ids knows 7 as ``"7"``.
        """
        at, found = self._item_at, np.full(len(values), -1, dtype=np.int64)
        for position, value in enumerate(values):
            if self._int_items:
                key = value if isinstance(value, int) else int(value) if _DIGITS.fullmatch(value) else None
            else:
                key = str(value)
            found[position] = at.get(key, -1)
        return found

    def user_in_path(self, raw: str) -> int | None:
        """Return the user index a URL's ``raw`` id names (as an int if the model knows that int, else as
        the string, as `model_id`), or None."""
        return _in_path(raw, self._user_at)

    def movie_in_path(self, raw: str) -> int | None:
        """Return the item index a URL's ``raw`` id names, or None (see `user_in_path`)."""
        return _in_path(raw, self._item_at)

    # -- a known user's list -------------------------------------------------------------------
    def _rank_all(self) -> None:
        top = self.model.top_n(self.users.ids, n=self.kept_n)
        u, i = self.users.lookup(top[USER].to_numpy()), self.items.lookup(top[ITEM].to_numpy())
        ranks, scores = top["rank"].to_numpy(dtype=np.int64) - 1, top["score"].to_numpy(dtype=np.float64)
        order = np.argsort(u, kind="stable")
        starts = np.searchsorted(u[order], np.arange(len(self.users) + 1))
        for user in range(len(self.users)):
            rows = order[starts[user] : starts[user + 1]]
            rows = rows[np.argsort(ranks[rows], kind="stable")]
            self._lists.put(user, (i[rows].tolist(), scores[rows].tolist()))
        self.ranked_at_load = len(self.users)

    def kept_list(self, user: int, n: int) -> tuple[list[int], list[float]] | None:
        """Return the top ``n`` (item indexes, scores) of the user index ``user`` when kept, else None."""
        if n > self.kept_n:
            return None
        found = self._lists.get(user)
        return None if found is None else (found[0][:n], found[1][:n])

    def rank_user(self, user: int, n: int) -> tuple[list[int], list[float]]:
        """Return the top ``n`` of the user index ``user`` from the model (kept when ``n <= kept_n``)."""
        top = self.model.top_n([self.users.ids[user]], n=max(n, self.kept_n))
        items = self.items.lookup(top[ITEM].to_numpy()).tolist()
        scores = top["score"].to_numpy(dtype=np.float64).tolist()
        if n <= self.kept_n:
            self._lists.put(user, (items, scores))
        return items[:n], scores[:n]

    def user_rows(self, user: int, items: list[int], scores: list[float],
                  reasons: list[list[dict[str, Any]]] | None = None) -> list[dict[str, Any]]:
        """Return the rows of a known user's list: ``userId, movieId, title?, score, rank[, reasons]``."""
        uid, rows = self.user_ids[user], []
        for rank, (item, score) in enumerate(zip(items, scores), start=1):
            row = {USER: uid, ITEM: self.item_ids[item]}
            if self.titles is not None:
                row["title"] = self.titles[item]
            row["score"], row["rank"] = score, rank
            if reasons is not None:
                row["reasons"] = reasons[rank - 1]
            rows.append(row)
        return rows

    def user_history(self, user: int) -> list[Any]:
        """Return the raw ids of the movies the user index ``user`` rated in the fit."""
        seen = self.model.seen_
        return [self.item_ids[i] for i in seen.indices[seen.indptr[user] : seen.indptr[user + 1]]]

    # -- reasons, visitors, similar movies -----------------------------------------------------
    def user_reasons(self, user: int, items: list[int]) -> list[list[dict[str, Any]]]:
        """Return each movie's reasons for the user index ``user`` (their fit's movies), kept per (user, movie)."""
        found = {item: self._explained.get((user, item)) for item in items}
        missing = [item for item, why in found.items() if why is None]
        if missing:
            seen = self.model.seen_
            history = np.asarray(seen.indices[seen.indptr[user] : seen.indptr[user + 1]], dtype=np.int64)
            for item, why in zip(missing, self.reasons(history, None, missing)):
                self._explained.put((user, item), why)
                found[item] = why
        return [found[item] for item in items]

    def reasons(self, history: np.ndarray, ratings: np.ndarray | None,
                items: list[int]) -> list[list[dict[str, Any]]]:
        """Return, for each item index of ``items``, the top history movies behind it: ``movieId, title?, share``.

        ``history`` holds item indexes (known movies, each once), ``ratings`` their ratings or None.
        """
        fast = self.path.reasons(history, ratings, items, self.reasons_n) if self.path is not None else None
        if fast is not None:
            return [[self.movie(where, share=share) for where, share in why] for why in fast]
        frame = self._history(history, ratings)
        out = []
        for item in items:
            parts = self.model.explain(frame, self.item_ids[item], n=self.reasons_n)
            where = self.movie_index(parts[ITEM].tolist())
            out.append([self.movie(int(w), share=float(s)) for w, s in zip(where, parts["share"].tolist()) if w >= 0])
        return out

    def visitor(self, history: np.ndarray, ratings: np.ndarray | None, n: int,
                excluded: np.ndarray) -> tuple[list[int], list[float]]:
        """Return the top ``n`` (item indexes, scores) for a visitor's ``history`` (item indexes, each
        once) and ``ratings`` (or None), ``excluded`` item indexes left out."""
        fast = self.path.top(history, ratings, n, excluded) if self.path is not None else None
        if fast is not None:
            return fast
        exclude = [self.item_ids[i] for i in excluded.tolist()] or None
        top = self.model.top_n_from_history(self._history(history, ratings), n=n, exclude=exclude)
        return self.items.lookup(top[ITEM].to_numpy()).tolist(), top["score"].to_numpy(dtype=np.float64).tolist()

    def _history(self, history: np.ndarray, ratings: np.ndarray | None) -> Any:
        ids = [self.item_ids[i] for i in history.tolist()]
        return ids if ratings is None else pd.DataFrame({ITEM: ids, "rating": ratings})

    def similar(self, item: int, n: int) -> list[dict[str, Any]]:
        """Return the ``n`` movies most like the item index ``item``: ``movieId, title?, similarity, rank``.

        Raises NotImplementedError when the model has no item similarity.
        """
        key = (item, n)
        found = self._similar.get(key)
        if found is None:
            frame = self.model.similar_items(self.item_ids[item], n=n)
            where = self.movie_index(frame[ITEM].tolist())
            found = [self.movie(int(w), similarity=float(s), rank=int(r)) for w, s, r in
                     zip(where, frame["similarity"].tolist(), frame["rank"].tolist()) if w >= 0]
            self._similar.put(key, found)
        return found
