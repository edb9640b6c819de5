"""SIGINT or SIGTERM to ``movierec recommend --models als`` at a fixed moment (while Spark starts,
or two seconds into ALS's fit): the command prints one line, exits 130 or 143, and leaves no JVM,
no Spark folder and no report behind."""

from __future__ import annotations

import glob
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# The JVM prints this notice on every start (Spark 4 adds the module); it is not movierec's output.
JVM_NOTICE = "WARNING: Using incubator modules"


def spark_folders(tmp: Path) -> set[str]:
    return set(glob.glob(os.path.join(tmp, "movierec-spark-*")))


def _is_zombie(pid: str) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except (OSError, IndexError):
        return True


@pytest.mark.spark
@pytest.mark.slow
@pytest.mark.realdata
@pytest.mark.parametrize("signum, code, line, when", [
    (signal.SIGINT, 130, "movierec: interrupted", "fitting"),
    (signal.SIGTERM, 143, "movierec: interrupted (SIGTERM)", "fitting"),
    (signal.SIGINT, 130, "movierec: interrupted", "starting"),
])
def test_a_signal_to_the_process_group_stops_spark_and_prints_one_line(tmp_path, data_home, signum, code,
                                                                        line, when):
    pytest.importorskip("pyspark")
    # a temp folder of its own, so that another process's Spark folders are not mistaken for its own
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    environment = dict(os.environ, MOVIEREC_DATA=str(data_home), TMPDIR=str(tmp))
    with open(tmp_path / "stderr", "w+") as stderr:
        # its own process group, as a terminal gives a foreground job: killpg reaches the JVM too
        process = subprocess.Popen(
            [sys.executable, "-m", "movierec", "recommend", "--task", "rating", "--models", "als",
             "--quiet", "--out", str(tmp_path / "out")],
            stdout=subprocess.DEVNULL, stderr=stderr, env=environment, cwd=ROOT, start_new_session=True)
        try:
            deadline = time.monotonic() + 240
            folder = None
            while folder is None or (when == "fitting" and not glob.glob(f"{folder}/checkpoints/*")):
                assert process.poll() is None and time.monotonic() < deadline, "Spark never started"
                new = spark_folders(tmp)
                folder = min(new) if new else None
                time.sleep(0.05)
            if when == "fitting":
                time.sleep(2)  # the session is up and ALS is running
            os.killpg(process.pid, signum)
            assert process.wait(timeout=120) == code
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
        stderr.seek(0)
        lines = [text for text in stderr.read().splitlines() if not text.startswith(JVM_NOTICE)]
    assert lines == [line]
    assert not os.path.exists(folder)
    assert not spark_folders(tmp)
    # no JVM of ours outlives the command
    time.sleep(0.5)
    survivors = subprocess.run(["pgrep", "-g", str(process.pid)], check=False, capture_output=True, text=True).stdout.split()
    alive = [pid for pid in survivors if not _is_zombie(pid)]
    assert not alive
    assert not (tmp_path / "out" / "report.html").exists()
