"""Fixtures for the adapter tests: one shared local SparkSession, and a standalone Spark cluster."""

from __future__ import annotations

import contextlib
import os

import pytest

from movierec.exceptions import BackendError


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    """A local[2] SparkSession shared by every Spark test (a process holds one SparkContext).

    Models get it as ``spark=``, so they use it and never stop it; it stops at the end.
    """
    pytest.importorskip("pyspark")
    from movierec.spark.session import local_session_builder, quiet_pyspark_warnings

    workdir = tmp_path_factory.mktemp("spark")
    builder = local_session_builder(workdir, master="local[2]", shuffle_partitions=2, driver_memory="1g")
    with quiet_pyspark_warnings():
        session = builder.appName("movierec-tests").getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def spark_cluster(tmp_path_factory):
    """Start a standalone Spark cluster on 127.0.0.1 (a master, one 1-core worker); yield its URL.

    Uses ``bin/spark-class`` from the pyspark install (SPARK_HOME = the pyspark package); both
    processes are stopped, and their logs left in the fixture's temporary folder.
    """
    pytest.importorskip("pyspark")
    from movierec.testing.spark_cluster import spark_class, standalone_cluster

    if not os.access(spark_class(), os.X_OK):
        pytest.skip(f"{spark_class()} is missing or not executable")
    workdir = tmp_path_factory.mktemp("spark-cluster")
    with contextlib.ExitStack() as stack:
        try:
            url, _ = stack.enter_context(standalone_cluster(workdir, cores=1, memory="1g", timeout=120))
        except BackendError as err:
            pytest.fail(str(err))
        yield url
