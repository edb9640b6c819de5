"""Reading a ratings file of your own within bounds: its bytes, its header, its rows, its Parquet metadata.

Every bound is checked before the part it bounds is decoded: the file's size before it is read,
the header's length and column count before the rows are parsed, the row count (lines, or
Parquet's ``num_rows``) and Parquet's decoded size (from its metadata) before any value is
decoded. Only the mapped columns are decoded. The reasons for each number are in
``docs/own-data.md`` ("Bounds").
"""

from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from movierec._core.extras import require
from movierec.exceptions import DatasetError

__all__ = ["DEFAULT_MAX_BYTES", "DEFAULT_MAX_ROWS", "MAX_COLUMNS", "MAX_HEADER_BYTES", "read_bounded", "read_table"]

# Files larger than this are refused unless the caller raises the cap: ml-32m's ratings.csv is 0.9 GB.
DEFAULT_MAX_BYTES = 2 << 30
# Rows (lines of a text file, rows of a Parquet file) over this are refused before they are decoded:
# ml-32m, the largest MovieLens, has 32,000,204 ratings; 50 M leaves it half again as much headroom.
DEFAULT_MAX_ROWS = 50_000_000
# A header line longer than this, or with more columns, is refused before the rows are read.
MAX_HEADER_BYTES = 64 << 10
MAX_COLUMNS = 1_000
# The separators a text file's header is searched for, in order of preference on a tie.
_SEPARATORS = (",", "\t", ";", "|")
_PARQUET_MAGIC = b"PAR1"
_LINE_END = re.compile(rb"[\r\n]")
# What a decoded value costs at most per row and column once in pandas (int64, float64, a pointer).
_BYTES_PER_CELL = 8
_CHUNK = 8 << 20


def read_bounded(path: Path, max_bytes: int) -> bytes:
    """Return the bytes of ``path``, reading at most ``max_bytes + 1`` whatever its size claims."""
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > max_bytes:
                raise DatasetError(f"{path}: {size:,} bytes, over the cap of {max_bytes:,} (raise max_bytes to read it)")
            data = handle.read(max_bytes + 1)  # a file that grows, or a pipe, is bounded too
    except OSError as err:
        raise DatasetError(f"{path}: cannot be read ({err.strerror or err})") from None
    if len(data) > max_bytes:
        raise DatasetError(f"{path}: over the cap of {max_bytes:,} bytes (raise max_bytes to read it)")
    if not data.strip():
        raise DatasetError(f"{path}: the file is empty")
    return data


def is_parquet(data: bytes) -> bool:
    return data.startswith(_PARQUET_MAGIC)


def read_table(path: Path, data: bytes, required: list[str], sep: str | None, optional: tuple[str, ...] = (),
               *, max_rows: int = DEFAULT_MAX_ROWS, max_bytes: int = DEFAULT_MAX_BYTES,
               ) -> tuple[pd.DataFrame, bool, list[str]]:
    """Return the ``required`` and present ``optional`` columns of the file, indexed by line (by row
    for Parquet), whether it is Parquet, and every column name it has."""
    if is_parquet(data):
        table, names = _read_parquet(path, data, required, optional, max_rows, max_bytes)
        return table, True, names
    header = header_line(path, data)
    sep = _detect_separator(header) if sep is None else sep
    names = _header_names(path, header, sep)
    _expect_columns(path, names, required, "line 1 (the header)")
    wanted = required + [c for c in optional if c in names]
    _refuse_doubled(path, names, wanted, "line 1 (the header)")
    lines = max(data.count(b"\n"), data.count(b"\r")) + (not data.endswith((b"\n", b"\r"))) - 1
    if lines > max_rows:
        raise DatasetError(f"{path}: {lines:,} lines, over the cap of {max_rows:,} rows (raise max_rows to read it)")
    positions = [names.index(c) for c in wanted]
    single = len(sep) == 1
    if single:  # pandas' usecols drops a row's extra fields silently: they are found here first
        line = _first_long_line(data, sep, len(names))
        if line is not None:
            raise DatasetError(f"{path}: not a readable {_sep_name(sep)}-separated file (line {line} has more fields "
                               f"than the header's {len(names)}; a separator inside a value must be quoted)")
    # Columns are named by position, so a doubled name elsewhere in the header cannot stop the read,
    # and only the mapped ones are decoded (the python engine, for longer separators, reads all).
    labels = [f"c{i}" for i in range(len(names))]
    try:
        # Every field as text (keep_default_na=False keeps "" and "NA" as written): the checks
        # then name the exact bad line instead of pandas' guess at a type.
        table = pd.read_csv(io.BytesIO(data), sep=sep if single else re.escape(sep), dtype=str, header=0,
                            names=labels, usecols=[labels[i] for i in positions] if single else None,
                            keep_default_na=False, na_values=[], skip_blank_lines=False, encoding="utf-8",
                            engine="c" if single else "python")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError, csv.Error) as err:
        raise DatasetError(f"{path}: not a readable {_sep_name(sep)}-separated file ({' '.join(str(err).split())})") from None
    table.index = np.arange(2, len(table) + 2)  # line numbers: the header is line 1
    table = table[[f"c{i}" for i in positions]].set_axis(wanted, axis=1)
    blank = (table.fillna("") == "").all(axis=1).to_numpy()
    return table[~blank], False, names


def _first_long_line(data: bytes, sep: str, columns: int) -> int | None:
    """Return the first line (1 = the header) with more than ``columns`` fields, or None.

    Separators inside double quotes do not count (a doubled quote toggles twice, so it stays
    inside). Vectorised over chunks of the bytes, so a 2 GiB file takes seconds and little memory.
    """
    code = ord(sep)
    if code > 127:
        return None  # a multi-byte separator: pandas' python engine checks the fields itself
    newline = ord("\n") if b"\n" in data else ord("\r")
    buffer = np.frombuffer(data, dtype=np.uint8)
    quoted, carry, line = 0, 0, 1  # inside quotes at the chunk's start; separators so far on `line`
    for start in range(0, len(buffer), _CHUNK):
        chunk = buffer[start:start + _CHUNK]
        inside = np.bitwise_xor.accumulate((chunk == 34).view(np.uint8)) ^ quoted
        quoted = int(inside[-1])
        outside = inside == 0
        ends = np.flatnonzero((chunk == newline) & outside)
        separators = np.flatnonzero((chunk == code) & outside)
        before, total = np.searchsorted(separators, ends), len(separators)
        per_line = np.diff(before, prepend=0)
        if len(per_line):
            per_line[0] += carry
        long = np.flatnonzero(per_line > columns - 1)
        if len(long):
            return line + int(long[0])
        carry = (carry if not len(ends) else 0) + total - (int(before[-1]) if len(ends) else 0)
        line += len(ends)
    return line if carry > columns - 1 else None


def header_line(path: Path, data: bytes) -> str:
    """Return the first line of a text file, read alone and bounded to `MAX_HEADER_BYTES`."""
    end = _LINE_END.search(data, 0, MAX_HEADER_BYTES + 1)
    if end is None and len(data) > MAX_HEADER_BYTES:
        raise DatasetError(f"{path}, line 1 (the header): longer than {MAX_HEADER_BYTES:,} bytes, the cap for a header")
    raw = data[: end.start() if end else len(data)]
    try:
        return raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as err:
        raise DatasetError(f"{path}, line 1 (the header): not UTF-8 ({err.reason} at byte {err.start})") from None


def _header_names(path: Path, header: str, sep: str) -> list[str]:
    if header.count(sep) + 1 > MAX_COLUMNS:
        raise DatasetError(f"{path}, line 1 (the header): {header.count(sep) + 1:,} columns, over the cap of "
                           f"{MAX_COLUMNS:,}")
    if len(sep) != 1:
        return header.split(sep)
    try:
        return next(csv.reader([header], delimiter=sep), [""])
    except csv.Error as err:
        raise DatasetError(f"{path}, line 1 (the header): not readable ({err})") from None


def _refuse_doubled(path: Path, names: list[str], wanted: list[str], where: str) -> None:
    for column in wanted:
        places = [i + 1 for i, name in enumerate(names) if name == column]
        if len(places) > 1:
            raise DatasetError(f"{path}, {where}: the column {column!r} appears {len(places)} times (columns "
                               f"{', '.join(map(str, places))}); rename one so it is clear which to read")


def _read_parquet(path: Path, data: bytes, required: list[str], optional: tuple[str, ...], max_rows: int,
                  max_bytes: int) -> tuple[pd.DataFrame, list[str]]:
    parquet = require("pyarrow.parquet", "spark", purpose="reading Parquet files")
    import pyarrow as pa

    try:
        source = parquet.ParquetFile(io.BytesIO(data))
        schema, meta = source.schema_arrow, source.metadata
        names = list(schema.names)
        _expect_columns(path, names, required, "the schema")
        columns = required + [c for c in optional if c in names]
        _refuse_doubled(path, names, columns, "the schema")
        groups = [meta.row_group(r) for r in range(meta.num_row_groups)]
        rows = max(meta.num_rows, sum(group.num_rows for group in groups))
        if rows > max_rows:
            raise DatasetError(f"{path}: its metadata claims {rows:,} rows, over the cap of {max_rows:,} "
                               "(raise max_rows to read it)")
        kinds = {c: schema.field(c).type for c in columns}
        for column, kind in kinds.items():
            if pa.types.is_nested(kind):
                raise DatasetError(f"{path}, the schema: column {column!r} holds {kind}, not numbers or text")
        stored = sum(chunk.total_uncompressed_size for group in groups for chunk in
                     (group.column(j) for j in range(group.num_columns))
                     if chunk.path_in_schema.split(".")[0] in kinds)
        decoded = stored + rows * _BYTES_PER_CELL * len(columns)
        if decoded > max_bytes:
            raise DatasetError(f"{path}: its metadata claims {rows:,} rows whose columns {', '.join(map(repr, columns))} "
                               f"decode to about {decoded:,} bytes, over the cap of {max_bytes:,} (raise max_bytes to "
                               "read it)")
        # Text columns stay dictionary-encoded (pandas categoricals): one string per distinct value,
        # so a value repeated on every row costs a code per row, not a copy per row.
        text = [c for c, kind in kinds.items() if pa.types.is_string(kind) or pa.types.is_large_string(kind)
                or pa.types.is_binary(kind) or pa.types.is_large_binary(kind)]
        table = parquet.read_table(io.BytesIO(data), columns=columns, read_dictionary=text).to_pandas()
    except DatasetError:
        raise
    except Exception as err:  # noqa: BLE001 - pyarrow raises many kinds; any is a malformed file
        raise DatasetError(f"{path}: not a readable Parquet file ({type(err).__name__}: {err})") from None
    table.index = np.arange(1, len(table) + 1)  # Parquet has no lines: rows count from 1
    return table, names


def _detect_separator(header: str) -> str:
    counts = [(header.count(s), -rank, s) for rank, s in enumerate(_SEPARATORS)]
    best = max(counts)
    return best[2] if best[0] else ","  # one column: the mapped columns will be reported missing


def _sep_name(sep: str) -> str:
    return {"\t": "tab", ",": "comma", ";": "semicolon", "|": "pipe"}.get(sep, repr(sep))


def _expect_columns(path: Path, names: list[str], columns: list[str], where: str) -> None:
    missing = [c for c in columns if c not in names]
    if missing:
        found = ", ".join(names[:20])
        raise DatasetError(f"{path}, {where}: no column {missing[0]!r}; the columns are: {found}")
