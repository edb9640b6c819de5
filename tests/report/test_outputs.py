"""What ``movierec recommend`` writes for a script: metrics.json (the printed table rebuilt from it),
per_user.csv, recommendations.parquet, and the run logged to a real local MLflow store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.realdata, pytest.mark.slow]


@pytest.fixture(scope="module")
def run(tmp_path_factory, data_home):
    """One ``movierec recommend`` (Popularity as the only member: a few seconds) with every output asked for."""
    folder = tmp_path_factory.mktemp("recommend")
    environment = {key: value for key, value in os.environ.items() if not key.startswith("MLFLOW_")}
    environment.update(MOVIEREC_DATA=str(data_home), MLFLOW_TRACKING_URI=str(folder / "store"))
    result = subprocess.run(
        [sys.executable, "-m", "movierec", "recommend", "--models", "pop", "--n", "7", "--format", "parquet",
         "--mlflow", "--out", str(folder / "out"), "-q"],
        check=False, capture_output=True, text=True, timeout=600, env=environment, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    return folder, result.stdout


def printed_table(stdout: str) -> dict[str, dict[str, str]]:
    """Return the printed Markdown table as {model: {column: cell}}."""
    lines = [line for line in stdout.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]
    return {row[0]: dict(zip(header[1:], row[1:])) for row in rows}


def test_the_printed_table_is_rebuilt_from_metrics_json(run):
    folder, stdout = run
    document = json.loads((folder / "out" / "metrics.json").read_text())
    printed = printed_table(stdout)
    assert list(printed) == [row["model"] for row in document["table"]] == ["popularity", "pop", "ensemble"]
    for row in document["table"]:
        cells = {column.lower(): cell for column, cell in printed[row["model"]].items()}
        for key, value in row.items():
            if key in ("model", "scored"):
                continue
            cell = cells.pop("fit s" if key == "fit_seconds" else key)
            expected = "" if value is None else f"{value:.1f}" if key == "fit_seconds" else f"{value:.4f}"
            assert cell == expected, (row["model"], key)
        assert cells == {}, cells  # every printed column comes from metrics.json


def test_metrics_json_holds_the_settings_data_split_and_versions(run, u1):
    folder, _ = run
    document = json.loads((folder / "out" / "metrics.json").read_text())
    assert document["task"] == "ranking" and document["metric"] == "ndcg@10" and document["k"] == 10
    assert document["settings"]["n"] == 7 and document["settings"]["models"] == ["pop"]
    assert document["split"] == "official fold u1"
    assert document["data"]["source_sha256"]["u1.test"].startswith("18c6014a")  # GroupLens' published hash
    assert document["train"]["ratings"] == len(u1.train) and document["test"]["ratings"] == len(u1.test)
    assert document["versions"]["movierec"] and document["versions"]["pandas"] == pd.__version__
    assert document["members"] == [{"name": "pop", "holdout_error": pytest.approx(document["members"][0]["holdout_error"]),
                                    "kept": True, "weight": pytest.approx(1 / document["members"][0]["holdout_error"]),
                                    "fit_seconds": pytest.approx(document["members"][0]["fit_seconds"])}]
    curve = document["curves"]["ensemble"]
    assert curve["k"] == list(range(1, 21))
    assert curve["ndcg"][9] == pytest.approx(document["table"][2]["ndcg@10"], abs=1e-12)
    assert document["timings"]["report"] > 0


def test_per_user_csv_averages_to_the_table(run):
    folder, _ = run
    per_user = pd.read_csv(folder / "out" / "per_user.csv")
    assert list(per_user.columns) == ["userId", "model", "precision@10", "recall@10", "ndcg@10", "map@10"]
    table = pd.DataFrame(json.loads((folder / "out" / "metrics.json").read_text())["table"]).set_index("model")
    means = per_user.groupby("model")[["precision@10", "ndcg@10", "map@10"]].mean()
    pd.testing.assert_frame_equal(means.loc[table.index], table[means.columns], atol=1e-5, check_names=False)


def test_parquet_holds_the_csv_rows(run):
    folder, _ = run
    csv = pd.read_csv(folder / "out" / "recommendations.csv")
    parquet = pd.read_parquet(folder / "out" / "recommendations.parquet")
    assert len(csv) == 943 * 7 and csv["rank"].max() == 7
    pd.testing.assert_frame_equal(parquet.reset_index(drop=True)[["userId", "movieId", "rank"]],
                                  csv[["userId", "movieId", "rank"]], check_dtype=False)


def test_the_report_shows_n_movies_per_user(run):
    folder, _ = run
    page = (folder / "out" / "report.html").read_text()
    assert "<h2>Top 7 for a few users</h2>" in page and "RMSE" not in page


def test_the_run_is_in_the_local_mlflow_store(run):
    mlflow = pytest.importorskip("mlflow")
    folder, stdout = run
    run_id = stdout.split("logged MLflow run ")[1].split()[0]
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    client = mlflow.tracking.MlflowClient((folder / "store").resolve().as_uri())
    logged = client.get_run(run_id)
    document = json.loads((folder / "out" / "metrics.json").read_text())
    assert logged.data.params["task"] == "ranking" and logged.data.params["settings.n"] == "7"
    assert logged.data.params["settings.models"] == '["pop"]' and logged.data.params["split"] == "official fold u1"
    assert logged.data.metrics["ensemble.ndcg_at_10"] == pytest.approx(document["table"][2]["ndcg@10"])
    assert logged.data.metrics["popularity.coverage"] == pytest.approx(document["table"][0]["coverage"])
    assert logged.data.metrics["pop.holdout_error"] == pytest.approx(document["members"][0]["holdout_error"])
    assert sorted(a.path for a in client.list_artifacts(run_id)) == ["metrics.json", "per_user.csv", "report.html"]
    copy = Path(client.download_artifacts(run_id, "metrics.json", str(folder)))
    assert json.loads(copy.read_text()) == document
