"""The model card: built from a fitted model and its data, kept inside the saved folder under its manifest."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil

import numpy as np
import pandas as pd
import pytest

from movierec import EASE, BiasedBaseline, Popularity, WeightedEnsemble
from movierec._version import __version__
from movierec.data.ratings_file import load_ratings
from movierec.exceptions import ModelFileError
from movierec.model_card import (
    CARD_FILE,
    build_card,
    card_for,
    json_safe,
    read_card,
    save_with_card,
    write_card,
)


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(1)
    pairs = sorted({(int(u), int(i)) for u, i in zip(rng.integers(0, 40, 900), rng.integers(0, 50, 900))})
    ratings = pd.DataFrame(pairs, columns=["userId", "movieId"])
    ratings["rating"] = rng.integers(1, 6, len(ratings)).astype(float)
    model = WeightedEnsemble([BiasedBaseline(), EASE(l2=5.0), Popularity()], metric="ndcg@10", random_state=3)
    return model.fit(ratings), ratings


def test_the_card_records_data_parameters_metrics_versions_and_time(fitted, tmp_path):
    model, ratings = fitted
    data_file = tmp_path / "ratings.csv"
    ratings.to_csv(data_file, index=False)
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    card = build_card(model, data_file, ratings, {"ndcg@10": np.float64(0.31), "coverage": float("nan")},
                      extra={"task": "ranking"})
    assert card["data"] == {"file": str(data_file), "sha256": hashlib.sha256(data_file.read_bytes()).hexdigest(),
                            "rows": len(ratings), "users": ratings["userId"].nunique(),
                            "items": ratings["movieId"].nunique(), "implicit": None}
    params = card["model"]["params"]
    assert card["model"]["class"] == "WeightedEnsemble" and params["random_state"] == 3
    assert [m["class"] for m in params["models"]] == ["BiasedBaseline", "EASE", "Popularity"]
    assert params["models"][1]["params"]["l2"] == 5.0
    assert card["validation"] == {"ndcg@10": 0.31, "coverage": None}
    assert card["versions"]["movierec"] == __version__
    assert card["versions"]["numpy"] == np.__version__ and card["versions"]["pandas"] == pd.__version__
    assert before <= dt.datetime.fromisoformat(card["created"]) <= dt.datetime.now(dt.UTC)
    assert card["extra"] == {"task": "ranking"}
    assert json.loads(json.dumps(card, allow_nan=False)) == card  # strict JSON throughout


def test_card_for_a_loaded_ratings_file_reuses_its_hash(fitted, tmp_path):
    model, _ = fitted
    path = tmp_path / "clicks.csv"
    path.write_text("user,item\na,1\nb,2\na,2\n")
    data = load_ratings(path, user="user", item="item")
    card = card_for(model, data)
    assert card["data"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert card["data"]["implicit"] is True and card["data"]["rows"] == 3 and card["data"]["users"] == 2


def test_the_card_is_saved_inside_the_model_folder_and_both_load(fitted, tmp_path):
    model, ratings = fitted
    card = build_card(model, None, ratings, {"ndcg@10": 0.3})
    folder = tmp_path / "model"
    save_with_card(model, folder, card)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert CARD_FILE in manifest["files"] and "member_1/params.json" in manifest["files"]
    loaded = WeightedEnsemble.load(folder)
    pd.testing.assert_frame_equal(loaded.top_n([1, 2, 3], n=5), model.top_n([1, 2, 3], n=5))
    assert read_card(folder) == card
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no temporary folder left beside it


def test_saving_again_replaces_model_and_card_together(fitted, tmp_path):
    model, ratings = fitted
    folder = tmp_path / "model"
    save_with_card(model, folder, build_card(model, None, ratings, {"ndcg@10": 0.1}))
    save_with_card(model, folder, build_card(model, None, ratings, {"ndcg@10": 0.2}))
    assert read_card(folder)["validation"] == {"ndcg@10": 0.2}
    WeightedEnsemble.load(folder)


def test_a_changed_card_makes_the_folder_refused(fitted, tmp_path):
    model, ratings = fitted
    folder = tmp_path / "model"
    save_with_card(model, folder, build_card(model, None, ratings, {"ndcg@10": 0.3}))
    changed = tmp_path / "changed"
    shutil.copytree(folder, changed)
    (changed / CARD_FILE).write_text((changed / CARD_FILE).read_text().replace("0.3", "0.9"))
    with pytest.raises(ModelFileError, match=CARD_FILE):
        read_card(changed)
    with pytest.raises(ModelFileError, match=CARD_FILE):
        WeightedEnsemble.load(changed)


def test_a_card_written_after_the_save_is_refused_at_load(fitted, tmp_path):
    # Why save_with_card exists: a card added to a finished folder is not in its manifest.
    model, ratings = fitted
    folder = tmp_path / "model"
    model.save(folder)
    assert read_card(folder) is None
    write_card(folder, build_card(model, None, ratings))
    with pytest.raises(ModelFileError, match="not listed in manifest.json"):
        WeightedEnsemble.load(folder)


def test_a_failed_save_leaves_the_previous_model_and_card(fitted, tmp_path):
    model, ratings = fitted
    folder = tmp_path / "model"
    save_with_card(model, folder, build_card(model, None, ratings, {"ndcg@10": 0.3}))
    with pytest.raises(ValueError, match="no repr"):  # the card fails after the model's files are written
        save_with_card(model, folder, {"validation": {"ndcg@10": 0.5}, "raw": _Unserializable()})
    assert read_card(folder)["validation"] == {"ndcg@10": 0.3}
    WeightedEnsemble.load(folder)


class _Unserializable:
    def __repr__(self) -> str:
        raise ValueError("no repr")


def test_json_safe_converts_numpy_frames_and_non_finite_values(fitted):
    model, _ = fitted
    frame = pd.DataFrame({"rmse": [0.9, np.nan]}, index=["a", "b"])
    assert json_safe({"f": frame, "a": np.arange(3), "t": (1, np.int64(2)), "x": -np.inf}) == {
        "f": {"a": {"rmse": 0.9}, "b": {"rmse": None}}, "a": [0, 1, 2], "t": [1, 2], "x": None}
    assert json_safe(model.models_[1]) == {"class": "EASE", "params": {"l2": 5.0, "max_items": 20000}}
