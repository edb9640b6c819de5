"""Fixtures for the adapter tests: one shared local SparkSession, and a standalone Spark cluster."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    """A local[2] SparkSession shared by every Spark test (a process holds one SparkContext).

    Models get it as ``spark=``, so they use it and never stop it; it stops at the end.
    """
    pytest.importorskip("pyspark")
    from movierec.adapters._spark_session import local_session_builder, quiet_pyspark_warnings

    workdir = tmp_path_factory.mktemp("spark")
    builder = local_session_builder(workdir, master="local[2]", shuffle_partitions=2, driver_memory="1g")
    with quiet_pyspark_warnings():
        session = builder.appName("movierec-tests").getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _alive_workers(ui_port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/json/", timeout=2) as response:
            return int(json.load(response).get("aliveworkers", 0))
    except (OSError, ValueError):
        return 0


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def spark_cluster(tmp_path_factory):
    """Start a standalone Spark cluster on 127.0.0.1 (a master, one 1-core worker); yield its URL.

    Uses ``bin/spark-class`` from the pyspark install (SPARK_HOME = the pyspark package); both
    processes are stopped, and their logs left in the fixture's temporary folder.
    """
    pyspark = pytest.importorskip("pyspark")
    home = Path(pyspark.__file__).resolve().parent
    spark_class = home / "bin" / "spark-class"
    if not os.access(spark_class, os.X_OK):
        pytest.skip(f"{spark_class} is missing or not executable")
    workdir = tmp_path_factory.mktemp("spark-cluster")
    port, master_ui, worker_ui = _free_port(), _free_port(), _free_port()
    env = {
        **os.environ,
        "SPARK_HOME": str(home),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_LOG_DIR": str(workdir),
        "SPARK_LOCAL_DIRS": str(workdir / "local"),
        "SPARK_DAEMON_MEMORY": "256m",
    }
    url = f"spark://127.0.0.1:{port}"
    commands = {
        "master": [
            str(spark_class), "org.apache.spark.deploy.master.Master",
            "--host", "127.0.0.1", "--port", str(port), "--webui-port", str(master_ui),
        ],
        "worker": [
            str(spark_class), "org.apache.spark.deploy.worker.Worker", url,
            "--host", "127.0.0.1", "--cores", "1", "--memory", "1g",
            "--webui-port", str(worker_ui), "--work-dir", str(workdir / "work"),
        ],
    }  # fmt: skip
    processes: dict[str, subprocess.Popen] = {}
    logs = {name: workdir / f"{name}.log" for name in commands}
    try:
        for name, command in commands.items():
            with open(logs[name], "wb") as log:
                processes[name] = subprocess.Popen(
                    command,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=env,
                    cwd=workdir,
                )
        deadline = time.monotonic() + 120
        while _alive_workers(master_ui) < 1:
            dead = [name for name, process in processes.items() if process.poll() is not None]
            if dead or time.monotonic() > deadline:
                tails = {name: logs[name].read_text(errors="replace")[-2000:] for name in commands}
                pytest.fail(f"standalone cluster did not start (exited: {dead}); logs: {tails}")
            time.sleep(0.5)
        yield url
    finally:
        for process in reversed(list(processes.values())):
            _stop(process)
