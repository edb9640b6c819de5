"""Hostile data: mirrors that trickle, stream without end or lie, zip bombs, zip-slip names, and
fuzzed MovieLens files. Each case must end in a clear DatasetError, in seconds and in little
memory, with nothing left in the data folder, or give a valid frame.

The HTTP cases run a real server on 127.0.0.1 whose routes misbehave on purpose; limits are set
small (a fraction of a second, a megabyte) so the suite stays fast.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import ipaddress
import math
import socket
import ssl
import tempfile
import threading
import time
import tracemalloc
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from movierec._core.validation import check_ratings
from movierec.data._movielens import _parsers
from movierec.data._movielens._limits import MARGIN, MIN_DEADLINE, MIN_RATE, download_cap, download_deadline
from movierec.data._movielens._registry import LAYOUTS
from movierec.data.movielens import download_movielens, load_movielens
from movierec.exceptions import ChecksumError, DatasetError, InvalidParameterError

RATINGS_DTYPES = {"userId": "int64", "movieId": "int64", "rating": "float64", "timestamp": "int64"}
SMALL_CSV = {
    "ml-latest-small/ratings.csv": b"userId,movieId,rating,timestamp\n1,1,4.0,964982703\n",
    "ml-latest-small/movies.csv": b"movieId,title,genres\n1,Toy Story (1995),Comedy\n",
}
DEADLINE = 0.4  # seconds: every slow route below is far slower than this
MiB = 1 << 20


@pytest.fixture(autouse=True)
def _no_real_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOVIEREC_MIRROR", "http://127.0.0.1:9/")


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def bomb(member: str, size: int, others: dict[str, bytes] | None = None) -> bytes:
    """Return a zip whose ``member`` inflates to ``size`` zero bytes (1000 times its deflated size)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in (others or {}).items():
            archive.writestr(name, data)
        info = zipfile.ZipInfo(member)
        info.compress_type = zipfile.ZIP_DEFLATED
        with archive.open(info, "w") as stream:
            zeros = bytes(MiB)
            for _ in range(size // MiB):
                stream.write(zeros)
    data = buffer.getvalue()
    assert len(data) < size // 500
    return data


def patch_header(data: bytes, member: str, offset: int, value: int, size: int = 4) -> bytes:
    """Return ``data`` with the field at ``offset`` of ``member``'s central directory entry set to ``value``."""
    entry = data.index(b"PK\x01\x02")
    while data[entry + 46: entry + 46 + len(member)] != member.encode():  # the name follows 46 bytes
        entry = data.index(b"PK\x01\x02", entry + 4)
    at = entry + offset
    return data[:at] + value.to_bytes(size, "little") + data[at + size:]


def declare_size(data: bytes, member: str, size: int) -> bytes:
    """Return ``data`` with the central directory claiming ``member`` inflates to ``size`` bytes."""
    return patch_header(data, member, 24, size)


@contextlib.contextmanager
def peak_memory() -> Iterator[list[int]]:
    """Yield a list that holds, on exit, the peak bytes traced by tracemalloc inside the block."""
    result: list[int] = []
    tracemalloc.start()
    try:
        yield result
    finally:
        result.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()


# --- a misbehaving mirror --------------------------------------------------------------------------


class Hostile(BaseHTTPRequestHandler):
    """Routes ``/{behaviour}/{name}`` serve ``server.files[name]``, misbehaving as ``behaviour`` says."""

    server: HostileServer

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        _, behaviour, name = self.path.split("/", 2)
        data = self.server.files.get(name, b"")
        with contextlib.suppress(OSError):  # the client hanging up ends every route
            getattr(self, "_" + behaviour.replace("-", "_"))(data, name)

    def _head(self, length: int | None) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/zip")
        if length is not None:
            self.send_header("Content-Length", str(length))
        self.end_headers()
        self.wfile.flush()

    def _running(self) -> bool:
        return not self.server.stop.is_set()

    def _ok(self, data: bytes, name: str) -> None:
        self._head(len(data))
        self.wfile.write(data)

    def _trickle(self, data: bytes, name: str) -> None:  # one byte every 50 ms
        self._head(len(data))
        for i in range(len(data)):
            if not self._running():
                return
            self.wfile.write(data[i: i + 1])
            self.wfile.flush()
            time.sleep(0.05)

    def _trickle_headers(self, data: bytes, name: str) -> None:  # a header that never ends
        self.wfile.write(b"HTTP/1.0 200 OK\r\nX-Slow: ")
        while self._running():
            self.wfile.write(b"a")
            self.wfile.flush()
            time.sleep(0.05)

    def _silent(self, data: bytes, name: str) -> None:  # headers, then nothing
        self._head(len(data))
        self.server.stop.wait(30)

    def _endless(self, data: bytes, name: str) -> None:  # no length, zeros until the client leaves
        self._head(None)
        while self._running():
            self.wfile.write(bytes(64 * 1024))

    def _endless_chunked(self, data: bytes, name: str) -> None:
        self.protocol_version = "HTTP/1.1"
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        chunk = bytes(64 * 1024)
        while self._running():
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))

    def _overclaim(self, data: bytes, name: str) -> None:  # announces more than it sends
        self._head(len(data) + 1000)
        self.wfile.write(data)

    def _underclaim(self, data: bytes, name: str) -> None:  # announces less than it sends
        self._head(len(data) // 2)
        self.wfile.write(data)

    def _huge_claim(self, data: bytes, name: str) -> None:  # announces a terabyte
        self._head(10**12)
        self.wfile.write(data)

    def _redirect(self, data: bytes, name: str) -> None:  # to the trickle
        self.send_response(302)
        self.send_header("Location", f"/trickle/{name}")
        self.send_header("Content-Length", "0")
        self.end_headers()


class HostileServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Hostile)
        self.files: dict[str, bytes] = {}
        self.stop = threading.Event()

    def url(self, behaviour: str, name: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/{behaviour}/{name}"


@pytest.fixture(scope="module")
def mirror() -> Iterator[HostileServer]:
    server = HostileServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stop.set()
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def fails(home: Path, url: str, match: str, name: str = "ml-latest-small", **limits: float) -> float:
    """Download ``url`` into ``home``, expect a DatasetError matching ``match``; return the seconds taken."""
    start = time.monotonic()
    with pytest.raises(DatasetError, match=match) as info:
        download_movielens(name, data_home=home, url=url, **limits)
    elapsed = time.monotonic() - start
    assert f"put it at {home / LAYOUTS[name].zipname}" in str(info.value)
    assert list(home.iterdir()) == []  # no archive, no partial temp file
    return elapsed


@pytest.mark.parametrize("route", ["trickle", "redirect", "trickle-headers"])
def test_trickling_mirror_fails_at_the_deadline(mirror: HostileServer, home: Path, route: str) -> None:
    mirror.files["ml-latest-small.zip"] = zip_bytes(SMALL_CSV)
    elapsed = fails(home, mirror.url(route, "ml-latest-small.zip"), f"deadline={DEADLINE:g} s",
                    deadline=DEADLINE)
    assert DEADLINE <= elapsed < DEADLINE + 1.0


def test_silent_mirror_fails_within_the_deadline(mirror: HostileServer, home: Path) -> None:
    mirror.files["ml-latest-small.zip"] = zip_bytes(SMALL_CSV)
    elapsed = fails(home, mirror.url("silent", "ml-latest-small.zip"), "could not download",
                    deadline=DEADLINE)
    assert elapsed < DEADLINE + 1.0


def self_signed(folder: Path) -> tuple[Path, Path]:
    """Write a certificate for 127.0.0.1 and its key into ``folder``; return their paths."""
    x509 = pytest.importorskip("cryptography.x509")  # installed with moto, a test dependency
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def slow_relay(upstream: int, stop: threading.Event) -> int:
    """Relay one connection to ``upstream``, passing the server's bytes on one per 20 ms; return its port."""
    listener = socket.create_server(("127.0.0.1", 0))

    def pipe(source: socket.socket, target: socket.socket, size: int, pause: float) -> None:
        with contextlib.suppress(OSError):
            while not stop.is_set() and (data := source.recv(size)):
                time.sleep(pause)
                target.sendall(data)

    def serve() -> None:
        with listener, contextlib.suppress(OSError):
            client, _ = listener.accept()
            server = socket.create_connection(("127.0.0.1", upstream))
            with client, server:
                threading.Thread(target=pipe, args=(client, server, 65536, 0), daemon=True).start()
                pipe(server, client, 1, 0.02)

    threading.Thread(target=serve, daemon=True).start()
    return listener.getsockname()[1]


def test_trickled_tls_handshake_fails_at_the_deadline(tmp_path: Path, home: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    cert, key = self_signed(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # what ssl.create_default_context trusts
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = HostileServer()
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.files["ml-latest-small.zip"] = zip_bytes(SMALL_CSV)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    port = server.server_address[1]
    try:
        # Straight to the server, HTTPS works...
        download_movielens("ml-latest-small", data_home=tmp_path / "direct",
                           url=f"https://127.0.0.1:{port}/ok/ml-latest-small.zip", deadline=5)
        # ...through the relay, the handshake alone takes longer than the deadline.
        relay = slow_relay(port, server.stop)
        elapsed = fails(home, f"https://127.0.0.1:{relay}/ok/ml-latest-small.zip",
                        f"deadline={DEADLINE:g} s", deadline=DEADLINE)
        assert DEADLINE <= elapsed < DEADLINE + 1.0
    finally:
        server.stop.set()
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.parametrize("route", ["endless", "endless-chunked"])
def test_endless_stream_stops_at_the_cap(mirror: HostileServer, home: Path, route: str) -> None:
    elapsed = fails(home, mirror.url(route, "ml-latest-small.zip"), f"more than max_bytes={MiB} bytes",
                    max_bytes=MiB)
    assert elapsed < 2.0


def test_announced_length_above_the_cap_is_refused_before_the_body(mirror: HostileServer, home: Path) -> None:
    mirror.files["ml-100k.zip"] = b"x" * 100
    fails(home, mirror.url("huge-claim", "ml-100k.zip"), "announces 1000000000000 bytes, more than "
          f"max_bytes={math.ceil(MARGIN * LAYOUTS['ml-100k'].size)}", name="ml-100k")


def test_length_claiming_more_than_sent(mirror: HostileServer, home: Path) -> None:
    data = mirror.files["ml-latest-small.zip"] = zip_bytes(SMALL_CSV)
    fails(home, mirror.url("overclaim", "ml-latest-small.zip"), f"received {len(data)} bytes, "
          f"expected {len(data) + 1000}")


def test_length_claiming_less_than_sent(mirror: HostileServer, home: Path) -> None:
    mirror.files["ml-latest-small.zip"] = zip_bytes(SMALL_CSV)
    fails(home, mirror.url("underclaim", "ml-latest-small.zip"), "not a readable zip")


def test_wrong_checksum_from_mirror(mirror: HostileServer, home: Path) -> None:
    mirror.files["ml-100k.zip"] = zip_bytes({"ml-100k/u.data": b"1\t1\t5\t1\n", "ml-100k/u.item": b""})
    with pytest.raises(ChecksumError, match="member 'ml-100k/u.data' has SHA-256"):
        download_movielens("ml-100k", data_home=home, url=mirror.url("ok", "ml-100k.zip"))
    assert list(home.iterdir()) == []


def test_zip_slip_names_are_refused(mirror: HostileServer, home: Path) -> None:
    for evil in ("../evil.txt", "/etc/evil", "ml-latest-small/../../evil", "C:\\evil", "..\\evil"):
        mirror.files["ml-latest-small.zip"] = zip_bytes({**SMALL_CSV, evil: b"x"})
        fails(home, mirror.url("ok", "ml-latest-small.zip"), "points outside the archive's folder")
    assert not (home.parent / "evil.txt").exists()


def test_loading_never_extracts(tmp_path: Path) -> None:
    home = tmp_path / "deep" / "home"
    home.mkdir(parents=True)
    (home / "ml-latest-small.zip").write_bytes(zip_bytes({**SMALL_CSV, "../../evil.txt": b"x"}))
    assert len(load_movielens("ml-latest-small", data_home=home, download=False).items) == 1
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == [
        "deep", "deep/home", "deep/home/ml-latest-small.zip"]


def test_a_good_archive_still_downloads(mirror: HostileServer, home: Path) -> None:
    mirror.files["ml-latest-small.zip"] = zip_bytes(SMALL_CSV)
    path = download_movielens("ml-latest-small", data_home=home,
                              url=mirror.url("ok", "ml-latest-small.zip"), max_bytes=MiB, deadline=5)
    assert [p.name for p in home.iterdir()] == [path.name]
    assert len(load_movielens("ml-latest-small", data_home=home, download=False).ratings) == 1


def test_default_limits_come_from_the_known_sizes() -> None:
    for layout in LAYOUTS.values():
        assert download_cap(layout) == math.ceil(1.5 * layout.size)
        assert download_deadline(layout) == max(MIN_DEADLINE, layout.size / MIN_RATE)
        assert 120 <= download_deadline(layout) < 3600
    assert download_deadline(LAYOUTS["ml-100k"]) == 120
    assert download_deadline(LAYOUTS["ml-25m"]) == pytest.approx(2619.8, abs=0.1)


@pytest.mark.parametrize("limits", [{"max_bytes": 0}, {"max_bytes": 1.5}, {"max_bytes": True},
                                    {"deadline": 0}, {"deadline": -1}, {"deadline": float("inf")},
                                    {"deadline": "60"}])
def test_bad_limits_are_refused(home: Path, limits: dict[str, object]) -> None:
    name, value = next(iter(limits.items()))
    with pytest.raises(InvalidParameterError, match=f"download_movielens: {name} must be .*got {value!r}"):
        download_movielens("ml-100k", data_home=home, **limits)  # type: ignore[arg-type]
    assert not home.exists()


# --- zip bombs ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def u_data_bomb() -> bytes:
    """An ml-100k.zip of about 64 kB whose u.data inflates to 64 MiB (the real one: 1.98 MB)."""
    return bomb("ml-100k/u.data", 64 * MiB)


def test_zip_bomb_in_a_loaded_archive(tmp_path: Path, u_data_bomb: bytes) -> None:
    (tmp_path / "ml-100k.zip").write_bytes(u_data_bomb)
    with peak_memory() as peak, pytest.raises(DatasetError, match="inflates to 67108864 bytes") as info:
        load_movielens("ml-100k", data_home=tmp_path, download=False)
    assert peak[0] < 2 * MiB  # the old loader read all 64 MiB before hashing them
    assert "zip bomb" in str(info.value) and "download it again" in str(info.value)


def test_zip_bomb_lying_about_its_size(tmp_path: Path, u_data_bomb: bytes) -> None:
    # The directory claims 1000 bytes: zipfile stops there, and the CRC of what it read is wrong.
    (tmp_path / "ml-100k.zip").write_bytes(declare_size(u_data_bomb, "ml-100k/u.data", 1000))
    with peak_memory() as peak, pytest.raises(DatasetError, match="damaged .*CRC"):
        load_movielens("ml-100k", data_home=tmp_path, download=False)
    assert peak[0] < 4 * MiB


def test_zip_bomb_from_a_mirror(mirror: HostileServer, home: Path, u_data_bomb: bytes) -> None:
    mirror.files["ml-100k.zip"] = u_data_bomb
    with peak_memory() as peak:
        fails(home, mirror.url("ok", "ml-100k.zip"), "u.data' inflates to", name="ml-100k")
    assert peak[0] < 4 * MiB


def test_bomb_in_a_member_of_unknown_size(mirror: HostileServer, home: Path) -> None:
    # ml-latest-small's members inflate to about 3.4 MB together; a README of 8 MiB is no README.
    mirror.files["ml-latest-small.zip"] = bomb("ml-latest-small/README.txt", 8 * MiB, SMALL_CSV)
    fails(home, mirror.url("ok", "ml-latest-small.zip"), "README.txt' inflates to 8388608 bytes")


def test_members_together_above_the_archive_cap(mirror: HostileServer, home: Path) -> None:
    parts = {f"ml-latest-small/part{i}": bytes(3 * MiB) for i in range(2)}
    mirror.files["ml-latest-small.zip"] = zip_bytes({**SMALL_CSV, **parts})
    fails(home, mirror.url("ok", "ml-latest-small.zip"), "members inflate to 6291[0-9]+ bytes")


def test_verification_streams_in_constant_memory(mirror: HostileServer, home: Path) -> None:
    # 16 MiB of ml-1m ratings lie within its caps; checking them must not hold them in memory.
    members = {"ml-1m/movies.dat": b"1::A::B\n", "ml-1m/users.dat": b"1::F::1::10::48067\n"}
    mirror.files["ml-1m.zip"] = bomb("ml-1m/ratings.dat", 16 * MiB, members)
    with peak_memory() as peak:
        download_movielens("ml-1m", data_home=home, url=mirror.url("ok", "ml-1m.zip"))
    assert peak[0] < 4 * MiB
    with pytest.raises(DatasetError, match="ratings.dat' does not have the expected format"):
        load_movielens("ml-1m", data_home=home, download=False)


# --- malformed and fuzzed files ------------------------------------------------------------------------


@pytest.mark.parametrize(("ratings", "match"), [
    (b"1::1::5::978300760\n1::1::4::978300761\n", "duplicate"),
    (b"1::1::inf::978300760\n", "NaN or infinite"),
    (b"1::1::nan::978300760\n", "expected format"),
    (b"123456789012345678901234::1::5::978300760\n", "too large"),
    (b"\x1f\x1e\x1d\x1c\t1::1::5::1\n", "stand in"),
    (b"", "expected format"),
])
def test_malformed_ratings_are_dataset_errors(tmp_path: Path, ratings: bytes, match: str) -> None:
    (tmp_path / "ml-1m.zip").write_bytes(zip_bytes({
        "ml-1m/ratings.dat": ratings, "ml-1m/movies.dat": b"1::A::B\n", "ml-1m/users.dat": b"1::F::1::10::1\n",
    }))
    with pytest.raises(DatasetError, match=match) as info:
        load_movielens("ml-1m", data_home=tmp_path, download=False)
    assert "ml-1m/ratings.dat" in str(info.value)


@pytest.mark.parametrize(("member", "data"), [
    ("movies.dat", b"1::A::B\n1::C::D\n"),
    ("users.dat", b"1::F::1::10::1\n1::M::1::10::2\n"),
])
def test_repeated_ids_are_dataset_errors(tmp_path: Path, member: str, data: bytes) -> None:
    members = {"ml-1m/ratings.dat": b"1::1::5::1\n", "ml-1m/movies.dat": b"1::A::B\n",
               "ml-1m/users.dat": b"1::F::1::10::1\n", f"ml-1m/{member}": data}
    (tmp_path / "ml-1m.zip").write_bytes(zip_bytes(members))
    with pytest.raises(DatasetError, match=f"ml-1m/{member}.*appears more than once"):
        load_movielens("ml-1m", data_home=tmp_path, download=False)


HOSTILE = st.sampled_from(["", "x", "-3", "1.5", "1e3", "nan", "inf", "9" * 25, "é", "::", "|", ",", '"',
                           "\t", "\x00", "32-Foo-1995", "2"])
ID = st.integers(1, 30).map(str)
RATING = st.sampled_from(["1", "2.5", "5", "4.0", "0.5"])
TIMESTAMP = st.integers(0, 2**31).map(str)
TITLE = st.sampled_from(["Toy Story (1995)", "Misérables, Les (1995)", '"Great Performances" Cats (1998)'])
GENRES = st.sampled_from(["Comedy", "Action|Drama", "(no genres listed)"])


@st.composite
def table(draw: st.DrawFn, columns: list[st.SearchStrategy[str]], sep: str, encoding: str) -> bytes:
    """Rows of valid fields, then up to two hostile edits (a field replaced, dropped or added)."""
    rows = draw(st.lists(st.tuples(*columns).map(list), max_size=6))
    for _ in range(draw(st.integers(0, 2))):
        if not rows:
            break
        row = rows[draw(st.integers(0, len(rows) - 1))]
        at = draw(st.integers(0, len(row) - 1))
        edit = draw(st.sampled_from(["replace", "drop", "add"]))
        if edit == "replace":
            row[at] = draw(HOSTILE)
        elif edit == "drop":
            del row[at]
        else:
            row.insert(at, draw(HOSTILE))
    return "".join(sep.join(row) + "\n" for row in rows).encode(encoding, "replace")


def files(columns: list[st.SearchStrategy[str]], sep: str, encoding: str = "latin-1") -> st.SearchStrategy[bytes]:
    """Files that are valid, nearly valid, or noise."""
    return st.one_of(table(columns, sep, encoding), st.binary(max_size=120))


RATINGS = [ID, ID, RATING, TIMESTAMP]


FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def assert_valid_ratings(frame: pd.DataFrame) -> None:
    assert frame.dtypes.astype(str).to_dict() == RATINGS_DTYPES
    check_ratings(frame)


def load_fuzzed(name: str, archive: dict[str, bytes] | bytes) -> object:
    """Return the dataset in ``archive`` (its members, or the zip itself), or the DatasetError it raises."""
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, f"{name}.zip").write_bytes(archive if isinstance(archive, bytes) else zip_bytes(archive))
        try:
            return load_movielens(name, data_home=folder, download=False)
        except DatasetError as err:
            return err


@FUZZ
@given(ratings=files(RATINGS, "::"), movies=files([ID, TITLE, GENRES], "::", "utf-8"))
@example(ratings=b"1::1::5::1\n2::1::4.5::2\n", movies=b"1::A::B\n")
def test_fuzzed_dat_archive(ratings: bytes, movies: bytes) -> None:
    result = load_fuzzed("ml-10m", {"ml-10M100K/ratings.dat": ratings, "ml-10M100K/movies.dat": movies})
    if isinstance(result, DatasetError):
        assert "ml-10M100K/" in str(result)
        return
    assert_valid_ratings(result.ratings)
    assert list(result.items.columns) == ["movieId", "title", "genres"]
    assert result.items["movieId"].is_unique


@FUZZ
@given(ratings=files(RATINGS, ","), movies=files([ID, TITLE.map(lambda t: f'"{t}, The"'), GENRES], ",", "utf-8"))
@example(ratings=b"1,1,4.0,964982703\n", movies=b'1,"Toy Story, The (1995)",Comedy\n')
def test_fuzzed_csv_archive(ratings: bytes, movies: bytes) -> None:
    result = load_fuzzed("ml-latest-small", {
        "ml-latest-small/ratings.csv": b"userId,movieId,rating,timestamp\n" + ratings,
        "ml-latest-small/movies.csv": b"movieId,title,genres\n" + movies,
    })
    if isinstance(result, DatasetError):
        assert "ml-latest-small/" in str(result)
        return
    assert_valid_ratings(result.ratings)
    assert result.items["movieId"].dtype == "int64" and result.items["movieId"].is_unique


# ml-100k's loaders only parse members whose SHA-256 matches, so its parsers are fuzzed directly:
# they must return a valid frame or raise ValueError, which the loaders turn into DatasetError.


@FUZZ
@given(data=files(RATINGS, "\t"))
@example(data=b"196\t242\t3\t881250949\n")
def test_fuzzed_u_data(data: bytes) -> None:
    try:
        frame = _parsers.ratings_100k(data)
    except ValueError:
        return
    assert_valid_ratings(frame)


@FUZZ
@given(data=files([ID, TITLE, st.sampled_from(["01-Jan-1995", ""]), st.just(""), st.just("http://x"),
                    *[st.sampled_from(["0", "1"])] * 19], "|"))
@example(data=b"1|Toy Story (1995)|01-Jan-1995||http://x|" + b"|".join([b"0"] * 18 + [b"1"]) + b"\n")
def test_fuzzed_u_item(data: bytes) -> None:
    try:
        frame = _parsers.items_100k(data)
    except ValueError:
        return
    assert frame["movieId"].dtype == "int64" and frame["movieId"].is_unique
    assert pd.api.types.is_datetime64_dtype(frame["release_date"])
    assert (frame.dtypes.iloc[3:] == bool).all()


@FUZZ
@given(data=files([ID, st.integers(1, 99).map(str), st.sampled_from(["M", "F"]),
                    st.sampled_from(["writer", "none"]), st.sampled_from(["85711", "T8H1N"])], "|"))
@example(data=b"1|24|M|technician|85711\n")
def test_fuzzed_u_user(data: bytes) -> None:
    try:
        frame = _parsers.users_100k(data)
    except ValueError:
        return
    assert frame["userId"].is_unique and frame["age"].dtype == "int64"


# --- damaged archives ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("offset", "value", "match"), [
    (8, 0x1, "ratings.csv' is encrypted"),  # the flags field of the central directory
    (10, zipfile.ZIP_LZMA, "ratings.csv' uses compression method 14"),  # its method field
    (10, 99, "ratings.csv' uses compression method 99"),
])
def test_odd_members_are_refused(tmp_path: Path, offset: int, value: int, match: str) -> None:
    data = zip_bytes(SMALL_CSV)
    member = "ml-latest-small/ratings.csv"
    (tmp_path / "ml-latest-small.zip").write_bytes(patch_header(data, member, offset, value, 2))
    with pytest.raises(DatasetError, match=match):
        load_movielens("ml-latest-small", data_home=tmp_path, download=False)


@FUZZ
@given(flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=4),
       keep=st.floats(0.5, 1.0))
def test_corrupted_archive(flips: list[tuple[int, int]], keep: float) -> None:
    """A damaged archive (bytes flipped, the end cut off) loads or fails with DatasetError only."""
    data = bytearray(zip_bytes(SMALL_CSV))
    for at, value in flips:
        data[at % len(data)] = value
    result = load_fuzzed("ml-latest-small", bytes(data[: math.ceil(keep * len(data))]))
    if not isinstance(result, DatasetError):
        assert_valid_ratings(result.ratings)
