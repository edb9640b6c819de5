"""What the commands print: metric names, aligned tables, and progress bars that move while a stage is silent."""

from __future__ import annotations

import fcntl
import os
import re
import struct
import sys
import termios
import time

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from movierec.cli._output import markdown_table, metric_label, progress_bars


@pytest.mark.parametrize(("key", "label"), [
    ("rmse", "RMSE"), ("mae", "MAE"), ("ndcg@10", "nDCG@10"), ("map@5", "MAP@5"), ("precision@10", "precision@10"),
    ("coverage", "coverage"), ("scored", "scored"), ("fit s", "fit s"),
])
def test_metric_keys_print_in_one_casing(key, label):
    assert metric_label(key) == label


@settings(max_examples=50, deadline=None, database=None)
@given(st.lists(st.text(alphabet="abcxyz0123456789 .±", min_size=0, max_size=8), min_size=2, max_size=5),
       st.integers(1, 3))
def test_markdown_tables_align_every_row(cells, left):
    frame = pd.DataFrame([cells, list(reversed(cells))], columns=[f"c{i}" for i in range(len(cells))],
                         index=pd.Index(["first", "second"], name="model"))
    lines = markdown_table(frame, left=left).splitlines()
    assert len({len(line) for line in lines}) == 1  # every line as wide as the header
    rule = lines[1].strip("|").split("|")
    assert [part.endswith(":") for part in rule] == [i >= left for i in range(len(rule))]


def test_the_bars_redraw_while_nothing_reports(monkeypatch):
    """On a terminal, the preparing bar's elapsed time moves with no progress call (EASE's tuning)."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a new pty is 0 columns wide
    terminal = os.fdopen(slave, "w")
    monkeypatch.setattr(sys, "stderr", terminal)
    with progress_bars(quiet=False, tick=0.2) as progress:
        time.sleep(2.6)
        progress("fitting", 1, 2, "fitted ease on 71,996 ratings")
        time.sleep(1.3)
    terminal.flush()
    os.set_blocking(master, False)
    shown = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except BlockingIOError:
            break
        if not chunk:
            break
        shown += chunk
    text = shown.decode(errors="replace")
    assert len(set(re.findall(r"preparing \[(\d\d:\d\d)\]", text))) >= 3  # 00:00, 00:01, 00:02
    fitting = set(re.findall(r"fitting: .*?(\d\d:\d\d)", text))
    assert "fitted ease on 71,996 ratings" in text and len(fitting) >= 2
    terminal.close()
    os.close(master)


def test_quiet_draws_nothing_and_starts_no_thread(capfd):
    import threading

    before = threading.active_count()
    with progress_bars(quiet=True, tick=0.05) as progress:
        progress("fitting", 1, 2, "detail")
        assert threading.active_count() == before
    assert capfd.readouterr().err == ""
