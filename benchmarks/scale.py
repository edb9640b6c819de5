"""Scale: fit and top-N time and peak memory per model on synthetic MovieLens-shaped data (1M, 10M).

The data come from :func:`benchmarks.synthetic.generate` (seed 0), written once to a temporary
``.npz`` file; each (model, size) then runs in its own fresh process that loads it, fits the model
with its defaults, ranks the top 10 unseen movies for every user, and reports its own peak RSS
(and, for Spark, the JVMs' peak RSS read from /proc). Growth = time or memory at 10M / at 1M.
SparkALS also runs on a standalone cluster (a master and one worker on 127.0.0.1, started here
from pyspark's ``bin/spark-class``) at the smallest size.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks._common import build, close, current_rss_mb, jvm_peak_rss_mb, peak_rss_mb, quiet, run_isolated
from benchmarks.synthetic import generate
from movierec.testing.spark_cluster import standalone_cluster

logger = logging.getLogger("benchmarks.scale")

SEED = 0
N = 10
SIZES = (1_000_000, 10_000_000)
QUICK_SIZES = (20_000, 50_000)
# (model, largest size it runs at): MyFMBayes's 200 Gibbs sweeps would take ~25 min at 10M.
MODELS = {
    "BiasedBaseline": None,
    "SurpriseSVD": None,
    "SparkALS": None,
    "SageMakerFM": None,
    "MyFMBayes": 1_000_000,
}
CLUSTER_SIZES = (1_000_000,)
JOB_TIMEOUT = 30 * 60  # seconds; a job past it is recorded as timed out
SPARK_DRIVER_MEMORY = "6g"


def _session(master: str, workdir: Path, *, cores: int | None = None, executor_memory: str | None = None):
    from movierec.adapters.spark._session import local_session_builder, quiet_pyspark_warnings

    builder = local_session_builder(workdir, master=master, driver_memory=SPARK_DRIVER_MEMORY)
    if executor_memory:
        builder = builder.config("spark.executor.memory", executor_memory)
    if cores:
        builder = builder.config("spark.cores.max", str(cores))
    with quiet_pyspark_warnings():
        session = builder.appName("movierec-bench-scale").getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    session.sparkContext.setCheckpointDir(str(workdir / "checkpoints"))
    return session


def job(name: str, path: str, master: str | None = None, worker_pid: int | None = None) -> dict[str, Any]:
    """Child-process job: load the ratings at ``path``, fit ``name``, rank top 10 for all users."""
    with np.load(path) as data:
        ratings = pd.DataFrame({"userId": data["userId"], "movieId": data["movieId"], "rating": data["rating"]})
    out: dict[str, Any] = {"rss_after_load_mb": current_rss_mb()}
    session = workdir = model = None
    try:
        if name == "SparkALS":
            workdir = Path(tempfile.mkdtemp(prefix="movierec-bench-spark-"))
            session = _session(master or "local[*]", workdir, executor_memory="4g" if master else None)
            out["spark_master"] = session.sparkContext.master
            model = build(name, spark=session)
        else:
            model = build(name)
        start = time.perf_counter()
        model.fit(ratings)
        out["fit_seconds"] = time.perf_counter() - start
        start = time.perf_counter()
        top = model.top_n(n=N)
        out["top_n_seconds"] = time.perf_counter() - start
        out["top_n_users"] = int(top["userId"].nunique())
        out["peak_rss_mb"] = peak_rss_mb()
        if session is not None:
            out["jvm_peak_rss_mb"] = jvm_peak_rss_mb()
            if worker_pid is not None:  # the executors are the worker's children, not ours
                out["executor_peak_rss_mb"] = jvm_peak_rss_mb(worker_pid)
    finally:
        if model is not None:
            close(model)
        if session is not None:
            session.stop()
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)
    return out


def _growth(small: dict[str, Any], large: dict[str, Any]) -> dict[str, float]:
    out = {}
    for key in ("fit_seconds", "top_n_seconds", "peak_rss_mb", "jvm_peak_rss_mb"):
        if small.get(key) and large.get(key):
            out[key] = large[key] / small[key]
    return out


def run(*, quick: bool = False) -> tuple[dict[str, Any], list[str]]:
    """Generate the data, run every (model, size) in its own process; return (results, notes)."""
    quiet()
    sizes = QUICK_SIZES if quick else SIZES
    cluster_sizes = sizes[:1] if quick else CLUSTER_SIZES
    results: dict[str, Any] = {"sizes": {}, "models": {}, "growth": {}}
    notes = [
        ("Synthetic MovieLens-shaped ratings (benchmarks/synthetic.py, seed 0): Zipf-like movie popularity, "
        ">= 20 ratings per user, whole stars from user + movie effects + a rank-5 interaction + noise."),
        (f"Defaults of every model (random_state=0); top {N} unseen movies for every user; one run per "
        "(model, size), each in a fresh process; peak RSS = that process's VmHWM (data included: "
        "rss_after_load_mb); Spark's JVMs are separate processes (jvm_peak_rss_mb: driver, which in local "
        f"mode is also the executor; executor_peak_rss_mb on the cluster). Spark driver memory {SPARK_DRIVER_MEMORY}."),
        f"A job running past {JOB_TIMEOUT // 60} min is stopped and recorded as timed out.",
    ]
    skipped = {name: limit for name, limit in MODELS.items() if limit is not None and not quick}
    for name, limit in skipped.items():
        notes.append(f"{name} runs only up to {limit:,} ratings (its cost at 10M is out of this suite's budget).")
    with tempfile.TemporaryDirectory(prefix="movierec-bench-scale-") as folder:
        paths = {}
        for size in sizes:
            start = time.perf_counter()
            frame = generate(size, seed=SEED)
            seconds = time.perf_counter() - start
            paths[size] = str(Path(folder) / f"ratings_{size}.npz")
            np.savez(paths[size], **{c: frame[c].to_numpy() for c in ("userId", "movieId", "rating")})
            results["sizes"][str(size)] = {
                "ratings": len(frame),
                "users": int(frame["userId"].nunique()),
                "movies": int(frame["movieId"].nunique()),
                "min_ratings_per_user": int(frame.groupby("userId").size().min()),
                "mean_rating": float(frame["rating"].mean()),
                "generate_seconds": seconds,
            }
            logger.info("generated %s ratings in %.1f s: %s", f"{size:,}", seconds, results["sizes"][str(size)])
            del frame
        for name, limit in MODELS.items():
            entries = {}
            for size in sizes:
                if limit is not None and size > limit and not quick:
                    continue
                logger.info("scale: %s at %s ...", name, f"{size:,}")
                entries[str(size)] = run_isolated("benchmarks.scale:job", timeout=JOB_TIMEOUT, name=name, path=paths[size])
                logger.info("scale: %s at %s: %s", name, f"{size:,}",
                            {k: v for k, v in entries[str(size)].items() if k != "traceback"})
            results["models"][name] = entries
        try:
            cluster = standalone_cluster(Path(folder) / "cluster", cores=2, memory="5g", timeout=180)
            with cluster as (url, worker_pid):
                entries = {}
                for size in cluster_sizes:
                    logger.info("scale: SparkALS on %s at %s ...", url, f"{size:,}")
                    entries[str(size)] = run_isolated("benchmarks.scale:job", timeout=JOB_TIMEOUT, name="SparkALS",
                                                      path=paths[size], master=url, worker_pid=worker_pid)
                    logger.info("scale: SparkALS (cluster) at %s: %s", f"{size:,}", entries[str(size)])
                results["models"]["SparkALS (standalone cluster)"] = entries
        except Exception as err:
            logger.exception("the standalone cluster run failed")
            results["models"]["SparkALS (standalone cluster)"] = {"error": f"{type(err).__name__}: {err}"}
    small, large = (str(s) for s in sizes)
    for name, entries in results["models"].items():
        if small in entries and large in entries:
            results["growth"][name] = _growth(entries[small], entries[large])
    notes.append("Standalone cluster: one master and one worker (2 cores, 5g) on this same 2-core machine, "
                 "executor memory 4g; it shows the cluster path works and what it costs, not a speed-up.")
    return results, notes
