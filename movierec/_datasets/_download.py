"""Atomic download of a MovieLens archive: temp file in the target folder, verify, rename."""

from __future__ import annotations

import http.client
import logging
import os
import tempfile
import urllib.request
from pathlib import Path
from typing import IO, Any

from movierec._datasets._archive import Archive
from movierec._datasets._registry import Layout
from movierec.exceptions import DatasetError

logger = logging.getLogger(__name__)

CHUNK = 1 << 20
TIMEOUT = 60.0


def _progress(total: int | None, desc: str) -> Any:
    """Return a tqdm bar when tqdm is installed, else None."""
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    # disable=None: no bar when stderr is not a terminal (CI logs, notebooks without a frontend).
    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=desc, disable=None)


def _stream(url: str, target: IO[bytes], desc: str) -> int:
    """Copy ``url`` into ``target`` in 1 MiB chunks; return the number of bytes."""
    request = urllib.request.Request(url, headers={"User-Agent": "movierec"})
    with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        bar = _progress(total, desc)
        size = 0
        try:
            while chunk := response.read(CHUNK):
                target.write(chunk)
                size += len(chunk)
                if bar is not None:
                    bar.update(len(chunk))
        finally:
            if bar is not None:
                bar.close()
    if total is not None and size != total:
        raise OSError(f"received {size} bytes, expected {total}")
    return size


def download(layout: Layout, url: str, path: Path) -> Path:
    """Download ``url`` to ``path`` atomically; on any failure nothing is left at or near ``path``."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".part",
                                             delete=False)
    except OSError as err:
        raise DatasetError(f"could not download {url}: cannot write to {path.parent} ({err}). "
                           f"Download it by hand and put it at {path}") from err
    tmp = Path(handle.name)
    try:
        try:
            with handle:
                logger.info("downloading %s to %s", url, path)
                size = _stream(url, handle, layout.zipname)
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

