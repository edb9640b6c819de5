"""Output files written whole or not at all: a temporary file beside the target, fsynced, renamed over it.

Every file the package writes for a user (``recommendations.csv``, ``report.html``,
``metrics.json``, evaluate's table, Parquet outputs) goes through `write_atomic`. The bytes
go to a hidden temporary file in the target's own folder (a rename is atomic only within one file
system), which is flushed and fsynced before `os.replace` puts it over the target, and the
folder is fsynced after. A failure at any step (a full disk, a folder made read-only, an
interrupt) removes the temporary file and leaves an earlier file at ``path`` whole, and the
`OSError` raised names ``path``.

CSV outputs are made safe to open in a spreadsheet (`spreadsheet_safe`, OWASP's rule for
CSV injection): a text cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return gets a leading single quote, so that ``=HYPERLINK(...)`` in a movie title is shown as
text instead of run as a formula. Id columns and numeric columns are written as they are.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any, BinaryIO

import pandas as pd

from movierec._core.folder import fsync_dir
from movierec._core.validation import ITEM, USER

__all__ = [
    "FORMULA_PREFIXES",
    "spreadsheet_safe",
    "write_atomic",
    "write_csv",
    "write_json",
    "write_parquet",
    "write_text",
]

#: The first characters that make a spreadsheet read a cell as a formula (OWASP, "CSV Injection").
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_ID_COLUMNS = (USER, ITEM)


def write_atomic(path: str | os.PathLike[str], write: Callable[[BinaryIO], None]) -> Path:
    """Return ``path`` after ``write(handle)`` has filled it, replacing any earlier file in one step.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write. Its folder must exist. An earlier file there keeps its permissions;
        a new one gets the usual ``0o666`` less the process's umask.
    write : callable
        Called once with a binary file handle open for writing; it writes the whole content.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    OSError
        If the temporary file cannot be created, written, fsynced or renamed over ``path`` (a full
        disk, a read-only or missing folder, ``path`` being a folder). The message names ``path``
        and says the earlier file is unchanged; ``errno`` is the original one. Whatever ``write``
        raises propagates unchanged. In every case the temporary file is removed.
    """
    path = Path(path)
    folder = path.parent
    try:
        fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as err:
        raise _output_error(path, err) from err
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fchmod(handle.fileno(), _mode_for(path))
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException as err:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        if isinstance(err, OSError):
            raise _output_error(path, err) from err
        raise
    fsync_dir(folder)
    return path


def write_text(path: str | os.PathLike[str], text: str, *, encoding: str = "utf-8") -> Path:
    """Return ``path`` after writing ``text`` to it atomically (see `write_atomic`)."""
    data = text.encode(encoding)
    return write_atomic(path, lambda handle: handle.write(data))


def write_json(path: str | os.PathLike[str], value: Any, *, indent: int | None = 2) -> Path:
    """Return ``path`` after writing ``value`` as strict JSON (no NaN), sorted keys, a final newline.

    Raises
    ------
    ValueError
        If ``value`` holds NaN or infinity (JSON has neither), before anything is written.
    TypeError
        If ``value`` holds something JSON cannot represent.
    """
    return write_text(path, json.dumps(value, indent=indent, sort_keys=True, allow_nan=False) + "\n")


def write_csv(
    path: str | os.PathLike[str],
    frame: pd.DataFrame,
    *,
    index: bool = False,
    float_format: str | None = None,
    keep: Collection[str] = _ID_COLUMNS,
) -> Path:
    """Return ``path`` after writing ``frame`` as UTF-8 CSV (CRLF lines) atomically, text cells spreadsheet-safe.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write (see `write_atomic`).
    frame : pandas.DataFrame
        The table. Text cells are neutralised by `spreadsheet_safe`, except in ``keep``.
    index : bool
        Whether to write the index as the first column (its text labels are neutralised too).
    float_format : str, optional
        As `pandas.DataFrame.to_csv`'s, e.g. ``"%.6g"``.
    keep : collection of str
        Columns written exactly as they are (default the id columns ``userId`` and ``movieId``:
        an id changed by a quote would no longer match the data it came from).
    """
    safe = spreadsheet_safe(frame, keep=keep, index=index)

    def write(handle: BinaryIO) -> None:
        text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
        # CRLF as RFC 4180 has it: Python's csv quotes a field only for the characters of its line
        # terminator, so with "\n" alone a carriage return inside a title would go out unquoted
        # and break the row for every reader.
        safe.to_csv(text, index=index, float_format=float_format, lineterminator="\r\n")
        text.flush()
        text.detach()

    return write_atomic(path, write)


def write_parquet(path: str | os.PathLike[str], frame: pd.DataFrame) -> Path:
    """Return ``path`` after writing ``frame`` as Parquet atomically (needs pyarrow)."""
    from movierec._core.extras import require

    require("pyarrow", "spark", purpose="writing Parquet files")
    return write_atomic(path, lambda handle: frame.to_parquet(handle, index=False))


def spreadsheet_safe(frame: pd.DataFrame, *, keep: Collection[str] = _ID_COLUMNS, index: bool = False) -> pd.DataFrame:
    """Return ``frame`` with a ``'`` before each text cell a spreadsheet would run as a formula.

    A cell is changed when it is a string (in a column of text, not numbers) that starts with one
    of `FORMULA_PREFIXES`; columns named in ``keep`` and numeric columns are left as they
    are. With ``index=True`` the index's text labels are treated the same way. ``frame`` itself is
    never modified: a copy is returned when anything changes.
    """
    changed = {column: _quoted(frame[column]) for column in frame.columns
               if column not in keep and _is_text(frame[column])}
    changed = {column: values for column, values in changed.items() if values is not None}
    new_index = _quoted(frame.index.to_series()) if index and _is_text(frame.index) else None
    if not changed and new_index is None:
        return frame
    safe = frame.copy()
    for column, values in changed.items():
        safe[column] = values
    if new_index is not None:
        safe.index = pd.Index(new_index.to_numpy(), name=frame.index.name)
    return safe


def _is_text(values: pd.Series | pd.Index) -> bool:
    return (pd.api.types.is_object_dtype(values.dtype) or pd.api.types.is_string_dtype(values.dtype)
            or isinstance(values.dtype, pd.CategoricalDtype))


def _quoted(values: pd.Series) -> pd.Series | None:
    """Return ``values`` with the formula-like strings quoted, or None when none is."""
    values = values.astype(object)
    text = values.map(lambda v: isinstance(v, str) and v.startswith(FORMULA_PREFIXES))
    if not text.any():
        return None
    return values.where(~text, "'" + values[text].astype(str))


def _mode_for(path: Path) -> int:
    """Return the permissions the file at ``path`` has, or a new file's (0o666 less the umask)."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        return 0o666 & ~_umask()


def _umask() -> int:
    # os.umask can only be read by setting it, which races with other threads: read it from /proc.
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o022


def _output_error(path: Path, err: OSError) -> OSError:
    reason = err.strerror or str(err)
    error = OSError(f"{path}: cannot write ({reason}); any earlier file there is unchanged")
    error.errno = err.errno
    return error
