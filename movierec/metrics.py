"""Rating metrics (RMSE, MAE) and top-N ranking metrics at k.

Ranking metrics follow Microsoft Recommenders' ``python_evaluation``: binary relevance (a movie
is relevant to a user when the (user, movie) pair is in the test frame, or its rating is at least
``threshold``), averaged over users that have both recommendations and at least one relevant
movie; nDCG uses a log2 discount, ``1 / log2(rank + 1)``; MAP@k divides each user's sum of
precisions at hits by ``min(n_relevant, k)``.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from movierec._core.ranking import rank_frame
from movierec._core.validation import ITEM, RATING, USER, check_choice, check_n, check_pairs
from movierec.exceptions import DataValidationError, MovieRecWarning

if TYPE_CHECKING:  # pragma: no cover
    from movierec.base import Recommender

__all__ = [
    "RANKING_METRICS",
    "coverage",
    "evaluate",
    "mae",
    "map_at_k",
    "model_error",
    "ndcg_at_k",
    "parse_metric",
    "per_user_metrics",
    "precision_at_k",
    "ranking_metrics",
    "recall_at_k",
    "rmse",
    "scored_predictions",
]

#: Ranking metrics a model or an ensemble can be judged by, as "name@k" (e.g. "ndcg@10").
RANKING_METRICS = ("precision", "recall", "ndcg", "map")


def _paired(y_true: Any, y_pred: Any, missing: str) -> tuple[np.ndarray, np.ndarray]:
    check_choice(missing, "missing", ("error", "drop"))
    true = np.asarray(y_true, dtype=np.float64).ravel()
    pred = np.asarray(y_pred, dtype=np.float64).ravel()
    if true.shape != pred.shape:
        raise DataValidationError(f"y_true has {true.size} values but y_pred has {pred.size}")
    if not np.isfinite(true).all():
        raise DataValidationError("y_true has NaN or infinite values")
    bad = ~np.isfinite(pred)
    if bad.any():
        if missing == "error":
            raise DataValidationError(
                f"y_pred has {int(bad.sum())} NaN or infinite values (first at position "
                f"{int(np.flatnonzero(bad)[0])}); pass missing='drop' to skip them"
            )
        true, pred = true[~bad], pred[~bad]
    if true.size == 0:
        raise DataValidationError("no (y_true, y_pred) values to score")
    return true, pred


def rmse(y_true: Any, y_pred: Any, *, missing: Literal["error", "drop"] = "error") -> float:
    """Return the root mean squared error; NaN predictions raise unless ``missing="drop"``."""
    true, pred = _paired(y_true, y_pred, missing)
    return float(np.sqrt(np.mean((true - pred) ** 2)))


def mae(y_true: Any, y_pred: Any, *, missing: Literal["error", "drop"] = "error") -> float:
    """Return the mean absolute error; NaN predictions raise unless ``missing="drop"``."""
    true, pred = _paired(y_true, y_pred, missing)
    return float(np.mean(np.abs(true - pred)))


def _hits(recommendations: pd.DataFrame, test: pd.DataFrame, k: int, threshold: float | None):
    """Return per-user (hit ranks frame, relevant counts) over the users the metrics average."""
    k = check_n(k, "k")
    if isinstance(recommendations, pd.DataFrame) and recommendations.empty:
        raise DataValidationError("no user has both recommendations and relevant test movies: the recommendations "
                                  "are empty (were the test users seen in fit?)")
    check_pairs(recommendations, name="recommendations")
    check_pairs(test, name="test")
    recs = recommendations
    if "rank" not in recs.columns:
        if "score" not in recs.columns:
            raise DataValidationError("recommendations need a 'rank' or a 'score' column")
        recs = rank_frame(recs, k)
    recs = recs.loc[recs["rank"] <= k, [USER, ITEM, "rank"]]
    relevant = test
    if threshold is not None:
        if RATING not in test.columns:
            raise DataValidationError("threshold needs a 'rating' column in test")
        relevant = test[test[RATING] >= threshold]
    relevant = relevant[[USER, ITEM]].drop_duplicates()
    n_relevant = relevant.groupby(USER).size()
    users = n_relevant.index.intersection(pd.Index(recs[USER].unique()))
    if len(users) == 0:
        raise DataValidationError("no user has both recommendations and relevant test movies")
    hits = recs.merge(relevant, on=[USER, ITEM], how="inner")
    hits = hits[hits[USER].isin(users)]
    return hits, n_relevant.loc[users], k


def _each_user(values: pd.Series, users: pd.Index) -> pd.Series:
    """Return ``values`` for each of ``users``, 0 for a user without a hit."""
    return values.reindex(users).fillna(0.0)


# Each metric from _hits' output, so ranking_metrics finds the hits once for all four; the
# _*_values functions give one value per user, the others their mean.
def _precision_values(hits: pd.DataFrame, n_relevant: pd.Series, k: int) -> pd.Series:
    return _each_user(hits.groupby(USER).size() / k, n_relevant.index)


def _recall_values(hits: pd.DataFrame, n_relevant: pd.Series, k: int) -> pd.Series:
    return _each_user(hits.groupby(USER).size() / n_relevant, n_relevant.index)


def _ndcg_values(hits: pd.DataFrame, n_relevant: pd.Series, k: int) -> pd.Series:
    dcg = (1.0 / np.log2(hits["rank"] + 1)).groupby(hits[USER]).sum()
    discounts = np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))
    idcg = pd.Series(discounts[np.minimum(n_relevant.to_numpy(), k) - 1], index=n_relevant.index)
    return _each_user(dcg / idcg, n_relevant.index)


def _map_values(hits: pd.DataFrame, n_relevant: pd.Series, k: int) -> pd.Series:
    hits = hits.sort_values([USER, "rank"])
    precision_at_hit = (hits.groupby(USER).cumcount() + 1) / hits["rank"]
    total = precision_at_hit.groupby(hits[USER]).sum()
    return _each_user(total / np.minimum(n_relevant, k), n_relevant.index)


def _precision(hits: pd.DataFrame, n_relevant: pd.Series, k: int) -> float:
    return float(_precision_values(hits, n_relevant, k).mean())


def _recall(hits: pd.DataFrame, n_relevant: pd.Series, k: int) -> float:
    return float(_recall_values(hits, n_relevant, k).mean())


def _ndcg(hits: pd.DataFrame, n_relevant: pd.Series, k: int) -> float:
    return float(_ndcg_values(hits, n_relevant, k).mean())


def _map(hits: pd.DataFrame, n_relevant: pd.Series, k: int) -> float:
    return float(_map_values(hits, n_relevant, k).mean())


def per_user_metrics(
    recommendations: pd.DataFrame, test: pd.DataFrame, k: int = 10, *, threshold: float | None = None
) -> pd.DataFrame:
    """Return one row per user: ``userId`` and precision, recall, nDCG and MAP at ``k``.

    The users are those [`ranking_metrics`][movierec.metrics.ranking_metrics] averages over (with
    recommendations and at least one relevant test movie), sorted by id; the mean of each column
    is the figure [`ranking_metrics`][movierec.metrics.ranking_metrics] gives.

    Raises
    ------
    DataValidationError
        As [`ranking_metrics`][movierec.metrics.ranking_metrics]: a frame that is not a ratings
        frame, or no user with both recommendations and a relevant test movie.
    """
    hits = _hits(recommendations, test, k, threshold)
    k = hits[2]
    frame = pd.DataFrame({
        f"precision@{k}": _precision_values(*hits),
        f"recall@{k}": _recall_values(*hits),
        f"ndcg@{k}": _ndcg_values(*hits),
        f"map@{k}": _map_values(*hits),
    })
    frame.index.name = USER
    return frame.sort_index().reset_index()


def precision_at_k(recommendations: pd.DataFrame, test: pd.DataFrame, k: int = 10, *, threshold: float | None = None) -> float:
    """Return the mean over users of (relevant movies in the top ``k``) / ``k``."""
    return _precision(*_hits(recommendations, test, k, threshold))


def recall_at_k(recommendations: pd.DataFrame, test: pd.DataFrame, k: int = 10, *, threshold: float | None = None) -> float:
    """Return the mean over users of (relevant movies in the top ``k``) / (relevant movies)."""
    return _recall(*_hits(recommendations, test, k, threshold))


def ndcg_at_k(recommendations: pd.DataFrame, test: pd.DataFrame, k: int = 10, *, threshold: float | None = None) -> float:
    """Return the mean normalized discounted cumulative gain at ``k`` (binary gains, log2 discount)."""
    return _ndcg(*_hits(recommendations, test, k, threshold))


def map_at_k(recommendations: pd.DataFrame, test: pd.DataFrame, k: int = 10, *, threshold: float | None = None) -> float:
    """Return the mean average precision at ``k`` (sum of precision at each hit / min(relevant, k))."""
    return _map(*_hits(recommendations, test, k, threshold))


def coverage(recommendations: pd.DataFrame, catalogue: Iterable[Any] | pd.DataFrame) -> float:
    """Return the share of the catalogue's movies that appear in at least one recommendation list.

    ``catalogue`` is an iterable of movie ids or a frame with a ``movieId`` column.
    """
    check_pairs(recommendations, name="recommendations")
    movies = pd.Index(catalogue[ITEM] if isinstance(catalogue, pd.DataFrame) else list(catalogue)).unique()
    if len(movies) == 0:
        raise DataValidationError("catalogue is empty")
    return float(movies.isin(recommendations[ITEM].unique()).mean())


def ranking_metrics(recommendations: pd.DataFrame, test: pd.DataFrame, k: int = 10, *, threshold: float | None = None) -> dict[str, float]:
    """Return precision, recall, nDCG and MAP at ``k`` in one dict."""
    hits = _hits(recommendations, test, k, threshold)
    return {
        f"precision@{k}": _precision(*hits),
        f"recall@{k}": _recall(*hits),
        f"ndcg@{k}": _ndcg(*hits),
        f"map@{k}": _map(*hits),
    }

def scored_predictions(
    model: Recommender, test: pd.DataFrame, *, cold_start: Literal["drop", "error"] = "drop"
) -> tuple[np.ndarray, np.ndarray, int]:
    """Return ``(targets, predictions, n_missing)`` of the test pairs ``model`` can score.

    The one cold-start rule of [`Recommender.rmse`][movierec.Recommender.rmse] and
    [`evaluate`][movierec.metrics.evaluate]: pairs whose prediction is NaN (user or movie unseen in fit) are left out
    (``cold_start="drop"``) or raise (``"error"``); targets are the model's
    ``prediction_targets`` of the ratings (the 0/1 labels of a binary classifier).

    Raises
    ------
    DataValidationError
        If ``test`` has no ``rating`` column, a pair is unscorable with ``cold_start="error"``, or
        no pair can be scored.
    """
    check_choice(cold_start, "cold_start", ("drop", "error"))
    check_pairs(test, name="test")
    if RATING not in test.columns:
        raise DataValidationError(f"test needs a {RATING!r} column; it has {list(test.columns)}")
    predicted = model.predict(test).to_numpy(dtype=float)
    missing = np.isnan(predicted)
    if missing.any():
        message = f"{int(missing.sum())} of {len(test)} test pairs have a user or movie unseen in fit"
        if cold_start == "error":
            raise DataValidationError(message + " (cold_start='error')")
        if missing.all():
            raise DataValidationError(message + ": no pair can be scored")
    truth = model.prediction_targets(test[RATING].to_numpy(dtype=np.float64))
    return truth[~missing], predicted[~missing], int(missing.sum())


def evaluate(
    models: Mapping[str, Recommender],
    test: pd.DataFrame,
    *,
    top: Mapping[str, pd.DataFrame] | None = None,
    k: int = 10,
    threshold: float | None = None,
    task: Literal["rating", "ranking"] = "rating",
    catalogue: Iterable[Any] | None = None,
) -> pd.DataFrame:
    """Return one row per model (index: its name) with its test metrics for the task.

    Parameters
    ----------
    models : mapping of str to Recommender
        Fitted models by name, in the row order wanted.
    test : pandas.DataFrame
        A ratings frame (``userId, movieId, rating``).
    top : mapping of str to pandas.DataFrame, optional
        Each model's ``top_n`` lists (``userId, movieId, score, rank``) with at least ``k`` ranks;
        ranking columns are added for the models it names.
    k : int, default 10
        The cut-off of the ranking metrics.
    threshold : float, optional
        Minimum test rating of a relevant movie; ``None`` counts every test rating as relevant.
    task : {"rating", "ranking"}, default "rating"
        ``"rating"``: ``rmse``, ``mae``, ``scored`` (test pairs the model could score; the others,
        whose user or movie was unseen in fit, are left out of RMSE and MAE, by the same rule as
        [`Recommender.rmse`][movierec.Recommender.rmse]) and, with ``top``, ``precision@{k}``
        and ``ndcg@{k}``. ``"ranking"``: ``precision@{k}``, ``ndcg@{k}``, ``map@{k}`` and, with
        ``catalogue``, ``coverage``; scores are preferences, so no RMSE.
    catalogue : iterable, optional
        The movies the lists could draw from (the training movies), for ``coverage``.

    Raises
    ------
    DataValidationError
        If ``test`` is not a ratings frame or a model scores none of its pairs.
    """
    k = check_n(k, "k")
    check_choice(task, "task", ("rating", "ranking"))
    check_pairs(test, name="test")
    rows = []
    for name, model in models.items():
        row: dict[str, Any] = {"model": name}
        if task == "rating":
            try:
                truth, predicted, _ = scored_predictions(model, test)
            except DataValidationError as err:
                raise DataValidationError(f"model {name!r}: {err}") from err
            row |= {"rmse": rmse(truth, predicted), "mae": mae(truth, predicted), "scored": len(truth)}
        if top is not None and name in top:
            ranking = ranking_metrics(top[name], test, k, threshold=threshold)
            keys = ("precision", "ndcg") if task == "rating" else ("precision", "ndcg", "map")
            row |= {f"{key}@{k}": ranking[f"{key}@{k}"] for key in keys}
            if task == "ranking" and catalogue is not None:
                row["coverage"] = coverage(top[name][top[name]["rank"] <= k], catalogue)
        rows.append(row)
    return pd.DataFrame(rows).set_index("model")


def parse_metric(metric: str) -> tuple[str, int | None]:
    """Return ``(name, k)`` of ``"rmse"`` (k None) or a ranking metric ``"ndcg@10"``.

    Raises
    ------
    InvalidParameterError
        If ``metric`` is neither ``"rmse"`` nor ``"<precision|recall|ndcg|map>@<positive int>"``.
    """
    from movierec.exceptions import InvalidParameterError

    if metric == "rmse":
        return "rmse", None
    name, _, k = str(metric).partition("@")
    if name in RANKING_METRICS and k.isdigit() and int(k) > 0:
        return name, int(k)
    raise InvalidParameterError(
        f"metric must be 'rmse' or one of {[m + '@<k>' for m in RANKING_METRICS]} such as 'ndcg@10', got {metric!r}"
    )


def model_error(model: Recommender, holdout: pd.DataFrame, metric: str = "rmse") -> float:
    """Return a fitted model's error on ``holdout``: its RMSE, or 1 - a ranking metric such as ``"ndcg@10"``.

    Ranking metrics score each holdout user's top ``k`` unseen movies, every holdout movie relevant
    (the Microsoft Recommenders protocol). Users with no recommendation count as 0 (users the model
    does not know cannot be ranked for, and that is the model's loss), so models that know different
    users are compared on the same population.
    """
    name, k = parse_metric(metric)
    if k is None:
        return model.rmse(holdout)
    users = pd.unique(holdout[USER])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MovieRecWarning)  # unknown users: counted as 0 below
        top = model.top_n(users=users, n=k)
    if top.empty:
        return 1.0
    hits = _hits(top, holdout, k, None)
    value = {"precision": _precision, "recall": _recall, "ndcg": _ndcg, "map": _map}[name](*hits)
    # _hits averages over users with recommendations; rescale to every holdout user.
    covered = len(hits[1]) / len(users)
    return 1.0 - value * covered
