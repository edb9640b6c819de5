"""The service under load: ``movierec serve`` of the default ml-100k ranking model, 16 keep-alive clients.

One model is kept (``movierec fit --dataset ml-100k --save DIR``, the default ranking ensemble), then:

* ``movierec recommend --model DIR``: its wall time, as a fresh process;
* ``movierec serve --model DIR`` as a fresh process: seconds from the start until ``/health`` answers,
  and its resident memory then (the server's, plus any JVM child's);
* three loads, one after the other, each from ``CLIENTS`` concurrent clients holding one keep-alive
  HTTP/1.1 connection each to 127.0.0.1, every client sending its next request when the last answer
  is in (a closed loop): ``GET /users/{id}/recommendations?n=10`` over every user in turn, ``POST
  /recommendations`` with a 50-movie history (the movies of a user with at least 50 ratings) and
  ``GET /users/{id}/recommendations?n=10&explain=true``. Each runs ``WARMUP`` seconds unmeasured,
  then ``SECONDS`` measured (at most ``MAX_REQUESTS``); latencies are from the request's first byte
  sent to its answer's last byte read.

The load generator is this process (asyncio, raw sockets): it shares the machine's cores with the
server, so the figures include its own cost. Targets: p99 <= 25 ms for each load with no errors; the
server answers ``/health`` <= 5 s after it starts, within 500 MB; ``recommend --model`` <= 5 s.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from benchmarks._common import ROOT, _status_mb, data_home, descendants

logger = logging.getLogger("benchmarks.serve")

CLIENTS = 16
WARMUP = 2.0
SECONDS = 20.0
MAX_REQUESTS = 50_000
HISTORY = 50
P99_TARGET_MS = 25.0
STARTUP_TARGET_S = 5.0
RSS_TARGET_MB = 500.0
RECOMMEND_TARGET_S = 5.0
# The service before this suite's changes, as measured on this machine with the same clients (GET only).
BEFORE = {"p50_ms": 95.0, "p99_ms": 171.0, "requests_per_s": 164.0}


def _movierec(*args: str, **kwargs: Any) -> subprocess.CompletedProcess:
    env = {**os.environ, "MOVIEREC_DATA": str(data_home()), "PYTHONPATH": str(ROOT), "MOVIEREC_API_KEY": ""}
    return subprocess.run([sys.executable, "-m", "movierec", *args], check=True, capture_output=True, text=True,
                          env=env, **kwargs)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as answer:
        return json.loads(answer.read())


def _rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and its descendants (a JVM child counts), in MB."""
    return sum(_status_mb("VmRSS", p) or 0.0 for p in [pid, *descendants(pid)])


def _start_server(folder: Path) -> tuple[subprocess.Popen, int, float]:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MOVIEREC_API_KEY": ""}
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "movierec", "serve", "--model", str(folder), "--port", str(port),
                                "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    while True:
        try:
            _get(f"http://127.0.0.1:{port}/health")
            return process, port, time.perf_counter() - started
        except OSError:
            if process.poll() is not None or time.perf_counter() - started > 300:
                process.kill()
                raise RuntimeError(f"serve did not start: {process.communicate()[1][-2000:]!r}") from None
            time.sleep(0.05)


def _request(method: str, path: str, body: bytes = b"") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    return (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body


async def _client(port: int, requests: list[bytes], start: int, stop_at: float, measure_from: float,
                  latencies: list[float], errors: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    position = start
    try:
        while (now := time.perf_counter()) < stop_at and len(latencies) < MAX_REQUESTS:
            writer.write(requests[position % len(requests)])
            position += 1
            status = int((await reader.readline()).split()[1])
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            if now >= measure_from:
                latencies.append(time.perf_counter() - now)
                if status != 200:
                    errors.append(status)
    finally:
        writer.close()


def _load(port: int, requests: list[bytes], seconds: float) -> dict[str, Any]:
    latencies: list[float] = []
    errors: list[int] = []

    async def main() -> float:
        begin = time.perf_counter()
        measure_from = begin + WARMUP
        stop_at = measure_from + seconds
        step = max(1, len(requests) // CLIENTS)
        await asyncio.gather(*(_client(port, requests, c * step, stop_at, measure_from, latencies, errors)
                               for c in range(CLIENTS)))
        return time.perf_counter() - measure_from

    elapsed = asyncio.run(main())
    ordered = sorted(latencies)

    def percentile(q: float) -> float:
        return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {"requests": len(ordered), "errors": len(errors), "requests_per_s": len(ordered) / elapsed,
            "p50_ms": percentile(0.50), "p90_ms": percentile(0.90), "p99_ms": percentile(0.99),
            "max_ms": 1000 * ordered[-1], "clients": CLIENTS, "seconds": round(elapsed, 1)}


def _histories(folder: Path) -> tuple[list[Any], list[list[Any]]]:
    """Return every user id and the histories (first ``HISTORY`` movies) of users with that many ratings."""
    from movierec import load_model

    model = load_model(folder)
    try:
        seen, items = model.seen_, model.items_.ids
        users = model.users_.ids.tolist()
        histories = [items[seen.indices[seen.indptr[u] : seen.indptr[u + 1]]][:HISTORY].tolist()
                     for u in range(len(users)) if seen.indptr[u + 1] - seen.indptr[u] >= HISTORY]
    finally:
        model.close()
    return users, histories


def run(quick: bool = False) -> tuple[dict[str, Any], list[str]]:
    seconds = 3.0 if quick else SECONDS
    with tempfile.TemporaryDirectory(prefix="movierec-serve-bench-") as tmp:
        folder = Path(tmp) / "model"
        started = time.perf_counter()
        fit_args = ["--models", "ease,pop"] if quick else []
        _movierec("fit", "--dataset", "ml-100k", *fit_args, "--save", str(folder), "--quiet")
        fit_seconds = time.perf_counter() - started
        started = time.perf_counter()
        _movierec("recommend", "--model", str(folder), "--out", str(Path(tmp) / "out"), "--quiet")
        recommend_seconds = time.perf_counter() - started
        users, histories = _histories(folder)
        rng = random.Random(0)
        rng.shuffle(users)
        loads = {
            "GET /users/{id}/recommendations?n=10": [_request("GET", f"/users/{u}/recommendations?n=10") for u in users],
            f"POST /recommendations ({HISTORY}-movie history)": [
                _request("POST", "/recommendations", json.dumps({"history": h, "n": 10}).encode()) for h in histories],
            "GET /users/{id}/recommendations?n=10&explain=true": [
                _request("GET", f"/users/{u}/recommendations?n=10&explain=true") for u in users],
        }
        process, port, startup = _start_server(folder)
        try:
            rss = _rss_mb(process.pid)
            card = _get(f"http://127.0.0.1:{port}/model")
            measured = {}
            for name, requests in loads.items():
                measured[name] = _load(port, requests, seconds)
                logger.info("%s: %s", name, measured[name])
        finally:
            process.send_signal(signal.SIGTERM)
            process.communicate(timeout=60)
    members = (card.get("validation") or {}).get("chosen")
    results = {
        "model": {"dataset": "ml-100k", "task": "ranking", "members": members, "fit_seconds": fit_seconds,
                  "users": len(users), "histories": len(histories)},
        "startup": {"health_seconds": startup, "rss_mb": rss, "recommend_model_seconds": recommend_seconds},
        "loads": measured,
        "targets": {"p99_ms": P99_TARGET_MS, "health_seconds": STARTUP_TARGET_S, "rss_mb": RSS_TARGET_MB,
                    "recommend_model_seconds": RECOMMEND_TARGET_S},
        "before": BEFORE,
    }
    notes = [(f"{CLIENTS} keep-alive clients in one asyncio process on the same machine as the server (closed loop); "
             f"{WARMUP:g} s warm-up, then {seconds:g} s measured per load.")]
    return results, notes


# -- rendering (benchmarks/render.py calls these) ---------------------------------------------------
def _mark(met: bool) -> str:
    return "met" if met else "**missed**"


def serve_targets(res: dict[str, Any]) -> list[list[str]]:
    """Return the serve suite's rows of the targets table: each load's p99, startup, memory, recommend --model."""
    if not res:
        return []
    rows = []
    for name, load in res.get("loads", {}).items():
        ok = load["p99_ms"] <= P99_TARGET_MS and load["errors"] == 0
        rows.append([f"serve: {name}, p99 <= {P99_TARGET_MS:g} ms with {load['clients']} clients, no errors",
                     f"{load['p99_ms']:.1f} ms, {load['errors']} errors", _mark(ok),
                     f"{P99_TARGET_MS - load['p99_ms']:+.1f} ms"])
    start = res.get("startup", {})
    for label, key, target, unit in (("serve answers /health", "health_seconds", STARTUP_TARGET_S, "s"),
                                     ("serve's resident memory", "rss_mb", RSS_TARGET_MB, "MB"),
                                     ("recommend --model", "recommend_model_seconds", RECOMMEND_TARGET_S, "s")):
        if start.get(key) is not None:
            rows.append([f"{label} <= {target:g} {unit}", f"{start[key]:.1f} {unit}", _mark(start[key] <= target),
                         f"{target - start[key]:+.1f} {unit}"])
    return rows


def serve_section(doc: dict[str, Any]) -> list[str]:
    """Return the serve suite's section of docs/benchmarks.md."""
    res = doc["results"]
    model, start = res["model"], res["startup"]
    lines = ["## The service under load (benchmarks/serve.py)", "",
             f"Command: `{doc['command']}`. `movierec serve` of the default {model['dataset']} {model['task']} model "
             f"(members {', '.join(model.get('members') or []) or 'as chosen'}) on 127.0.0.1. "
             + " ".join(doc.get("notes", []))
             + _load_average(doc.get("machine", {}).get("load_average_at_start")), ""]
    rows = [[name, f"{load['requests']:,}", f"{load['requests_per_s']:.0f}", f"{load['p50_ms']:.1f}",
             f"{load['p90_ms']:.1f}", f"{load['p99_ms']:.1f}", f"{load['max_ms']:.1f}", str(load["errors"])]
            for name, load in res["loads"].items()]
    before = res.get("before")
    if before:
        rows.append(["before: GET /users/{id}/recommendations?n=10", "–", f"{before['requests_per_s']:.0f}",
                     f"{before['p50_ms']:.0f}", "–", f"{before['p99_ms']:.0f}", "–", "–"])
    lines += _table(["load", "requests", "per s", "p50 ms", "p90 ms", "p99 ms", "max ms", "errors"], rows)
    lines += ["", (f"Startup: `/health` answered {start['health_seconds']:.1f} s after `movierec serve` started, "
              f"{start['rss_mb']:.0f} MB resident then (with any JVM child); `recommend --model` took "
              f"{start['recommend_model_seconds']:.1f} s as a fresh process.")]
    return lines


def _load_average(values: Any) -> str:
    if not values:
        return ""
    return (f" The machine's load average was {values[0]:.1f} when the suite started (2 cores shared with other "
            "jobs): the tails (p99, max) include time spent waiting for a core.")


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in rows]
