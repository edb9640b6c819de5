"""Atomic, bounded download of a MovieLens archive: temp file in the target folder, verify, rename.

A download stops at a size cap and a total deadline (`Limits`), so a mirror that streams
without end or trickles bytes (body or headers) fails with a `DatasetError` instead of
filling the disk or hanging. At the deadline a watchdog shuts the connection's socket, which ends
any receive blocked on it; the copy loop reads with ``read1`` (one receive at a time) and checks the
cap before it writes. Only name resolution (DNS) is outside the deadline's reach.
"""

from __future__ import annotations

import http.client
import logging
import os
import socket
import ssl
import tempfile
import threading
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Self

from movierec.data._movielens._archive import Archive
from movierec.data._movielens._registry import Layout
from movierec.exceptions import DatasetError

logger = logging.getLogger(__name__)

CHUNK = 1 << 20
#: The longest wait for any one network operation (connect, one receive), in seconds.
READ_TIMEOUT = 30.0


@dataclass(frozen=True)
class Limits:
    """The most bytes a download may receive, and the most seconds it may take in total."""

    max_bytes: int
    deadline: float


class _OverLimit(Exception):
    """The server announced or sent more than the cap, or the deadline passed."""


def _progress(total: int | None, desc: str) -> Any:
    """Return a tqdm bar when tqdm is installed, else None."""
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    # disable=None: no bar when stderr is not a terminal (CI logs, notebooks without a frontend).
    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=desc, disable=None)


class _Watchdog:
    """Shut the download's current connection once ``seconds`` have passed, ending any wait on it."""

    def __init__(self, seconds: float) -> None:
        self.expired = False
        self._fd: int | None = None
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> Self:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()

    def watch(self, sock: socket.socket) -> None:
        """Watch ``sock``, a new TCP connection; urllib has closed the previous one (a redirect)."""
        with self._lock:
            # The descriptor, not the object: a TLS handshake moves it to a new SSLSocket first.
            self._fd = sock.fileno()
            if self.expired:
                _shut(self._fd)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            if self._fd is not None:
                _shut(self._fd)


def _shut(fd: int) -> None:
    """Shut down the socket ``fd`` for both directions (without closing it: its owner will)."""
    try:
        sock = socket.socket(fileno=fd)
    except OSError:  # no longer a socket
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:  # already shut
        pass
    finally:
        sock.detach()


def _opener(watchdog: _Watchdog) -> urllib.request.OpenerDirector:
    """Return urllib's usual opener (proxies, redirects), its connections watched by ``watchdog``."""

    class Connection(http.client.HTTPConnection):
        def connect(self) -> None:
            super().connect()  # TCP, and a proxy's tunnel
            watchdog.watch(self.sock)

    # HTTPSConnection.connect calls Connection.connect, then the TLS handshake: that is watched too.
    class SecureConnection(http.client.HTTPSConnection, Connection):
        pass

    context = ssl.create_default_context()

    class Handler(urllib.request.HTTPHandler):
        def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
            return self.do_open(Connection, req)

    class SecureHandler(urllib.request.HTTPSHandler):
        def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
            return self.do_open(SecureConnection, req, context=context)

    return urllib.request.build_opener(Handler(), SecureHandler(context=context))


def _announced(response: Any, limits: Limits) -> int | None:
    """Return the Content-Length, refusing one above the cap before a byte of the body is read."""
    length = response.headers.get("Content-Length")
    total = int(length) if length and length.isdigit() else None
    if total is not None and total > limits.max_bytes:
        raise _OverLimit(f"the server announces {total} bytes, more than max_bytes={limits.max_bytes}")
    return total


def _stream(url: str, target: IO[bytes], desc: str, limits: Limits) -> int:
    """Copy ``url`` into ``target`` within ``limits``; return the number of bytes."""
    request = urllib.request.Request(url, headers={"User-Agent": "movierec"})
    with _Watchdog(limits.deadline) as watchdog:
        try:
            size, total = _copy(_opener(watchdog), request, target, desc, limits, watchdog)
        except (OSError, http.client.HTTPException, ValueError) as err:
            if watchdog.expired:  # the watchdog ended a blocked wait: say so, not "connection reset"
                raise _OverLimit(_late(limits, None)) from err
            raise
    if total is not None and size != total:
        raise OSError(f"received {size} bytes, expected {total}")
    return size


def _copy(opener: urllib.request.OpenerDirector, request: urllib.request.Request, target: IO[bytes],
          desc: str, limits: Limits, watchdog: _Watchdog) -> tuple[int, int | None]:
    """Copy the response to ``request`` into ``target``; return the bytes copied and announced."""
    with opener.open(request, timeout=min(READ_TIMEOUT, limits.deadline)) as response:
        total = _announced(response, limits)
        bar = _progress(total, desc)
        size = 0
        try:
            while chunk := response.read1(CHUNK):
                if watchdog.expired:
                    raise _OverLimit(_late(limits, size))
                size += len(chunk)
                if size > limits.max_bytes:
                    raise _OverLimit(f"the server sent more than max_bytes={limits.max_bytes} bytes")
                target.write(chunk)
                if bar is not None:
                    bar.update(len(chunk))
        finally:
            if bar is not None:
                bar.close()
    if watchdog.expired and size != total:  # the watchdog's shutdown reads as the end of the body
        raise _OverLimit(_late(limits, size))
    return size, total


def _late(limits: Limits, size: int | None) -> str:
    received = "" if size is None else f" ({size} bytes received)"
    return f"it did not finish within deadline={limits.deadline:g} s{received}"


def download(layout: Layout, url: str, path: Path, limits: Limits) -> Path:
    """Download ``url`` to ``path`` atomically; on any failure nothing is left at or near ``path``."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed, renamed or removed below
            dir=path.parent, prefix=f".{path.name}.", suffix=".part", delete=False)
    except OSError as err:
        raise DatasetError(f"could not download {url}: cannot write to {path.parent} ({err}). "
                           f"Download it by hand and put it at {path}") from err
    tmp = Path(handle.name)
    try:
        try:
            with handle:
                logger.info("downloading %s to %s", url, path)
                size = _stream(url, handle, layout.zipname, limits)
        except _OverLimit as err:
            raise DatasetError(f"could not download {url}: {err}; the {layout.name} archive is about "
                               f"{layout.size} bytes. Pass larger max_bytes= or deadline= to "
                               f"download_movielens, or download it by hand and put it at {path}") from err
        except (OSError, http.client.HTTPException, ValueError) as err:
            raise DatasetError(f"could not download {url}: {err}. "
                               f"Download it by hand and put it at {path}") from err
        try:
            with Archive(tmp, layout, shown_as=f"the file downloaded from {url}") as archive:
                archive.verify()
        except DatasetError as err:
            raise type(err)(f"{str(err).rstrip('.')}. Download it by hand and put it at {path}") from err
        os.replace(tmp, path)
        logger.info("saved %s (%d bytes)", path, size)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
