"""Hostile command lines: unknown ``--users`` and an unusable ``--out``, each refused before any
fitting with one clear line, or warned about in one line while the known users are reported."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str, data: Path) -> subprocess.CompletedProcess:
    environment = dict(os.environ, MOVIEREC_DATA=str(data))
    environment.pop("MOVIEREC_MIRROR", None)
    return subprocess.run([sys.executable, "-m", "movierec", *args], check=False, capture_output=True,
                          text=True, timeout=300, env=environment, cwd=ROOT)


def baseline_recommend(out: Path, *extra: str) -> tuple[str, ...]:
    return ("recommend", "--task", "rating", "--models", "baseline", "--quiet", "--out", str(out), *extra)


@pytest.mark.realdata
def test_unknown_users_get_one_warning_line_and_the_known_ones_are_reported(tmp_path, data_home):
    result = run_cli(*baseline_recommend(tmp_path, "--users", "1,99999,2,123456"), data=data_home)
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "--users" in line]
    assert warnings == [("movierec: warning: --users: 99999, 123456 not in the training part, "
                         "left out of the report")], result.stderr
    report = (tmp_path / "report.html").read_text()
    assert "99999" not in report and "123456" not in report


@pytest.mark.realdata
def test_no_known_user_exits_1_before_any_fitting(tmp_path, data_home):
    start = time.perf_counter()
    result = run_cli(*baseline_recommend(tmp_path / "out", "--users", "99999"), data=data_home)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        ("movierec: error: --users: none of 99999 is in the training part, so the report would show "
         "nobody; user ids there run from 1 to 943")], result.stderr
    assert not (tmp_path / "out" / "report.html").exists()
    assert time.perf_counter() - start < 60


@pytest.mark.realdata
@pytest.mark.parametrize("where, reason", [
    ("a-file", "is a file, not a folder"),
    ("a-file/below", "cannot write there (Not a directory)"),
    ("/proc/movierec-out", "cannot write there"),
])
def test_an_unusable_out_fails_at_once_with_one_line(tmp_path, data_home, where, reason):
    (tmp_path / "a-file").write_text("keep me")
    out = Path(where) if where.startswith("/") else tmp_path / where
    # als would take a minute to fit: failing in seconds shows nothing was fitted first
    start = time.perf_counter()
    result = run_cli("recommend", "--models", "ease,als", "--out", str(out), data=data_home)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"movierec: error: --out {out}: {reason}"), result.stderr
    assert time.perf_counter() - start < 30
    assert (tmp_path / "a-file").read_text() == "keep me"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
@pytest.mark.realdata
def test_a_read_only_out_folder_fails_at_once(tmp_path, data_home):
    out = tmp_path / "locked"
    out.mkdir()
    out.chmod(0o555)
    result = run_cli(*baseline_recommend(out), data=data_home)
    assert result.returncode == 1
    assert result.stderr.startswith(f"movierec: error: --out {out}: cannot write there"), result.stderr


@pytest.mark.realdata
def test_evaluate_checks_its_out_file_first(tmp_path, data_home):
    result = run_cli("evaluate", "--task", "rating", "--models", "baseline", "--folds", "u1", "--quiet",
                     "--out", str(tmp_path), data=data_home)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"movierec: error: --out {tmp_path}: is a folder, give a file name such as {tmp_path / 'table.csv'}"]
