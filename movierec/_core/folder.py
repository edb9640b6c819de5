"""Folders replaced in one step and read back verified: siblings, atomic exchange, fsync, manifest.

:func:`movierec._core.persist.atomic_folder` writes a model into :func:`new_sibling`, then
:func:`write_manifest` and :func:`replace_folder`; loads go through :func:`read_verified`.

Why an exchange and not "rename the old folder aside, rename the new one in": between those two
renames ``path`` does not exist, so a reader fails and a crash there leaves no model at ``path``.
Linux's ``renameat2(RENAME_EXCHANGE)`` swaps the two folders in one step (ext4, xfs, btrfs, tmpfs);
where it is missing the two renames are the fallback. A symlink flipped by ``os.replace`` would be
atomic too, but it makes every saved model a link plus a hidden folder, which copying or zipping a
model folder breaks.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import glob
import hashlib
import json
import os
import secrets
import shutil
import socket
import stat
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

from movierec.exceptions import ModelFileError

__all__ = [
    "MANIFEST_FILE",
    "folder_identity",
    "fsync_dir",
    "new_sibling",
    "parse_json",
    "read_verified",
    "remove_stale",
    "remove_tree",
    "replace_folder",
    "write_manifest",
]

MANIFEST_FILE = "manifest.json"
_MARK = ".saving-"
_CHUNK = 1 << 20
_MAX_MANIFEST = 64 << 20
# A read starts again this many times when a concurrent save replaces the folder under it.
_READ_ATTEMPTS = 5
_RENAME_EXCHANGE, _AT_FDCWD = 2, -100
# Errors by which renameat2 says "not here": no syscall, or not on this filesystem.
_UNSUPPORTED = {errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EXDEV}


# -- writing ------------------------------------------------------------------------------------
def _host() -> str:
    return socket.gethostname().replace(os.sep, "_").replace("-", "_") or "host"


def new_sibling(path: Path) -> Path:
    """Create and return an empty hidden sibling of ``path`` named after this host and process."""
    while True:
        candidate = path.parent / f".{path.name}{_MARK}{_host()}-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            candidate.mkdir()  # honours the umask, unlike tempfile.mkdtemp's 0o700
            return candidate
        except FileExistsError:
            continue


def remove_stale(path: Path) -> None:
    """Remove siblings of ``path`` left by saves on this host whose process is gone (kill -9, power cut)."""
    if os.name != "posix":  # os.kill(pid, 0) would terminate the process on Windows
        return
    for sibling in path.parent.glob(f".{glob.escape(path.name)}{_MARK}*"):
        host, _, rest = sibling.name[len(path.name) + 1 + len(_MARK) :].partition("-")
        pid = rest.partition("-")[0]
        if host == _host() and pid.isdigit() and not _alive(int(pid)):
            remove_tree(sibling)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_tree(path: Path) -> None:
    """Delete the folder ``path`` if it exists, ignoring errors (it is one of ours, hidden)."""
    shutil.rmtree(path, ignore_errors=True)


@functools.cache
def _renameat2() -> Any:
    try:
        return ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return None


def exchange(a: Path, b: Path) -> bool | None:
    """Swap two existing paths atomically; False if one vanished, None if the system cannot swap."""
    renameat2 = _renameat2()
    if renameat2 is None:
        return None
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code == errno.ENOENT:
        return False
    if code in _UNSUPPORTED:
        return None
    raise OSError(code, os.strerror(code), str(b))


def replace_folder(new: Path, path: Path) -> None:
    """Put the complete folder ``new`` at ``path``; the old folder there stays whole until then.

    Concurrent callers each put their folder in; the last one wins and no folder is ever a mix.
    """
    while True:
        if _rename(new, path):  # path absent, or an empty folder
            break
        swapped = exchange(new, path)
        if swapped:
            remove_tree(new)  # new now holds the old folder
            break
        if swapped is None:
            aside = new_sibling(path)
            try:
                os.rename(path, aside)  # onto the empty folder new_sibling made
            except FileNotFoundError:
                remove_tree(aside)
                continue
            placed = _rename(new, path)
            remove_tree(aside)
            if placed:
                break
    fsync_dir(path.parent)


def _rename(src: Path, dst: Path) -> bool:
    try:
        os.rename(src, dst)
    except OSError as err:
        if err.errno in (errno.ENOTEMPTY, errno.EEXIST):
            return False  # dst holds a folder with files: swap instead
        raise
    return True


def fsync_dir(path: Path) -> None:
    """Flush a folder's entries (new names, renames) to disk; a no-op where folders cannot be opened."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_manifest(folder: Path) -> None:
    """Fsync every file under ``folder``, then write ``manifest.json``: the SHA-256 and size of each."""
    files = {}
    for file in sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()):
        rel = file.relative_to(folder).as_posix()
        if rel == MANIFEST_FILE:
            continue
        digest, size = hashlib.sha256(), 0
        with open(file, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
            os.fsync(handle.fileno())
        files[rel] = {"sha256": digest.hexdigest(), "size": size}
    with open(folder / MANIFEST_FILE, "w") as handle:
        json.dump({"format": 1, "files": files}, handle, indent=1, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    for directory in sorted((p for p in folder.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        fsync_dir(directory)
    fsync_dir(folder)


# -- reading ------------------------------------------------------------------------------------
def folder_identity(path: Path) -> tuple[int, int] | None:
    """Return (device, inode) of ``path``, which a swap changes; None if it is gone."""
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_dev, status.st_ino


def read_verified(path: Path, keep: Collection[str]) -> tuple[tuple[int, int], dict[str, bytes]]:
    """Check every file under ``path`` against its manifest; return the folder's identity and the
    bytes of the files named in ``keep`` that are there.

    Files are opened through one handle on the folder, so a concurrent save that swaps another
    folder in cannot mix files of two saves; if it deletes files under us, the read starts again.

    Raises
    ------
    ModelFileError
        If the manifest is missing or malformed, or a file is missing, extra, changed or not a
        regular file (symlinks, fifos and devices are refused).
    """
    for attempt in range(_READ_ATTEMPTS):
        last = attempt + 1 == _READ_ATTEMPTS
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except FileNotFoundError:  # moved aside by a concurrent save (systems without exchange)
            if last:
                raise
            continue
        try:
            status = os.fstat(fd)
            found = (status.st_dev, status.st_ino)
            try:
                return found, _check_all(path, fd, keep)
            except ModelFileError:
                if last or folder_identity(path) == found:
                    raise
        finally:
            os.close(fd)
    raise AssertionError("unreachable")  # pragma: no cover


def _check_all(path: Path, fd: int, keep: Collection[str]) -> dict[str, bytes]:
    with _open(path, MANIFEST_FILE, fd, MANIFEST_FILE) as handle:
        manifest = _parse_manifest(path / MANIFEST_FILE, handle.read(_MAX_MANIFEST))
    kept, seen = {}, set()
    for rel, dir_fd, name in _walk(fd):
        if rel == MANIFEST_FILE:
            continue
        expected = manifest.get(rel)
        if expected is None:
            raise ModelFileError(f"{path / rel}: not listed in {MANIFEST_FILE} (a file was added)")
        digest, data = hashlib.sha256(), []
        with _open(path, rel, dir_fd, name) as handle:
            # Never read past the size the manifest promises: a file cannot make a load read forever.
            left = expected["size"] + 1
            while left and (chunk := handle.read(min(_CHUNK, left))):
                digest.update(chunk)
                left -= len(chunk)
                if rel in keep:
                    data.append(chunk)
        if left != 1 or digest.hexdigest() != expected["sha256"]:
            raise ModelFileError(f"{path / rel}: size or SHA-256 differs from {MANIFEST_FILE} (changed or damaged)")
        seen.add(rel)
        if rel in keep:
            kept[rel] = b"".join(data)
    missing = sorted(set(manifest) - seen)
    if missing:
        raise ModelFileError(f"{path / missing[0]}: listed in {MANIFEST_FILE} but missing")
    return kept


def _walk(fd: int) -> Iterator[tuple[str, int, str]]:
    """Yield (relative posix path, folder handle, name) for every non-folder under the folder ``fd``."""
    for dirpath, _dirs, files, dir_fd in os.fwalk(".", dir_fd=fd):
        for name in files:
            yield os.path.normpath(os.path.join(dirpath, name)).replace(os.sep, "/"), dir_fd, name


def _open(path: Path, rel: str, dir_fd: int, name: str) -> Any:
    """Return a binary handle on the regular file ``name`` of ``dir_fd`` (no symlink, fifo or device)."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(name, flags, dir_fd=dir_fd)
    except FileNotFoundError:
        raise ModelFileError(
            f"{path / rel}: missing; {path} is not a complete movierec model (an interrupted save, "
            "or one written before saves had a manifest: save it again)"
        ) from None
    except OSError as err:  # ELOOP: a symlink
        raise ModelFileError(f"{path / rel}: cannot be opened as a regular file ({err.strerror})") from None
    handle = os.fdopen(fd, "rb")
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        handle.close()
        raise ModelFileError(f"{path / rel}: not a regular file")
    return handle


def parse_json(file: Path, data: bytes) -> dict[str, Any]:
    """Return the JSON object in ``data``; NaN and Infinity are refused (:class:`ModelFileError` otherwise)."""

    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not a number JSON allows")

    try:
        document = json.loads(data.decode("utf-8"), parse_constant=refuse)
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise ModelFileError(f"{file}: not valid JSON ({err})") from None
    if not isinstance(document, dict):
        raise ModelFileError(f"{file}: must hold a JSON object, not {type(document).__name__}")
    return document


def _parse_manifest(file: Path, data: bytes) -> dict[str, dict[str, Any]]:
    files = parse_json(file, data).get("files")
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
