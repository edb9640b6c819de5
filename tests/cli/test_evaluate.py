"""``movierec evaluate`` on any data: per-user k-fold of a ratings file or a MovieLens-style CSV, a
temporal split, the official folds, and the table and CSV it writes (one row per fold and model,
then each model's mean and sd)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.realdata


def run_cli(*args: str, data: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``python -m movierec ARGS`` with MOVIEREC_DATA=data; return the finished process."""
    environment = {key: value for key, value in os.environ.items() if key != "MOVIEREC_MIRROR"}
    return subprocess.run([sys.executable, "-m", "movierec", *args], check=False, capture_output=True, text=True,
                          timeout=timeout, env={**environment, "MOVIEREC_DATA": str(data)}, cwd=ROOT)


def assert_usage_error(result: subprocess.CompletedProcess, fragment: str) -> None:
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("usage: movierec"), result.stderr
    assert fragment in result.stderr, result.stderr


def _tables(stdout: str) -> list[list[list[str]]]:
    """Return every Markdown table printed on stdout, each as its rows of cells (header first)."""
    tables, current = [], []
    for line in stdout.splitlines() + [""]:
        if line.startswith("|"):
            if not set(line) <= set("|-: "):
                current.append([cell.strip() for cell in line.strip("|").split("|")])
        elif current:
            tables.append(current)
            current = []
    return tables


@pytest.fixture(scope="module")
def ratings_files(tmp_path_factory, ml100k) -> dict[str, Path]:
    """ml-100k's ratings as a file of your own (tab-separated, other column names) and as a
    ml-latest-small-style CSV (userId,movieId,rating,timestamp with a header)."""
    folder = tmp_path_factory.mktemp("own")
    ratings = ml100k.ratings
    own = folder / "ratings.tsv"
    ratings.rename(columns={"userId": "user", "movieId": "item", "rating": "stars", "timestamp": "ts"}).to_csv(
        own, sep="\t", index=False)
    latest = folder / "latest.csv"
    ratings[["userId", "movieId", "rating", "timestamp"]].to_csv(latest, index=False)
    no_time = folder / "no_time.csv"
    ratings[["userId", "movieId", "rating"]].to_csv(no_time, index=False)
    return {"own": own, "latest": latest, "no_time": no_time}


def test_a_ratings_file_is_cross_validated_by_per_user_5_fold(ratings_files, tmp_path, data_home):
    out = tmp_path / "cv.csv"
    result = run_cli("evaluate", "--ratings", str(ratings_files["own"]),
                     "--columns", "user=user,item=item,rating=stars,timestamp=ts", "--folds", "5",
                     "--task", "rating", "--models", "baseline", "--out", str(out), "-q", data=data_home)
    assert result.returncode == 0, result.stderr
    per_fold, summary = _tables(result.stdout)
    assert per_fold[0] == ["fold", "model", "RMSE", "MAE"]
    assert [row[:2] for row in per_fold[1:]] == [[f"{i}/5", m] for i in range(1, 6) for m in ("baseline", "ensemble")]
    assert summary[0] == ["model", "RMSE", "MAE"] and [row[0] for row in summary[1:]] == ["baseline", "ensemble"]
    assert re.fullmatch(r"0\.9\d{3} ± 0\.0\d{3}", summary[1][1])
    assert "per-user 5-fold" in result.stdout and "over 5 folds" in result.stdout
    table = pd.read_csv(out)
    assert list(table.columns) == ["fold", "model", "rmse", "mae"]
    assert table["fold"].tolist() == [f"{i}/5" for i in range(1, 6) for _ in range(2)] + ["mean", "sd"] * 2
    folds = table[table["fold"].str.contains("/")]
    mean = table[(table["fold"] == "mean") & (table["model"] == "baseline")]["rmse"].item()
    assert mean == pytest.approx(folds[folds["model"] == "baseline"]["rmse"].mean(), abs=1e-6)
    assert 0.9 < mean < 1.0
    # the seed makes the folds: the same command gives the same table
    again = run_cli("evaluate", "--ratings", str(ratings_files["own"]),
                    "--columns", "user=user,item=item,rating=stars,timestamp=ts", "--folds", "5",
                    "--task", "rating", "--models", "baseline", "-q", data=data_home)
    assert _tables(again.stdout) == [per_fold, summary]


def test_a_movielens_style_csv_is_cross_validated_for_ranking(ratings_files, tmp_path, data_home):
    result = run_cli("evaluate", "--ratings", str(ratings_files["latest"]), "--folds", "3", "--models", "pop",
                     "--out", str(tmp_path / "cv.csv"), "-q", data=data_home)
    assert result.returncode == 0, result.stderr
    per_fold, _summary = _tables(result.stdout)
    assert per_fold[0] == ["fold", "model", "precision@10", "nDCG@10", "MAP@10"]
    assert {row[1] for row in per_fold[1:]} == {"popularity", "pop", "ensemble"}
    assert len(per_fold) == 1 + 3 * 3
    table = pd.read_csv(tmp_path / "cv.csv")
    assert list(table.columns) == ["fold", "model", "precision@10", "ndcg@10", "map@10"]  # keys stay lower-case
    popularity = table[(table["fold"] == "mean") & (table["model"] == "popularity")]["ndcg@10"].item()
    assert 0.1 < popularity < 0.5


def test_temporal_split_tests_each_users_latest_ratings(ratings_files, tmp_path, data_home):
    result = run_cli("evaluate", "--ratings", str(ratings_files["latest"]), "--split", "temporal",
                     "--task", "rating", "--models", "baseline", "-q", data=data_home)
    assert result.returncode == 0, result.stderr
    per_fold, summary = _tables(result.stdout)
    assert [row[0] for row in per_fold[1:]] == ["temporal", "temporal"]
    assert "latest 0.2" in result.stdout and "over 1 fold" in result.stdout
    rmse = float(summary[1][1])
    assert 0.9 < rmse < 1.2  # the future is harder to predict than a random fifth


def test_temporal_split_needs_timestamps_and_says_so(ratings_files, tmp_path, data_home):
    for command in (["evaluate"], ["recommend", "--out", str(tmp_path / "out")]):
        result = run_cli(*command, "--ratings", str(ratings_files["no_time"]), "--split", "temporal",
                         "--task", "rating", "--models", "baseline", "-q", data=data_home)
        assert result.returncode == 1, result.stderr
        assert "--split temporal" in result.stderr and "timestamp" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr


def test_recommend_splits_by_time(ratings_files, tmp_path, data_home, ml100k):
    result = run_cli("recommend", "--dataset", "ml-100k", "--split", "temporal", "--test-size", "0.1", "--task",
                     "rating", "--models", "baseline", "--out", str(tmp_path / "out"), data=data_home)
    assert result.returncode == 0, result.stderr
    counts = ml100k.ratings.groupby("userId").size()
    want = int(np.clip(np.rint(0.1 * counts), 1, counts - 1).sum())
    assert f"/ {want:,} test ratings" in result.stdout
    assert "temporal" in result.stdout
    loaded = next(line for line in result.stderr.splitlines() if line.startswith("movierec: loaded"))
    assert f"{len(ml100k.ratings) - want:,} train" in loaded  # thousands separators in every count


def test_official_folds_stay_the_default_on_ml100k(tmp_path, data_home):
    result = run_cli("evaluate", "--folds", "u1,u2", "--task", "rating", "--models", "baseline", "-q",
                     "--out", str(tmp_path / "cv.csv"), data=data_home)
    assert result.returncode == 0, result.stderr
    per_fold, _ = _tables(result.stdout)
    assert [row[0] for row in per_fold[1:]] == ["u1", "u1", "u2", "u2"]
    assert "official folds u1,u2" in result.stdout


@pytest.mark.parametrize(("args", "fragment"), [
    (["--folds", "1"], "2 or more"),
    (["--folds", "u1-u5", "--ratings", "x.csv"], "only ml-100k has official folds"),
    (["--folds", "u1", "--dataset", "ml-1m"], "only ml-100k has official folds"),
    (["--split", "temporal", "--folds", "3"], "one split, not folds"),
    (["--test-size", "0.3"], "goes with --split temporal"),
    (["--split", "random"], "invalid choice"),
])
def test_bad_combinations_are_usage_errors(args, fragment, data_home):
    assert_usage_error(run_cli("evaluate", *args, data=data_home), fragment)


def test_recommend_fold_and_split_exclude_each_other(data_home):
    assert_usage_error(run_cli("recommend", "--fold", "u2", "--split", "temporal", data=data_home),
                       "--split and --test-size choose another split")
