"""Reading members straight from a MovieLens zip, with checksums, size caps and clear errors.

Members are read in chunks of 1 MiB and hashed while they stream, never read whole first, and no
member may inflate beyond its cap (`movierec.data._movielens._limits`): a zip bomb fails on its
declared size before a byte is inflated. `zipfile` never yields more than a member declares
and checks its CRC-32 at the end, so a member that lies about its size fails there.
"""

from __future__ import annotations

import hashlib
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import IO, Self, TypeVar

from movierec.data._movielens._limits import archive_cap, member_cap
from movierec.data._movielens._registry import SHA256, Layout
from movierec.exceptions import ChecksumError, DatasetError

# What zipfile and zlib raise on a truncated or damaged archive (CRC mismatch included); OSError:
# a seek to an offset a corrupt directory gives; NotImplementedError: a local header asking for a
# feature zipfile lacks (strong encryption, patch data).
ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError)
# MovieLens archives are deflated; other methods only widen what a hostile archive can reach.
METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
CHUNK = 1 << 20
T = TypeVar("T")


class Archive:
    """An open MovieLens zip whose read errors all become `DatasetError`.

    ``shown_as`` names the file in messages when ``path`` is a temporary download.
    """

    def __init__(self, path: Path, layout: Layout, shown_as: str | None = None) -> None:
        self.path, self.layout = path, layout
        self.label = shown_as or str(path)
        # A fresh download that fails verification is removed by the caller: nothing to delete.
        self.advice = "" if shown_as else (
            f" Delete {path} and download it again (movierec.data.movielens.download_movielens(force=True))."
        )
        try:
            self._zip = zipfile.ZipFile(path)
        except (*ZIP_ERRORS, ValueError) as err:  # ValueError: a corrupt zip64 record
            raise DatasetError(
                f"{self.label} is not a readable zip archive (truncated or corrupt: {err}).{self.advice}"
            ) from err

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self._zip.close()

    def _info(self, filename: str) -> zipfile.ZipInfo:
        member = self.layout.member(filename)
        try:
            info = self._zip.getinfo(member)
        except KeyError:
            raise DatasetError(f"{self.label} has no member {member!r}: it is incomplete or not the "
                               f"{self.layout.name} archive.{self.advice}") from None
        self._check_member(info, member_cap(self.layout, filename))
        return info

    def _check_member(self, info: zipfile.ZipInfo, cap: int) -> None:
        """Refuse, from the zip's directory alone, a member that is encrypted, oddly packed or too big."""
        if info.flag_bits & 0x1:
            raise DatasetError(f"{self.label}: member {info.filename!r} is encrypted; MovieLens archives "
                               f"are not.{self.advice}")
        if info.compress_type not in METHODS:
            raise DatasetError(f"{self.label}: member {info.filename!r} uses compression method "
                               f"{info.compress_type}; MovieLens archives are deflated.{self.advice}")
        if info.file_size > cap:
            raise DatasetError(
                f"{self.label}: member {info.filename!r} inflates to {info.file_size} bytes, more than "
                f"the {cap} a {self.layout.name} member may hold; the archive is not the official file "
                f"(a zip bomb?).{self.advice}"
            )

    def read(self, filename: str) -> bytes:
        """Return the bytes of ``filename`` (in the layout's folder), checked against its SHA-256."""
        info = self._info(filename)
        return b"".join(self._chunks(info, SHA256.get(self.layout.name, {}).get(filename)))

    def parse(self, filename: str, parser: Callable[[bytes], T]) -> T:
        """Return ``parser`` applied to the checked bytes of ``filename``; its ValueError is a DatasetError."""
        data = self.read(filename)
        with self.reading(self.layout.member(filename)):
            return parser(data)

    def _chunks(self, info: zipfile.ZipInfo, expected: str | None) -> Iterator[bytes]:
        """Yield the member in chunks, hashing them; the last step checks the SHA-256, if known."""
        digest = hashlib.sha256()
        with self.reading(info.filename), self._zip.open(info) as stream:
            while chunk := stream.read(CHUNK):
                digest.update(chunk)
                yield chunk
        if expected is not None and digest.hexdigest() != expected:
            raise ChecksumError(
                f"{self.label}: member {info.filename!r} has SHA-256 {digest.hexdigest()}, expected "
                f"{expected}; the archive is corrupt or not the official file.{self.advice}"
            )

    @contextmanager
    def open(self, filename: str) -> Iterator[IO[bytes]]:
        """Yield a stream over ``filename``; zipfile checks its CRC-32 once it is read to the end."""
        info = self._info(filename)
        with self.reading(info.filename), self._zip.open(info) as stream:
            yield stream

    @contextmanager
    def reading(self, member: str) -> Iterator[None]:
        """Turn zip damage and parse failures met while reading ``member`` into DatasetError."""
        try:
            yield
        except DatasetError:
            raise
        except ZIP_ERRORS as err:
            raise DatasetError(f"{self.label}: member {member!r} is damaged ({err}).{self.advice}") from err
        except (ValueError, UnicodeDecodeError) as err:  # pandas' ParserError is a ValueError
            raise DatasetError(f"{self.label}: member {member!r} does not have the expected format "
                               f"({err}).{self.advice}") from err

    def verify(self) -> None:
        """Check names, declared sizes, every CRC-32, the loader's members and every known SHA-256.

        Sizes are checked from the zip's directory first; then every member streams once, in
        constant memory.
        """
        infos = self._zip.infolist()
        for info in infos:
            _check_name(info.filename, self.label)
            self._check_member(info, member_cap(self.layout, self._inside(info)))
        total, cap = sum(info.file_size for info in infos), archive_cap(self.layout)
        if total > cap:
            raise DatasetError(f"{self.label}: its members inflate to {total} bytes, more than the {cap} "
                               f"the {self.layout.name} archive may hold.{self.advice}")
        hashed = SHA256.get(self.layout.name, {})
        for info in infos:
            for _ in self._chunks(info, hashed.get(self._inside(info) or "")):
                pass
        for filename in (self.layout.ratings, self.layout.movies, self.layout.users, *hashed):
            if filename is not None:
                self._info(filename)

    def _inside(self, info: zipfile.ZipInfo) -> str | None:
        """Return the member's name inside the layout's folder, or None if it is elsewhere."""
        prefix = self.layout.folder + "/"
        return info.filename.removeprefix(prefix) if info.filename.startswith(prefix) else None


def _check_name(name: str, label: str) -> None:
    """Refuse a member name that would land outside a folder it is extracted to (zip slip)."""
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise DatasetError(f"{label}: member name {name!r} points outside the archive's folder; "
                           f"the archive is not the official file")
