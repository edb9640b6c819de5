"""movierec.tracking against a real local MLflow file store: a kept model's run and its pyfunc model,
where runs go, and metric names."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import pandas as pd
import pytest

from movierec import EASE, Popularity, WeightedEnsemble, tracking
from movierec.model_card import build_card, save_with_card

mlflow = pytest.importorskip("mlflow")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_ALLOW_FILE_STORE"):
        monkeypatch.delenv(name, raising=False)


def test_import_needs_no_mlflow():
    code = "import sys, movierec, movierec.tracking; print('mlflow' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert result.stdout.strip() == "False"


def test_tracking_uri_rules(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert tracking.tracking_uri() == (tmp_path / "mlruns").as_uri()
    import os

    assert os.environ["MLFLOW_ALLOW_FILE_STORE"] == "true"
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "false")
    assert tracking.tracking_uri(tmp_path / "other") == (tmp_path / "other").as_uri()
    assert os.environ["MLFLOW_ALLOW_FILE_STORE"] == "false"  # the user's choice is kept
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert tracking.tracking_uri() == "http://127.0.0.1:5000"


def test_metric_key():
    assert tracking.metric_key("ensemble", "ndcg@10") == "ensemble.ndcg_at_10"
    assert tracking.metric_key("popularity", "coverage") == "popularity.coverage"


@pytest.fixture(scope="module")
def kept(tmp_path_factory, ml100k):
    """A small ranking ensemble (Popularity and EASE on 150 users) kept with its card."""
    ratings = ml100k.ratings[ml100k.ratings["userId"] <= 150]
    ensemble = WeightedEnsemble([Popularity(), EASE()], metric="ndcg@10", select="forward", random_state=0).fit(ratings)
    names = ["pop", "ease"]
    chosen = [names[p] for p in ensemble.members_]
    metrics = {"metric": ensemble.metric, "holdout_errors": dict(zip(names, map(float, ensemble.candidate_errors_))),
               "chosen": chosen, "weights": dict(zip(chosen, map(float, ensemble.weights_)))}
    card = build_card(ensemble, None, ratings, metrics, extra={"task": "ranking", "source": "ml-100k"})
    folder = tmp_path_factory.mktemp("kept") / "model"
    save_with_card(ensemble, folder, card, None)
    return folder, card, ensemble


@pytest.mark.slow
def test_a_kept_model_is_logged_and_answers_as_a_pyfunc(kept, tmp_path):
    folder, card, ensemble = kept
    store = tmp_path / "store"
    run_id = tracking.log_kept_model(folder, card, uri=store, run_name="kept")
    client = mlflow.tracking.MlflowClient(store.resolve().as_uri())
    run = client.get_run(run_id)
    assert run.info.run_name == "kept"
    params = run.data.params
    assert params["model"] == "WeightedEnsemble" and params["task"] == "ranking" and params["metric"] == "ndcg@10"
    assert params["data.rows"] == str(card["data"]["rows"])
    errors = card["validation"]["holdout_errors"]
    assert run.data.metrics == pytest.approx({**{f"{n}.holdout_error": e for n, e in errors.items()},
                                              **{f"{n}.weight": w for n, w in card["validation"]["weights"].items()}})
    files = {a.path for a in client.list_artifacts(run_id, "model")}
    assert {"model/model-card.json", "model/manifest.json", "model/params.json"} <= files

    logged = mlflow.search_logged_models(experiment_ids=[run.info.experiment_id], output_format="list")
    assert len(logged) == 1 and logged[0].source_run_id == run_id
    model = mlflow.pyfunc.load_model(logged[0].model_uri)
    users = model.predict(pd.DataFrame({"userId": [1, 2, 3]}), params={"n": 4})
    pd.testing.assert_frame_equal(users.reset_index(drop=True), ensemble.top_n(users=[1, 2, 3], n=4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a movie the model does not know is warned of and ignored
        visitors = model.predict(pd.DataFrame({"userId": ["v", "v", "w"], "movieId": [50, 181, 1]}), params={"n": 3})
        expected = pd.concat([ensemble.top_n_from_history(pd.DataFrame({"movieId": [50, 181]}), n=3, user="v"),
                              ensemble.top_n_from_history(pd.DataFrame({"movieId": [1]}), n=3, user="w")],
                             ignore_index=True)
    pd.testing.assert_frame_equal(visitors, expected)


def test_log_kept_model_refuses_a_missing_folder(tmp_path):
    from movierec.exceptions import InvalidParameterError

    with pytest.raises(InvalidParameterError, match="folder must be a kept model's folder"):
        tracking.log_kept_model(tmp_path / "nothing", {}, uri=tmp_path / "store")
    assert not (tmp_path / "store").exists()  # refused before any run was made


def test_log_run_records_a_summary(tmp_path):
    summary = {"task": "ranking", "split": "u1", "data": {"dataset": "ml-100k"},
               "settings": {"n": 10, "models": ["ease", "pop"], "ensemble": None},
               "table": [{"model": "ensemble", "ndcg@10": 0.5, "coverage": 0.2, "fit_seconds": None}],
               "members": [{"name": "ease", "holdout_error": 0.77, "fit_seconds": 2.5, "kept": True}]}
    artifact = tmp_path / "metrics.json"
    artifact.write_text("{}")
    run_id = tracking.log_run(summary, [artifact], uri=tmp_path / "store", experiment="tests")
    run = mlflow.tracking.MlflowClient(Path(tmp_path / "store").resolve().as_uri()).get_run(run_id)
    assert run.data.params == {"task": "ranking", "split": "u1", "dataset": "ml-100k", "settings.n": "10",
                               "settings.models": '["ease", "pop"]'}
    assert run.data.metrics == {"ensemble.ndcg_at_10": 0.5, "ensemble.coverage": 0.2, "ease.holdout_error": 0.77,
                                "ease.fit_seconds": 2.5}
