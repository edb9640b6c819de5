"""The ``movierec`` command: ``recommend``, ``evaluate``, ``fit``, ``serve``, ``download`` and ``datasets``.

Here: logging, signals and exit codes; the arguments are parsed in ``movierec.cli._parser``, and each
command is one module that calls the library (``recommend``, ``evaluate``, ``fit`` for kept models,
``serve``, ``datasets``). These are the only modules of movierec that print. Exit codes: 0 on success; 2 for bad arguments
(argparse's usage line and message); 1 for a runtime failure, reported as one line
``movierec: error: ...`` on stderr (``--debug`` shows the traceback instead); 130 on SIGINT (Ctrl-C)
and 143 on SIGTERM (128 + the signal's number, as shells report a process the signal ended),
after one line ``movierec: interrupted ...`` and the usual clean-up (a Spark session is stopped and
its temporary folder removed when the process exits). A second signal during that clean-up ends
the process at once.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from movierec.cli._output import one_line
from movierec.cli._parser import build_parser, check_args

__all__ = ["build_parser", "main"]

logger = logging.getLogger("movierec.cli")

# -- output plumbing ---------------------------------------------------------------------------
class _TqdmHandler(logging.Handler):
    """Writes log records above any progress bar instead of through it."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            from tqdm import tqdm

            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # noqa: BLE001 - logging must never raise
            self.handleError(record)


def _configure_logging(quiet: bool, debug: bool) -> None:
    handler = _TqdmHandler()
    handler.setFormatter(logging.Formatter("movierec: %(message)s"))
    package = logging.getLogger("movierec")
    package.handlers[:] = [handler]
    package.propagate = False
    package.setLevel(logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO)


@contextmanager
def _warnings_once() -> Iterator[None]:
    """Show each distinct warning message once, as ``movierec: warning: ...``."""
    seen: set[str] = set()

    def show(message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
        text = one_line(message)
        if text not in seen:
            seen.add(text)
            logger.warning("warning: %s", text)

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = show
        yield


class _Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM, raised in the main thread so that ``finally`` blocks and atexit run."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextmanager
def _interrupts() -> Iterator[None]:
    """Turn the first SIGINT or SIGTERM into `_Interrupted`; a second one exits at once.

    After the first, logging goes quiet: py4j logs a traceback for the call the signal cut
    short, and Spark's clean-up warns about a JVM the signal may have ended, but the user asked
    to stop and gets one line.
    """
    if not _in_main_thread():  # signal handlers can only be set there (main() called from a thread)
        yield
        return

    def stop(signum: int, frame: object) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda again, _frame: os._exit(128 + again))
        logging.disable(logging.CRITICAL)
        raise _Interrupted(signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


# -- entry point -----------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``movierec`` command with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    check_args(parser, args)
    _configure_logging(args.quiet, args.debug)
    try:
        with _interrupts(), _warnings_once():
            return args.func(args)
    except KeyboardInterrupt as err:  # ours, or pyspark's own SIGINT handler's
        signum = err.signum if isinstance(err, _Interrupted) else signal.SIGINT
        print("movierec: interrupted" + (" (SIGTERM)" if signum == signal.SIGTERM else ""), file=sys.stderr)
        return 128 + signum
    except Exception as err:
        if args.debug:
            raise
        from movierec.exceptions import MovieRecError

        if isinstance(err, (MovieRecError, ImportError, OSError)):
            message = one_line(err)
        else:
            message = f"{type(err).__name__}: {one_line(err)} (run with --debug for the traceback)"
        print(f"movierec: error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
