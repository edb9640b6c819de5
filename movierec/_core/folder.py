"""Folders replaced in one step: siblings, atomic exchange, fsync, manifest (with the save's generation).

`movierec._core.persist.atomic_folder` writes a model into `new_sibling`, then
`write_manifest` and `replace_folder`; loads go through `verified_folder`
(`movierec._core.verify`, re-exported here with the rest of the reading side).

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
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from movierec._core.verify import (
    MANIFEST_FILE,
    VerifiedFolder,
    folder_identity,
    generation_at,
    parse_json,
    read_verified,
    verified_folder,
)

__all__ = [
    "MANIFEST_FILE",
    "VerifiedFolder",
    "folder_identity",
    "fsync_dir",
    "generation_at",
    "new_generation",
    "new_sibling",
    "parse_json",
    "read_verified",
    "remove_stale",
    "remove_tree",
    "replace_folder",
    "saving_generation",
    "verified_folder",
    "write_manifest",
]

_MARK = ".saving-"
_CHUNK = 1 << 20
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


_GENERATION: ContextVar[str | None] = ContextVar("movierec_save_generation", default=None)


def new_generation() -> str:
    """Return a random token naming one save: no two saves, hence no two folders, share one."""
    return secrets.token_hex(16)


@contextmanager
def saving_generation(token: str) -> Iterator[None]:
    """Make every `write_manifest` inside the block write ``token`` (one save, members included)."""
    reset = _GENERATION.set(token)
    try:
        yield
    finally:
        _GENERATION.reset(reset)


def write_manifest(folder: Path) -> None:
    """Fsync every file under ``folder``, then write ``manifest.json``: the SHA-256 and size of each.

    The manifest also holds the save's ``generation`` (`saving_generation`; a new token
    outside one), the same in an ensemble's manifest and its members', so a reader can tell one
    save from the next even when the filesystem hands a freed inode straight back out.
    """
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
        generation = _GENERATION.get() or new_generation()
        json.dump({"format": 1, "generation": generation, "files": files}, handle, indent=1, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    for directory in sorted((p for p in folder.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        fsync_dir(directory)
    fsync_dir(folder)
