"""A saved ``arrays.npz`` read with every size bounded by the bytes really there: no pickle, no inflation.

``np.load`` trusts an archive: its central directory can claim millions of members, a member can be
compressed (a zip bomb inflates without bound) and an ``.npy`` header can claim any shape.
`read_npz` checks all of that against the file's actual size before numpy allocates anything
(docs/architecture.md, section 6, "Trust and files").
"""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path
from typing import BinaryIO

import numpy as np

from movierec.exceptions import ModelFileError

__all__ = ["MAX_MEMBERS", "read_npz"]

#: Most arrays one ``arrays.npz`` may hold (movierec's models save fewer than 20).
MAX_MEMBERS = 1024
# The end of central directory record: signature, then the counts and sizes read below.
_END = struct.Struct("<4s4H2LH")
_END_SIGNATURE, _ZIP64_LOCATOR = b"PK\x05\x06", b"PK\x06\x07"
# The largest central directory MAX_MEMBERS members can need (fixed part, name, extra fields).
_MAX_DIRECTORY = MAX_MEMBERS * (46 + 256 + 64)


def read_npz(file: Path, handle: BinaryIO, size: int) -> dict[str, np.ndarray]:
    """Return the arrays of the ``.npz`` open in ``handle`` (``size`` bytes): stored ``.npy`` members only.

    Raises
    ------
    ModelFileError
        Naming ``file``, if the archive is malformed, needs zip64 end records, holds more than
        `MAX_MEMBERS` members, a compressed or repeated member, objects (pickle), or a member
        whose header's shape and dtype do not give exactly the bytes it stores.
    """
    try:
        _check_directory(file, handle, size)
        handle.seek(0)
        with zipfile.ZipFile(handle) as archive:
            infos = archive.infolist()
            _check_members(file, archive, infos, size)
            arrays = {}
            for info in infos:
                with archive.open(info) as member:
                    arrays[info.filename[:-4]] = np.lib.format.read_array(member, allow_pickle=False)
            return arrays
    except ModelFileError:
        raise
    except Exception as err:  # noqa: BLE001 - any failure to parse is a malformed file
        raise ModelFileError(f"{file}: not a readable .npz archive ({type(err).__name__}: {err})") from None


def _check_directory(file: Path, handle: BinaryIO, size: int) -> None:
    """Refuse an archive whose end record claims more members or directory than movierec writes."""
    tail_size = min(size, _END.size + 65535)
    handle.seek(size - tail_size)
    tail = handle.read(tail_size)
    at = tail.rfind(_END_SIGNATURE)
    if at < 0 or len(tail) - at < _END.size:
        raise ModelFileError(f"{file}: not a readable .npz archive (no end of central directory)")
    _sig, _disk, _start_disk, _here, entries, directory, _offset, _comment = _END.unpack_from(tail, at)
    if at >= 20 and tail[at - 20 : at - 16] == _ZIP64_LOCATOR:
        raise ModelFileError(f"{file}: a zip64 archive; movierec's arrays never need one")
    if entries > MAX_MEMBERS or directory > _MAX_DIRECTORY:
        raise ModelFileError(f"{file}: claims {entries} members in a {directory}-byte directory, "
                             f"over the {MAX_MEMBERS} arrays a movierec model saves")


def _check_members(file: Path, archive: zipfile.ZipFile, infos: list[zipfile.ZipInfo], size: int) -> None:
    names, total = set(), 0
    for info in infos:
        # np.savez stores members uncompressed; a compressed one could inflate without bound.
        if info.compress_type != zipfile.ZIP_STORED or not info.filename.endswith(".npy"):
            raise ModelFileError(f"{file}: member {info.filename!r} is not a stored .npy array")
        if info.filename in names:
            raise ModelFileError(f"{file}: member {info.filename!r} appears twice")
        names.add(info.filename)
        total += info.file_size
        if info.file_size != info.compress_size or total > size:
            raise ModelFileError(f"{file}: member {info.filename!r} claims {info.file_size} bytes, "
                                 f"more than it stores or the archive's {size}")
        with archive.open(info) as member:
            version = np.lib.format.read_magic(member)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, _fortran, dtype = read_header(member)
            nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
            if dtype.hasobject or nbytes != info.file_size - member.tell():
                raise ModelFileError(f"{file}: member {info.filename!r} holds objects or is truncated")
