"""WeightedEnsemble's history methods: its members' answers for a visitor, blended as ``top_n`` blends scores.

The ensemble has no fold-in of its own: it asks each fitted member through the member's public
history methods (``score_history``, ``explain``, ``similar_items``) and combines the answers with the
ensemble's own reference statistics and weights, the formula of ``top_n``
(`movierec.ensemble._blend.weighted_z`: ``sum_m w_m (s_m - mu_m) / sigma_m``, NaN counting 0).
Parsing, the unknown-movie warning, the popularity fallback, exclusions and ranking are the shared
ones of `movierec._core.history`, on the ensemble's own catalogue and seen matrix.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from movierec._core.history import HistoryScorer
from movierec._core.validation import ITEM, RATING
from movierec.ensemble._blend import weighted_z
from movierec.exceptions import DataValidationError

__all__ = ["EnsembleHistory", "ensemble_scorer"]


def _history_frame(ids: np.ndarray, ratings: np.ndarray | None) -> pd.DataFrame:
    frame = pd.DataFrame({ITEM: ids})
    if ratings is not None:
        frame[RATING] = ratings
    return frame


def ensemble_scorer(
    owner: str, items: Any, seen: Any, models: list[Any], means: np.ndarray, stds: np.ndarray, weights: np.ndarray
) -> HistoryScorer:
    """Return the `HistoryScorer` of an ensemble whose fitted ``models`` have these reference stats and weights.

    Members are asked only about movies the ensemble knows (its warning has counted the others), so
    a member warns only about movies it alone does not know (a hold-out fit kept with ``refit=False``).
    """
    ids = items.ids

    def score(item_idx: np.ndarray, ratings: np.ndarray | None) -> np.ndarray:
        history = _history_frame(ids[item_idx], ratings)
        total = np.zeros(len(ids))  # summed as blend_block sums, so a fitted user's history gives top_n's scores
        for position, model in enumerate(models):
            scores = model.score_history(history, ids)
            total += weighted_z(scores, means[position], stds[position], weights[position])
        return total

    def contributions(item_idx: np.ndarray, ratings: np.ndarray | None, target_idx: np.ndarray) -> np.ndarray:
        history = _history_frame(ids[item_idx], ratings)
        where = pd.Index(ids[item_idx])
        out = np.zeros((len(item_idx), len(target_idx)))
        for position, model in enumerate(models):
            if stds[position] == 0:  # a constant member's standardized scores are 0
                continue
            for column, target in enumerate(ids[target_idx]):
                try:
                    parts = model.explain(history, target)
                except DataValidationError:  # the member does not know the target (a hold-out fit)
                    continue
                rows = where.get_indexer(parts[ITEM].to_numpy(dtype=object))
                out[rows, column] += parts["contribution"].to_numpy(dtype=float) / stds[position] * weights[position]
        return out

    def similarity(item: int) -> np.ndarray:
        total, reasons, answered = np.zeros(len(ids)), [], False
        for position, model in enumerate(models):
            try:
                frame = model.similar_items(ids[item], n=len(ids))
            except NotImplementedError as err:
                reasons.append(str(err))
                continue
            except DataValidationError:  # the member does not know the movie
                continue
            values = np.full(len(ids), np.nan)
            rows = items.lookup(frame[ITEM].to_numpy(dtype=object))
            values[rows[rows >= 0]] = frame["similarity"].to_numpy(dtype=float)[rows >= 0]
            finite = values[np.isfinite(values)]
            if finite.size:
                total += weighted_z(values, float(finite.mean()), float(finite.std()), weights[position])
                answered = True
        if not answered and reasons:
            raise NotImplementedError(f"{owner} cannot find similar movies: no member can ({'; '.join(reasons)})")
        return total

    return HistoryScorer(owner, items, seen, score, contributions, similarity)


class EnsembleHistory:
    """The history methods of ``WeightedEnsemble`` (docs/architecture.md, sections 3 and 4), mixed into it."""

    def history_scorer(self) -> HistoryScorer:
        self._check_fitted()  # type: ignore[attr-defined]
        return ensemble_scorer(
            type(self).__name__, self.items_, self.seen_, self.models_,  # type: ignore[attr-defined]
            self.score_mean_, self.score_std_, self.weights_,  # type: ignore[attr-defined]
        )

    def top_n_from_history(
        self, history: Any, n: int = 10, *, exclude: Iterable[Any] | None = None, user: Any = None
    ) -> pd.DataFrame:
        """Return the ``n`` best movies for a visitor not in the fit: the members' history scores, blended.

        Each member scores the history (`score_history`); the scores are
        standardized with the ensemble's reference statistics and weighted as `top_n` does
        (``sum_m w_m (s_m - mu_m) / sigma_m``; a member that knows none of the history adds 0), so a
        fitted user's own training history gives that user's `top_n` list (``candidates=None``;
        with ``candidates`` set, `top_n` ranks the members' proposals only, while this ranks
        every movie). Everything else is `movierec.Recommender.top_n_from_history`'s: unknown
        movies ignored with one warning, the popularity fallback (the ensemble's fit's rating
        counts), exclusions, ties by movieId. A member that cannot score a history raises
        NotImplementedError naming it.
        """
        return super().top_n_from_history(history, n, exclude=exclude, user=user)  # type: ignore[misc]

    def explain(self, history: Any, movie: Any, *, n: int | None = None) -> pd.DataFrame:
        """Return ``movieId, contribution, share``: the members' contributions, weighted as their scores are.

        Each member's contributions (`movierec.Recommender.explain`) are divided by its reference
        standard deviation and multiplied by its weight, then summed. For members linear in the history
        (EASE, Popularity) they sum to the blended score minus the blend of the members' empty-history
        scores.
        """
        return super().explain(history, movie, n=n)  # type: ignore[misc]

    def similar_items(self, movie: Any, n: int = 10) -> pd.DataFrame:
        """Return ``movieId, similarity, rank`` from the members that can compare movies, combined as scores are.

        Each such member's similarities of every movie to ``movie`` are standardized by their own mean
        and standard deviation over the catalogue (members' similarities, unlike their scores, have no
        reference statistics; EASE's weights and cosines have different scales), multiplied by the
        member's weight and summed; a member that cannot compare movies (Popularity) or does not know
        ``movie`` adds nothing. Raises NotImplementedError, with each member's reason, when no member can.
        """
        return super().similar_items(movie, n)  # type: ignore[misc]
