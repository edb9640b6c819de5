"""Reading members straight from a MovieLens zip, with checksums and clear errors."""

from __future__ import annotations

import hashlib
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import IO

from movierec._datasets._registry import SHA256, Layout
from movierec.exceptions import ChecksumError, DatasetError

# What zipfile and zlib raise on a truncated or damaged archive (CRC mismatch included).
ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError)


class Archive:
    """An open MovieLens zip whose read errors all become :class:`DatasetError`.

    ``shown_as`` names the file in messages when ``path`` is a temporary download.
    """

    def __init__(self, path: Path, layout: Layout, shown_as: str | None = None) -> None:
        self.path, self.layout = path, layout
        self.label = shown_as or str(path)
        # A fresh download that fails verification is removed by the caller: nothing to delete.
        self.advice = "" if shown_as else (
            f" Delete {path} and download it again (movierec.datasets.download_movielens(force=True))."
        )
        try:
            self._zip = zipfile.ZipFile(path)
        except ZIP_ERRORS as err:
            raise DatasetError(
                f"{self.label} is not a readable zip archive (truncated or corrupt: {err}).{self.advice}"
            ) from err

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._zip.close()

    def _info(self, filename: str) -> zipfile.ZipInfo:
        member = self.layout.member(filename)
        try:
            return self._zip.getinfo(member)
        except KeyError:
            raise DatasetError(f"{self.label} has no member {member!r}: it is incomplete or not the "
                               f"{self.layout.name} archive.{self.advice}") from None

    def read(self, filename: str) -> bytes:
        """Return the bytes of ``filename`` (in the layout's folder), checked against its SHA-256."""
        info = self._info(filename)
        with self.reading(filename):
            data = self._zip.read(info)
        expected = SHA256.get(self.layout.name, {}).get(filename)
        if expected is not None:
            actual = hashlib.sha256(data).hexdigest()
            if actual != expected:
                raise ChecksumError(
                    f"{self.label}: member {info.filename!r} has SHA-256 {actual}, expected {expected}; "
                    f"the archive is corrupt or not the official file.{self.advice}"
                )
        return data

    @contextmanager
    def open(self, filename: str) -> Iterator[IO[bytes]]:
        """Yield a stream over ``filename``; zipfile checks its CRC-32 once it is read to the end."""
        info = self._info(filename)
        with self.reading(filename), self._zip.open(info) as stream:
            yield stream

    @contextmanager
    def reading(self, filename: str) -> Iterator[None]:
        """Turn zip damage and parse failures met while reading ``filename`` into DatasetError."""
        member = self.layout.member(filename)
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
        """Check every CRC-32, that the loader's members exist, and every known SHA-256."""
        try:
            bad = self._zip.testzip()
        except ZIP_ERRORS as err:
            raise DatasetError(f"{self.label} is damaged ({err}).{self.advice}") from err
        if bad is not None:
            raise DatasetError(f"{self.label}: member {bad!r} fails its CRC-32 check.{self.advice}")
        hashed = SHA256.get(self.layout.name, {})
        for filename in (self.layout.ratings, self.layout.movies, self.layout.users):
            if filename is not None and filename not in hashed:
                self._info(filename)
        for filename in hashed:
            self.read(filename)
