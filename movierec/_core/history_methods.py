"""The history methods of the contract (docs/architecture.md, section 3), mixed into ``movierec.base``.

`HistoryMethods` gives every ``Recommender`` ``top_n_from_history``, ``explain``,
``similar_items`` and ``score_history``; `HistoryHooks` gives every ``ArrayRecommender``
the three hooks a model implements on contiguous item indices (``_score_history``,
``_history_contributions``, ``_similar_items``) and the helper `HistoryHooks._history_ratings`.
They live here, beside the parsing and ranking they call (`movierec._core.history`), so that
``base.py`` keeps to the rest of the contract; they are part of ``Recommender`` and
``ArrayRecommender`` all the same.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from movierec._core import history as _history

__all__ = ["LIKED_RATING_DEFAULT", "HistoryHooks", "HistoryMethods"]

#: The rating of a liked movie for a model saved before movierec recorded its fit's highest rating:
#: the top of every MovieLens scale.
LIKED_RATING_DEFAULT = 5.0


class HistoryMethods:
    """Lists, reasons and similar movies for a visitor who is not in the fit: methods of ``Recommender``."""

    def top_n_from_history(
        self, history: Any, n: int = 10, *, exclude: Iterable[Any] | None = None, user: Any = None
    ) -> pd.DataFrame:
        """Return the ``n`` best movies for a visitor not in the fit, from the movies they rated.

        Parameters
        ----------
        history : sequence of movie ids, or pandas.DataFrame
            Movie ids (ints or strings, looked up as `top_n` looks up users), or a frame with
            ``movieId`` and optional ``rating`` and ``timestamp`` columns (others are ignored). A movie
            listed twice counts once: its last row (with ``timestamp``, the latest). Without ratings,
            models that learned explicit ratings count each movie as liked (the fit's highest rating).
        n : int, default 10
            Most rows returned.
        exclude : sequence of movie ids, optional
            More movies to leave out; history movies are never recommended.
        user : optional
            The ``userId`` written on every row (None by default).

        Returns
        -------
        pandas.DataFrame
            Columns ``userId, movieId, score, rank`` as `top_n` gives them, ties broken the same
            way (by movieId). History movies the model does not know are ignored and counted in one
            ``MovieRecWarning``. **An empty or all-unknown history gives the fit's most-rated movies,
            scored by their rating counts** (the popularity fallback; ``exclude`` still applies).

        Raises
        ------
        DataValidationError
            ``history`` or ``exclude`` is malformed (not a sequence or a frame with ``movieId``, NaN or
            non-id values, NaN or infinite ratings or timestamps), or ``n`` is not a positive int.
        NotImplementedError
            The model cannot score a history (its message says why).
        NotFittedError
            The model is not fitted.

        Examples
        --------
        >>> model.top_n_from_history([50, 181, 172], n=5)  # doctest: +SKIP
        """
        return _history.top_n_from_history(self.history_scorer(), history, n, exclude, user)

    def explain(self, history: Any, movie: Any, *, n: int | None = None) -> pd.DataFrame:
        """Return ``movieId, contribution, share``: what each history movie adds to ``movie``'s score.

        Parameters
        ----------
        history : sequence of movie ids, or pandas.DataFrame
            As in `top_n_from_history`; unknown movies are ignored (one warning).
        movie : int or str
            The movie whose score is explained; it must be known to the model.
        n : int, optional
            Keep the first ``n`` rows only.

        Returns
        -------
        pandas.DataFrame
            One row per known history movie, largest contribution first (equal ones in history
            order). ``share`` is ``contribution / sum(|contribution|)`` over every history movie (0
            when all contributions are 0). A model linear in the history (EASE) gives exact parts;
            the default is leave-one-out: the score with the full history minus the score without
            that movie.

        Raises
        ------
        DataValidationError
            ``movie`` is unknown to the model (the message names it) or not an id; bad ``history``.
        NotImplementedError
            The model cannot score a history.
        """
        return _history.explain(self.history_scorer(), history, movie, n)

    def similar_items(self, movie: Any, n: int = 10) -> pd.DataFrame:
        """Return ``movieId, similarity, rank``: the ``n`` movies most similar to ``movie``, itself left out.

        What similarity means is the model's own (EASE: its item-item weights; factor models: cosine
        of the item factors); ties break by movieId.

        Raises
        ------
        NotImplementedError
            The model has no item factors or item-item weights to compare movies by (Popularity,
            BiasedBaseline); the message names the model and says why.
        DataValidationError
            ``movie`` is unknown to the model (the message names it), or ``n`` is bad.
        """
        return _history.similar_items(self.history_scorer(), movie, n)

    def score_history(self, history: Any, movies: Any) -> np.ndarray:
        """Return the model's raw scores of ``movies`` for a visitor with ``history``, one float each.

        NaN for a movie the model does not know, and for every movie when it knows none of the
        history movies: it cannot score that visitor (no popularity fallback here). History movies
        are not masked. An ensemble blends its members' scores of a history with it.
        """
        return _history.score_history(self.history_scorer(), history, movies)

    def history_scorer(self) -> _history.HistoryScorer:
        """Return the catalogue and the scoring hooks the history methods use, on item indices.

        For callers that have checked and indexed a history themselves (the HTTP service scores
        every request through it); raises NotImplementedError for a model that has none.
        """
        raise NotImplementedError(
            f"{type(self).__name__} cannot score a history: it keeps no movie index and no history hooks"
        )


class HistoryHooks:
    """The hooks an array model implements on contiguous item indices: methods of ``ArrayRecommender``.

    The public methods (`HistoryMethods`) parse and check the history, map ids to indices, warn
    about unknown movies, fall back to popularity, exclude movies, rank and build frames; a model only
    scores. Hooks may be called with an empty history (the leave-one-out default does).
    """

    def history_scorer(self) -> _history.HistoryScorer:
        """Return the catalogue and this model's hooks, on item indices (see `HistoryMethods.history_scorer`)."""
        self._check_fitted()  # type: ignore[attr-defined]
        return _history.HistoryScorer(
            type(self).__name__, self.items_, self.seen_,  # type: ignore[attr-defined]
            self._score_history, self._history_contributions, self._similar_items,
        )

    def _score_history(self, item_idx: np.ndarray, ratings: np.ndarray | None) -> np.ndarray:
        """Return the ``(n_items,)`` raw scores of a visitor who rated ``item_idx`` (``ratings`` None: not given)."""
        raise NotImplementedError(
            f"{type(self).__name__} cannot score a history: it implements no fold-in of a visitor's movies"
        )

    def _history_contributions(
        self, item_idx: np.ndarray, ratings: np.ndarray | None, target_idx: np.ndarray
    ) -> np.ndarray:
        """Return ``(len(item_idx), len(target_idx))``: each history movie's part of each target's score.

        Default: leave-one-out through `_score_history` (the score with the full history minus
        the score without that movie). Models with an exact linear form override it.
        """
        return _history.leave_one_out(self._score_history, item_idx, ratings, target_idx)

    def _similar_items(self, item: int) -> np.ndarray:
        """Return the ``(n_items,)`` similarity of every movie to ``item``."""
        raise NotImplementedError(
            f"{type(self).__name__} cannot find similar movies: it has no item factors or item-item weights"
        )

    def _history_ratings(self, ratings: np.ndarray | None, size: int) -> np.ndarray:
        """Return ``ratings`` as floats, or, when the history gave none, a liked rating for each of ``size`` movies.

        The rule for a history without ratings: each movie counts as liked, rated the fit's highest
        rating (``highest_rating_``, kept at fit and saved); a model loaded from a folder saved before
        it was kept, or fitted by a ``fit`` of its own that does not set it, uses
        `LIKED_RATING_DEFAULT` (5.0).
        """
        if ratings is not None:
            return np.asarray(ratings, dtype=np.float64)
        return np.full(size, float(getattr(self, "highest_rating_", LIKED_RATING_DEFAULT)))
