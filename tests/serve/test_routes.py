"""The service's visitor, reason, similar-movie and description routes, with titles, over real HTTP."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

from _serve_http import KeepAlive, call, rows, serving

from movierec import EASE, BiasedBaseline, Popularity, WeightedEnsemble
from movierec.model_card import build_card, read_items, save_with_card
from movierec.serve import Limits, make_server

LIMITS = Limits(max_batch=50, max_body=20_000, max_n=100, max_history=30)


def ratings_frame(users: dict | None = None, movies: dict | None = None) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    pairs = sorted({(int(u), int(i)) for u, i in zip(rng.integers(0, 50, 1200), rng.integers(0, 70, 1200))})
    frame = pd.DataFrame(pairs, columns=["userId", "movieId"])
    frame["rating"] = rng.integers(1, 11, len(frame)) / 2.0
    if users:
        frame["userId"] = frame["userId"].map(users)
    if movies:
        frame["movieId"] = frame["movieId"].map(movies)
    return frame


def items_frame(ids: list) -> pd.DataFrame:
    return pd.DataFrame({"movieId": ids, "title": [f"Film n°{i} – été" for i in ids],
                         "genres": ["Drama|Comedy" if k % 2 else "Horror" for k in range(len(ids))]})


def keep(tmp_path, ratings: pd.DataFrame, members: list, *, items: bool = True, name: str = "model"):
    model = WeightedEnsemble(members, metric="ndcg@10", random_state=0).fit(ratings)
    folder = tmp_path / name
    data_file = tmp_path / "private" / "area" / "ratings.csv"
    card = build_card(model, None, ratings, {"ndcg@10": 0.2}, extra={"source": str(data_file)})
    card["data"]["file"] = str(data_file)
    save_with_card(model, folder, card, items_frame(sorted(ratings["movieId"].unique())) if items else None)
    return model, folder


@pytest.fixture(scope="module")
def kept(tmp_path_factory):
    return keep(tmp_path_factory.mktemp("routes"), ratings_frame(), [BiasedBaseline(), EASE(l2=5.0), Popularity()])


@pytest.fixture(scope="module")
def url(kept):
    with serving(make_server(kept[1], port=0, api_key="", limits=LIMITS, log_level="warning")) as base:
        yield base


def titled(frame: pd.DataFrame) -> list[dict]:
    """The rows of ``frame`` with each movie's title placed after its id, as the service writes them."""
    out = []
    for row in rows(frame):
        movie = row.pop("movieId")
        head = {k: row.pop(k) for k in ("userId",) if k in row}
        out.append({**head, "movieId": movie, "title": f"Film n°{movie} – été", **row})
    return out


# -- titles kept with the model ------------------------------------------------------------------
def test_items_are_kept_as_json_rows_with_their_id_types(kept):
    frame = read_items(kept[1])
    assert list(frame.columns) == ["movieId", "title", "genres"]
    assert frame["movieId"].tolist() == list(kept[0].items_.ids.tolist())
    assert frame["title"].iloc[3] == "Film n°3 – été"


def test_a_known_users_list_carries_titles_and_matches_top_n(url, kept):
    model, _ = kept
    status, body = call(url, "/users/4/recommendations?n=7")
    assert status == 200 and body["recommendations"] == titled(model.top_n([4], n=7))


# -- a visitor's list ----------------------------------------------------------------------------
def test_a_visitors_list_is_top_n_from_history(url, kept):
    model, _ = kept
    status, body = call(url, "/recommendations", {"history": [3, 10, 22], "n": 6})
    want = model.top_n_from_history([3, 10, 22], n=6).drop(columns="userId")
    assert status == 200 and body == {"n": 6, "recommendations": titled(want), "unknown": []}


def test_rated_histories_exclusions_and_unknown_movies(url, kept):
    model, _ = kept
    history = [{"movieId": 3, "rating": 1.0}, {"movieId": 10, "rating": 5}, {"movieId": "no-such", "rating": 4}]
    status, body = call(url, "/recommendations", {"history": history, "exclude": [0, 1, "x"]})
    frame = pd.DataFrame({"movieId": [3, 10], "rating": [1.0, 5.0]})
    want = model.top_n_from_history(frame, n=10, exclude=[0, 1]).drop(columns="userId")
    assert status == 200 and body["recommendations"] == titled(want) and body["unknown"] == ["no-such"]
    assert not {0, 1, 3, 10} & {row["movieId"] for row in body["recommendations"]}


def test_explain_gives_each_movies_reasons_with_titles(url, kept):
    model, _ = kept
    status, body = call(url, "/users/4/recommendations?n=3&explain=true")
    history = model.items_.ids[model.seen_[model.users_.lookup([4])[0]].indices].tolist()
    assert status == 200 and len(body["recommendations"]) == 3
    for row in body["recommendations"]:
        why = model.explain(history, row["movieId"], n=3)
        assert row["reasons"] == [{"movieId": m, "title": f"Film n°{m} – été", "share": s}
                                  for m, s in zip(why["movieId"].tolist(), why["share"].tolist())]
        assert {m["movieId"] for m in row["reasons"]} <= set(history)
    status, body = call(url, "/recommendations?explain=1", {"history": [3, 10, 22], "n": 2})
    assert status == 200
    for row in body["recommendations"]:
        why = model.explain([3, 10, 22], row["movieId"], n=3)
        assert [r["movieId"] for r in row["reasons"]] == why["movieId"].tolist()
    assert "reasons" not in call(url, "/users/4/recommendations?n=2&explain=false")[1]["recommendations"][0]


def test_similar_movies_are_the_models(url, kept):
    model, _ = kept
    status, body = call(url, "/movies/5/similar?n=4")
    want = [{"movieId": m, "title": f"Film n°{m} – été", "similarity": s, "rank": r}
            for m, s, r in zip(*(model.similar_items(5, n=4)[c].tolist() for c in ("movieId", "similarity", "rank")))]
    assert status == 200 and body == {"movieId": 5, "title": "Film n°5 – été", "n": 4, "similar": want}
    assert call(url, "/movies/999/similar")[0] == 404
    assert call(url, "/movies/5/similar?n=0")[0] == 422


def test_predict_names_each_movies_title(url):
    status, body = call(url, "/predict", [{"userId": 1, "movieId": 2}, {"userId": 1, "movieId": "zz"}])
    assert status == 200 and [p["title"] for p in body["predictions"]] == ["Film n°2 – été", None]


@pytest.mark.parametrize(("body", "status", "words"), [
    ({"history": []}, 422, "at least one"),
    ({"history": ["nothing", "known"]}, 422, "none of the history"),
    ({"history": [3, 3]}, 422, "twice"),
    ({"history": [3, "3"]}, 422, "twice"),
    ({"history": [3, "03"]}, 422, "twice"),
    ({"history": list(range(31))}, 413, "at most 30"),
    ({"history": [3], "exclude": list(range(31))}, 413, "at most 30"),
    ({"history": [3], "n": 0}, 422, "n must"),
    ({"history": [3], "n": 101}, 422, "n must"),
    ({"history": [3], "n": True}, 422, "n must"),
    ({"history": [3], "n": 2.0}, 422, "n must"),
    ({"history": 3}, 422, "must be a JSON list"),
    ({"history": [3.5]}, 422, "integer or a string"),
    ({"history": [None]}, 422, "integer or a string"),
    ({"history": [{"movieId": 3, "rating": "high"}]}, 422, "rating must be a number"),
    ({"history": [{"movieId": 3, "rating": 4}, {"movieId": 5}]}, 422, "every movie or for none"),
    ({"history": [{"movieId": 3, "stars": 4}]}, 422, "optional 'rating'"),
    ({"history": [3], "exlude": [4]}, 422, "unknown key"),
    ([3, 4], 422, "JSON object"),
])
def test_bad_visitor_bodies_get_json_refusals(url, body, status, words):
    code, answer = call(url, "/recommendations", body)
    assert (code, answer["status"]) == (status, status) and words in answer["error"]
    assert call(url, "/recommendations", {"history": [3]})[0] == 200  # and the server goes on


@pytest.mark.parametrize("query", ["explain=yes", "explain=", "n=abc"])
def test_bad_flags_are_422(url, query):
    assert call(url, f"/users/4/recommendations?{query}")[0] == 422


def test_a_model_without_item_similarity_says_so(tmp_path):
    _, folder = keep(tmp_path, ratings_frame(), [BiasedBaseline(), Popularity()], items=False)
    with serving(make_server(folder, port=0, api_key="", limits=LIMITS, log_level="warning")) as base:
        code, body = call(base, "/movies/5/similar")
        assert code == 501 and "similar movies" in body["error"]
        code, body = call(base, "/users/4/recommendations?n=2")
        assert code == 200 and "title" not in body["recommendations"][0]  # no items kept: no titles


def test_string_and_non_ascii_ids_in_paths_and_bodies(tmp_path):
    users = {u: f"cust-{u:04d}" for u in range(50)}
    movies = {i: (f"sku-ü-{i}" if i % 3 else f"{i:03d}") for i in range(70)}
    model, folder = keep(tmp_path, ratings_frame(users, movies), [EASE(l2=5.0), Popularity()])
    with serving(make_server(folder, port=0, api_key="", limits=LIMITS, log_level="warning")) as base:
        code, body = call(base, "/users/cust-0004/recommendations?n=3")
        assert code == 200 and body["userId"] == "cust-0004"
        assert [r["movieId"] for r in body["recommendations"]] == model.top_n(["cust-0004"], n=3)["movieId"].tolist()
        code, body = call(base, "/recommendations", {"history": ["sku-ü-1", "003", 6], "n": 3})
        want = model.top_n_from_history(["sku-ü-1", "003"], n=3)["movieId"].tolist()
        assert code == 200 and [r["movieId"] for r in body["recommendations"]] == want and body["unknown"] == [6]
        assert body["recommendations"][0]["title"].startswith("Film n°")
        code, body = call(base, "/movies/%73ku-%C3%BC-1/similar?n=2")  # percent-encoded UTF-8
        assert code == 200 and body["movieId"] == "sku-ü-1" and len(body["similar"]) == 2
        assert call(base, "/movies/3/similar")[0] == 404  # the model knows "003", not 3


# -- the description, the card, keys and hosts --------------------------------------------------
def test_the_openapi_description_lists_every_route(url, kept):
    from starlette.routing import Route

    from movierec.serve import create_app

    status, document = call(url, "/openapi.json")
    assert status == 200 and document["openapi"].startswith("3.")
    described = {(path, method.upper()) for path, ops in document["paths"].items() for method in ops}
    served = set()
    for route in create_app(kept[0], limits=LIMITS).routes:
        assert isinstance(route, Route)
        served |= {(route.path, m) for m in route.methods or () if m != "HEAD"}
    assert described == served and len(served) == 7
    schema = document["paths"]["/recommendations"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert schema["properties"]["history"]["maxItems"] == LIMITS.max_history
    assert "security" not in document  # no key, no scheme


def test_model_shows_the_data_files_name_not_its_path(url):
    status, body = call(url, "/model")
    assert status == 200 and body["data"]["file"] == "ratings.csv" and body["extra"]["source"] == "ratings.csv"
    assert "private" not in json.dumps(body)


def test_a_forged_host_gets_no_redirect(url):
    client = KeepAlive(url)
    try:
        status, headers, data = client.send("GET", "/model/", headers={"Host": "evil.example"})
        assert status == 404 and "location" not in headers and json.loads(data)["status"] == 404
        status, headers, _ = client.send("GET", "/users/4/recommendations/", headers={"Host": "evil.example"})
        assert status == 404 and "location" not in headers
    finally:
        client.close()


def test_the_bearer_scheme_is_matched_in_any_case_and_is_required(kept):
    with serving(make_server(kept[1], port=0, api_key="k3y", limits=LIMITS, log_level="warning")) as base:
        for header in ("Bearer k3y", "bearer k3y", "BEARER   k3y"):
            assert call(base, "/model", headers={"Authorization": header})[0] == 200, header
        for header in ("k3y", "Basic k3y", "Bearer", "Bearer k3y2", "Bearerk3y"):
            assert call(base, "/model", headers={"Authorization": header})[0] == 401, header
        assert call(base, "/openapi.json")[0] == 401 and call(base, "/health")[0] == 200
        document = call(base, "/openapi.json", headers={"X-API-Key": "k3y"})[1]
        assert document["security"] and "401" in document["paths"]["/predict"]["post"]["responses"]
