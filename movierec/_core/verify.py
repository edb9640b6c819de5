"""Model folders read back trusting nothing in them: listed, capped and hashed through one folder handle.

`verified_folder` is how every load reads a model folder (docs/architecture.md, section 6,
"Trust and files"). A saved folder is untrusted input, its manifest included, so the manifest's
sizes bound nothing: the caps below do, checked on the listing before any file is read; files are
hashed as they stream and only the kept ones stay open, never in memory.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Callable, Collection, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from movierec.exceptions import ModelFileError

__all__ = [
    "MANIFEST_FILE",
    "MAX_DEPTH",
    "MAX_FILES",
    "MAX_FILE_BYTES",
    "MAX_FOLDER_BYTES",
    "MAX_JSON_BYTES",
    "MAX_JSON_CONTAINERS",
    "VerifiedFolder",
    "check_file_size",
    "folder_identity",
    "generation_at",
    "parse_json",
    "read_verified",
    "verified_folder",
]

MANIFEST_FILE = "manifest.json"
_CHUNK = 1 << 20
# Caps on what a load reads; the reason for each size is in docs/architecture.md, section 6.
#: Largest ``.json`` file (params, manifest, card): 8 MiB, 1.8x a SageMakerFM's feature names at ml-25m.
MAX_JSON_BYTES = 8 << 20
#: Most ``[`` and ``{`` in one ``.json`` file (counted before parsing, strings included): movierec writes
#: a few hundred; a file of a million empty lists would cost ~60 bytes of memory per two bytes of file.
MAX_JSON_CONTAINERS = 100_000
#: Largest other file: 3 GiB, 1.9x EASE's arrays.npz at ml-25m (20,000 x 20,000 float32 B, 25M seen).
MAX_FILE_BYTES = 3 << 30
#: Largest folder, members included: 6 GiB, 2.3x the main job's ensemble at ml-25m.
MAX_FOLDER_BYTES = 6 << 30
#: Most files and folders in a model folder (a Spark model writes a few dozen).
MAX_FILES = 10_000
#: Deepest folder nesting: ensembles of ensembles 4 deep, then a backend's own folders.
MAX_DEPTH = 8
# A file whose blocks on disk cover less than 1/_SPARSE of its size, past _SPARSE_FROM bytes, is
# sparse: its size claims bytes that were never written (``truncate -s 4G``); saves never make one.
_SPARSE, _SPARSE_FROM = 8, 16 << 20
# A read starts again this many times when a concurrent save replaces the folder under it.
_READ_ATTEMPTS = 5


def folder_identity(path: Path) -> tuple[int, int] | None:
    """Return (device, inode) of ``path``, which a swap changes; None if it is gone."""
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_dev, status.st_ino


def generation_at(path: Path) -> str | None:
    """Return the ``generation`` of the manifest now at ``path`` (None: none, unreadable or gone)."""
    try:
        fd = os.open(path / MANIFEST_FILE, os.O_RDONLY | _NOFOLLOW | _NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        try:
            value = parse_json(path / MANIFEST_FILE, handle.read(MAX_JSON_BYTES)).get("generation")
        except ModelFileError:
            return None
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class VerifiedFolder:
    """A model folder whose every file matched its manifest, read through one handle on the folder.

    Attributes
    ----------
    path : Path
        The folder.
    identity : tuple of int
        Its (device, inode) while it was read.
    generation : str or None
        The save's token from ``manifest.json`` (None in folders saved before saves wrote one).
    files : tuple of str
        Every file checked, as a relative posix path.
    handles : dict of str to binary file
        An open handle, at offset 0, on each kept file: the very file that was hashed, however
        the folder is renamed or replaced afterwards. Closed when the block ends.
    """

    path: Path
    identity: tuple[int, int]
    generation: str | None
    files: tuple[str, ...]
    handles: dict[str, BinaryIO]

    def read(self, rel: str) -> bytes:
        """Return the whole of the kept file ``rel`` (its size is already within the caps)."""
        handle = self.handles[rel]
        handle.seek(0)
        return handle.read()


@contextmanager
def verified_folder(
    path: Path,
    keep: Collection[str] | Callable[[str], bool],
    *,
    check_listing: Callable[[list[str]], None] | None = None,
) -> Iterator[VerifiedFolder]:
    """Check every file under ``path`` against its manifest and yield it, kept files held open.

    Every folder and file is opened relative to a handle on its parent, never following a symlink,
    so a concurrent save that swaps another folder in cannot mix files of two saves; if it deletes
    files under us, the read starts again. Before a byte of any file is read the whole tree is
    listed and refused if it breaks a cap (`MAX_FILE_BYTES`, `MAX_JSON_BYTES`,
    `MAX_FOLDER_BYTES`, `MAX_FILES`, `MAX_DEPTH`), holds a sparse file, or its
    sizes differ from the manifest's; ``check_listing`` then sees the relative paths. Files are
    hashed as they stream, nothing kept: memory stays flat whatever the files claim.

    ``keep`` names the files to hold open (relative posix paths), or is a test of such a path.

    Raises
    ------
    ModelFileError
        If the manifest is missing or malformed, a file is missing, extra, changed, too large or not
        a regular file, or a folder is a symlink (symlinks, fifos and devices are refused).
    """
    wanted = keep if callable(keep) else set(keep).__contains__
    for attempt in range(_READ_ATTEMPTS):
        last = attempt + 1 == _READ_ATTEMPTS
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except FileNotFoundError:  # moved aside by a concurrent save (systems without exchange)
            if last:
                raise
            continue
        with ExitStack() as stack:
            stack.callback(os.close, fd)
            status = os.fstat(fd)
            found = (status.st_dev, status.st_ino)
            generation: list[str | None] = [None]
            try:
                handles = _check_all(path, fd, wanted, check_listing, generation, stack)
            except ModelFileError:
                # While fd is open its inode cannot be reused, so an equal identity is this folder.
                if last or folder_identity(path) == found:
                    raise
                continue
            files = tuple(sorted(handles.pop("")))
            yield VerifiedFolder(path, found, generation[0], files, handles)
            return
    raise AssertionError("unreachable")  # pragma: no cover


def read_verified(path: Path, keep: Collection[str]) -> tuple[tuple[int, int], dict[str, bytes]]:
    """Return the identity of the folder ``path`` and the bytes of the files of ``keep`` it holds,
    every file checked against the manifest (`verified_folder`)."""
    with verified_folder(path, keep) as folder:
        return folder.identity, {rel: folder.read(rel) for rel in folder.handles}


@dataclass(frozen=True)
class _Entry:
    rel: str
    dir_fd: int
    name: str
    status: os.stat_result


def _check_all(
    path: Path, fd: int, keep: Callable[[str], bool], check_listing: Callable[[list[str]], None] | None,
    generation: list[str | None], stack: ExitStack,
) -> dict[str, Any]:
    entries = _listing(path, fd, stack)
    if MANIFEST_FILE not in entries:
        _missing(path, MANIFEST_FILE)
    with _open(path, entries[MANIFEST_FILE]) as handle:
        document = parse_json(path / MANIFEST_FILE, handle.read(MAX_JSON_BYTES + 1))
    manifest = _parse_manifest(path / MANIFEST_FILE, document)
    generation[0] = document.get("generation") if isinstance(document.get("generation"), str) else None
    for rel in sorted(entries):
        expected = manifest.get(rel)
        if rel == MANIFEST_FILE:
            continue
        if expected is None:
            raise ModelFileError(f"{path / rel}: not listed in {MANIFEST_FILE} (a file was added)")
        if entries[rel].status.st_size != expected["size"]:
            _differs(path, rel)
    missing = sorted(set(manifest) - set(entries))
    if missing:
        raise ModelFileError(f"{path / missing[0]}: listed in {MANIFEST_FILE} but missing")
    if check_listing is not None:
        check_listing(sorted(entries))
    kept: dict[str, Any] = {"": list(entries)}
    for rel, entry in sorted(entries.items()):
        if rel == MANIFEST_FILE:
            continue
        handle = _open(path, entry)
        try:
            digest = hashlib.sha256()
            left = manifest[rel]["size"] + 1  # never read past the promised size, whatever the file does
            while left and (chunk := handle.read(min(_CHUNK, left))):
                digest.update(chunk)
                left -= len(chunk)
            if left != 1 or digest.hexdigest() != manifest[rel]["sha256"]:
                _differs(path, rel)
        except BaseException:
            handle.close()
            raise
        if keep(rel):
            handle.seek(0)
            kept[rel] = stack.enter_context(handle)
        else:
            handle.close()
    return kept


def _listing(path: Path, fd: int, stack: ExitStack) -> dict[str, _Entry]:
    """Return every file under the folder ``fd`` by relative path, its folders opened without
    following symlinks; refuse links, odd files, sparse files and trees past a cap before any read."""
    entries: dict[str, _Entry] = {}
    total, count, pending = 0, 0, [("", fd, 0)]
    while pending:
        prefix, dir_fd, depth = pending.pop()
        for name in sorted(os.listdir(dir_fd)):
            rel = prefix + name
            try:
                status = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            except FileNotFoundError:
                _missing(path, rel)
            count += 1
            if count > MAX_FILES:
                raise ModelFileError(f"{path}: holds more than {MAX_FILES} files; no movierec model has as many")
            if stat.S_ISLNK(status.st_mode):
                kind = "a folder" if os.path.isdir(os.path.join(path, rel)) else "a file"
                raise ModelFileError(f"{path / rel}: cannot be opened as a regular file (a symlink to {kind}; "
                                     "a model folder holds no symlink)")
            if stat.S_ISDIR(status.st_mode):
                if depth + 1 > MAX_DEPTH:
                    raise ModelFileError(f"{path / rel}: folders nest more than {MAX_DEPTH} deep in {path}")
                child = _open_dir(path, rel, dir_fd, name, status)
                stack.callback(os.close, child)
                pending.append((rel + "/", child, depth + 1))
                continue
            if not stat.S_ISREG(status.st_mode):
                raise ModelFileError(f"{path / rel}: not a regular file")
            check_file_size(path, rel, status)
            total += status.st_size
            if total > MAX_FOLDER_BYTES:
                raise ModelFileError(f"{path}: its files add up to more than {MAX_FOLDER_BYTES} bytes, "
                                     "the most a movierec model folder holds (docs/architecture.md, section 6)")
            entries[rel] = _Entry(rel, dir_fd, name, status)
    return entries


def check_file_size(path: Path, rel: str, status: os.stat_result) -> None:
    """Raise `ModelFileError` if the file ``path / rel`` is over its cap or sparse (from its ``stat``)."""
    cap = MAX_JSON_BYTES if rel.endswith(".json") else MAX_FILE_BYTES
    if status.st_size > cap:
        raise ModelFileError(f"{path / rel}: {status.st_size} bytes, over the {cap} a movierec model file "
                             "may have (docs/architecture.md, section 6)")
    blocks = getattr(status, "st_blocks", None)
    if blocks is not None and status.st_size > _SPARSE_FROM and blocks * 512 * _SPARSE < status.st_size:
        raise ModelFileError(f"{path / rel}: a sparse file ({status.st_size} bytes, {blocks * 512} on disk): "
                             "its size claims bytes never written; no save writes one")


def _open_dir(path: Path, rel: str, dir_fd: int, name: str, listed: os.stat_result) -> int:
    try:
        child = os.open(name, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _NOFOLLOW, dir_fd=dir_fd)
    except FileNotFoundError:
        _missing(path, rel)
    except OSError as err:  # ELOOP or ENOTDIR: replaced by a symlink or a file since listed
        raise ModelFileError(f"{path / rel}: cannot be opened as a folder ({err.strerror})") from None
    if not os.path.samestat(os.fstat(child), listed):
        os.close(child)
        raise ModelFileError(f"{path / rel}: replaced while it was read")
    return child


_NOFOLLOW, _NONBLOCK = getattr(os, "O_NOFOLLOW", 0), getattr(os, "O_NONBLOCK", 0)


def _open(path: Path, entry: _Entry) -> BinaryIO:
    """Return a binary handle on the regular file ``entry`` lists (no symlink, fifo or device)."""
    try:
        fd = os.open(entry.name, os.O_RDONLY | _NOFOLLOW | _NONBLOCK, dir_fd=entry.dir_fd)
    except FileNotFoundError:
        _missing(path, entry.rel)
    except OSError as err:  # ELOOP: a symlink
        raise ModelFileError(f"{path / entry.rel}: cannot be opened as a regular file ({err.strerror})") from None
    handle = os.fdopen(fd, "rb")
    status = os.fstat(fd)
    if not stat.S_ISREG(status.st_mode):
        handle.close()
        raise ModelFileError(f"{path / entry.rel}: not a regular file")
    if not os.path.samestat(status, entry.status) or status.st_size != entry.status.st_size:
        handle.close()
        _differs(path, entry.rel)
    return handle


def _missing(path: Path, rel: str) -> Any:
    raise ModelFileError(
        f"{path / rel}: missing; {path} is not a complete movierec model (an interrupted save, "
        "or one written before saves had a manifest: save it again)"
    )


def _differs(path: Path, rel: str) -> Any:
    raise ModelFileError(f"{path / rel}: size or SHA-256 differs from {MANIFEST_FILE} (changed or damaged)")


def parse_json(file: Path, data: bytes) -> dict[str, Any]:
    """Return the JSON object in ``data``; NaN and Infinity are refused (`ModelFileError` otherwise)."""

    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not a number JSON allows")

    if len(data) > MAX_JSON_BYTES:
        raise ModelFileError(f"{file}: over the {MAX_JSON_BYTES} bytes a movierec JSON file may have")
    if data.count(b"[") + data.count(b"{") > MAX_JSON_CONTAINERS:
        raise ModelFileError(f"{file}: more than {MAX_JSON_CONTAINERS:,} lists and objects, more than movierec writes")
    try:
        document = json.loads(data.decode("utf-8"), parse_constant=refuse)
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise ModelFileError(f"{file}: not valid JSON ({err})") from None
    if not isinstance(document, dict):
        raise ModelFileError(f"{file}: must hold a JSON object, not {type(document).__name__}")
    return document


def _parse_manifest(file: Path, document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    files = document.get("files")
    if not isinstance(files, dict):
        raise ModelFileError(f"{file}: 'files' must be an object of file name -> sha256 and size")
    for rel, entry in files.items():
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("sha256"), str)
            and type(entry.get("size")) is int
            and entry["size"] >= 0
        ):
            raise ModelFileError(f"{file}: the entry for {rel!r} needs a string 'sha256' and an int 'size' >= 0")
    return files
