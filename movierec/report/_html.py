"""The report page: one HTML string, every dynamic text escaped, every image a data: URI."""

from __future__ import annotations

import datetime as _dt
import html
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from movierec._core.ids import sample_pairs
from movierec._core.validation import ITEM, RATING, USER
from movierec._version import __version__
from movierec.report import _plots

if TYPE_CHECKING:
    from movierec.report import ReportData  # annotations only: report imports _report lazily

__all__ = ["render"]

# (user, movie) pairs drawn to show each member's score distribution.
SAMPLE_PAIRS = 20_000
SHOWN_RANKS = 5

_STYLE = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2330;
       max-width: 1100px; margin: 2em auto; padding: 0 1.2em; }
h1 { font-size: 1.6em; margin-bottom: .2em; } h2 { margin-top: 1.8em; border-bottom: 1px solid #dde; }
table { border-collapse: collapse; margin: .8em 0; font-size: .92em; }
th, td { border: 1px solid #d6d9e0; padding: .25em .6em; text-align: left; vertical-align: top; }
th { background: #f1f3f7; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.ensemble td { font-weight: 600; background: #f6fbf4; }
img { max-width: 100%; height: auto; display: block; margin: .6em 0; }
.meta { color: #5a6272; } .formula { font-family: ui-monospace, monospace; background: #f5f6f8;
       padding: .5em .8em; display: inline-block; } ol { margin: 0; padding-left: 1.4em; }
"""

# Marks <body data-images-ok="true"> once every image has decoded; tests read it from the DOM.
_SCRIPT = """
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  var ok = images.length > 0 && images.every(function (img) {
    return img.complete && img.naturalWidth > 0;
  });
  document.body.setAttribute("data-images", String(images.length));
  document.body.setAttribute("data-images-ok", ok ? "true" : "false");
});
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _img(png: str, alt: str) -> str:
    return f'<img src="data:image/png;base64,{png}" alt="{_e(alt)}">'


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]], *, classes: Sequence[str] = ()) -> str:
    """Return an HTML table; cells that are floats are right-aligned with 4 decimals."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = []
    for position, row in enumerate(rows):
        cells = []
        for cell in row:
            if isinstance(cell, (float, np.floating)):
                cells.append(f'<td class="num">{cell:.4f}</td>')
            elif isinstance(cell, (int, np.integer)):
                cells.append(f'<td class="num">{cell}</td>')
            elif isinstance(cell, _Raw):
                cells.append(f"<td>{cell.html}</td>")
            else:
                cells.append(f"<td>{_e(cell)}</td>")
        css = f' class="{_e(classes[position])}"' if position < len(classes) and classes[position] else ""
        body.append(f"<tr{css}>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


class _Raw:
    """Already-escaped HTML for a table cell."""

    def __init__(self, markup: str) -> None:
        self.html = markup


def _metrics_section(data: ReportData) -> str:
    return _ranking_metrics_section(data) if data.task == "ranking" else _rating_metrics_section(data)


def _ranking_metrics_section(data: ReportData) -> str:
    table, k = data.metrics, data.k
    columns = [c for c in (f"precision@{k}", f"ndcg@{k}", f"map@{k}", "coverage") if c in table.columns]
    labels = {f"precision@{k}": f"precision@{k}", f"ndcg@{k}": f"nDCG@{k}", f"map@{k}": f"MAP@{k}", "coverage": "coverage"}
    rows = [[name, *(row[c] for c in columns)] for name, row in table.iterrows()]
    classes = ["ensemble" if name == "ensemble" else "" for name in table.index]
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
        _table(["model", *(labels[c] for c in columns)], rows, classes=classes),
        _img(_plots.grouped_bars(table.dropna(subset=bars), bars, [labels[c] for c in bars],
                                 "ranking (higher is better)"), "ranking metrics per model"),
    ])


def _rating_metrics_section(data: ReportData) -> str:
    table = data.metrics
    ranking = [c for c in (f"precision@{data.k}", f"ndcg@{data.k}") if c in table.columns]
    header = ["model", "RMSE", "MAE", "test pairs scored", *ranking]
    rows = [
        [name, row["rmse"], row["mae"], int(row["scored"]), *(row[c] for c in ranking)]
        for name, row in table.iterrows()
    ]
    classes = ["ensemble" if name == "ensemble" else "" for name in table.index]
    parts = [
        "<h2>Rating accuracy on the test part</h2>",
        (
            f"<p>{len(data.test):,} test ratings. Pairs whose user or movie is absent from the training "
            "part cannot be scored and are left out of RMSE and MAE. The ensemble's ratings are the blend "
            "<span class=\"formula\">&Sigma;<sub>m</sub> (s<sub>m</sub> / e<sub>m</sub>) / "
            "&Sigma;<sub>m</sub> (1 / e<sub>m</sub>)</span>.</p>"
        ),
        _table(header, rows, classes=classes),
        _img(_plots.grouped_bars(table, ["rmse", "mae"], ["RMSE", "MAE"], "error on the test part (lower is better)"),
             "RMSE and MAE per model"),
    ]
    if ranking:
        parts += [
            f"<h2>Ranking quality: precision@{data.k} and nDCG@{data.k}</h2>",
            (
                f"<p>Each model's top {data.k} unseen movies per user; a movie is relevant when the user "
                "rated it in the test part. Averaged over users with at least one test rating.</p>"
            ),
            _img(_plots.grouped_bars(table.dropna(subset=ranking), ranking,
                                     [f"precision@{data.k}", f"nDCG@{data.k}"], "ranking (higher is better)"),
                 f"precision@{data.k} and nDCG@{data.k} per model"),
        ]
    return "\n".join(parts)


def _reference_pairs(data: ReportData) -> pd.DataFrame:
    return sample_pairs(data.ensemble.users_, data.ensemble.items_, SAMPLE_PAIRS, data.seed)


def _scores_section(data: ReportData) -> str:
    ensemble = data.ensemble
    pairs = _reference_pairs(data)
    raw, standardized, rows = {}, {}, []
    for position, (name, member) in enumerate(data.members.items()):
        scores = member.predict(pairs).to_numpy(dtype=float)
        mean, std = float(ensemble.score_mean_[position]), float(ensemble.score_std_[position])
        raw[name] = scores
        standardized[name] = (scores - mean) / std if std > 0 else np.zeros_like(scores)
        rows.append([name, type(member).__name__, mean, std, float(np.nanmin(scores)), float(np.nanmax(scores))])
    return "\n".join([
        "<h2>Scores before and after standardization</h2>",
        (
            f"<p>Each member's scores on {len(pairs):,} random (user, movie) pairs of the training catalogue. "
            "Members score on different scales; the ensemble first standardizes each with the mean "
            "&mu;<sub>m</sub> and standard deviation &sigma;<sub>m</sub> it fixed at fit.</p>"
        ),
        _img(_plots.score_histograms(raw, standardized), "score distributions before and after standardization"),
        _table(["member", "class", "μ (fit)", "σ (fit)", "min in sample", "max in sample"], rows),
    ])


def _weights_section(data: ReportData) -> str:
    ensemble = data.ensemble
    names = list(data.members)
    weights, errors = np.asarray(ensemble.weights_, float), np.asarray(ensemble.errors_, float)
    shares = weights / weights.sum()
    mode = "every unseen movie" if ensemble.candidates is None else f"each member's own top {ensemble.candidates}"
    rows = [[n, e, w, f"{s:.1%}"] for n, e, w, s in zip(names, errors, weights, shares)]
    metric = ensemble.metric
    weighting = ("its weight w<sub>m</sub> &ge; 0 is learned by non-negative least squares of the hold-out "
                 "ratings on the members' standardized scores" if ensemble.weights == "stacked"
                 else "its weight is 1 / e<sub>m</sub>")
    error = "its RMSE" if metric == "rmse" else f"1 &minus; its {_e(metric)}"
    chosen = "" if ensemble.select == "all" else (
        " Members were chosen on that hold-out: from the best one, a member joins while it lowers the "
        "ensemble's own hold-out error.")
    return "\n".join([
        "<h2>Ensemble weights</h2>",
        (
            f"<p>Member m's error e<sub>m</sub> is {error} on a hold-out of the training part (never the "
            f"test part); {weighting}.{chosen} The ranking score of a (user, movie) pair is "
            "<span class=\"formula\">&Sigma;<sub>m</sub> z<sub>m</sub>(u, i) / e<sub>m</sub></span>, "
            f"over {_e(mode)}.</p>"
        ),
        _table(["member", f"hold-out {'RMSE' if metric == 'rmse' else '1 - ' + metric} e_m",
                "stacked weight w_m" if ensemble.weights == "stacked" else "weight 1/e_m", "share"], rows),
        _img(_plots.weight_bars(names, weights, errors), "ensemble weights per member"),
    ])


def _titled(movies: Iterable[Any], titles: pd.Series) -> list[str]:
    return [str(titles.get(movie, f"movie {movie}")) for movie in movies]


def _users_section(data: ReportData) -> str:
    from movierec.report._history import user_history

    parts = [
        f"<h2>Top {SHOWN_RANKS} for a few users</h2>",
        (
            "<p>Left, the movies the user rated highest in the training part; then each model's top "
            f"{SHOWN_RANKS} among the movies the user has not rated there.</p>"
        ),
    ]
    others = [name for name in data.top if name != "ensemble" and name not in data.members]  # the reference
    names = [name for name in ("ensemble", *data.members, *others) if name in data.top]
    for user in data.users:
        history = user_history(data.train, user, SHOWN_RANKS)
        if history.empty:
            continue
        columns = [[f"{title} ({rating:g}★)" for title, rating in
                    zip(_titled(history[ITEM], data.titles), history[RATING])]]
        for name in names:
            top = data.top[name]
            top = top[(top[USER] == user) & (top["rank"] <= SHOWN_RANKS)].sort_values("rank")
            columns.append(_titled(top[ITEM], data.titles))
        cells = [_Raw("<ol>" + "".join(f"<li>{_e(t)}</li>" for t in column) + "</ol>") for column in columns]
        parts.append(f"<h3>User {_e(user)} <span class=\"meta\">({int((data.train[USER] == user).sum())} "
                     "ratings in train)</span></h3>")
        parts.append(_table(["rated highest", *names], [cells]))
    return "\n".join(parts)


def render(data: ReportData) -> str:
    """Return the whole report page."""
    members = ", ".join(f"{name} ({type(model).__name__})" for name, model in data.members.items())
    settings = {
        "dataset": data.dataset,
        "split": f"{data.split}: {len(data.train):,} train / {len(data.test):,} test ratings",
        "members": members,
        **data.settings,
        "written": f"{_dt.datetime.now().isoformat(timespec='seconds')} by movierec {__version__}",
    }
    header = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in settings.items())
    body = "\n".join([
        f"<h1>movierec report: {_e(data.dataset)}, {_e(data.split)}</h1>",
        f"<table class=\"meta\">{header}</table>",
        _metrics_section(data),
        _scores_section(data),
        _weights_section(data),
        _users_section(data),
    ])
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>movierec report: {_e(data.dataset)}</title>\n<style>{_STYLE}</style>\n"
        f"<script>{_SCRIPT}</script>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )
