"""Load a saved model, then open the port: `make_server` and `run` (``movierec serve``).

The server is uvicorn's, hardened for slow and many clients (all bounds in `Limits`):

- a client has ``read_timeout`` seconds to send a whole request once it connects or starts one;
  a half-sent request is dropped (uvicorn alone waits for it forever, and every such connection
  counts against the concurrency limit, so a few hundred of them starve everyone else);
- idle keep-alive connections close after ``keep_alive`` seconds; past ``max_connections`` open
  connections new requests are answered 503; the kernel queues ``backlog`` connections;
- the log cannot flood: a repeated message (a traceback per refused ``accept`` when the process runs
  out of file descriptors, the same failing request) is written once per cause and minute;
- the port is bound by `make_server` itself, so a busy port is one ``OSError`` naming it,
  raised before the model loads, instead of uvicorn's own log line and exit code 3.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from movierec._core.instances import load_model
from movierec.model_card import read_kept
from movierec.serve._app import Limits, create_app

__all__ = ["API_KEY_ENV", "bind", "load_model", "make_server", "run"]

logger = logging.getLogger(__name__)

# The environment variable holding the optional API key (never a command-line argument: those are
# visible to every user of the machine in the process list).
API_KEY_ENV = "MOVIEREC_API_KEY"
# Loggers a server writes to; each gets one _OncePerCause filter.
_SERVER_LOGGERS = ("uvicorn.error", "uvicorn.access", "asyncio", __name__)


class _OncePerCause(logging.Filter):
    """Let a message through once per ``window`` seconds for each cause (logger, template, error type).

    The next one let through after a quiet spell says how many were held back.
    """

    def __init__(self, window: float = 60.0) -> None:
        super().__init__()
        self.window = window
        self._last: dict[tuple[str, str, str], tuple[float, int]] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[0].__name__ if record.exc_info and record.exc_info[0] else ""
        # The first words name the cause; the rest may vary (asyncio's callback reprs hold a time).
        key = (record.name, str(record.msg).partition("\n")[0][:60], error)
        now = time.monotonic()
        with self._lock:
            if len(self._last) > 1_000:  # the causes themselves stay bounded
                self._last.clear()
            last, held = self._last.get(key, (-float("inf"), 0))
            if now - last < self.window:
                self._last[key] = (last, held + 1)
                return False
            self._last[key] = (now, 0)
        if held:
            record.msg = f"{record.msg} ({held} more like this in the last {self.window:g} s not shown)"
        return True


def _quiet_floods() -> None:
    for name in _SERVER_LOGGERS:
        target = logging.getLogger(name)
        if not any(isinstance(f, _OncePerCause) for f in target.filters):
            target.addFilter(_OncePerCause())


class _TimedH11(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with a deadline on reading each request (headers and body)."""

    read_timeout = 5.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._deadline: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state in (h11.IDLE, h11.SEND_BODY):  # part of a request is in
            if self._deadline is None:
                self._arm()
        else:
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._deadline = self.loop.call_later(self.read_timeout, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if self.conn.their_state in (h11.IDLE, h11.SEND_BODY) and not self.transport.is_closing():
            self.transport.close()


class _Server(uvicorn.Server):
    """A uvicorn server on a socket bound before the model loaded."""

    def __init__(self, config: uvicorn.Config, sock: socket.socket) -> None:
        super().__init__(config)
        self.socket = sock

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().serve(sockets=sockets or [self.socket])
        finally:
            self.socket.close()


def bind(host: str, port: int) -> socket.socket:
    """Return a TCP socket bound to ``host:port`` (not yet listening).

    Raises
    ------
    OSError
        ``cannot listen on HOST:PORT: ...`` when the port is taken or the host is not this machine's.
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as err:
        raise _listen_error(host, port, err) from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart need not wait out TIME_WAIT
        sock.bind(address)
    except OSError as err:
        sock.close()
        raise _listen_error(host, port, err) from None
    return sock


def _listen_error(host: str, port: int, err: OSError) -> OSError:
    reason = "the port is in use by another program" if err.errno == errno.EADDRINUSE else (err.strerror or str(err))
    error = OSError(f"cannot listen on {host}:{port}: {reason}")  # one argument: str() is the message alone
    error.errno = err.errno
    return error


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _open_files(wanted: int) -> int:
    """Raise this process's open-file limit towards ``wanted`` (within the hard limit); return how
    many more files it may open."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX
        return wanted
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    soft = soft if soft != resource.RLIM_INFINITY else wanted
    try:
        in_use = len(os.listdir("/proc/self/fd"))
    except OSError:  # not Linux: assume a few dozen (the libraries' own files)
        in_use = 48
    return soft - in_use


def make_server(model_dir: str | os.PathLike[str], host: str = "127.0.0.1", port: int = 8000, *,
                api_key: str | None = None, limits: Limits | None = None, log_level: str = "info",
                access_log: bool = False) -> uvicorn.Server:
    """Bind ``host:port``, load the model of ``model_dir`` with its card and titles, and return the
    uvicorn server for it (not started: the port accepts connections once it runs).

    ``api_key`` defaults to the ``MOVIEREC_API_KEY`` environment variable (no key when unset or
    empty), ``limits`` to the defaults of `Limits`. Port 0 picks a free port; once started,
    ``server.servers[0].sockets[0].getsockname()`` tells which. A host other than loopback without
    a key logs one warning. ``access_log`` writes a line per request (off: under load it costs
    more than the answer).

    Raises
    ------
    OSError
        ``cannot listen on HOST:PORT`` when the port is taken (before the model is read).
    FileNotFoundError
        When ``model_dir`` is not a folder.
    ModelFileError
        When the folder is not a complete, unchanged saved model.
    """
    limits = limits or Limits()
    key = os.environ.get(API_KEY_ENV) if api_key is None else api_key
    if not Path(model_dir).is_dir():  # said first: "not found" is no port problem
        raise FileNotFoundError(f"{model_dir} not found: it is not a saved movierec model")
    sock = bind(host, port)
    try:
        started = time.perf_counter()
        model = load_model(model_dir)
        card, items = read_kept(model_dir)
        app = create_app(model, card=card, items=items, api_key=key or None, limits=limits)
    except BaseException:
        sock.close()
        raise
    logger.info("loaded %s (%d users, %d movies%s) in %.1f s", type(model).__name__, len(model.users_),
                len(model.items_), ", with titles" if items is not None else "", time.perf_counter() - started)
    if not key and not _is_loopback(host):
        logger.warning("serving on %s without an API key: anyone who reaches this port can query the model; "
                       "set %s", host, API_KEY_ENV)
    _quiet_floods()
    files = _open_files(limits.max_connections + 256)
    protocol = type("_TimedH11", (_TimedH11,), {"read_timeout": limits.read_timeout})
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, lifespan="off", http=protocol,
                            access_log=access_log, timeout_keep_alive=limits.keep_alive, backlog=limits.backlog,
                            limit_concurrency=max(2, min(limits.max_connections, files - 16)))
    return _Server(config, sock)


def run(model_dir: str | os.PathLike[str], host: str = "127.0.0.1", port: int = 8000, *,
        api_key: str | None = None, limits: Limits | None = None, log_level: str = "info", **options: Any) -> None:
    """Serve the model saved in ``model_dir`` on ``host:port`` until interrupted (Ctrl-C, SIGTERM).

    Binds to 127.0.0.1 unless told otherwise: pass ``host="0.0.0.0"`` to accept other machines,
    preferably with an API key. See `make_server` for the arguments and what it raises.
    """
    make_server(model_dir, host, port, api_key=api_key, limits=limits, log_level=log_level, **options).run()
