"""The ``movierec`` command, driven end to end in a subprocess on the real ml-100k archive."""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from movierec import registry
from movierec.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
CSV_COLUMNS = ["userId", "movieId", "title", "score", "rank"]
ML100K_USERS = 943
# Nothing listens on port 9 (discard): a "download" from it fails at once, offline.
DEAD_MIRROR = "http://127.0.0.1:9/"

pytestmark = pytest.mark.realdata


def run_cli(*args: str, data: Path, timeout: float = 300, **env: str) -> subprocess.CompletedProcess:
    """Run ``python -m movierec ARGS`` with MOVIEREC_DATA=data (and ``env``); return the finished process."""
    environment = {key: value for key, value in os.environ.items() if key != "MOVIEREC_MIRROR"}
    environment.update(MOVIEREC_DATA=str(data), **env)
    return subprocess.run(
        [sys.executable, "-m", "movierec", *args],
        check=False, capture_output=True, text=True, timeout=timeout, env=environment, cwd=ROOT,
    )


def assert_usage_error(result: subprocess.CompletedProcess, fragment: str) -> None:
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("usage: movierec"), result.stderr
    assert fragment in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def read_recommendations(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path)
    assert list(frame.columns) == CSV_COLUMNS
    return frame


def check_recommendations(frame: pd.DataFrame, train: pd.DataFrame, n: int = 5) -> None:
    assert len(frame) == ML100K_USERS * n
    assert frame["userId"].nunique() == ML100K_USERS
    assert frame.groupby("userId")["rank"].apply(list).map(lambda r: r == list(range(1, n + 1))).all()
    assert frame["title"].notna().all() and (frame["title"].str.len() > 0).all()
    # Sorted by user, then rank; scores do not increase down a user's list.
    assert frame[["userId", "rank"]].equals(frame.sort_values(["userId", "rank"])[["userId", "rank"]])
    assert (frame.groupby("userId")["score"].diff().dropna() <= 1e-12).all()
    seen = frame.merge(train[["userId", "movieId"]], on=["userId", "movieId"])
    assert seen.empty, "a recommended movie was already rated in train"


def table_rows(stdout: str) -> dict[str, list[str]]:
    """Return the Markdown table printed on stdout as {first cell: other cells}."""
    rows = {}
    for line in stdout.splitlines():
        if line.startswith("| ") and not set(line) <= set("|-: "):
            cells = [c.strip() for c in line.strip("|").split("|")]
            rows[cells[0]] = cells[1:]
    return rows


@pytest.fixture(scope="module")
def baseline_run(tmp_path_factory, data_home):
    out = tmp_path_factory.mktemp("baseline-run")
    return run_cli("recommend", "--dataset", "ml-100k", "--task", "rating", "--models", "baseline", "--n", "5", "--out", str(out),
                   "--quiet", data=data_home), out


def test_recommend_writes_csv_and_report(baseline_run, u1):
    result, out = baseline_run
    assert result.returncode == 0, result.stderr
    rows = table_rows(result.stdout)
    assert list(rows) == ["model", "baseline", "ensemble"]
    assert rows["model"][:2] == ["RMSE", "MAE"]
    assert rows["baseline"][0] == "0.9595"  # BiasedBaseline on u1
    # The ensemble's own hold-out warning, once, with its prefix (u1's 10 % hold-out has 17 cold pairs).
    assert result.stderr.count("movierec: warning: ensemble hold-out: 17 of 8004 test pairs") == 1, result.stderr
    check_recommendations(read_recommendations(out / "recommendations.csv"), u1.train)
    report = (out / "report.html").read_text(encoding="utf-8")
    assert report.count('src="data:image/png;base64,') == 8  # rating task: 6 views, 2 folded internals
    assert "recommendations.csv" in result.stdout and "report.html" in result.stdout


def test_recommend_quiet_prints_no_info(baseline_run):
    result, _ = baseline_run
    assert "fitted baseline" not in result.stderr  # info messages are silenced
    assert "\r" not in result.stderr  # no progress bar


@pytest.mark.slow
def test_recommend_other_model_lists_and_test_size(tmp_path, data_home):
    result = run_cli("recommend", "--task", "rating", "--models", "baseline", "--test-size", "0.2", "--seed", "3", "--n", "3",
                     "--recommender", "baseline", "--ensemble", "full", "--out", str(tmp_path), data=data_home)
    assert result.returncode == 0, result.stderr
    assert "stratified 0.2" in result.stdout
    frame = read_recommendations(tmp_path / "recommendations.csv")
    assert len(frame) == ML100K_USERS * 3
    assert "fitted baseline" in result.stderr  # info messages without --quiet


@pytest.mark.slow
def test_recommender_left_out_by_forward_selection_is_a_clear_error(tmp_path, data_home):
    # Popularity adds nothing to EASE on the hold-out, so the ranking ensemble leaves it out.
    result = run_cli("recommend", "--models", "ease,pop", "--recommender", "pop", "--out", str(tmp_path / "out"),
                     "--quiet", data=data_home)
    assert result.returncode == 1
    assert "recommender pop: the ensemble left it out on the hold-out (members chosen: ease)" in result.stderr
    assert not (tmp_path / "out" / "recommendations.csv").exists()


def test_members_come_from_the_registry_seeded_where_they_take_a_seed():
    members = {name: registry.make_model(name, "rating", seed=7) for name in ["baseline", "svd"]}
    assert list(members) == ["baseline", "svd"]
    assert type(members["baseline"]) is registry.model_class("baseline")
    assert "random_state" not in members["baseline"].get_params()
    assert members["svd"].get_params()["random_state"] == 7
    commands = next(a for a in build_parser()._actions if a.dest == "command").choices
    help_text = commands["recommend"].format_help()
    for name, spec in registry.MODELS.items():
        assert f"{name}={spec.class_name}" in " ".join(help_text.split()), name


def test_python_m_and_console_script_agree(data_home):
    script = Path(sys.executable).with_name("movierec")
    if not script.exists():
        pytest.fail(f"the console script {script} is missing: pip install -e . installs it")
    version = subprocess.run([str(script), "--version"], check=False, capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and version.stdout.startswith("movierec ")
    assert run_cli("--version", data=data_home).stdout == version.stdout


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--n", "-1"], "argument --n: must be a positive integer, got '-1'"),
        (["--n", "0"], "argument --n"),
        (["--n", "five"], "argument --n"),
        (["--task", "rating", "--models", "baseline,nope"], "unknown model(s) nope"),
        (["--task", "rating", "--models", "baseline,baseline"], "named twice"),
        (["--dataset", "ml-9k"], "argument --dataset: invalid choice: 'ml-9k'"),
        (["--fold", "u9"], "argument --fold: invalid choice"),
        (["--test-size", "1.5"], "argument --test-size"),
        (["--fold", "u2", "--test-size", "0.2"], "--split and --test-size choose another split"),
        (["--dataset", "ml-1m", "--fold", "u1"], "only ml-100k has official folds"),
        (["--task", "rating", "--models", "baseline", "--recommender", "svd"], "argument --recommender"),
        (["--task", "rating", "--candidates", "3"], "argument --candidates"),
        (["--models", "svd"], "svd cannot be used for the ranking task"),
        (["--task", "rating", "--models", "ease"], "ease cannot be used for the rating task"),
        (["--no-such-option"], "unrecognized arguments"),
    ],
)
def test_recommend_bad_arguments_exit_2_with_usage(args, fragment, tmp_path, data_home):
    result = run_cli("recommend", *args, "--out", str(tmp_path / "out"), data=data_home)
    assert_usage_error(result, fragment)
    assert not (tmp_path / "out").exists()


def test_no_command_and_bad_evaluate_arguments_exit_2(data_home):
    assert_usage_error(run_cli(data=data_home), "the following arguments are required: COMMAND")
    assert_usage_error(run_cli("evaluate", "--folds", "u0-u9", data=data_home), "must lie within u1-u5")
    assert_usage_error(run_cli("evaluate", "--dataset", "ml-1m", "--folds", "u1-u5", data=data_home),
                       "only ml-100k has official folds")
    assert_usage_error(run_cli("download", "ml-9k", data=data_home), "argument NAME: invalid choice")


@pytest.mark.parametrize("command", ["recommend", "download", "evaluate"])
def test_missing_archive_offline_exits_1_with_url_and_path(command, tmp_path):
    empty = tmp_path / "data"
    empty.mkdir()
    args = {
        "recommend": ["recommend", "--task", "rating", "--models", "baseline", "--out", str(tmp_path / "out")],
        "download": ["download", "ml-100k"],
        "evaluate": ["evaluate", "--task", "rating", "--models", "baseline", "--folds", "u1"],
    }[command]
    result = run_cli(*args, data=empty, MOVIEREC_MIRROR=DEAD_MIRROR)
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("movierec: error:")]
    assert len(errors) == 1, result.stderr
    assert f"{DEAD_MIRROR}ml-100k.zip" in errors[0]
    assert str(empty / "ml-100k.zip") in errors[0]
    assert "Traceback" not in result.stderr
    assert list(empty.iterdir()) == []  # no partial download left behind


def test_debug_shows_the_traceback(tmp_path):
    result = run_cli("download", "ml-100k", "--debug", data=tmp_path, MOVIEREC_MIRROR=DEAD_MIRROR)
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "DatasetError" in result.stderr


def test_datasets_and_download_when_present(tmp_path, data_home):
    listed = run_cli("datasets", data=data_home)
    assert listed.returncode == 0, listed.stderr
    rows = table_rows(listed.stdout)
    assert rows["ml-100k"][0] == "yes" and rows["ml-1m"][0] == "no"
    assert "https://files.grouplens.org/datasets/movielens/ml-1m.zip" in rows["ml-1m"][1]
    assert f"data folder: {data_home}" in listed.stdout

    empty = run_cli("datasets", "--data-home", str(tmp_path), data=data_home)
    assert table_rows(empty.stdout)["ml-100k"][0] == "no"

    present = run_cli("download", "ml-100k", data=data_home)
    assert present.returncode == 0, present.stderr
    assert present.stdout.strip() == f"ml-100k: {data_home / 'ml-100k.zip'} (already present)"


def test_evaluate_prints_markdown_and_writes_csv(tmp_path, data_home):
    out = tmp_path / "cv" / "table.csv"
    result = run_cli("evaluate", "--dataset", "ml-100k", "--folds", "u1,u2", "--task", "rating", "--models", "baseline",
                     "--out", str(out), "--quiet", data=data_home)
    assert result.returncode == 0, result.stderr
    rows = table_rows(result.stdout)  # the per-fold table (u1, u2), then the summary
    assert list(rows) == ["fold", "u1", "u2", "model", "baseline", "ensemble"]
    assert re.fullmatch(r"0\.9\d{3} ± 0\.\d{4}", rows["baseline"][0])
    table = pd.read_csv(out)  # a row per fold and model, then each model's mean and sd
    assert list(table.columns) == ["fold", "model", "rmse", "mae"]
    assert table["fold"].tolist() == ["u1", "u1", "u2", "u2", "mean", "sd", "mean", "sd"]
    baseline = table[table["model"] == "baseline"].set_index("fold")
    assert 0.9 < baseline.loc["mean", "rmse"] < 1.0 and baseline.loc["sd", "rmse"] > 0


def test_cli_reference_documents_every_registered_model():
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    for name, spec in registry.MODELS.items():
        assert f"| `{name}` | `{spec.class_name}`" in text, f"docs/cli.md does not list the model {name}"


def test_cli_reference_documents_every_option():
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    for name, sub in commands.items():
        assert f"movierec {name}" in text, name
        for action in sub._actions:
            for option in action.option_strings:
                if option.startswith("--") and option != "--help":
                    assert option in text, f"docs/cli.md does not mention {name} {option}"


@pytest.mark.slow
@pytest.mark.spark
def test_recommend_with_spark_surprise_fm_and_the_ensemble(tmp_path, u1, data_home):
    """The main job (what `make run` does): three real backends and their ensemble."""
    result = run_cli("recommend", "--dataset", "ml-100k", "--task", "rating", "--models", "als,svd,fm", "--n", "5",
                     "--out", str(tmp_path), data=data_home, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = table_rows(result.stdout)
    assert list(rows) == ["model", "als", "svd", "fm", "ensemble"]
    rmse = {name: float(cells[0]) for name, cells in rows.items() if name != "model"}
    assert all(0.85 < value < 1.1 for value in rmse.values()), rmse
    # The blend of three models is at least as good as their mean (it is usually better than each).
    assert rmse["ensemble"] <= sum(rmse[m] for m in ("als", "svd", "fm")) / 3 + 1e-4, rmse
    check_recommendations(read_recommendations(tmp_path / "recommendations.csv"), u1.train)
    report = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert report.count('src="data:image/png;base64,') == 8  # rating task: 6 views, 2 folded internals
    for name in ("SparkALS", "SurpriseSVD", "SageMakerFM"):
        assert name in report


# -- the ranking task ------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.realdata
def test_recommend_ranking_task_beats_the_popularity_row(tmp_path, data_home, u1):
    out = tmp_path / "out"
    result = run_cli("recommend", "--models", "ease,pop", "--n", "10", "--out", str(out), "-q", data=data_home)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    header = lines[0]
    for column in ("precision@10", "nDCG@10", "MAP@10", "coverage"):
        assert column in header
    assert "RMSE" not in header
    rows = {line.split("|")[1].strip(): line for line in lines if line.startswith("| ")}
    assert list(rows)[1:] == ["popularity", "ease", "pop", "ensemble"] or list(rows)[1:] == ["popularity", "ease", "ensemble"]
    ndcg = {name: float(row.split("|")[3]) for name, row in rows.items() if name != "model"}
    assert ndcg["ensemble"] >= 0.55 and ndcg["ensemble"] >= 1.6 * ndcg["popularity"]
    assert "members chosen on the hold-out: ease" in result.stdout
    recs = pd.read_csv(out / "recommendations.csv")
    assert len(recs) == 943 * 10
    seen = set(zip(u1.train.userId, u1.train.movieId))
    assert not any(pair in seen for pair in zip(recs.userId, recs.movieId))
    report = (out / "report.html").read_text()
    assert "ranking: members trained for top-N" in report and "Ranking quality on the test part" in report


@pytest.mark.slow
@pytest.mark.realdata
def test_evaluate_ranking_task_cross_validates_ranking_metrics(tmp_path, data_home):
    result = run_cli("evaluate", "--models", "ease", "--folds", "u1,u2", "--out", str(tmp_path / "cv.csv"), "-q",
                     data=data_home)
    assert result.returncode == 0, result.stderr
    assert "nDCG@10" in result.stdout and "popularity" in result.stdout and "task ranking" in result.stdout
    table = pd.read_csv(tmp_path / "cv.csv")
    assert list(table.columns) == ["fold", "model", "precision@10", "ndcg@10", "map@10"]
    means = table[table["fold"] == "mean"].set_index("model")
    assert means.loc["ease", "ndcg@10"] > 1.5 * means.loc["popularity", "ndcg@10"]
    assert (table["fold"].isin(["u1", "u2"]).groupby(table["model"]).sum() == 2).all()


@contextlib.contextmanager
def serving(model: Path) -> Iterator[int]:
    """Run ``movierec serve --model`` on a free port in a subprocess; yield the port once /health answers."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "movierec", "serve", "--model", str(model), "--port", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).close()
                break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.1)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=30)


# -- your own data, a kept model, a service (issue 16), stacked weights (issue 14) -------------------
@pytest.fixture(scope="module")
def own_files(tmp_path_factory, u1):
    folder = tmp_path_factory.mktemp("own")
    names = {"userId": "uid", "movieId": "sku", "rating": "stars", "timestamp": "ts"}
    u1.train.rename(columns=names).to_csv(folder / "train.csv", index=False)
    u1.test.rename(columns=names).to_csv(folder / "test.csv", index=False)
    (folder / "movies.csv").write_text("sku,title\n" + "\n".join(f"{i},Movie {i}" for i in range(1, 1700)))
    return folder


@pytest.mark.slow
@pytest.mark.realdata
def test_own_ratings_fit_save_recommend_and_evaluate_a_kept_model(own_files, tmp_path, data_home, u1):
    columns = ("--columns", "user=uid,item=sku,rating=stars,timestamp=ts")
    model = tmp_path / "model"
    fitted = run_cli("fit", "--ratings", str(own_files / "train.csv"), *columns, "--models", "ease,pop",
                     "--save", str(model), "-q", data=data_home)
    assert fitted.returncode == 0, fitted.stderr
    card = json.loads((model / "model-card.json").read_text())
    assert card["data"]["rows"] == len(u1.train) and card["extra"]["task"] == "ranking"
    assert set(card["validation"]["holdout_errors"]) == {"ease", "pop"}

    out = tmp_path / "out"
    kept = run_cli("recommend", "--model", str(model), "--ratings", str(own_files / "train.csv"), *columns,
                   "--items", str(own_files / "movies.csv"), "--n", "4", "--out", str(out), "-q", data=data_home)
    assert kept.returncode == 0, kept.stderr
    recs = pd.read_csv(out / "recommendations.csv")
    assert len(recs) == u1.train.userId.nunique() * 4
    assert recs.title.str.startswith("Movie ").all()
    # The kept model gives the lists a refit would: the same as the ensemble's top_n after load.
    from movierec import load_model

    top = load_model(model).top_n(n=4)
    assert list(zip(recs.userId, recs.movieId)) == list(zip(top.userId, top.movieId))

    scored = run_cli("evaluate", "--model", str(model), "--ratings", str(own_files / "test.csv"), *columns, "-q",
                     data=data_home)
    assert scored.returncode == 0, scored.stderr
    assert "ndcg@10" in scored.stdout and "ranking task" in scored.stdout


@pytest.mark.realdata
def test_serve_answers_over_real_http(own_files, tmp_path, data_home):
    model = tmp_path / "model"
    assert run_cli("fit", "--task", "rating", "--models", "baseline", "--save", str(model), "-q",
                   data=data_home).returncode == 0
    with serving(model) as port:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/users/1/recommendations?n=3", timeout=5) as response:
            body = json.loads(response.read())
        assert [row["rank"] for row in body["recommendations"]] == [1, 2, 3]
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/users/99999/recommendations", timeout=5)
        assert missing.value.code == 404


@pytest.mark.slow
@pytest.mark.realdata
def test_rating_task_with_stacked_weights(tmp_path, data_home):
    result = run_cli("recommend", "--task", "rating", "--models", "baseline,svd", "--weights", "stacked", "--n", "3",
                     "--out", str(tmp_path / "out"), "-q", data=data_home)
    assert result.returncode == 0, result.stderr
    rows = {line.split("|")[1].strip(): line.split("|") for line in result.stdout.splitlines() if line.startswith("| ")}
    ensemble_rmse = float(rows["ensemble"][2])
    assert ensemble_rmse <= min(float(rows["baseline"][2]), float(rows["svd"][2])) + 0.002


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["recommend", "--weights", "stacked"], "they need the rating task"),
        (["recommend", "--items", "x.csv"], "go with --ratings"),
        (["evaluate", "--model", "somewhere"], "needs --ratings"),
        (["fit", "--models", "ease"], "--save"),
        (["serve", "--model", "m", "--port", "70000"], "port number"),
    ],
)
def test_kept_model_arguments_exit_2_with_usage(args, fragment, data_home):
    assert_usage_error(run_cli(*args, data=data_home), fragment)


@pytest.mark.slow
@pytest.mark.realdata
def test_latest_layout_csv_to_fit_recommend_and_serve_gives_the_same_top_10(tmp_path, data_home, u1):
    """Issue 16's end to end: a MovieLens "latest" CSV (header, half stars, movies.csv) -> fit --save ->
    recommend --model -> serve; the top 10 over HTTP equals top_n in Python for the same users."""
    from movierec import load_model

    rng = np.random.default_rng(0)
    ratings = u1.train.assign(rating=u1.train.rating - rng.choice([0.0, 0.5], len(u1.train)))
    ratings.to_csv(tmp_path / "ratings.csv", index=False)
    movies = pd.DataFrame({"movieId": sorted(u1.train.movieId.unique())})
    movies = movies.assign(title=[f'"Film {i}, The (1990)"' for i in movies.movieId], genres="Drama|Comedy")
    (tmp_path / "movies.csv").write_text(
        "movieId,title,genres\n" + "\n".join(f"{m},{t},{g}" for m, t, g in movies.itertuples(index=False)))
    model = tmp_path / "model"
    fitted = run_cli("fit", "--ratings", str(tmp_path / "ratings.csv"), "--items", str(tmp_path / "movies.csv"),
                     "--models", "ease,pop", "--save", str(model), "-q", data=data_home)
    assert fitted.returncode == 0, fitted.stderr
    out = tmp_path / "out"
    kept = run_cli("recommend", "--model", str(model), "--ratings", str(tmp_path / "ratings.csv"),
                   "--items", str(tmp_path / "movies.csv"), "--users", "1,2,3", "--n", "10", "--out", str(out), "-q",
                   data=data_home)
    assert kept.returncode == 0, kept.stderr
    recs = pd.read_csv(out / "recommendations.csv")
    assert recs.title.str.startswith("Film ").all() and len(recs) == 30

    expected = load_model(model).top_n(users=[1, 2, 3], n=10)
    assert list(zip(recs.userId, recs.movieId)) == list(zip(expected.userId, expected.movieId))
    with serving(model) as port:
        for user in (1, 2, 3):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/users/{user}/recommendations?n=10") as response:
                served = json.loads(response.read())["recommendations"]
            mine = expected[expected.userId == user]
            assert [row["movieId"] for row in served] == mine.movieId.tolist()
            np.testing.assert_allclose([row["score"] for row in served], mine.score, rtol=1e-12)
        # A malformed body does not take the service down.
        bad = urllib.request.Request(f"http://127.0.0.1:{port}/predict", data=b"{not json", method="POST",
                                     headers={"content-type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(bad)
        assert refused.value.code == 422
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health") as response:
            assert json.loads(response.read())["status"] == "ok"


@pytest.mark.slow
def test_own_ratings_without_columns_take_rating_and_timestamp_when_present(tmp_path, data_home):
    from movierec.testing import synthetic_ratings

    ratings = synthetic_ratings(n_users=30, n_items=25, seed=4)
    ratings[["userId", "movieId", "rating"]].to_csv(tmp_path / "no_time.csv", index=False)  # no timestamp column
    result = run_cli("recommend", "--ratings", str(tmp_path / "no_time.csv"), "--models", "ease", "--n", "3",
                     "--out", str(tmp_path / "out"), "-q", data=data_home)
    assert result.returncode == 0, result.stderr
    top = pd.read_csv(tmp_path / "out" / "recommendations.csv")
    assert len(top) == 3 * top.userId.nunique() and top.userId.nunique() > 20
    # one user: after the split, that user rated every training movie; a clear error before any fit
    alone = pd.DataFrame({"userId": 1, "movieId": range(1, 11), "rating": 3.0})
    alone.to_csv(tmp_path / "alone.csv", index=False)
    result = run_cli("recommend", "--ratings", str(tmp_path / "alone.csv"), "--out", str(tmp_path / "o2"), data=data_home)
    assert result.returncode == 1 and "nothing left to recommend" in result.stderr, result.stderr
    assert "fitted" not in result.stderr
    # one rating per user: the split has no test part; a clear error before any fit
    single = pd.DataFrame({"userId": range(1, 31), "movieId": [i % 7 for i in range(30)], "rating": 4.0})
    single.to_csv(tmp_path / "single.csv", index=False)
    result = run_cli("recommend", "--ratings", str(tmp_path / "single.csv"), "--out", str(tmp_path / "o3"), data=data_home)
    assert result.returncode == 1 and "no rating went to test" in result.stderr, result.stderr
    assert "fitted" not in result.stderr
