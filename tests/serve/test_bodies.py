"""Property tests: whatever JSON (or not-JSON) a client sends, the answer is 200 or a 4xx JSON refusal, never a 500."""

from __future__ import annotations

import json
import urllib.parse

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
from _serve_http import KeepAlive, kept_clicks_model, serving
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from movierec.serve import Limits, make_server

LIMITS = Limits(max_batch=20, max_body=50_000, max_n=50, max_history=20)

ids = st.one_of(st.integers(-5, 80), st.integers(), st.text(max_size=6), st.sampled_from(["3", "07", "-1", "+2"]))
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
                    st.text(max_size=10), ids)
anything = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=6),
                                                         st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                        max_leaves=25)
entries = st.one_of(ids, st.fixed_dictionaries({"movieId": ids}, optional={"rating": scalars}), anything)
histories = st.fixed_dictionaries(
    {"history": st.one_of(st.lists(entries, max_size=25), anything)},
    optional={"n": st.one_of(st.integers(-2, 60), scalars), "exclude": st.one_of(st.lists(ids, max_size=25), anything),
              "extra": anything})
pairs = st.lists(st.one_of(st.fixed_dictionaries({"userId": ids, "movieId": ids}), anything), max_size=25)
queries = st.dictionaries(st.sampled_from(["n", "explain", "other"]), st.one_of(st.text(max_size=5),
                          st.sampled_from(["1", "10", "true", "false", "0", "51"])), max_size=3)


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    folder = kept_clicks_model(tmp_path_factory.mktemp("bodies") / "model", seed=2, movies=60, size=900)
    with serving(make_server(folder, port=0, api_key="", limits=LIMITS, log_level="critical")) as base:
        connection = KeepAlive(base)
        yield connection
        connection.close()


def answered_well(status: int, data: bytes) -> None:
    body = json.loads(data)
    assert status == 200 or (400 <= status < 500 and body["status"] == status and body["error"]), (status, body)


SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                           HealthCheck.too_slow])


@SETTINGS
@given(body=st.one_of(histories, anything), query=queries)
def test_any_json_body_of_a_visitor_is_200_or_a_4xx(client, body, query):
    path = "/recommendations" + ("?" + urllib.parse.urlencode(query) if query else "")
    status, _, data = client.send("POST", path, json.dumps(body).encode())
    answered_well(status, data)
    if status == 200:
        ranks = [row["rank"] for row in json.loads(data)["recommendations"]]
        assert ranks == list(range(1, len(ranks) + 1)) and len(ranks) <= LIMITS.max_n


@SETTINGS
@given(body=st.one_of(pairs, anything))
def test_any_json_body_of_predict_is_200_or_a_4xx(client, body):
    status, _, data = client.send("POST", "/predict", json.dumps(body).encode())
    answered_well(status, data)


@SETTINGS
@given(raw=st.binary(max_size=200))
def test_any_bytes_are_200_or_a_4xx(client, raw):
    for path in ("/recommendations", "/predict"):
        status, _, data = client.send("POST", path, raw)
        answered_well(status, data)


@SETTINGS
@given(segment=st.text(min_size=1, max_size=12), query=queries)
def test_any_path_id_and_query_is_200_or_a_4xx(client, segment, query):
    quoted = urllib.parse.quote(segment, safe="")
    suffix = "?" + urllib.parse.urlencode(query) if query else ""
    for path in (f"/users/{quoted}/recommendations{suffix}", f"/movies/{quoted}/similar{suffix}"):
        status, _, data = client.send("GET", path)
        answered_well(status, data)
