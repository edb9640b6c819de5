"""A throwaway Spark standalone cluster on 127.0.0.1: one master and one worker.

Used by the Spark adapter's tests and by the scale benchmark. Both processes are started from
pyspark's own ``bin/spark-class`` (``SPARK_HOME`` = the pyspark package folder), on free ports,
with their logs in the given folder; they are stopped (terminate, then kill) on exit.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from movierec._core.extras import require
from movierec.exceptions import BackendError

__all__ = ["spark_class", "standalone_cluster"]

_HOST = "127.0.0.1"


def spark_class() -> Path:
    """Return the path of pyspark's ``bin/spark-class`` (it may be missing or not executable)."""
    pyspark = require("pyspark", "spark")
    return Path(pyspark.__file__).resolve().parent / "bin" / "spark-class"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((_HOST, 0))
        return sock.getsockname()[1]


def _alive_workers(ui_port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://{_HOST}:{ui_port}/json/", timeout=2) as response:
            return int(json.load(response).get("aliveworkers", 0))
    except (OSError, ValueError):
        return 0


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@contextlib.contextmanager
def standalone_cluster(
    workdir: Path, *, cores: int = 1, memory: str = "1g", timeout: float = 120.0
) -> Iterator[tuple[str, int]]:
    """Start a master and one worker (``cores``, ``memory``) on 127.0.0.1; yield (master URL, worker pid).

    Waits up to ``timeout`` seconds until the master sees the worker. ``spark-class`` execs java,
    possibly through a shell: the worker JVM is the yielded pid or below it. Both processes are
    stopped on exit; their logs (``master.log``, ``worker.log``) stay in ``workdir``.

    Raises
    ------
    BackendError
        If ``spark-class`` is not executable, or the cluster does not start in time (the message
        holds the tails of both logs).
    """
    command = spark_class()
    if not os.access(command, os.X_OK):
        raise BackendError(f"{command} is missing or not executable")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    port, master_ui, worker_ui = _free_port(), _free_port(), _free_port()
    env = {
        **os.environ,
        "SPARK_HOME": str(command.parent.parent),
        "SPARK_LOCAL_IP": _HOST,
        "SPARK_LOG_DIR": str(workdir),
        "SPARK_LOCAL_DIRS": str(workdir / "local"),
        "SPARK_DAEMON_MEMORY": "256m",
    }
    url = f"spark://{_HOST}:{port}"
    commands = {
        "master": [
            str(command), "org.apache.spark.deploy.master.Master",
            "--host", _HOST, "--port", str(port), "--webui-port", str(master_ui),
        ],
        "worker": [
            str(command), "org.apache.spark.deploy.worker.Worker", url,
            "--host", _HOST, "--cores", str(cores), "--memory", memory,
            "--webui-port", str(worker_ui), "--work-dir", str(workdir / "work"),
        ],
    }  # fmt: skip
    processes: dict[str, subprocess.Popen] = {}
    logs = {name: workdir / f"{name}.log" for name in commands}
    try:
        for name, argv in commands.items():
            with open(logs[name], "wb") as log:
                processes[name] = subprocess.Popen(
                    argv,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=env,
                    cwd=workdir,
                )
        deadline = time.monotonic() + timeout
        while _alive_workers(master_ui) < 1:
            dead = [name for name, process in processes.items() if process.poll() is not None]
            if dead or time.monotonic() > deadline:
                tails = {name: logs[name].read_text(errors="replace")[-2000:] for name in commands}
                raise BackendError(f"standalone cluster did not start (exited: {dead}); logs: {tails}")
            time.sleep(0.5)
        yield url, processes["worker"].pid
    finally:
        for process in reversed(list(processes.values())):
            _stop(process)
