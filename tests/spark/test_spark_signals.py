"""A signal at any moment of Spark's start-up: ``movierec recommend --models als`` gets SIGINT or
SIGTERM on its whole process group (as a terminal's Ctrl-C, or a service manager, sends it) at
moments spread from the instant the command has set its signal handlers (before that, Python is
still importing and its default KeyboardInterrupt applies) to after ALS begins. Every run must
print one line, exit 130 or 143, remove its ``movierec-spark-*`` folder and leave no process of
its group alive.
"""

from __future__ import annotations

import glob
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
# The JVM prints this notice on every start (Spark 4 adds the module); it is not movierec's output.
JVM_NOTICE = "WARNING: Using incubator modules"
MOMENTS = 8

pytestmark = [pytest.mark.spark, pytest.mark.slow, pytest.mark.realdata]


def start(tmp: Path, out: Path, data_home: Path) -> subprocess.Popen:
    environment = dict(os.environ, MOVIEREC_DATA=str(data_home), TMPDIR=str(tmp))
    # its own process group, as a terminal gives a foreground job: killpg reaches the JVM too
    with open(out.with_suffix(".stderr"), "w") as stderr:
        return subprocess.Popen(
            [sys.executable, "-m", "movierec", "recommend", "--task", "rating", "--models", "als", "--quiet",
             "--out", str(out)],
            stdout=subprocess.DEVNULL, stderr=stderr, env=environment, cwd=ROOT, start_new_session=True)


def spark_folders(tmp: Path) -> list[str]:
    return glob.glob(os.path.join(tmp, "movierec-spark-*"))


def alive_in_group(pgid: int) -> list[str]:
    found = subprocess.run(["pgrep", "-g", str(pgid)], check=False, capture_output=True, text=True).stdout.split()
    return [pid for pid in found if not _is_zombie(pid)]


def _is_zombie(pid: str) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except (OSError, IndexError):
        return True


def stop_at(tmp: Path, out: Path, data_home: Path, moment: float, signum: int) -> list[str]:
    """Signal a fresh run ``moment`` seconds after its handlers are in place; return what went wrong."""
    process = start(tmp, out, data_home)
    began = handlers_in_place(process)
    problems = []
    try:
        time.sleep(max(0.0, began + moment - time.monotonic()))
        if process.poll() is not None:
            return [f"ended by itself before {moment:.1f} s (exit {process.returncode})"]
        os.killpg(process.pid, signum)
        code = process.wait(timeout=180)
        if code != 128 + signum:
            problems.append(f"exit {code}, not {128 + signum}")
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    time.sleep(0.5)
    expected = "movierec: interrupted" + (" (SIGTERM)" if signum == signal.SIGTERM else "")
    lines = [line for line in out.with_suffix(".stderr").read_text().splitlines() if not line.startswith(JVM_NOTICE)]
    if lines != [expected]:
        problems.append(f"{len(lines)} lines on stderr: {lines[:3]} ... {lines[-2:]}")
    if spark_folders(tmp):
        problems.append(f"left {[Path(f).name for f in spark_folders(tmp)]}")
    if alive_in_group(process.pid):
        problems.append(f"processes alive: {alive_in_group(process.pid)}")
        subprocess.run(["pkill", "-KILL", "-g", str(process.pid)], check=False)
    return problems


def handlers_in_place(process: subprocess.Popen) -> float:
    """Return `time.monotonic()` once ``process`` runs movierec with a SIGTERM handler of its own.

    Python catches only SIGINT by default: a SIGTERM handler is the command's, set when ``main``
    starts. Before that, Python is importing and its default KeyboardInterrupt applies.
    """
    status, cmdline = Path(f"/proc/{process.pid}/status"), Path(f"/proc/{process.pid}/cmdline")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        try:
            mask = next(line.split()[1] for line in status.read_text().splitlines() if line.startswith("SigCgt:"))
            if b"movierec" in cmdline.read_bytes() and int(mask, 16) & (1 << (signal.SIGTERM - 1)):
                return time.monotonic()
        except (OSError, StopIteration):
            pass
        time.sleep(0.01)
    raise AssertionError("the command never set its signal handlers")


def calibrate(tmp: Path, out: Path, data_home: Path) -> tuple[float, float]:
    """Return the seconds from a run's signal handlers to its Spark folder and to ALS's checkpoint
    folder (the session is up and ALS is starting)."""
    process = start(tmp, out, data_home)
    began = handlers_in_place(process)
    folder_at = ready_at = None
    try:
        while ready_at is None:
            assert process.poll() is None and time.monotonic() - began < 240, "Spark never started"
            folders = spark_folders(tmp)
            if folders and folder_at is None:
                folder_at = time.monotonic() - began
            if folders and glob.glob(f"{folders[0]}/checkpoints/*"):
                ready_at = time.monotonic() - began
            time.sleep(0.02)
        os.killpg(process.pid, signal.SIGINT)
        assert process.wait(timeout=180) == 130
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert not spark_folders(tmp)
    return folder_at, ready_at


def test_a_signal_at_any_moment_of_the_start_up_prints_one_line_and_leaves_nothing(tmp_path, data_home):
    pytest.importorskip("pyspark")
    tmp = tmp_path / "tmp"  # a temp folder of its own: another process's Spark folders are not ours
    tmp.mkdir()
    folder_at, ready_at = calibrate(tmp, tmp_path / "calibration", data_home)
    # Measured from the moment the command's handlers are in place: through pyspark's import, the
    # JVM's launch and the session's set-up to ALS's first job; SIGINT and SIGTERM in turn.
    moments = np.linspace(0.05, ready_at + 1.0, MOMENTS)
    failures = {}
    for number, moment in enumerate(moments):
        signum = signal.SIGINT if number % 2 == 0 else signal.SIGTERM
        problems = stop_at(tmp, tmp_path / f"run{number}", data_home, float(moment), signum)
        if problems:
            failures[f"{signal.Signals(signum).name} at {moment:.2f} s"] = problems
    assert not failures, (f"after the handlers: Spark folder at {folder_at:.2f} s, checkpoints at {ready_at:.2f} s; "
                          f"failures: {failures}")
