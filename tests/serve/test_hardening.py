"""The service against slow, half-sent and many clients, a busy port, a missing model and log floods: real sockets on 127.0.0.1."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
from pathlib import Path

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

from _serve_http import call, free_port, kept_clicks_model, serving, wait_healthy

from movierec.serve import Limits, bind, make_server
from movierec.serve._server import _OncePerCause

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return kept_clicks_model(tmp_path_factory.mktemp("hardening") / "model", seed=3, movies=50, size=800)


def half_open(base: str, count: int, partial: bytes) -> list[socket.socket]:
    host, port = base.removeprefix("http://").split(":")
    opened = []
    for _ in range(count):
        sock = socket.create_connection((host, int(port)), timeout=10)
        sock.sendall(partial)
        opened.append(sock)
    return opened


def closed_by_server(sock: socket.socket, within: float) -> bool:
    sock.settimeout(within)
    try:
        return sock.recv(1024) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


@pytest.mark.slow
def test_half_open_connections_are_dropped_and_others_still_served(folder):
    # 150 connections allowed: 200 half-sent requests would hold every one of them without a deadline.
    limits = Limits(read_timeout=2.0, max_connections=150)
    with serving(make_server(folder, port=0, api_key="", limits=limits, log_level="critical")) as base:
        started = time.monotonic()
        stalled = half_open(base, 200, b"GET /health HTTP/1.1\r\nHost: x\r\n")  # headers never end
        try:
            while True:  # answered at once, or 503 until the deadline frees the connections
                status = call(base, "/users/1/recommendations?n=3")[0]
                if status == 200:
                    break
                assert status == 503 and time.monotonic() - started < limits.read_timeout + 5
                time.sleep(0.2)
            assert time.monotonic() - started < limits.read_timeout + 5
            assert all(closed_by_server(sock, limits.read_timeout + 3) for sock in stalled)
        finally:
            for sock in stalled:
                sock.close()
        assert call(base, "/health")[0] == 200


def test_a_half_sent_body_is_dropped_after_the_read_timeout(folder):
    limits = Limits(read_timeout=1.0)
    with serving(make_server(folder, port=0, api_key="", limits=limits, log_level="critical")) as base:
        head = b"POST /recommendations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
        (sock,) = half_open(base, 1, head + b'{"history": [')
        started = time.monotonic()
        try:
            assert closed_by_server(sock, 5)
            assert limits.read_timeout - 0.2 < time.monotonic() - started < limits.read_timeout + 2
        finally:
            sock.close()
        # a whole request on a connection idle for less than keep_alive is not cut
        (sock,) = half_open(base, 1, b"")
        time.sleep(0.5)
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.settimeout(5)
        assert sock.recv(1024).startswith(b"HTTP/1.1 200")
        sock.close()


def test_a_busy_port_is_one_error_naming_it(folder):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match=f"^cannot listen on 127.0.0.1:{port}: the port is in use"):
            bind("127.0.0.1", port)
        with pytest.raises(OSError, match=f"127.0.0.1:{port}"):
            make_server(folder, port=port, api_key="")
    with pytest.raises(FileNotFoundError, match="not a saved movierec model"):
        make_server(folder.parent / "absent", port=port, api_key="")


def serve_command(*args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MOVIEREC_API_KEY": ""}
    return subprocess.Popen([sys.executable, "-m", "movierec", "serve", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, **kwargs)


@pytest.mark.slow
def test_the_command_line_exits_1_with_one_line_for_a_busy_port_and_a_missing_model(folder, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = serve_command("--model", str(folder), "--port", str(port))
        _, err = process.communicate(timeout=60)
    assert process.returncode == 1
    assert err.strip().splitlines() == [(f"movierec: error: cannot listen on 127.0.0.1:{port}: "
                                        "the port is in use by another program")]
    process = serve_command("--model", str(tmp_path / "missing"), "--port", str(free_port()))
    _, err = process.communicate(timeout=60)
    assert process.returncode == 1 and "port" not in err
    assert err.strip().splitlines() == [(f"movierec: error: {tmp_path / 'missing'} not found: it is not a saved "
                                        "movierec model")]


@pytest.mark.slow
def test_the_command_line_serves_and_exits_143_on_sigterm(folder):
    port = free_port()
    process = serve_command("--model", str(folder), "--port", str(port))
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, process)
        assert call(base, "/users/1/recommendations?n=2")[0] == 200
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 143, err[-2000:]


@pytest.mark.slow
def test_running_out_of_file_descriptors_does_not_flood_the_log(folder):
    """With 64 descriptors, 300 connections make every accept fail; the log stays a few lines."""
    port = free_port()
    code = ("import resource; resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64)); "
            "from movierec.serve import run, Limits; "
            f"run({str(folder)!r}, port={port}, api_key='', limits=Limits(read_timeout=2.0), log_level='info')")
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env={**os.environ, "PYTHONPATH": str(ROOT)})
    base, opened = f"http://127.0.0.1:{port}", []
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if call(base, "/health")[0] == 200:
                    break
            except (urllib.error.URLError, ConnectionError):
                pass
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        for _ in range(300):
            try:
                opened.append(socket.create_connection(("127.0.0.1", port), timeout=2))
            except OSError:
                break
        time.sleep(3)  # the server retries accept every second and fails each time
        for sock in opened:
            sock.close()
        deadline = time.monotonic() + 15
        while True:  # once the stalled connections are gone, it serves again
            try:
                if call(base, "/health")[0] == 200:
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            assert time.monotonic() < deadline, "the server did not recover"
            time.sleep(0.2)
    finally:
        for sock in opened:
            sock.close()
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    assert err.count(b"Too many open files") <= 2, err[-3000:].decode(errors="replace")
    assert len(err) < 20_000, len(err)


def test_a_repeated_message_is_written_once_per_cause_and_window():
    records: list[logging.LogRecord] = []
    target = logging.getLogger("movierec.tests.flood")
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    target.addHandler(handler)
    once = _OncePerCause(window=0.3)
    target.addFilter(once)
    try:
        for _ in range(1000):
            try:
                raise OSError(24, "Too many open files")
            except OSError:
                target.error("socket.accept() out of system resource", exc_info=True)
        target.error("another cause")
        assert [r.getMessage() for r in records] == ["socket.accept() out of system resource", "another cause"]
        time.sleep(0.35)
        try:
            raise OSError(24, "Too many open files")
        except OSError:
            target.error("socket.accept() out of system resource", exc_info=True)
        assert records[-1].getMessage().endswith("(999 more like this in the last 0.3 s not shown)")
    finally:
        target.removeFilter(once)
        target.removeHandler(handler)


def test_a_public_host_without_a_key_logs_one_warning(folder, caplog):
    caplog.set_level(logging.INFO, logger="movierec.serve")
    server = make_server(folder, host="0.0.0.0", port=0, api_key="", log_level="critical")  # bound, never listening
    server.socket.close()
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "without an API key" in warnings[0].getMessage()
    caplog.clear()
    make_server(folder, host="0.0.0.0", port=0, api_key="k", log_level="critical").socket.close()
    make_server(folder, host="127.0.0.1", port=0, api_key="", log_level="critical").socket.close()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
