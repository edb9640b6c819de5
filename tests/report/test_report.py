"""The HTML report (rendered in headless Chromium), a ranking run's page and the figures behind its
plots, and the three-models notebook."""

from __future__ import annotations

import base64
import dataclasses
import html
import io
import os
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from movierec import EASE, BiasedBaseline, Popularity, WeightedEnsemble
from movierec.exceptions import DataValidationError
from movierec.metrics import evaluate, ndcg_at_k, per_user_metrics, precision_at_k
from movierec.report import ReportData, metric_curves, per_user_table, render_report, write_report
from movierec.report._analysis import by_activity, list_overlap, long_tail
from movierec.report._history import user_history
from movierec.report._members import LEFT_OUT

ROOT = Path(__file__).resolve().parents[2]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TRAP = "<script>alert('x')</script> & Friends"

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def run(u1, ml100k):
    """A small real run: two baselines with different damping and their ensemble, on u1."""
    names = ["light", "heavy"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ensemble = WeightedEnsemble([BiasedBaseline(damping=1.0), BiasedBaseline(damping=50.0)], candidates=20,
                                    random_state=0).fit(u1.train)
    members = dict(zip(names, ensemble.models_))
    models = {**members, "ensemble": ensemble}
    top = {name: model.top_n(n=10) for name, model in models.items()}
    titles = ml100k.items.set_index("movieId")["title"].copy()
    # A title that would break the page (and run script) if it were not escaped.
    titles.loc[top["ensemble"].loc[top["ensemble"]["userId"] == 1, "movieId"].iloc[0]] = TRAP
    return ReportData(
        dataset="ml-100k", split="official fold u1", train=u1.train, test=u1.test, titles=titles,
        members=members, ensemble=ensemble, metrics=evaluate(models, u1.test, top=top, k=10), top=top,
        k=10, users=[1, 2, 3], settings={"note": "a <b>bold</b> claim"}, seed=0,
    )


def test_evaluate_matches_rmse_and_the_metrics_module(run, u1):
    table = run.metrics
    assert list(table.index) == ["light", "heavy", "ensemble"]
    assert list(table.columns) == ["rmse", "mae", "scored", "precision@10", "ndcg@10"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert table.loc["light", "rmse"] == pytest.approx(run.members["light"].rmse(u1.test), abs=1e-12)
    unseen = ~u1.test["movieId"].isin(u1.train["movieId"])
    assert (table["scored"] == len(u1.test) - unseen.sum()).all()
    assert ((table[["precision@10", "ndcg@10"]] > 0) & (table[["precision@10", "ndcg@10"]] < 1)).all().all()


def test_evaluate_without_top_and_refusals(run, u1):
    table = evaluate({"light": run.members["light"]}, u1.test)
    assert list(table.columns) == ["rmse", "mae", "scored"]
    with pytest.raises(DataValidationError, match="rating"):
        evaluate({"light": run.members["light"]}, u1.test.drop(columns="rating"))
    strangers = u1.test.assign(userId=u1.test["userId"] + 10_000)
    with pytest.raises(DataValidationError, match="no pair can be scored"):
        evaluate({"light": run.members["light"]}, strangers)


def test_user_history_is_the_highest_rated_latest_first(u1):
    history = user_history(u1.train, 1, 5)
    assert len(history) == 5 and (history["rating"] == 5).all()
    fives = u1.train[(u1.train["userId"] == 1) & (u1.train["rating"] == 5)]
    assert history["timestamp"].tolist() == sorted(fives["timestamp"], reverse=True)[:5]


def test_report_is_self_contained_and_escaped(run):
    document = render_report(run)
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)" alt="[^"]+">', document)
    # RMSE/MAE, ranking, curves, activity, long tail, overlap, weights, score distributions
    assert len(images) == 8
    assert all(base64.b64decode(image).startswith(PNG_MAGIC) for image in images)
    assert not re.search(r'(src|href)="(?!data:)', document)  # nothing loaded from elsewhere
    assert document.count("<script>") == 1  # only the report's own image check
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; Friends" in document
    assert "&lt;b&gt;bold&lt;/b&gt;" in document
    for text in ("Truth About Cats &amp; Dogs", "light (BiasedBaseline)", "precision@10", "hold-out RMSE"):
        assert text in document
    assert re.search(r"<td>heavy</td><td class=\"num\">\d\.\d{4}</td>", document)  # the weights table


def test_report_data_refuses_members_that_are_not_the_ensembles(run):
    fields = {name: getattr(run, name) for name in run.__dataclass_fields__}
    unfitted = {"light": BiasedBaseline(damping=1.0), "heavy": BiasedBaseline(damping=50.0)}
    with pytest.raises(ValueError, match="models_"):
        ReportData(**{**fields, "members": unfitted})
    with pytest.raises(ValueError, match="models_"):
        ReportData(**{**fields, "members": {"light": run.members["light"]}})


def test_write_report_creates_folders(run, tmp_path):
    path = write_report(run, tmp_path / "a" / "b" / "report.html")
    assert path.is_file() and path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


# -- headless Chromium ------------------------------------------------------------------------
def chromium() -> str:
    """Return the Chromium executable; fail (in CI, where .ci/run installs it) or skip when absent."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    message = "headless Chromium is not installed: apt-get install -y chromium (.ci/run does this)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def open_in_chromium(page: Path, profile: Path) -> subprocess.CompletedProcess:
    """Load ``page`` in headless Chromium, offline; return the run (stdout: the DOM after load)."""
    command = [
        chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
        "--virtual-time-budget=5000", "--dump-dom", page.resolve().as_uri(),
    ]
    return subprocess.run(command, check=False, capture_output=True, text=True, timeout=120)


@pytest.mark.browser
def test_report_renders_its_images_in_chromium_without_console_errors(run, tmp_path):
    page = write_report(run, tmp_path / "report.html")
    result = open_in_chromium(page, tmp_path / "profile")
    assert result.returncode == 0, result.stderr[-2000:]
    body = re.search(r"<body[^>]*>", result.stdout)
    assert body, result.stdout[:500]
    assert 'data-images="8"' in body.group(0), body.group(0)
    assert 'data-images-ok="true"' in body.group(0), body.group(0)
    console = [line for line in result.stderr.splitlines()
               if ":CONSOLE" in line or "Uncaught" in line or "Failed to load resource" in line]
    assert console == [], console
    # The trap title stayed text: the DOM holds the report's one script element and no other.
    assert result.stdout.count("<script") == 1 and "&lt;script&gt;alert('x')" in result.stdout


@pytest.mark.browser
def test_chromium_check_catches_a_broken_page(tmp_path):
    """The checks above can fail: a broken image and a script error are both seen."""
    page = tmp_path / "broken.html"
    page.write_text('<html><body><script>undefinedFunction()</script></body></html>')
    result = open_in_chromium(page, tmp_path / "profile")
    assert "Uncaught ReferenceError" in result.stderr
    from movierec.report._html import _SCRIPT

    page.write_text(f'<html><head><script>{_SCRIPT}</script></head><body><img src="data:image/png;base64,AAAA">'
                    "</body></html>")
    result = open_in_chromium(page, tmp_path / "profile2")
    assert 'data-images-ok="false"' in result.stdout


# -- a ranking run: the error named right, the views people look for -------------------------
IMAGE = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)" alt="[^"]*">')
RATING_SECTION = re.compile(r'<section class="rating">.*?</section>', re.DOTALL)


def image_texts(document: str) -> list[str]:
    """Return the words written into each embedded PNG (its Description chunk)."""
    from PIL import Image

    return [Image.open(io.BytesIO(base64.b64decode(png))).text.get("Description", "")
            for png in IMAGE.findall(document)]


def words_outside_rating_section(document: str) -> str:
    """Return the page's text and its figures' words, the rating section left out."""
    rest = RATING_SECTION.sub("", document)
    return IMAGE.sub("", rest) + "\n".join(image_texts(rest))


@pytest.fixture(scope="module")
def ranking(u1, ml100k):
    """A ranking run: Popularity and EASE chosen on an nDCG@10 hold-out (Popularity is left out)."""
    ensemble = WeightedEnsemble([Popularity(), EASE()], metric="ndcg@10", select="forward",
                                random_state=0).fit(u1.train)
    assert list(ensemble.members_) == [1]
    members = {"ease": ensemble.models_[0]}
    models = {"popularity": Popularity().fit(u1.train), **members, "ensemble": ensemble}
    top = {name: model.top_n(n=20) for name, model in models.items()}
    metrics = evaluate(models, u1.test, top=top, k=10, task="ranking", catalogue=u1.train["movieId"].unique())
    return ReportData(
        dataset="ml-100k", split="official fold u1", train=u1.train, test=u1.test,
        titles=ml100k.items.set_index("movieId")["title"], members=members, ensemble=ensemble, metrics=metrics,
        top=top, k=10, users=[1, 2], task="ranking", n=10, names=["pop", "ease"],
        fit_seconds={"pop": 0.1, "ease": 2.0},
    )


@pytest.fixture(scope="module")
def page(ranking):
    return render_report(ranking)


@pytest.mark.slow
def test_a_ranking_page_says_rmse_nowhere_outside_the_rating_section(page):
    words = words_outside_rating_section(page)
    assert "RMSE" not in words
    assert "1 \N{MINUS SIGN} nDCG@10" in words  # the error the ensemble used, in the table and the weights chart
    weights_chart = [text for text in image_texts(page) if "ensemble weights" in text]
    assert len(weights_chart) == 1 and "1 \N{MINUS SIGN} nDCG@10 0.76" in weights_chart[0]


def test_the_rmse_check_sees_the_figures_words(u1):
    """A rating run's page names RMSE in its figures, which the check above reads from the PNGs."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ensemble = WeightedEnsemble([BiasedBaseline(), BiasedBaseline(damping=50.0)], candidates=20,
                                    random_state=0).fit(u1.train)
    members = dict(zip(["light", "heavy"], ensemble.models_))
    models = {**members, "ensemble": ensemble}
    top = {name: model.top_n(n=10) for name, model in models.items()}
    data = ReportData(dataset="ml-100k", split="u1", train=u1.train, test=u1.test, titles=pd.Series(dtype=str),
                      members=members, ensemble=ensemble, metrics=evaluate(models, u1.test, top=top), top=top)
    document = render_report(data)
    assert "RMSE" in "".join(image_texts(RATING_SECTION.search(document).group(0)))
    assert "RMSE 0.9" in "".join(image_texts(document))  # the weights chart, outside the rating section


def test_members_left_out_are_listed_with_their_hold_out_error_and_reason(page, ranking):
    error = ranking.ensemble.candidate_errors_[0]
    row = re.search(r"<tr><td>pop</td><td>Popularity</td><td class=\"num\">([\d.]+)</td><td>([^<]+)</td>", page)
    assert row, page[page.find("The ensemble's members"):][:2000]
    assert float(row.group(1)) == pytest.approx(error, abs=5e-5)
    assert row.group(2).startswith(LEFT_OUT)
    assert "left out on the hold-out: pop" in page  # the header says so too
    assert re.search(r"<tr><td>ease</td><td>EASE</td><td class=\"num\">[\d.]+</td><td>kept: 100% of the weight", page)


def test_the_user_panel_shows_n_movies(ranking):
    for n in (10, 7):
        document = render_report(dataclasses.replace(ranking, n=n))
        assert f"<h2>Top {n} for a few users</h2>" in document
        user = document[document.index("<h3>User 1 "):document.index("<h3>User 2 ")]
        lists = re.findall(r"<td><ol>(.*?)</ol></td>", user)
        assert [item.count("<li") for item in lists] == [5, n, n, n]  # history, then ensemble, ease, popularity


def test_the_user_panel_marks_test_hits_and_gives_the_ensembles_reasons(ranking):
    document = render_report(ranking)
    user = document[document.index("<h3>User 1 "):document.index("<h3>User 2 ")]
    lists = re.findall(r"<td><ol>(.*?)</ol></td>", user)
    titles = ranking.titles
    test_titles = {titles[m] for m in ranking.test.loc[ranking.test.userId == 1, "movieId"]}
    train_titles = {titles[m] for m in ranking.train.loc[ranking.train.userId == 1, "movieId"]}
    for column in lists[1:]:  # each model's list: an item is marked exactly when it is in the test part
        for item in re.findall(r"<li( class=\"hit\")?>(.*?)(?:<span class=\"why\">.*?</span>)?</li>", column):
            hit, text = item
            title = html.unescape(text.removesuffix(" ✓"))
            assert bool(hit) == text.endswith(" ✓") == (title in test_titles), text
    reasons = re.findall(r'<span class="why">because of (.*?)</span>', lists[1])
    assert len(reasons) == ranking.n  # every ensemble movie has its reasons
    for reason in reasons:  # named after movies the user rated in train, with their shares
        for named in html.unescape(reason).split("), "):
            title, share = named.rsplit(" (", 1)
            assert title in train_titles and share.rstrip(")").endswith("%")
    assert "because of" not in "".join(lists[2:])  # reasons are the ensemble's


def test_the_views_come_in_order_and_the_internals_are_folded_at_the_end(page):
    headings = ["Ranking quality on the test part", "Quality by list length: k = 1 to 20",
                "Who is served well: nDCG@10 by user activity", "The long tail", "How alike the lists are",
                "<h2>The ensemble's members</h2>", "Top 10 for a few users", '<details class="internals">',
                "Scores before and after standardization"]
    positions = [page.find(text) for text in headings]
    assert -1 not in positions and positions == sorted(positions), dict(zip(headings, positions))
    internals = page[page.index('<details class="internals">'):]
    assert internals.rstrip().endswith("</details>\n</body>\n</html>") and "<details open" not in page
    assert len(IMAGE.findall(internals)) == 2 and len(IMAGE.findall(page)) == 7


@pytest.mark.slow
@pytest.mark.browser
def test_the_ranking_page_renders_every_image_in_chromium(ranking, tmp_path):
    path = write_report(ranking, tmp_path / "report.html")
    result = open_in_chromium(path, tmp_path / "profile")
    body = re.search(r"<body[^>]*>", result.stdout)
    assert body and 'data-images="7"' in body.group(0) and 'data-images-ok="true"' in body.group(0), result.stderr[-2000:]


# -- the figures behind the plots ----------------------------------------------------------------
def test_the_curves_at_k_are_the_metrics_at_k(ranking):
    curves = metric_curves(ranking.top, ranking.test)
    assert sorted(curves["k"].unique()) == list(range(1, 21))
    for name, ranked in ranking.top.items():
        for k in (1, 10, 20):
            row = curves[(curves["model"] == name) & (curves["k"] == k)].iloc[0]
            assert row["ndcg"] == pytest.approx(ndcg_at_k(ranked, ranking.test, k), abs=1e-12)
            assert row["precision"] == pytest.approx(precision_at_k(ranked, ranking.test, k), abs=1e-12)


@settings(max_examples=30)  # each example checks every k against the metrics: 30 draws cover the cases
@given(st.lists(st.permutations(list(range(12))), min_size=1, max_size=6),
       st.lists(st.sets(st.integers(0, 14), min_size=1, max_size=6), min_size=1, max_size=6),
       st.integers(1, 12))
def test_curves_agree_with_the_metrics_on_any_lists(orders, relevant, depth):
    top = pd.DataFrame([(u, m, -r, r + 1) for u, order in enumerate(orders) for r, m in enumerate(order)],
                       columns=["userId", "movieId", "score", "rank"])
    test = pd.DataFrame([(u, m) for u, movies in enumerate(relevant) for m in sorted(movies)],
                        columns=["userId", "movieId"])
    curves = metric_curves({"m": top}, test, depth=depth)
    for k in range(1, depth + 1):
        row = curves[curves["k"] == k].iloc[0]
        assert row["ndcg"] == pytest.approx(ndcg_at_k(top, test, k), abs=1e-12)
        assert row["precision"] == pytest.approx(precision_at_k(top, test, k), abs=1e-12)


def test_quality_by_activity_bins_every_user_once(ranking):
    per_user = per_user_table(ranking.top, ranking.test, 10)
    assert set(per_user["model"]) == set(ranking.top)
    table = by_activity(per_user, ranking.train, "ndcg@10")
    assert table["users"].sum() == per_user["userId"].nunique() and len(table) == 5
    assert (table["low"].iloc[1:].to_numpy() > table["high"].iloc[:-1].to_numpy()).all()  # disjoint, in order
    ease = per_user[per_user["model"] == "ease"]
    weighted = (table["ease"] * table["users"]).sum() / table["users"].sum()
    assert weighted == pytest.approx(ease["ndcg@10"].mean()) == pytest.approx(ranking.metrics.loc["ease", "ndcg@10"])


def test_long_tail_shares(ranking):
    tail = long_tail(ranking.train, ranking.test, ranking.top, 10)
    assert list(tail.index) == list(range(1, 11))
    assert np.allclose(tail.sum(), 1.0)
    assert tail["catalogue"].to_numpy() == pytest.approx(np.full(10, 0.1), abs=0.01)
    assert tail.loc[1, "popularity"] == 1.0  # the most-rated movies are the top decile
    assert tail.loc[1, "test part"] > 0.3 > tail.loc[10, "test part"]


def test_list_overlap_by_hand_and_on_a_run(ranking):
    a = pd.DataFrame({"userId": [1, 1, 2, 2], "movieId": [1, 2, 1, 2], "rank": [1, 2, 1, 2]})
    b = pd.DataFrame({"userId": [1, 1, 2, 2, 3], "movieId": [2, 3, 3, 4, 1], "rank": [1, 2, 1, 2, 1]})
    matrix = list_overlap({"a": a, "b": b}, k=2)
    assert matrix.loc["a", "b"] == matrix.loc["b", "a"] == pytest.approx((1 / 3 + 0) / 2)
    assert matrix.loc["a", "a"] == 1.0
    real = list_overlap(ranking.top, 10)
    assert real.loc["ease", "ensemble"] == pytest.approx(1.0)  # one member: the ensemble ranks as it does
    assert 0 < real.loc["popularity", "ease"] < 0.5


def test_per_user_table_matches_per_user_metrics(ranking):
    table = per_user_table(ranking.top, ranking.test, 10)
    assert list(table.columns[:2]) == ["userId", "model"]
    own = per_user_metrics(ranking.top["popularity"], ranking.test, 10)
    mine = table[table["model"] == "popularity"].drop(columns="model").reset_index(drop=True)
    pd.testing.assert_frame_equal(mine, own)


# -- the three-models notebook -----------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.spark
def test_the_three_models_notebook_runs_as_a_script(data_home):
    """examples/three_models.py (jupytext percent format) runs top to bottom, as CI executes it."""
    script = ROOT / "examples" / "three_models.py"
    assert script.read_text(encoding="utf-8").startswith("# ---\n# jupyter:")  # a jupytext header
    result = subprocess.run(
        [sys.executable, str(script)], check=False, capture_output=True, text=True, timeout=900, cwd=ROOT,
        env={**os.environ, "MOVIEREC_DATA": str(data_home)},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    for name in ("SparkALS", "SurpriseSVD", "SageMakerFM", "WeightedEnsemble"):
        assert re.search(rf"{name}\b.*RMSE (0\.\d{{4}})", out), (name, out[-2000:])
    values = [float(v) for v in re.findall(r"RMSE (0\.\d{4})", out)]
    assert all(0.85 < v < 1.1 for v in values), values
    assert out.count("Top 5 for user") >= 4 * 3  # three users, each model and the ensemble
