"""Helpers of the service's tests: a uvicorn server in a thread, and one call over real HTTP."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def serving(server: Any) -> Iterator[str]:
    """Run a uvicorn server in a thread until the block ends; yield its base URL."""
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the server did not start")
        time.sleep(0.01)
    host, port = server.servers[0].sockets[0].getsockname()[:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def call(url: str, path: str, body: Any = None, *, method: str | None = None, raw: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """Return (status, parsed JSON body) of one request to ``url + path``."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(url + path, data=data, method=method, headers=headers or {})
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        data = err.read()
        # uvicorn's own 503 (over the concurrency limit) is plain text; every other answer is JSON
        return err.code, data.decode() if err.code == 503 else json.loads(data)


class KeepAlive:
    """One keep-alive HTTP/1.1 connection (many requests, one socket), as a real client holds."""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.connection = http.client.HTTPConnection(host, int(port), timeout=20)

    def send(self, method: str, path: str, raw: bytes | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        self.connection.request(method, path, body=raw, headers={"Content-Type": "application/json",
                                                                  **(headers or {})})
        response = self.connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()

    def close(self) -> None:
        self.connection.close()


def rows(frame: Any) -> list[dict[str, Any]]:
    """Return a frame's rows as dicts of plain Python values."""
    return [dict(zip(frame.columns, row)) for row in zip(*(frame[c].tolist() for c in frame.columns))]


def free_port() -> int:
    """Return a port of 127.0.0.1 that is free now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_healthy(base: str, process: subprocess.Popen, seconds: float = 60) -> None:
    """Wait until the server ``process`` answers ``base + /health``; fail with its stderr if it ends first."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if call(base, "/health")[0] == 200:
                return
        except (urllib.error.URLError, ConnectionError):
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            err = process.stderr.read() if process.stderr else ""
            raise AssertionError((err.decode() if isinstance(err, bytes) else err)[-2000:])
        time.sleep(0.1)


def kept_clicks_model(folder: Any, *, seed: int, movies: int, size: int) -> Any:
    """Save an EASE + Popularity ensemble fitted on random clicks of 40 users to ``folder``; return it."""
    import numpy as np
    import pandas as pd

    from movierec import EASE, Popularity, WeightedEnsemble
    from movierec.model_card import build_card, save_with_card

    rng = np.random.default_rng(seed)
    pairs = sorted({(int(u), int(i)) for u, i in zip(rng.integers(0, 40, size), rng.integers(0, movies, size))})
    ratings = pd.DataFrame(pairs, columns=["userId", "movieId"]).assign(rating=1.0)
    model = WeightedEnsemble([EASE(l2=5.0), Popularity()], metric="ndcg@10", random_state=0).fit(ratings)
    save_with_card(model, folder, build_card(model, None, ratings))
    return folder
