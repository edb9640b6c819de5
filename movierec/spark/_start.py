"""Starting movierec's local Spark session through signals: held, then delivered once it is safe.

`signals_held` holds SIGINT and SIGTERM while the session starts, `in_thread` runs the start in a
thread of its own (so pyspark leaves the signal handlers alone), and `end_failed_start` ends the
JVM of a start that failed before its folder is removed. `movierec.spark.session` uses them.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["end_failed_start", "in_thread", "signals_held"]

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_PY4J_LOGGERS = ("py4j", "py4j.java_gateway", "py4j.clientserver")
_START_THREAD = "movierec-spark-start"


@contextlib.contextmanager
def signals_held() -> Iterator[list[int]]:
    """Hold SIGINT and SIGTERM until the block ends, then deliver the first one caught.

    Yields the list of signals caught so far. Until the block ends, the records py4j logs (on its
    loggers and on the root logger, where it calls `logging.exception`) from the start's thread,
    and from anywhere once a signal is caught, are dropped: a JVM that the signal ended too makes
    every call in flight fail, and the user, who asked to stop, gets one line. Signals can only
    be handled in the main thread.
    """
    caught: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield caught
        return

    def hold(signum: int, frame: object) -> None:
        caught.append(signum)

    def quiet(record: logging.LogRecord) -> bool:
        # the start's own failures reach the caller as its exception, not as py4j's log
        return not caught and record.threadName != _START_THREAD

    loggers = [logging.getLogger(), *(logging.getLogger(name) for name in _PY4J_LOGGERS)]
    for each in loggers:
        each.addFilter(quiet)
    previous = {sig: signal.signal(sig, hold) for sig in _STOP_SIGNALS}
    try:
        yield caught
    finally:
        for sig, handler in previous.items():
            if handler is not None:
                signal.signal(sig, handler)
        for each in loggers:
            each.removeFilter(quiet)
        if caught:
            signal.raise_signal(caught[0])


def in_thread(function: Callable[[], Any]) -> Any:
    """Return ``function()`` run in a thread of its own while the main thread waits.

    pyspark installs its own SIGINT handler when a context starts in the main thread, which would
    replace `signals_held`'s for the rest of the start-up: a Ctrl-C there raised KeyboardInterrupt
    inside a py4j call (46 lines of traceback, the JVM and the folder left behind). Started in
    another thread, the context leaves the handlers alone, and the main thread, which waits in an
    interruptible join, runs `signals_held`'s handler whenever a signal comes.
    """
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["session"] = function()
        except BaseException as err:  # noqa: BLE001 - handed to the main thread as it is
            outcome["error"] = err

    thread = threading.Thread(target=run, name=_START_THREAD, daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["session"]


def end_failed_start() -> None:
    """End the JVM a failed start left running and forget its gateway, before its folder is removed."""
    from pyspark import SparkContext

    gateway = SparkContext._gateway
    process = getattr(gateway, "proc", None)
    with contextlib.suppress(Exception):
        if SparkContext._active_spark_context is not None:
            SparkContext._active_spark_context.stop()
    if process is not None:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        for pipe in (process.stdin, process.stdout, process.stderr):
            if pipe is not None:  # else garbage collection warns of an unclosed file
                with contextlib.suppress(OSError):
                    pipe.close()
    with contextlib.suppress(Exception):
        gateway.shutdown()
    SparkContext._gateway = SparkContext._jvm = None
