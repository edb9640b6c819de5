"""The report's sections on quality: the metrics table, metric@k curves, quality by user activity,
the long tail and the overlap of the models' lists."""

from __future__ import annotations

from typing import TYPE_CHECKING

from movierec._core.validation import USER
from movierec.report import _analysis, _plots
from movierec.report._markup import e, img, metric_name, table

if TYPE_CHECKING:
    from movierec.report import ReportData

__all__ = ["activity_section", "curves_section", "long_tail_section", "metrics_section", "overlap_section"]


def _row_classes(data: ReportData) -> list[str]:
    return ["ensemble" if name == "ensemble" else "" for name in data.metrics.index]


def metrics_section(data: ReportData) -> str:
    """Return the metrics table of the run's task, with its bar chart."""
    return _ranking_metrics(data) if data.task == "ranking" else _rating_metrics(data)


def _ranking_metrics(data: ReportData) -> str:
    metrics, k = data.metrics, data.k
    columns = [c for c in (f"precision@{k}", f"ndcg@{k}", f"map@{k}", "coverage") if c in metrics.columns]
    rows = [[name, *(row[c] for c in columns)] for name, row in metrics.iterrows()]
    bars = [c for c in columns if c != "coverage"]
    return "\n".join([
        f"<h2>Ranking quality on the test part: top {k} per user</h2>",
        (
            f"<p>Each model's top {k} movies per user among those the user has not rated in the training "
            "part; a movie is relevant when the user rated it in the test part. Averaged over users with at "
            "least one test rating. The popularity row (the most-rated unseen movies) is the reference a "
            "list worth acting on must beat; coverage is the share of the training catalogue that appears "
            "in some list.</p>"
        ),
        table(["model", *map(metric_name, columns)], rows, classes=_row_classes(data)),
        img(_plots.grouped_bars(metrics.dropna(subset=bars), bars, [metric_name(c) for c in bars],
                                "ranking (higher is better)"), "ranking metrics per model"),
    ])


def _rating_metrics(data: ReportData) -> str:
    metrics, k = data.metrics, data.k
    ranking = [c for c in (f"precision@{k}", f"ndcg@{k}") if c in metrics.columns]
    rows = [[name, row["rmse"], row["mae"], int(row["scored"]), *(row[c] for c in ranking)]
            for name, row in metrics.iterrows()]
    parts = [
        '<section class="rating">',
        "<h2>Rating accuracy on the test part</h2>",
        (
            f"<p>{len(data.test):,} test ratings. Pairs whose user or movie is absent from the training "
            "part cannot be scored and are left out of RMSE and MAE. The ensemble's ratings are the blend "
            "<span class=\"formula\">&Sigma;<sub>m</sub> (s<sub>m</sub> / e<sub>m</sub>) / "
            "&Sigma;<sub>m</sub> (1 / e<sub>m</sub>)</span>.</p>"
        ),
        table(["model", "RMSE", "MAE", "test pairs scored", *map(metric_name, ranking)], rows,
              classes=_row_classes(data)),
        img(_plots.grouped_bars(metrics, ["rmse", "mae"], ["RMSE", "MAE"], "error on the test part (lower is better)"),
            "RMSE and MAE per model"),
        "</section>",
    ]
    if ranking:
        parts += [
            f"<h2>Ranking quality: precision@{k} and nDCG@{k}</h2>",
            (
                f"<p>Each model's top {k} unseen movies per user; a movie is relevant when the user "
                "rated it in the test part. Averaged over users with at least one test rating.</p>"
            ),
            img(_plots.grouped_bars(metrics.dropna(subset=ranking), ranking, [metric_name(c) for c in ranking],
                                    "ranking (higher is better)"), f"precision@{k} and nDCG@{k} per model"),
        ]
    return "\n".join(parts)


def curves_section(data: ReportData) -> str:
    """Return nDCG@k and precision@k for k = 1 to the lists' depth (at most 20), per model."""
    depth = min(_analysis.CURVE_DEPTH, min(int(ranked["rank"].max()) for ranked in data.top.values()))
    curves = _analysis.metric_curves(data.top, data.test, depth)
    note = "" if depth == _analysis.CURVE_DEPTH else f" (the lists were ranked {depth} deep)"
    return "\n".join([
        f"<h2>Quality by list length: k = 1 to {depth}</h2>",
        (
            "<p>nDCG@k and precision@k of each model's top k, for every k up to "
            f"{depth}{e(note)}: how fast each list reaches the movies the user went on to rate. The table "
            f"above is the cut at k = {data.k}.</p>"
        ),
        img(_plots.metric_curves(curves), f"nDCG@k and precision@k for k = 1 to {depth} per model"),
    ])


def activity_section(data: ReportData) -> str:
    """Return the mean per-user nDCG@k of each model in bins of users by their number of training ratings."""
    metric = f"ndcg@{data.k}"
    per_user = data.per_user if data.per_user is not None else _analysis.per_user_table(data.top, data.test, data.k)
    activity = _analysis.by_activity(per_user, data.train, metric)
    models = list(dict.fromkeys(per_user["model"]))
    rows = [[r["bin"], int(r["users"]), *(float(r[m]) for m in models)] for _, r in activity.iterrows()]
    return "\n".join([
        f"<h2>Who is served well: {metric_name(metric)} by user activity</h2>",
        (
            f"<p>Each user's {metric_name(metric)} ({per_user[USER].nunique():,} users with a test rating), "
            "averaged in bins of users by how many movies they rated in the training part; the bins hold "
            "about as many users each. Users with few ratings are the hard case: less to go on.</p>"
        ),
        img(_plots.activity_bars(activity, models, metric_name(metric)),
            f"{metric_name(metric)} per model by the users' number of training ratings"),
        table(["training ratings", "users", *models], rows),
    ])


def long_tail_section(data: ReportData) -> str:
    """Return each model's share of recommendations per popularity decile, against the catalogue and test."""
    tail = _analysis.long_tail(data.train, data.test, data.top, data.k)
    models = [c for c in tail.columns if c not in ("catalogue", "test part")]
    rows = [[name, f"{tail[name].iloc[0]:.0%}", f"{tail[name].iloc[5:].sum():.0%}"]
            for name in ("catalogue", "test part", *models)]
    return "\n".join([
        "<h2>The long tail: popular movies or the whole catalogue?</h2>",
        (
            "<p>The training catalogue's movies sorted by their number of ratings and cut into ten deciles "
            "of as many movies (1 = the 10% most rated). Each model's share of its top "
            f"{data.k} slots per decile, against the catalogue (a tenth of the movies each) and the test "
            "part (what the users actually rated next).</p>"
        ),
        img(_plots.long_tail_lines(tail, data.k), "share of recommendations per popularity decile"),
        table(["", "in the top decile", "in the bottom half (deciles 6-10)"], rows),
    ])


def overlap_section(data: ReportData) -> str:
    """Return the mean Jaccard overlap of every two models' top-k lists."""
    matrix = _analysis.list_overlap(data.top, data.k)
    return "\n".join([
        f"<h2>How alike the lists are: overlap of the top {data.k}</h2>",
        (
            f"<p>For two models, each user's |A &cap; B| / |A &cup; B| of their top-{data.k} movies, averaged "
            "over users. Members whose lists overlap little are the ones an ensemble can gain from "
            "blending.</p>"
        ),
        img(_plots.overlap_matrix(matrix, data.k), f"mean Jaccard overlap of the top-{data.k} lists"),
    ])
