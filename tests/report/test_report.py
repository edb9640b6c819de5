"""The HTML report (rendered in headless Chromium) and the seed-report notebook."""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from movierec import BiasedBaseline, WeightedEnsemble
from movierec.exceptions import DataValidationError
from movierec.metrics import evaluate
from movierec.report import ReportData, render_report, write_report
from movierec.report._history import user_history

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
    assert len(images) == 4  # RMSE/MAE, ranking, score distributions, weights
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
    assert 'data-images="4"' in body.group(0), body.group(0)
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


# -- the seed-report notebook -----------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.spark
def test_seed_report_notebook_runs_as_a_script(data_home):
    """examples/seed_report.py (jupytext percent format) runs top to bottom, as CI executes it."""
    script = ROOT / "examples" / "seed_report.py"
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
