"""Every kept model loads and serves, on data of every shape: ``fit --save`` -> ``recommend --model`` ->
``serve`` and real requests, each a real ``python -m movierec`` process, over 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
FAST = ["--models", "ease,pop"]


def frame(users: Any = None, movies: Any = None, ratings: Any = "stars", size: int = 500) -> pd.DataFrame:
    """Tiny ratings: 30 users x 40 movies, ids mapped by ``users``/``movies``; ``ratings`` None drops the column."""
    rng = np.random.default_rng(5)
    pairs = sorted({(int(u), int(i)) for u, i in zip(rng.integers(0, 30, size), rng.integers(0, 40, size))})
    data = pd.DataFrame(pairs, columns=["userId", "movieId"])
    if ratings == "stars":
        data["rating"] = rng.integers(1, 6, len(data)).astype(float)
    elif ratings is not None:
        data["rating"] = float(ratings)
    data["userId"] = data["userId"].map(users or (lambda u: u + 1))
    data["movieId"] = data["movieId"].map(movies or (lambda i: i + 1))
    return data


def with_single_rating_user(data: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([data, pd.DataFrame({"userId": [999], "movieId": [3], "rating": [4.0]})], ignore_index=True)


# name -> (ratings frame, file's column names for --columns or None, extra fit arguments, titles file?)
CASES: dict[str, tuple[pd.DataFrame, str | None, list[str], bool]] = {
    "explicit": (frame(), None, FAST, True),
    "clicks": (frame(lambda u: f"cust-{u:04d}", lambda i: f"sku-{i}", ratings=None)
               .rename(columns={"userId": "customer", "movieId": "sku"}), "user=customer,item=sku", FAST, False),
    "one_rating_value": (frame(ratings=4.0), None, FAST, False),
    "string_ids": (frame(lambda u: f"u{u:03d}", lambda i: f"m-{i}"), None, FAST, True),
    "non_ascii_ids": (frame(lambda u: f"utilisatrice-é-{u}", lambda i: f"фильм-{i}"), None, FAST, True),
    "user_with_one_rating": (with_single_rating_user(frame()), None, FAST, False),
    "ranking_defaults": (frame(), None, ["--task", "ranking"], False),
    "rating_defaults": (frame(), None, ["--task", "rating"], False),
}
SLOW_ONLY = {"ranking_defaults": [pytest.mark.slow, pytest.mark.spark], "rating_defaults": [pytest.mark.slow, pytest.mark.spark]}


def movierec(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MOVIEREC_API_KEY": "", "PYTHONIOENCODING": "utf-8"}
    done = subprocess.run([sys.executable, "-m", "movierec", *args], check=False, capture_output=True, text=True,
                          env=env,
                          timeout=timeout)
    assert done.returncode == 0, f"movierec {' '.join(args)} exited {done.returncode}: {done.stderr[-3000:]}"
    return done


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def request(base: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    call = urllib.request.Request(base + path, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(call, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def serve(folder: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MOVIEREC_API_KEY": ""}
    process = subprocess.Popen([sys.executable, "-m", "movierec", "serve", "--model", str(folder), "--port", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    base, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 120
    while True:
        try:
            if request(base, "/health")[0] == 200:
                return process, base
        except (urllib.error.URLError, ConnectionError):
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"serve did not answer /health: {process.communicate()[1][-3000:]}")
        time.sleep(0.1)


@pytest.mark.parametrize("case", [pytest.param(name, marks=SLOW_ONLY.get(name, [pytest.mark.slow] if name != "explicit"
                                                                            else [])) for name in CASES])
def test_a_kept_model_fits_recommends_and_serves(case, tmp_path):
    data, columns, fit_args, titled = CASES[case]
    ratings = tmp_path / "ratings.csv"
    data.to_csv(ratings, index=False)
    own = ["--ratings", str(ratings), *(["--columns", columns] if columns else [])]
    movies = data.iloc[:, 1].drop_duplicates()
    if titled:
        titles = pd.DataFrame({data.columns[1]: movies, "title": [f"Title of {m} (2001)" for m in movies]})
        titles.to_csv(tmp_path / "movies.csv", index=False)
        own += ["--items", str(tmp_path / "movies.csv")]
    folder = tmp_path / "kept"
    movierec("fit", *own, *fit_args, "--save", str(folder))

    started = time.perf_counter()
    movierec("recommend", "--model", str(folder), "--out", str(tmp_path / "out"))
    assert time.perf_counter() - started < 60
    listed = pd.read_csv(tmp_path / "out" / "recommendations.csv", dtype={"userId": str, "movieId": str},
                         keep_default_na=False)
    users = {str(u) for u in data.iloc[:, 0]}
    assert set(listed["userId"]) == users
    assert set(listed["movieId"]) <= {str(m) for m in movies}
    if titled:
        assert (listed["title"] == "Title of " + listed["movieId"] + " (2001)").all()

    process, base = serve(folder)
    try:
        user = str(data.iloc[-1, 0])  # the single-rating user in that case
        status, body = request(base, f"/users/{urllib.parse.quote(user, safe='')}/recommendations?n=3")
        assert status == 200, body
        mine = listed[listed["userId"] == user].sort_values("rank")
        assert [str(r["movieId"]) for r in body["recommendations"]] == mine["movieId"].tolist()[:3]
        assert ("title" in body["recommendations"][0]) == titled
        history = movies.tolist()[:3]
        status, body = request(base, "/recommendations", {"history": history, "n": 4})
        assert status in ((200, 501) if "defaults" in case else (200,)), body
        if status == 200:
            assert len(body["recommendations"]) == 4 and not {r["movieId"] for r in body["recommendations"]} & set(history)
        assert request(base, "/model")[1]["data"]["file"] == "ratings.csv"
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    assert process.returncode == 143, err[-2000:]


def test_users_given_as_text_match_the_data_s_own_ids(tmp_path):
    from movierec.cli._data import typed_ids

    assert typed_ids(["7", "007", "x"], [1, 7]) == [7, 7, "x"]  # integer ids: digits are read as ints
    assert typed_ids(["007", "cust-1"], ["007", "cust-1"]) == ["007", "cust-1"]  # text ids stay text
    clicks = frame(lambda u: f"cust-{u:04d}", lambda i: f"sku-{i}", ratings=None)
    clicks.to_csv(tmp_path / "clicks.csv", index=False)
    movierec("fit", "--ratings", str(tmp_path / "clicks.csv"), *FAST, "--save", str(tmp_path / "m"), "-q")
    movierec("recommend", "--model", str(tmp_path / "m"), "--users", "cust-0002,cust-0005", "--n", "3",
             "--out", str(tmp_path / "out"), "-q")
    top = pd.read_csv(tmp_path / "out" / "recommendations.csv")
    assert sorted(top.userId.unique()) == ["cust-0002", "cust-0005"] and len(top) == 6
