"""The SparkSession a SparkALS runs on: a local one movierec starts and owns, or the caller's.

A process holds at most one SparkContext, so the session movierec starts is shared by every
SparkALS created with ``spark=None`` and stopped when the last of them is closed. A session the
caller made (any master) is used as it is and never stopped or reconfigured. Spark's own failures
surface as [`BackendError`][movierec.exceptions.BackendError] through `backend_errors`.

Interrupts: SIGINT and SIGTERM are held while the local session starts (pyspark keeps the JVM's
process handle to itself until start-up ends, so a signal then would orphan the JVM) and
delivered right after. The session starts in a thread of its own, so that pyspark does not
replace the held SIGINT handler with its own midway; a start that fails (a SIGTERM to the
process group ends the JVM too) ends its JVM and removes its folder before the signal is
delivered. When the process exits, whatever the path (a normal end, an exception, an
interrupt turned into one), `shutdown` stops movierec's own session, ends its JVM and
removes its ``movierec-spark-*`` folder; the JVM is ended first, since a job still running would
write into the folder again after it is removed.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from movierec._core.extras import require
from movierec.exceptions import BackendError, MovieRecWarning
from movierec.spark._start import end_failed_start, in_thread, signals_held

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = [
    "acquire",
    "backend_errors",
    "is_alive",
    "local_session_builder",
    "quiet_pyspark_warnings",
    "release",
    "session_types",
    "shutdown",
]

logger = logging.getLogger(__name__)

# pyspark 4.x warns on every pandas conversion (and once at start-up, from a py4j converter that
# imports pyspark.testing) when pandas >= 3 is installed. movierec moves data through Arrow tables,
# never through pyspark's pandas code, so only the start-up warning can reach us; it is silenced
# where movierec itself starts a session.
_PANDAS_VERSION_WARNING = "PySpark does not yet fully support pandas"

# Spark's driver logs go to log4j, at ERROR, into spark.log in the session's folder, never to the
# terminal: a failure reaches Python as an exception (movierec raises BackendError with its message),
# and an interrupt's cancelled jobs (ALS's Instrumentation logs a NullPointerException) must not
# bury the one line the user gets. The netlib flags stop the BLAS/LAPACK loaders from printing
# dlopen failures when no native library is installed (the pure-Java implementations are used).
_LOG4J_PROPERTIES = """\
# pyspark counts as a shell: Spark then prints "Setting default log level to X" unless the level
# of org.apache.spark (configured here, so Spark takes it as chosen) equals the root level.
rootLogger.level = error
rootLogger.appenderRef.file.ref = file
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log_file}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = %d{{yy/MM/dd HH:mm:ss}} %p %c{{1}}: %m%n%ex
logger.spark.name = org.apache.spark
logger.spark.level = error
"""
#: What the JVM prints on its stderr at every start (Spark 4 loads jdk.incubator.vector for its BLAS):
#: Java's notice, not movierec's, and nothing the user can act on. `_jvm_notices_dropped` drops it.
JVM_NOTICES = (b"WARNING: Using incubator modules",)
_NETLIB_FLAGS = " ".join(
    f"-Ddev.ludovic.netlib.{lib}.allowNative=false" for lib in ("blas", "lapack", "arpack")
)


def session_types() -> tuple[type, ...]:
    """Return the types a ``spark=`` argument may have; imports pyspark only when called."""
    from pyspark.sql import SparkSession

    return (SparkSession,)


@contextlib.contextmanager
def backend_errors(action: str) -> Iterator[None]:
    """Re-raise Spark and py4j failures inside the block as BackendError, the original chained."""
    from py4j.protocol import Py4JError
    from pyspark.errors import PySparkException

    try:
        yield
    except (Py4JError, PySparkException) as err:
        first_line = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise BackendError(f"Spark failed to {action}: {first_line}") from err


@contextlib.contextmanager
def quiet_pyspark_warnings() -> Iterator[None]:
    """Silence pyspark's "does not yet fully support pandas" FutureWarning inside the block."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_PANDAS_VERSION_WARNING, category=FutureWarning)
        yield


def local_session_builder(
    workdir: Path,
    *,
    master: str = "local[*]",
    shuffle_partitions: int | None = None,
    driver_memory: str = "2g",
):
    """Return a ``SparkSession.Builder`` for a quiet local session whose files live in ``workdir``.

    UI and progress bars off, logs at ERROR, driver bound to 127.0.0.1, shuffle partitions sized
    for data that fits one machine (twice the cores, at most 16), Arrow enabled for ``toPandas``.
    """
    require("pyspark", "spark")
    from pyspark.sql import SparkSession

    workdir.mkdir(parents=True, exist_ok=True)
    log4j = workdir / "log4j2.properties"
    log4j.write_text(_LOG4J_PROPERTIES.format(log_file=workdir / "spark.log"))
    java_options = f"-Dlog4j2.configurationFile={log4j.as_uri()} {_NETLIB_FLAGS}"
    if shuffle_partitions is None:
        shuffle_partitions = max(2, min(16, 2 * (os.cpu_count() or 1)))
    return (
        SparkSession.builder.master(master)
        .appName("movierec")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.memory", driver_memory)
        .config("spark.driver.extraJavaOptions", java_options)
        .config("spark.sql.shuffle.partitions", str(shuffle_partitions))
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.warehouse.dir", str(workdir / "warehouse"))
        # spark.local.dir is left alone: the JVM caches it from its first SparkContext, so a later
        # session would recreate this (by then deleted) folder; Spark cleans its own scratch space.
    )


def is_alive(session: SparkSession | None) -> bool:
    """Return whether ``session``'s SparkContext is still running."""
    if session is None:
        return False
    context = getattr(session, "_sc", None)
    return context is not None and getattr(context, "_jsc", None) is not None


class _Owned:
    """The one local session movierec started in this process, and how many models use it."""

    lock = threading.Lock()
    session: SparkSession | None = None
    users = 0
    workdir: Path | None = None


def _forward_lines(source: int, target: int) -> None:
    """Copy the lines read from fd ``source`` to fd ``target``, less those starting with `JVM_NOTICES`."""
    with os.fdopen(source, "rb", buffering=0) as reader, os.fdopen(target, "wb", buffering=0) as writer:
        pending = b""
        while chunk := reader.read(65536):
            *lines, pending = (pending + chunk).split(b"\n")
            kept = b"".join(line + b"\n" for line in lines if not line.startswith(JVM_NOTICES))
            with contextlib.suppress(OSError):
                writer.write(kept)
        if pending and not pending.startswith(JVM_NOTICES):
            with contextlib.suppress(OSError):
                writer.write(pending)


@contextlib.contextmanager
def _jvm_notices_dropped() -> Iterator[None]:
    """Give the processes started inside the block a stderr that drops the JVM's start-up notices.

    The JVM inherits file descriptor 2, so for the block fd 2 is a pipe whose lines a daemon thread
    copies to the real stderr, less `JVM_NOTICES`; after the block this process writes to the real
    stderr again, while the JVM keeps the pipe (its later errors still reach the terminal) until it
    exits. Where fd 2 cannot be swapped (no such descriptor), nothing is filtered.
    """
    try:
        sys.stderr.flush()
        saved, target = os.dup(2), os.dup(2)
    except (OSError, ValueError):
        yield
        return
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    threading.Thread(target=_forward_lines, args=(read_end, target), name="movierec-jvm-stderr", daemon=True).start()
    try:
        yield
    finally:
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def _cancel_then_interrupt(signum: int, frame: object) -> None:
    """What pyspark installs on SIGINT when its context starts in the main thread: cancel the jobs."""
    session = _Owned.session
    try:
        if is_alive(session):
            session.sparkContext.cancelAllJobs()
    finally:
        raise KeyboardInterrupt


def _build_owned(workdir: Path) -> SparkSession:
    with quiet_pyspark_warnings(), _jvm_notices_dropped():
        session = local_session_builder(workdir).getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    # ALS checkpoints its factor lineage every checkpointInterval iterations only when a
    # checkpoint directory is set; without it long runs can overflow the stack.
    session.sparkContext.setCheckpointDir(str(workdir / "checkpoints"))
    return session


def _start_owned() -> SparkSession:
    with signals_held() as caught:
        workdir = Path(tempfile.mkdtemp(prefix="movierec-spark-"))
        try:
            session = in_thread(lambda: _build_owned(workdir))
        except BaseException as err:
            # the JVM first: one still starting (or running its shutdown hooks) writes into the folder
            end_failed_start()
            shutil.rmtree(workdir, ignore_errors=True)
            if caught or not isinstance(err, Exception):
                raise  # the held signal, delivered as the block ends, says what happened
            raise BackendError(f"could not start a local Spark session (is Java 17+ installed?): {err}") from err
        _Owned.session, _Owned.users, _Owned.workdir = session, 0, workdir
    main = threading.current_thread() is threading.main_thread()
    if main and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _cancel_then_interrupt)
    logger.info("started local Spark session %s (files in %s)", session.sparkContext.master, workdir)
    return session


def acquire(spark: SparkSession | None) -> tuple[SparkSession, bool]:
    """Return ``(session, owned)``: ``spark`` itself, else movierec's own local session.

    With ``spark=None`` the session movierec started is reused (one more user) or started; if the
    caller already runs a SparkContext in this process that one is used, unowned, since a
    process cannot hold two.
    """
    require("pyspark", "spark")
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    if spark is not None:  # its type was checked with the model's parameters
        if not is_alive(spark):
            raise BackendError("the SparkSession given as spark= has been stopped")
        return spark, False
    with _Owned.lock:
        if not is_alive(_Owned.session):
            _forget_owned()
            if SparkContext._active_spark_context is not None:
                logger.info("using the SparkContext already running in this process; it will not be stopped")
                with quiet_pyspark_warnings():
                    return SparkSession.builder.getOrCreate(), False
            _start_owned()
        _Owned.users += 1
        return _Owned.session, True


def release(session: SparkSession) -> None:
    """Drop one user of movierec's own session, stopping it when none is left."""
    with _Owned.lock:
        if session is not _Owned.session:
            return
        _Owned.users -= 1
        if _Owned.users > 0:
            return
        try:
            session.stop()
        finally:
            _forget_owned()
        logger.info("stopped movierec's local Spark session")


#: Spark ALS's default checkpointInterval: without a checkpoint directory, runs longer than this
#: keep the whole factor lineage, whose deserialization overflows the JVM stack near 20 iterations.
ALS_CHECKPOINT_INTERVAL = 10


def ensure_checkpoint_dir(session: SparkSession, max_iter: int) -> None:
    """Give a caller's session a checkpoint directory when ALS needs one (``max_iter`` > 10).

    A local master gets a temporary folder, removed when the process exits; on a cluster the
    folder must be one every node sees, so movierec cannot choose it and warns instead.
    """
    context = session.sparkContext
    if max_iter <= ALS_CHECKPOINT_INTERVAL or context.getCheckpointDir() is not None:
        return
    if not context.master.startswith("local"):
        warnings.warn(
            f"ALS with max_iter={max_iter} on a Spark session without a checkpoint directory can overflow "
            "the JVM stack; call spark.sparkContext.setCheckpointDir() with a folder every node can reach",
            MovieRecWarning,
            stacklevel=4,
        )
        return
    folder = tempfile.mkdtemp(prefix="movierec-checkpoints-")
    atexit.register(shutil.rmtree, folder, True)
    context.setCheckpointDir(folder)
    logger.info("set the Spark session's checkpoint directory to %s (ALS max_iter=%d)", folder, max_iter)


def _forget_owned() -> None:
    if _Owned.workdir is not None:
        shutil.rmtree(_Owned.workdir, ignore_errors=True)
    _Owned.session, _Owned.users, _Owned.workdir = None, 0, None


@atexit.register
def shutdown(timeout: float = 10.0) -> None:
    """Stop movierec's own session whoever still uses it, end its JVM and remove its folder.

    Runs when the process exits (a model nobody closed, an interrupt); quiet and best-effort,
    since the JVM may already be gone (SIGTERM to the process group reaches it too). A session
    the caller made is left alone.
    """
    with _Owned.lock:
        session, workdir = _Owned.session, _Owned.workdir
        _Owned.session, _Owned.users, _Owned.workdir = None, 0, None
    if workdir is None:
        return
    process = None
    if session is not None:
        # pyspark keeps the JVM's Popen as gateway.proc "for use by the caller"
        gateway = getattr(session.sparkContext, "_gateway", None)
        process = getattr(gateway, "proc", None)
        with contextlib.suppress(Exception):
            # Jobs cancelled by this stop log ERRORs (ALS's Instrumentation: SparkEnv is null): the
            # interrupt is the one line the user sees, so every JVM logger goes quiet first.
            log4j = session.sparkContext._jvm.org.apache.logging.log4j
            log4j.core.config.Configurator.setAllLevels("", log4j.Level.OFF)
        with warnings.catch_warnings(), contextlib.suppress(Exception):
            warnings.simplefilter("ignore")  # "Unable to cleanly shutdown Spark JVM process"
            session.stop()
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)
    shutil.rmtree(workdir, ignore_errors=True)
