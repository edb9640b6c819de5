"""movierec serve: a real uvicorn server on 127.0.0.1, called over real HTTP (urllib)."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

from _serve_http import call, free_port, serving, wait_healthy

from movierec import EASE, BiasedBaseline, Popularity, WeightedEnsemble
from movierec.exceptions import ModelFileError
from movierec.model_card import build_card, read_card, save_with_card
from movierec.serve import Limits, create_app, load_model, make_server

LIMITS = Limits(max_batch=50, max_body=20_000, max_n=100)


def synthetic_ratings(seed: int = 0, users: Any = None) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    pairs = sorted({(int(u), int(i)) for u, i in zip(rng.integers(0, 60, 1500), rng.integers(0, 80, 1500))})
    frame = pd.DataFrame(pairs, columns=["userId", "movieId"])
    frame["rating"] = rng.integers(1, 11, len(frame)) / 2.0
    if users is not None:
        frame["userId"] = frame["userId"].map(users)
    return frame


def fitted_ensemble(ratings: pd.DataFrame) -> WeightedEnsemble:
    members = [BiasedBaseline(), EASE(l2=5.0), Popularity()]
    return WeightedEnsemble(members, metric="ndcg@10", random_state=0).fit(ratings)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    ratings = synthetic_ratings()
    model = fitted_ensemble(ratings)
    folder = tmp_path_factory.mktemp("serve") / "model"
    save_with_card(model, folder, build_card(model, None, ratings, {"ndcg@10": 0.25}))
    return model, folder


@pytest.fixture(scope="module")
def url(saved):
    with serving(make_server(saved[1], port=0, api_key="", limits=LIMITS, log_level="warning")) as base:
        yield base


def expected_rows(model: WeightedEnsemble, user: Any, n: int) -> list[dict[str, Any]]:
    top = model.top_n([user], n=n)
    return [dict(zip(top.columns, row)) for row in zip(*(top[c].tolist() for c in top.columns))]


# -- the routes ----------------------------------------------------------------------------------
def test_the_server_binds_to_loopback(url):
    assert url.startswith("http://127.0.0.1:")


def test_health(url):
    assert call(url, "/health") == (200, {"status": "ok", "model": "WeightedEnsemble"})


def test_recommendations_are_the_rows_of_top_n(url, saved):
    model, _ = saved
    for user in (0, 7, 59):
        status, body = call(url, f"/users/{user}/recommendations?n=5")
        assert status == 200
        assert body["userId"] == user and body["n"] == 5
        assert body["recommendations"] == expected_rows(model, user, 5)
    status, body = call(url, "/users/3/recommendations")
    assert status == 200 and body["recommendations"] == expected_rows(model, 3, 10)


def test_model_is_the_card(url, saved):
    status, body = call(url, "/model")
    assert status == 200 and body == read_card(saved[1])
    assert body["validation"] == {"ndcg@10": 0.25} and body["model"]["class"] == "WeightedEnsemble"


def test_predict_scores_pairs_and_cold_pairs_are_null(url, saved):
    model, _ = saved
    pairs = [{"userId": 1, "movieId": 2}, {"userId": "4", "movieId": 9}, {"userId": 999, "movieId": 2},
             {"userId": 1, "movieId": "no-such-movie"}]
    status, body = call(url, "/predict", pairs)
    assert status == 200
    want = model.predict(pd.DataFrame({"userId": [1, 4], "movieId": [2, 9]})).tolist()
    assert [p["score"] for p in body["predictions"]] == [*want, None, None]
    assert [(p["userId"], p["movieId"]) for p in body["predictions"]] == [(p["userId"], p["movieId"]) for p in pairs]
    assert call(url, "/predict", []) == (200, {"predictions": []})


@pytest.mark.parametrize(("path", "status"), [
    ("/users/1000/recommendations", 404),
    ("/users/alice/recommendations", 404),
    ("/users/1/recommendations?n=0", 422),
    ("/users/1/recommendations?n=-3", 422),
    ("/users/1/recommendations?n=ten", 422),
    ("/users/1/recommendations?n=2.5", 422),
    ("/users/1/recommendations?n=101", 422),
    ("/nowhere", 404),
])
def test_bad_requests_get_json_errors(url, path, status):
    code, body = call(url, path)
    assert code == status and body["status"] == status and body["error"]


@pytest.mark.parametrize("raw", [
    b"not json", b'{"userId": 1, "movieId": 2}', b"[1, 2]", b'[{"userId": 1}]', b'[{"userId": true, "movieId": 2}]',
    b'[{"userId": 1.5, "movieId": 2}]', b'[{"userId": null, "movieId": 2}]', b'[{"userId": "", "movieId": 2}]',
    b'[{"userId": 1, "movieId": NaN}]', b'[{"userId": 99999999999999999999999, "movieId": 2}]', b"\xff\xfe",
    b"[" * 100_00 + b"]" * 100_00,
])
def test_malformed_bodies_are_422_and_the_server_survives(url, raw):
    code, body = call(url, "/predict", raw=raw, method="POST")
    assert (code, body["status"]) == (422, 422)
    assert call(url, "/health")[0] == 200
    assert call(url, "/users/1/recommendations?n=1")[0] == 200


def test_oversized_batches_and_bodies_are_413(url):
    too_many = [{"userId": 1, "movieId": 2}] * (LIMITS.max_batch + 1)
    code, body = call(url, "/predict", too_many)
    assert (code, body["status"]) == (413, 413) and "at most 50" in body["error"]
    code, body = call(url, "/predict", raw=b" " * (LIMITS.max_body + 1), method="POST")
    assert code == 413
    assert call(url, "/predict", [{"userId": 1, "movieId": 2}] * LIMITS.max_batch)[0] == 200


def test_wrong_methods_are_405(url):
    for method, path in (("POST", "/health"), ("GET", "/predict"), ("DELETE", "/users/1/recommendations")):
        code, body = call(url, path, method=method, raw=b"" if method == "POST" else None)
        assert (code, body["status"]) == (405, 405)


def test_concurrent_requests_each_get_their_own_answer(url, saved):
    model, _ = saved
    users = [u % 60 for u in range(64)]
    expected = {u: expected_rows(model, u, 10) for u in set(users)}

    def fetch(user: int) -> tuple[int, list[dict[str, Any]]]:
        code, body = call(url, f"/users/{user}/recommendations?n=10")
        return code, body["recommendations"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(fetch, users))
    assert all(code == 200 for code, _ in results)
    assert [rows for _, rows in results] == [expected[u] for u in users]


# -- ids, keys, loading --------------------------------------------------------------------------
def test_string_ids_are_matched_as_the_model_has_them(tmp_path):
    names = {u: ("007" if u == 7 else f"user-{u}") for u in range(60)}
    ratings = synthetic_ratings(users=names)
    model = fitted_ensemble(ratings)
    app = create_app(model, limits=LIMITS)
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off"))
    with serving(server) as base:
        status, body = call(base, "/users/007/recommendations?n=3")  # "007", not the int 7
        assert status == 200 and body["recommendations"] == expected_rows(model, "007", 3)
        assert call(base, "/users/user-3/recommendations")[0] == 200
        assert call(base, "/users/7/recommendations")[0] == 404
        pairs = [{"userId": "user-3", "movieId": "5"}, {"userId": 7, "movieId": 5}, {"userId": "007", "movieId": "x"}]
        status, body = call(base, "/predict", pairs)
        want = model.predict(pd.DataFrame({"userId": ["user-3"], "movieId": [5]})).tolist()
        assert status == 200 and [p["score"] for p in body["predictions"]] == [*want, None, None]
        status, body = call(base, "/model")
        assert body["model"]["class"] == "WeightedEnsemble"  # no card: the class and parameters


def test_a_failing_model_is_a_json_500_and_the_server_goes_on(saved):
    model = WeightedEnsemble.load(saved[1])
    calls = []

    def broken(*args: Any, **kwargs: Any) -> pd.DataFrame:
        calls.append(args)
        raise RuntimeError("secret detail")

    import uvicorn

    app = create_app(model, limits=Limits(max_n=100, kept_n=5))  # lists of 5 ranked at load
    model.top_n = broken  # the model object is this test's own; n > 5 asks it again
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="critical", lifespan="off"))
    with serving(server) as base:
        assert call(base, "/users/1/recommendations?n=6") == (500, {"error": "internal error", "status": 500})
        assert calls and call(base, "/health")[0] == 200
        assert call(base, "/users/1/recommendations?n=5")[0] == 200  # the kept list


def test_an_api_key_guards_every_route_but_health(saved, monkeypatch):
    monkeypatch.setenv("MOVIEREC_API_KEY", "s3cret")
    with serving(make_server(saved[1], port=0, log_level="warning")) as base:
        assert call(base, "/health")[0] == 200
        code, body = call(base, "/users/1/recommendations")
        assert (code, body["status"]) == (401, 401)
        assert call(base, "/model", headers={"Authorization": "Bearer wrong"})[0] == 401
        assert call(base, "/model", headers={"Authorization": "Bearer s3cret"})[0] == 200
        assert call(base, "/predict", [{"userId": 1, "movieId": 2}], headers={"X-API-Key": "s3cret"})[0] == 200


def test_load_model_refuses_a_changed_folder(saved, tmp_path):
    import shutil

    folder = tmp_path / "copy"
    shutil.copytree(saved[1], folder)
    assert type(load_model(folder)) is WeightedEnsemble
    card = folder / "model-card.json"
    card.write_text(card.read_text().replace("0.25", "0.99"))
    with pytest.raises(ModelFileError, match="model-card.json"):
        load_model(folder)
    with pytest.raises(FileNotFoundError):
        make_server(tmp_path / "absent")


@pytest.mark.slow
def test_run_serves_from_a_separate_process(saved):
    port = free_port()
    code = f"from movierec.serve import run; run({str(saved[1])!r}, port={port}, log_level='warning')"
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_healthy(base, process)
        status, body = call(base, "/users/5/recommendations?n=4")
        assert status == 200 and body["recommendations"] == expected_rows(saved[0], 5, 4)
    finally:
        process.terminate()
        process.wait(timeout=20)
