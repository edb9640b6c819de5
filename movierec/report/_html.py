"""The report page: one HTML string, every dynamic text escaped, every image a data: URI."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import pandas as pd

from movierec._core.validation import ITEM, RATING, USER
from movierec._version import __version__
from movierec.report._markup import Raw, e, table
from movierec.report._members import internals_section, members_section
from movierec.report._quality import (
    activity_section,
    curves_section,
    long_tail_section,
    metrics_section,
    overlap_section,
)

if TYPE_CHECKING:
    from movierec.report import ReportData  # annotations only: report imports _report lazily

__all__ = ["render"]

#: The user's own highest-rated movies shown beside their lists.
SHOWN_HISTORY = 5
#: Rated movies named as the reason for each of the ensemble's recommendations.
SHOWN_REASONS = 2

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
details.internals { margin-top: 2em; border-top: 1px solid #dde; padding-top: .6em; }
details.internals summary { font-size: 1.25em; font-weight: 600; cursor: pointer; }
li.hit { font-weight: 600; } .why { display: block; color: #5a6272; font-size: .85em; font-weight: normal; }
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


def _titled(movies: Iterable[Any], titles: pd.Series) -> list[str]:
    return [str(titles.get(movie, f"movie {movie}")) for movie in movies]


def _reasons(model: Any, history: pd.DataFrame, movie: Any, titles: pd.Series) -> str:
    """Return "because of A (60%), B (25%)": the rated movies that contribute most to ``movie``'s score."""
    try:
        why = model.explain(history, movie, n=SHOWN_REASONS)
    except (NotImplementedError, ValueError):  # a model that cannot explain, or nothing to explain with
        return ""
    why = why[why["contribution"] > 0]
    named = [f"{title} ({share:.0%})" for title, share in zip(_titled(why[ITEM], titles), why["share"])]
    return "because of " + ", ".join(named) if named else ""


def _users_section(data: ReportData) -> str:
    from movierec.report._history import user_history

    parts = [
        f"<h2>Top {data.n} for a few users</h2>",
        (
            f"<p>Left, the {SHOWN_HISTORY} movies the user rated highest in the training part; then each "
            f"model's top {data.n} among the movies the user has not rated there. <b>Bold ✓</b> marks a movie "
            "the user rated in the test part (a hit). Under each of the ensemble's movies, the rated movies "
            "that add most to its score (<code>explain</code>), with their share of it.</p>"
        ),
    ]
    others = [name for name in data.top if name != "ensemble" and name not in data.members]  # the reference
    names = [name for name in ("ensemble", *data.members, *others) if name in data.top]
    for user in data.users:
        history = user_history(data.train, user, SHOWN_HISTORY)
        if history.empty:
            continue
        rated = data.train.loc[data.train[USER] == user, [ITEM, RATING]]
        hits = set(data.test.loc[data.test[USER] == user, ITEM])
        columns = [[(f"{title} ({rating:g}★)", False, "") for title, rating in
                    zip(_titled(history[ITEM], data.titles), history[RATING])]]
        for name in names:
            top = data.top[name]
            top = top[(top[USER] == user) & (top["rank"] <= data.n)].sort_values("rank")
            explained = data.ensemble if name == "ensemble" else None
            columns.append([(title, movie in hits, _reasons(explained, rated, movie, data.titles) if explained else "")
                            for movie, title in zip(top[ITEM], _titled(top[ITEM], data.titles))])
        cells = [Raw("<ol>" + "".join(_item(*entry) for entry in column) + "</ol>") for column in columns]
        parts.append(f"<h3>User {e(user)} <span class=\"meta\">({len(rated)} ratings in train, "
                     f"{len(hits)} in test)</span></h3>")
        parts.append(table(["rated highest", *names], [cells]))
    return "\n".join(parts)


def _item(title: str, hit: bool, why: str) -> str:
    """Return one list item: the title, ✓ when it is a hit, and its reasons."""
    text = e(title) + (" ✓" if hit else "") + (f'<span class="why">{e(why)}</span>' if why else "")
    return f'<li class="hit">{text}</li>' if hit else f"<li>{text}</li>"


def render(data: ReportData) -> str:
    """Return the whole report page."""
    members = ", ".join(f"{name} ({type(model).__name__})" for name, model in data.members.items())
    left_out = [name for name in (data.names or ()) if name not in data.members]
    if left_out:
        members += f"; left out on the hold-out: {', '.join(left_out)}"
    settings = {
        "dataset": data.dataset,
        "split": f"{data.split}: {len(data.train):,} train / {len(data.test):,} test ratings",
        "members": members,
        **data.settings,
        "written": f"{_dt.datetime.now().isoformat(timespec='seconds')} by movierec {__version__}",
    }
    header = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in settings.items())
    body = "\n".join([
        f"<h1>movierec report: {e(data.dataset)}, {e(data.split)}</h1>",
        f"<table class=\"meta\">{header}</table>",
        metrics_section(data),
        curves_section(data),
        activity_section(data),
        long_tail_section(data),
        overlap_section(data),
        members_section(data),
        _users_section(data),
        internals_section(data),
    ])
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>movierec report: {e(data.dataset)}</title>\n<style>{_STYLE}</style>\n"
        f"<script>{_SCRIPT}</script>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )
