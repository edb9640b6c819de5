"""Output files on a real, small, full file system: the earlier file stays whole, no temporary file
is left, the error names the file; CSV text cells are made safe to open in a spreadsheet.

The full-disk cases mount a 64 KiB tmpfs, which needs root (CI runs the tests as root); elsewhere
they are skipped with the reason.
"""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from movierec._core.output import (
    FORMULA_PREFIXES,
    spreadsheet_safe,
    write_atomic,
    write_csv,
    write_json,
    write_parquet,
    write_text,
)

DISK_BYTES = 64 << 10


@pytest.fixture
def disk(tmp_path, small_disk) -> Iterator[Path]:
    with small_disk(tmp_path / "disk", DISK_BYTES) as folder:
        yield folder


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


# -- a full disk -----------------------------------------------------------------------------------
@pytest.mark.parametrize("writer", ["bytes", "text", "csv", "json"])
def test_a_full_disk_keeps_the_earlier_file_whole_and_leaves_no_temporary_file(disk, writer):
    target = disk / "out.csv"
    old = b"userId,movieId,rank\n" + b"1,2,1\n" * 1000  # 6 kB: fits
    target.write_bytes(old)
    big = 200_000  # three times the disk
    frame = pd.DataFrame({"userId": np.arange(big // 10), "title": "x" * 8})
    write = {
        "bytes": lambda: write_atomic(target, lambda h: h.write(b"9" * big)),
        "text": lambda: write_text(target, "é" * big),
        "csv": lambda: write_csv(target, frame),
        "json": lambda: write_json(target, {"values": list(range(big // 4))}),
    }[writer]
    with pytest.raises(OSError, match=rf"^{target}: cannot write \(No space left on device\); any earlier") as info:
        write()
    assert info.value.errno == errno.ENOSPC
    assert target.read_bytes() == old
    assert leftovers(disk) == []
    # the space the failed write took is free again: a small write now succeeds
    write_csv(target, pd.DataFrame({"userId": [1], "title": ["ok"]}))
    assert target.read_bytes() == b"userId,title\r\n1,ok\r\n"


def test_a_file_that_fills_the_disk_exactly_is_refused_before_it_replaces_anything(disk):
    # the old file takes half the disk: the new one, a bit larger than the other half, cannot sit
    # beside it, so even a write smaller than the disk fails while the old file stays
    target = disk / "report.html"
    old = b"<html>old</html>" + b" " * (DISK_BYTES // 2)
    target.write_bytes(old)
    with pytest.raises(OSError, match="report.html: cannot write"):
        write_text(target, "n" * (DISK_BYTES // 2 + 8192))
    assert target.read_bytes() == old and leftovers(disk) == []


def test_a_command_on_a_full_disk_keeps_the_earlier_output(disk):
    # a real process writing through the helper: its exit, its one-line error, the file it leaves
    target = disk / "recommendations.csv"
    target.write_text("userId,movieId,rank\n1,2,1\n")
    code = ("import sys, pandas as pd; from movierec._core.output import write_csv\n"
            "try:\n"
            f"    write_csv({str(target)!r}, pd.DataFrame({{'userId': range(100_000), 'title': 'abc'}}))\n"
            "except OSError as err:\n"
            "    print(err, file=sys.stderr); sys.exit(1)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert result.stderr.strip().startswith(f"{target}: cannot write (No space left on device)")
    assert target.read_text() == "userId,movieId,rank\n1,2,1\n"
    assert leftovers(disk) == []


# -- other failures ----------------------------------------------------------------------------
def test_an_exception_inside_the_writer_leaves_the_earlier_file_and_propagates(tmp_path):
    target = tmp_path / "metrics.json"
    target.write_text('{"old": 1}\n')

    def half_then_fail(handle):
        handle.write(b'{"new": ')
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomic(target, half_then_fail)
    assert target.read_text() == '{"old": 1}\n'
    assert leftovers(tmp_path) == []


def test_a_folder_in_the_way_or_a_missing_folder_is_named(tmp_path):
    (tmp_path / "taken").mkdir()
    with pytest.raises(OSError, match=r"taken: cannot write \(Is a directory\)"):
        write_text(tmp_path / "taken", "x")
    with pytest.raises(OSError, match=r"nowhere/out.csv: cannot write \(No such file or directory\)"):
        write_text(tmp_path / "nowhere" / "out.csv", "x")
    assert leftovers(tmp_path) == []


def test_json_with_nan_is_refused_before_any_byte_is_written(tmp_path):
    target = tmp_path / "metrics.json"
    target.write_text("{}\n")
    with pytest.raises(ValueError, match="Out of range float"):
        write_json(target, {"rmse": float("nan")})
    assert target.read_text() == "{}\n"
    assert write_json(target, {"rmse": 0.9, "n": 3}).read_text() == '{\n  "n": 3,\n  "rmse": 0.9\n}\n'


def test_a_replaced_file_keeps_its_permissions_and_a_new_one_follows_the_umask(tmp_path):
    target = tmp_path / "recommendations.csv"
    target.write_text("old")
    target.chmod(0o640)
    write_text(target, "new")
    assert stat.S_IMODE(target.stat().st_mode) == 0o640 and target.read_text() == "new"
    previous = os.umask(0o027)
    try:
        fresh = write_text(tmp_path / "fresh.csv", "x")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o640


def test_parquet_output_round_trips(tmp_path):
    pytest.importorskip("pyarrow")
    frame = pd.DataFrame({"userId": [1, 2], "movieId": [10, 20], "score": [0.5, 0.25]})
    pd.testing.assert_frame_equal(pd.read_parquet(write_parquet(tmp_path / "top.parquet", frame)), frame)


# -- CSV injection -------------------------------------------------------------------------------
def test_formula_titles_are_quoted_and_ids_and_numbers_are_not(tmp_path):
    frame = pd.DataFrame({
        "userId": ["=1+1", "u2", "-3", "@x"],  # ids stay exactly as they are
        "movieId": [-1, 2, 3, 4],
        "score": [-0.5, 1.0, 2.0, -3.0],
        "title": ['=HYPERLINK("http://evil","x")', "+SUM(A1)", "@cmd", "Heat (1995)"],
        "genres": ["-2+3", "\tTab", "\rCR", "Drama"],
    })
    path = write_csv(tmp_path / "recommendations.csv", frame, float_format="%.6g")
    back = pd.read_csv(path, dtype={"userId": str}, keep_default_na=False)
    assert back["userId"].tolist() == ["=1+1", "u2", "-3", "@x"]
    assert back["movieId"].tolist() == [-1, 2, 3, 4] and back["score"].tolist() == [-0.5, 1.0, 2.0, -3.0]
    assert back["title"].tolist() == ["'=HYPERLINK(\"http://evil\",\"x\")", "'+SUM(A1)", "'@cmd", "Heat (1995)"]
    assert back["genres"].tolist() == ["'-2+3", "'\tTab", "'\rCR", "Drama"]  # the CR cell is quoted
    assert frame["title"][0].startswith("=")  # the caller's frame is not modified


def test_an_index_of_text_labels_is_quoted_when_written(tmp_path):
    frame = pd.DataFrame({"rmse": [0.9, 1.0]}, index=pd.Index(["=cmd()", "ease"], name="model"))
    text = write_csv(tmp_path / "table.csv", frame, index=True).read_bytes()
    assert text == b"model,rmse\r\n'=cmd(),0.9\r\nease,1.0\r\n"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=12), st.none(), st.integers(), st.floats(allow_nan=False)),
                min_size=1, max_size=8))
def test_no_written_text_cell_starts_a_formula_and_removing_the_quote_gives_it_back(values):
    frame = pd.DataFrame({"title": pd.Series(values, dtype=object)})
    safe = spreadsheet_safe(frame)
    for before, after in zip(values, safe["title"]):
        if isinstance(before, str):
            assert not after.startswith(FORMULA_PREFIXES)
            assert after == before or (after == "'" + before and before.startswith(FORMULA_PREFIXES))
        else:
            assert after is before or after == before
