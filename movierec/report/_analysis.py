"""The figures behind the report's plots, as frames: metric@k curves, quality by user activity, the
long tail, and how much the models' lists overlap."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from movierec._core.validation import ITEM, USER, check_n
from movierec.exceptions import DataValidationError
from movierec.metrics import per_user_metrics

__all__ = ["CURVE_DEPTH", "by_activity", "list_overlap", "long_tail", "metric_curves", "per_user_table"]

#: The metric@k curves run from k = 1 to this depth; the lists must be ranked at least as deep.
CURVE_DEPTH = 20
#: Users are put in this many bins by their number of training ratings (fewer when ties merge edges).
ACTIVITY_BINS = 5
DECILES = 10


def metric_curves(top: Mapping[str, pd.DataFrame], test: pd.DataFrame, depth: int = CURVE_DEPTH) -> pd.DataFrame:
    """Return nDCG@k and precision@k of each model's lists for k = 1 to ``depth``.

    Parameters
    ----------
    top : mapping of str to pandas.DataFrame
        Each model's ranked lists (``userId, movieId, rank``), by name.
    test : pandas.DataFrame
        The test part: a movie is relevant to a user who rated it there.
    depth : int
        The largest k. A list shorter than ``depth`` counts its missing ranks as misses.

    Returns
    -------
    pandas.DataFrame
        Columns ``model, k, precision, ndcg``: the figures of
        [`movierec.metrics.ranking_metrics`][movierec.metrics.ranking_metrics] at each k, over the
        same users (with a list and at least one relevant test movie).
    """
    depth = check_n(depth, "depth")
    relevant = test[[USER, ITEM]].drop_duplicates()
    n_relevant = relevant.groupby(USER).size()
    discounts = 1.0 / np.log2(np.arange(2, depth + 2))
    ideal = np.cumsum(discounts)
    frames = []
    for name, ranked in top.items():
        ranked = ranked.loc[ranked["rank"] <= depth, [USER, ITEM, "rank"]]
        users = n_relevant.index.intersection(pd.Index(ranked[USER].unique()))
        if len(users) == 0:
            raise DataValidationError(f"top[{name!r}]: no user has both a list and a relevant test movie")
        hits = ranked.merge(relevant, on=[USER, ITEM], how="inner")
        hits = hits[hits[USER].isin(users)]
        row = users.get_indexer(hits[USER])
        matrix = np.zeros((len(users), depth))
        np.add.at(matrix, (row, hits["rank"].to_numpy(dtype=int) - 1), 1.0)
        found = np.cumsum(matrix, axis=1)  # hits within the top k, per user and k
        dcg = np.cumsum(matrix * discounts, axis=1)
        ks = np.arange(1, depth + 1)
        counts = n_relevant.loc[users].to_numpy()
        idcg = ideal[np.minimum(counts[:, None], ks[None, :]) - 1]
        frames.append(pd.DataFrame({"model": name, "k": ks, "precision": (found / ks).mean(axis=0),
                                    "ndcg": (dcg / idcg).mean(axis=0)}))
    return pd.concat(frames, ignore_index=True)


def per_user_table(top: Mapping[str, pd.DataFrame], test: pd.DataFrame, k: int) -> pd.DataFrame:
    """Return ``userId, model`` and each ranking metric at ``k`` per user, for every model of ``top``."""
    frames = [per_user_metrics(ranked, test, k).assign(model=name) for name, ranked in top.items()]
    table = pd.concat(frames, ignore_index=True)
    return table[[USER, "model", *(c for c in table.columns if c not in (USER, "model"))]]


def by_activity(per_user: pd.DataFrame, train: pd.DataFrame, metric: str, bins: int = ACTIVITY_BINS) -> pd.DataFrame:
    """Return the mean of ``metric`` per model in bins of users by their number of training ratings.

    The bins are quantiles of the users' rating counts, so each holds about as many users.

    Returns
    -------
    pandas.DataFrame
        Columns ``bin`` (e.g. ``"20-33"``), ``users``, ``low``, ``high`` and one column per model.
    """
    counts = train.groupby(USER).size().rename("ratings")
    users = per_user[[USER]].drop_duplicates().join(counts, on=USER)
    edges = np.unique(np.quantile(users["ratings"], np.linspace(0, 1, bins + 1)))
    if len(edges) < 2:
        edges = np.array([edges[0], edges[0]])
    position = np.clip(np.searchsorted(edges, users["ratings"], side="right") - 1, 0, len(edges) - 2)
    users = users.assign(bin=position)
    labelled = per_user.merge(users[[USER, "bin"]], on=USER)
    means = labelled.pivot_table(index="bin", columns="model", values=metric, aggfunc="mean", sort=False)
    means = means[list(dict.fromkeys(per_user["model"]))]
    sizes = users.groupby("bin").agg(users=(USER, "size"), low=("ratings", "min"), high=("ratings", "max"))
    table = sizes.join(means).sort_index().reset_index(drop=True)
    table.insert(0, "bin", [f"{lo}-{hi}" if lo != hi else f"{lo}" for lo, hi in zip(table["low"], table["high"])])
    return table


def long_tail(train: pd.DataFrame, test: pd.DataFrame, top: Mapping[str, pd.DataFrame], k: int) -> pd.DataFrame:
    """Return the share of each model's recommendations in each popularity decile of the catalogue.

    The catalogue's movies (those of ``train``) are sorted by their number of training ratings, most
    rated first, and cut into ten deciles of as many movies: decile 1 holds the 10% most rated. Beside
    each model's share of its top-``k`` slots, ``catalogue`` is the deciles' share of the movies (a
    tenth each) and ``test part`` their share of the test ratings (of movies in the catalogue).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``decile`` (1 to 10); columns ``catalogue``, ``test part`` and one per model.
    """
    counts = train.groupby(ITEM).size()
    order = counts.reset_index(name="n").sort_values(["n", ITEM], ascending=[False, True], kind="stable")
    decile = pd.Series(np.arange(len(order)) * DECILES // len(order) + 1, index=order[ITEM].to_numpy())
    deciles = pd.RangeIndex(1, DECILES + 1, name="decile")

    def shares(movies: pd.Series) -> pd.Series:
        placed = movies.map(decile).dropna().astype(int)
        return placed.value_counts(normalize=True).reindex(deciles, fill_value=0.0)

    table = pd.DataFrame({"catalogue": decile.value_counts(normalize=True).reindex(deciles, fill_value=0.0),
                          "test part": shares(test[ITEM])})
    for name, ranked in top.items():
        table[name] = shares(ranked.loc[ranked["rank"] <= k, ITEM])
    return table


def list_overlap(top: Mapping[str, pd.DataFrame], k: int) -> pd.DataFrame:
    """Return the mean Jaccard index of two models' top-``k`` lists, for every pair of models.

    For each user with a list from both, |A &cap; B| / |A &cup; B| of the two sets of movies;
    averaged over those users. The diagonal is 1.
    """
    lists = {name: ranked.loc[ranked["rank"] <= k, [USER, ITEM]] for name, ranked in top.items()}
    sizes = {name: frame.groupby(USER).size() for name, frame in lists.items()}
    names = list(lists)
    matrix = pd.DataFrame(np.eye(len(names)), index=names, columns=names)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            users = sizes[a].index.intersection(sizes[b].index)
            shared = lists[a].merge(lists[b], on=[USER, ITEM]).groupby(USER).size().reindex(users, fill_value=0)
            union = sizes[a].loc[users] + sizes[b].loc[users] - shared
            value = float((shared / union).mean()) if len(users) else float("nan")
            matrix.loc[a, b] = matrix.loc[b, a] = value
    return matrix
