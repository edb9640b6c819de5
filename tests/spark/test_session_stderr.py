"""The JVM's start-up notice stays out of movierec's output; everything else on stderr still gets through."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from movierec.spark.session import JVM_NOTICES, _forward_lines

ROOT = Path(__file__).resolve().parents[2]
NOTICE = JVM_NOTICES[0].decode()


def _forwarded(chunks: list[bytes]) -> bytes:
    source_read, source_write = os.pipe()
    target_read, target_write = os.pipe()
    thread = threading.Thread(target=_forward_lines, args=(source_read, target_write))
    thread.start()
    for chunk in chunks:
        os.write(source_write, chunk)
    os.close(source_write)
    thread.join(10)
    with os.fdopen(target_read, "rb") as reader:
        return reader.read()


def test_the_notice_is_dropped_and_every_other_line_kept_whole():
    chunks = [b"first line\n" + JVM_NOTICES[0] + b": jdk.incubator.vector\nsec", b"ond line\n",
              b"an error the JVM prints later", b" without a newline"]
    assert _forwarded(chunks) == b"first line\nsecond line\nan error the JVM prints later without a newline"


def test_a_notice_split_across_reads_is_still_dropped():
    notice = JVM_NOTICES[0] + b": jdk.incubator.vector\n"
    assert _forwarded([notice[:9], notice[9:], b"kept\n"]) == b"kept\n"


@pytest.mark.spark
@pytest.mark.slow
def test_a_local_session_starts_without_the_notice_and_stderr_works_after(tmp_path):
    script = (
        "import sys\n"
        "from movierec.spark import session\n"
        "spark, owned = session.acquire(None)\n"
        "assert owned\n"
        "print('python after the start', file=sys.stderr, flush=True)\n"
        "session.release(spark)\n"
    )
    run = subprocess.run(check=False, args=[sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, TMPDIR=str(tmp_path)))
    assert run.returncode == 0, run.stderr
    assert NOTICE not in run.stderr
    assert "python after the start" in run.stderr
