"""Scale: fit and top-N time and peak memory per model on synthetic MovieLens-shaped data (1M, 10M, 25M).

The data come from :func:`benchmarks.synthetic.generate` (seed 0), shaped like the MovieLens
release of each size (1M: ml-1m's 6k users x 3.7k movies; 10M: ml-10m's 70k x 10.7k; 25M: ml-25m's
163k x 59k), written to a temporary ``.npz`` file. Each (model, size) then runs in its own fresh
process that loads it, fits the model, ranks the top 10 unseen movies for every user, and reports
its own peak RSS (overall, and during top_n alone) and, for Spark, the JVMs' peak RSS read from
/proc. The main job (``movierec recommend`` with its defaults on the same ratings written as a CSV
file) runs as a command, its whole process tree measured. Growth = time or memory at one size /
at the size before. SparkALS also runs on a standalone cluster (a master and one worker on
127.0.0.1, started here from pyspark's ``bin/spark-class``) at 1M.

Every (model, size) result is merged into ``results/scale.json`` as soon as it is measured, so a
crash or a timeout late in a long run loses nothing before it, and a run limited with
``--sizes``/``--models`` adds to (or replaces) the entries of earlier runs.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks._common import (
    SCALE_MAIN_JOB,
    build,
    close,
    command_line,
    current_rss_mb,
    jvm_peak_rss_mb,
    machine,
    peak_rss_mb,
    quiet,
    reset_peak_rss,
    results_dir,
    run_isolated,
    run_tree,
    write_result,
)
from benchmarks.synthetic import MOVIELENS_SHAPES, generate
from movierec.testing.spark_cluster import standalone_cluster

logger = logging.getLogger("benchmarks.scale")

SEED = 0
N = 10
SIZES = (1_000_000, 10_000_000, 25_000_000)
QUICK_SIZES = (20_000, 50_000)
# name -> (registry name, task, largest size it runs at). The ranking entries are the main job's
# members as it builds them (registry parameters for --task ranking).
MODELS: dict[str, tuple[str, str | None, int | None]] = {
    "BiasedBaseline": ("BiasedBaseline", None, None),
    "Popularity": ("pop", "ranking", None),
    "EASE": ("ease", "ranking", None),
    "SurpriseSVD": ("SurpriseSVD", None, None),
    "SparkALS": ("SparkALS", None, None),
    "SageMakerFM": ("SageMakerFM", None, None),
    "SparkALS implicit": ("als", "ranking", None),
    "SageMakerFM binary": ("fm", "ranking", None),
    # MyFMBayes's 200 Gibbs sweeps would take ~25 min at 10M.
    "MyFMBayes": ("MyFMBayes", None, 1_000_000),
}
MAIN_JOB = SCALE_MAIN_JOB
CLUSTER = "SparkALS (standalone cluster)"
ENTRIES = (*MODELS, MAIN_JOB, CLUSTER)
CLUSTER_SIZES = (1_000_000,)
JOB_TIMEOUT = 30 * 60  # seconds at 10M and below; a job past its timeout is recorded as timed out
MAIN_JOB_CSV = "ratings.csv"
SPARK_DRIVER_MEMORY = "6g"


def timeout_for(size: int, entry: str) -> float:
    """Return the seconds a job may run: 30 min up to 10M ratings, growing with the size past it; twice that for the main job."""
    seconds = max(JOB_TIMEOUT, JOB_TIMEOUT * size / 10_000_000)
    return 2 * seconds if entry == MAIN_JOB else seconds


def _session(master: str, workdir: Path, *, cores: int | None = None, executor_memory: str | None = None):
    from movierec.spark.session import local_session_builder, quiet_pyspark_warnings

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
    registry_name, task, _ = MODELS[name]
    with np.load(path) as data:
        ratings = pd.DataFrame({"userId": data["userId"], "movieId": data["movieId"], "rating": data["rating"]})
    out: dict[str, Any] = {"rss_after_load_mb": current_rss_mb()}
    session = workdir = model = None
    try:
        if registry_name in ("SparkALS", "als"):
            workdir = Path(tempfile.mkdtemp(prefix="movierec-bench-spark-"))
            session = _session(master or "local[*]", workdir, executor_memory="4g" if master else None)
            out["spark_master"] = session.sparkContext.master
            model = build(registry_name, task, spark=session)
        else:
            model = build(registry_name, task)
        start = time.perf_counter()
        model.fit(ratings)
        out["fit_seconds"] = time.perf_counter() - start
        out["fit_peak_rss_mb"] = peak_rss_mb()
        if hasattr(model, "kept_"):  # EASE on a catalogue over max_items
            out["kept_movies"] = len(model.kept_)
            out["weights_dtype"] = str(model.B_.dtype)
        # top_n's own peak: VmHWM reset to the current RSS just before it
        out["rss_before_top_n_mb"] = current_rss_mb()
        reset = reset_peak_rss()
        start = time.perf_counter()
        top = model.top_n(n=N)
        out["top_n_seconds"] = time.perf_counter() - start
        out["top_n_users"] = int(top["userId"].nunique())
        out["top_n_peak_rss_mb"] = peak_rss_mb() if reset else None
        out["peak_rss_mb"] = max(out["fit_peak_rss_mb"], peak_rss_mb())
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
    out["peak_rss_total_mb"] = out.get("peak_rss_mb", 0.0) + (out.get("jvm_peak_rss_mb") or 0.0) + (
        out.get("executor_peak_rss_mb") or 0.0)
    return out


def main_job(csv: str, seconds: float) -> dict[str, Any]:
    """Child-process job: run ``movierec recommend`` (task ranking, its default members) on ``csv``; measure its tree."""
    out_dir = Path(tempfile.mkdtemp(prefix="movierec-bench-main-"))
    command = [sys.executable, "-m", "movierec", "recommend", "--ratings", csv,
               "--columns", "user=userId,item=movieId,rating=rating", "--n", str(N), "--out", str(out_dir)]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    try:
        result = run_tree(command, timeout=seconds, cwd=str(out_dir), env=env)
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    result["command"] = " ".join(["movierec", *command[3:5], "ratings.csv", *command[6:10], "--out", "OUT"])
    result["stdout"] = result["stdout"].strip().splitlines()[-30:]
    # its log lines (stderr is not a terminal, so no progress bars) time every stage: tune, fits, top-N
    lines = result["stderr"].strip().splitlines()
    result["log"] = [line for line in lines if line.startswith("movierec: ")][-80:]
    result["stderr"] = [line for line in lines if not line.startswith("movierec: ")][-10:]
    result["peak_rss_total_mb"] = result["tree_peak_rss_mb"]
    return result


# -- results: merged into results/scale.json as each job ends ------------------------------------
def _shape_name(ratings: int, users: int, movies: int) -> str | None:
    """Return the MovieLens release whose shape ``ratings`` x ``users`` x ``movies`` copies, if any."""
    names = ("ml-100k", "ml-1m", "ml-10m", "ml-20m", "ml-25m")
    for name, (r, u, m) in zip(names, MOVIELENS_SHAPES):
        if abs(ratings / r - 1) < 0.01 and abs(users / u - 1) < 0.01 and abs(movies / m - 1) < 0.01:
            return name
    return None


def describe(frame: pd.DataFrame, seconds: float) -> dict[str, Any]:
    """Return the shape of a generated ratings frame: users, movies, activity, popularity."""
    digest = hashlib.blake2b(digest_size=8)
    for column in ("userId", "movieId", "rating"):
        digest.update(np.ascontiguousarray(frame[column].to_numpy()).tobytes())
    per_user = frame.groupby("userId").size()
    per_movie = np.sort(frame["movieId"].value_counts().to_numpy())[::-1]
    ratings, users, movies = len(frame), int(frame["userId"].nunique()), len(per_movie)
    return {
        "ratings": ratings,
        "users": users,
        "movies": movies,
        "like": _shape_name(ratings, users, movies),
        "min_ratings_per_user": int(per_user.min()),
        "median_ratings_per_user": float(per_user.median()),
        "max_ratings_per_user": int(per_user.max()),
        "top_20000_movies_share": float(per_movie[:20_000].sum() / ratings),
        "mean_rating": float(frame["rating"].mean()),
        "generate_seconds": seconds,
        "fingerprint": digest.hexdigest(),  # another generator gives other data of the same shape
    }


def _growth(sizes: Sequence[str], entries: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Return {"small→large": {measure: large / small}} for each pair of consecutive measured sizes."""
    done = [s for s in sizes if s in entries and "error" not in entries[s]]
    out = {}
    for small, large in itertools.pairwise(done):
        ratios = {}
        for key in ("fit_seconds", "top_n_seconds", "wall_seconds", "peak_rss_mb", "top_n_peak_rss_mb",
                    "jvm_peak_rss_mb", "peak_rss_total_mb"):
            a, b = entries[small].get(key), entries[large].get(key)
            if a and b:
                ratios[key] = b / a
        out[f"{small}→{large}"] = ratios
    return out


def load_previous(path: Path) -> dict[str, Any]:
    """Return the results of ``path`` (a scale.json) in the shape this suite merges into; empty if absent or old."""
    empty: dict[str, Any] = {"sizes": {}, "models": {}, "growth": {}}
    try:
        results = json.loads(path.read_text()).get("results", {})
    except (OSError, ValueError):
        return empty
    if not isinstance(results, dict) or not all(isinstance(results.get(k), dict) for k in empty):
        return empty
    return {k: results[k] for k in empty}


class Recorder:
    """Holds the merged results and writes them to ``results/scale.json`` after every job."""

    def __init__(self, quick: bool, notes: list[str]) -> None:
        self.quick, self.notes = quick, notes
        self.started = time.perf_counter()
        self.machine = machine()
        self.command = command_line()
        self.results = load_previous(results_dir(quick) / "scale.json")
        self._load: list[float] = []

    def size(self, size: int, info: dict[str, Any]) -> None:
        """Record the data of ``size``; entries measured on other data of that size (shape or fingerprint) are dropped."""
        key, old = str(size), self.results["sizes"].get(str(size))
        if old and any(old.get(k) != info.get(k) for k in ("ratings", "users", "movies", "fingerprint")):
            for entries in self.results["models"].values():
                entries.pop(key, None)
        self.results["sizes"][key] = info
        self.save()

    def entry(self, name: str, size: int, result: dict[str, Any]) -> None:
        date = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        result = {**result, "date": date, "load_average_at_start": self._load}
        self.results["models"].setdefault(name, {})[str(size)] = result
        self.save()

    def start_job(self) -> None:
        self._load = [round(x, 2) for x in os.getloadavg()]

    def save(self) -> None:
        sizes = sorted(self.results["sizes"], key=int)
        self.results["sizes"] = {s: self.results["sizes"][s] for s in sizes}
        order = {name: position for position, name in enumerate(ENTRIES)}
        self.results["models"] = {name: {s: entries[s] for s in sorted(entries, key=int)} for name, entries in
                                  sorted(self.results["models"].items(), key=lambda kv: order.get(kv[0], len(order)))
                                  if entries}
        self.results["growth"] = {name: g for name, entries in self.results["models"].items()
                                  if (g := _growth(sizes, entries))}
        write_result("scale", self.results, quick=self.quick, command=self.command, started=self.started,
                     machine_info=self.machine, notes=self.notes)


def _notes() -> list[str]:
    return [
        ("Synthetic MovieLens-shaped ratings (benchmarks/synthetic.py, seed 0): users and movies of the "
         "MovieLens release of that size, Zipf-like movie popularity, 16 groups of users with their own taste "
         "in movies (so top-N models beat popularity), >= 20 ratings per user, whole stars from user + movie "
         "effects + a rank-5 interaction + noise."),
        (f"Defaults of every model (random_state=0; the ranking entries with the main job's parameters for "
         f"--task ranking); top {N} unseen movies for every user; one run per (model, size), each in a fresh "
         "process; peak RSS = that process's VmHWM (data included: rss_after_load_mb; top_n's own peak "
         "measured from a reset just before it; memory freed after fit and kept by the process can hide part "
         "of what top_n adds); Spark's JVMs are separate processes (driver JVM, which in "
         "local mode is also the executor; executor JVM on the cluster); total = Python + JVMs. "
         f"Spark driver memory {SPARK_DRIVER_MEMORY}."),
        (f"Main job: `movierec recommend --ratings ratings.csv` (task ranking: EASE tuned, implicit ALS and "
         f"binary FM on a hold-out, the ensemble's full top_n, the report), --n {N}, as a command; its peak "
         "RSS is the largest sum of its process tree's RSS over /proc polls every 0.5 s (Python and the "
         "Spark JVM)."),
        (f"A job running past its timeout ({JOB_TIMEOUT // 60} min up to 10M ratings, proportionally more "
         "above; twice that for the main job) is stopped and recorded as timed out."),
        ("Results are merged across runs (`--sizes`, `--models`); each entry keeps its date and the load average "
        "when it started. The machine is shared: seconds are as measured under that load."),
        ("Standalone cluster: one master and one worker (2 cores, 5g) on this same 2-core machine, executor "
         "memory 4g; it shows the cluster path works and what it costs, not a speed-up."),
        *(f"{name} runs only up to {limit:,} ratings (its cost at 10M is out of this suite's budget)."
          for name, (_, _, limit) in MODELS.items() if limit is not None),
    ]


def _write_data(folder: Path, size: int, frame: pd.DataFrame, with_csv: bool) -> dict[str, str]:
    paths = {"npz": str(folder / f"ratings_{size}.npz")}
    np.savez(paths["npz"], **{c: frame[c].to_numpy() for c in ("userId", "movieId", "rating")})
    if with_csv:
        paths["csv"] = str(folder / f"{size}_{MAIN_JOB_CSV}")
        frame.to_csv(paths["csv"], index=False, float_format="%g")
    return paths


def run(*, quick: bool = False, sizes: Sequence[int] | None = None,
        models: Sequence[str] | None = None) -> tuple[dict[str, Any], list[str]]:
    """Run every selected (entry, size) in its own process, largest sizes last; return (results, notes).

    ``sizes`` defaults to 1M, 10M and 25M ratings (``quick``: 20k and 50k); ``models`` to every
    entry of :data:`ENTRIES` (the models, the main job and the standalone cluster run).
    """
    quiet()
    sizes = tuple(sorted(int(s) for s in sizes)) if sizes else (QUICK_SIZES if quick else SIZES)
    selected = list(ENTRIES if not models else models)
    unknown = [m for m in selected if m not in ENTRIES]
    if unknown or not all(s > 0 for s in sizes):
        raise ValueError(f"scale: unknown entries {unknown} (known: {', '.join(ENTRIES)}) or sizes {sizes}")
    notes = _notes()
    recorder = Recorder(quick, notes)
    cluster_sizes = sizes[:1] if quick else CLUSTER_SIZES
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix="movierec-bench-scale-") as folder:
            start = time.perf_counter()
            frame = generate(size, seed=SEED)
            info = describe(frame, time.perf_counter() - start)
            logger.info("generated %s ratings in %.1f s: %s", f"{size:,}", info["generate_seconds"], info)
            paths = _write_data(Path(folder), size, frame, MAIN_JOB in selected)
            del frame
            recorder.size(size, info)
            for name in selected:
                if name in MODELS:
                    limit = MODELS[name][2]
                    if limit is not None and size > limit and not quick:
                        continue
                    kwargs: dict[str, Any] = {"name": name, "path": paths["npz"]}
                    target = "benchmarks.scale:job"
                elif name == MAIN_JOB:
                    kwargs, target = {"csv": paths["csv"], "seconds": timeout_for(size, name)}, "benchmarks.scale:main_job"
                else:
                    continue
                logger.info("scale: %s at %s ...", name, f"{size:,}")
                recorder.start_job()
                # the main job's own timeout kills its tree; this one only catches a stuck parent
                result = run_isolated(target, timeout=timeout_for(size, name) + 120, **kwargs)
                recorder.entry(name, size, result)
                logger.info("scale: %s at %s: %s", name, f"{size:,}",
                            {k: v for k, v in result.items() if k not in ("traceback", "stdout", "stderr")})
            if CLUSTER in selected and size in cluster_sizes:
                _cluster(recorder, Path(folder), size, paths["npz"])
    return recorder.results, notes


def _cluster(recorder: Recorder, folder: Path, size: int, path: str) -> None:
    """Run SparkALS at ``size`` on a standalone cluster started here; record the result or the failure."""
    recorder.start_job()
    try:
        with standalone_cluster(folder / "cluster", cores=2, memory="5g", timeout=180) as (url, worker_pid):
            logger.info("scale: SparkALS on %s at %s ...", url, f"{size:,}")
            result = run_isolated("benchmarks.scale:job", timeout=timeout_for(size, CLUSTER), name="SparkALS",
                                  path=path, master=url, worker_pid=worker_pid)
    except Exception as err:
        logger.exception("the standalone cluster run failed")
        result = {"error": f"{type(err).__name__}: {err}"}
    recorder.entry(CLUSTER, size, result)
    logger.info("scale: %s at %s: %s", CLUSTER, f"{size:,}", result)


__all__ = ["ENTRIES", "MODELS", "describe", "job", "main_job", "run"]
