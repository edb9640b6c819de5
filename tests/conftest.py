"""Shared fixtures and settings for every test.

Where the MovieLens archive and the outside fixtures are, a seeded rng, the Hypothesis profile, and
Spark: one local SparkSession and one standalone cluster for the whole test session, each started
the first time a test asks for it and torn down at the end (JVMs ended, temporary folders removed).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

SHARED = Path(__file__).resolve().parents[2] / "shared"

# Timing deadlines fail a correct test on a loaded machine (CI, or 2 cores shared by several jobs),
# so no deadline; inputs are drawn afresh each run (no derandomize) and a failure prints the blob
# that replays it (@reproduce_failure); a slow draw under load is no failure either. Tests that set
# their own settings keep these for what they leave out. --hypothesis-profile=default overrides it.
settings.register_profile(
    "movierec", deadline=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("movierec")


def shared_data_home() -> Path:
    """Return the folder holding ml-100k.zip: $MOVIEREC_DATA, else ../shared/data."""
    return Path(os.environ.get("MOVIEREC_DATA", SHARED / "data")).resolve()


@pytest.fixture(scope="session")
def shared_fixtures() -> Path:
    """Return the outside-software fixtures folder: $MOVIEREC_FIXTURES, else ../shared/fixtures."""
    home = Path(os.environ.get("MOVIEREC_FIXTURES") or SHARED / "fixtures").resolve()
    if not (home / "README.md").is_file():
        pytest.fail(f"{home} holds no fixtures: set MOVIEREC_FIXTURES to the shared fixtures folder")
    return home


@pytest.fixture(scope="session")
def data_home() -> Path:
    home = shared_data_home()
    if not (home / "ml-100k.zip").is_file():
        pytest.fail(f"ml-100k.zip not found in {home}: set MOVIEREC_DATA to the folder that holds it")
    return home


@pytest.fixture(scope="session")
def u1(data_home):
    from movierec.data.movielens import official_folds

    return official_folds("ml-100k", which=("u1",), data_home=data_home)[0]


@pytest.fixture(scope="session")
def ml100k(data_home):
    from movierec.data.movielens import load_movielens

    return load_movielens("ml-100k", data_home=data_home, download=False)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


# -- Spark: one local session and one standalone cluster per test session ---------------------------
def _end_jvm(session) -> None:
    """Stop ``session`` and end the JVM behind it (pyspark keeps its gateway's Popen as ``proc``)."""
    from pyspark import SparkContext

    process = getattr(getattr(session.sparkContext, "_gateway", None), "proc", None)
    with warnings.catch_warnings(), contextlib.suppress(Exception):
        warnings.simplefilter("ignore")  # "Unable to cleanly shutdown Spark JVM process"
        session.stop()
        SparkContext._gateway.shutdown()
    SparkContext._gateway = SparkContext._jvm = None  # a later session starts a JVM of its own
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@pytest.fixture(scope="session")
def spark() -> Iterator[object]:
    """A local[2] SparkSession shared by every Spark test (a process holds one SparkContext).

    Models get it as ``spark=``, so they use it and never stop it; at the end of the test session it
    stops, its JVM ends and its folder is removed.
    """
    pytest.importorskip("pyspark")
    from movierec.spark.session import local_session_builder, quiet_pyspark_warnings

    workdir = Path(tempfile.mkdtemp(prefix="movierec-test-spark-"))
    try:
        builder = local_session_builder(workdir, master="local[2]", shuffle_partitions=2, driver_memory="1g")
        with quiet_pyspark_warnings():
            session = builder.appName("movierec-tests").getOrCreate()
        session.sparkContext.setLogLevel("ERROR")
        try:
            yield session
        finally:
            _end_jvm(session)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def spark_cluster() -> Iterator[str]:
    """Start a standalone Spark cluster on 127.0.0.1 (a master, one 1-core 1 GiB worker); yield its URL.

    Started once for the whole test session by :func:`movierec.testing.spark_cluster.standalone_cluster`
    from pyspark's own ``bin/spark-class``. Its applications run one at a time: each asks for at most
    one core and 512m per executor. Both JVMs are stopped and the cluster's folder (logs, executors'
    work folders) is removed at the end; a cluster that fails to start fails the test with its logs.
    """
    pytest.importorskip("pyspark")
    from movierec.exceptions import BackendError
    from movierec.testing.spark_cluster import spark_class, standalone_cluster

    if not os.access(spark_class(), os.X_OK):
        pytest.skip(f"{spark_class()} is missing or not executable")
    workdir = Path(tempfile.mkdtemp(prefix="movierec-test-cluster-"))
    try:
        with contextlib.ExitStack() as stack:
            try:
                url, _ = stack.enter_context(standalone_cluster(workdir, cores=1, memory="1g", timeout=120))
            except BackendError as err:
                pytest.fail(str(err))
            yield url
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@contextlib.contextmanager
def _small_disk(folder: Path, size: int) -> Iterator[Path]:
    """Mount a tmpfs of ``size`` bytes on ``folder`` for the block; skip the test where that is refused."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (CI runs the tests as root)")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                             check=False, capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False, capture_output=True)


@pytest.fixture
def small_disk() -> Callable[[Path, int], contextlib.AbstractContextManager[Path]]:
    """Return ``small_disk(folder, size)``: a real full-able disk (tmpfs) for the tests of full disks."""
    return _small_disk
