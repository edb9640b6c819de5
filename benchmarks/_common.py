"""What every suite shares: machine and versions, timing, child processes for peak memory, JSON output."""

from __future__ import annotations

import datetime as dt
import importlib
import importlib.metadata
import json
import logging
import math
import multiprocessing
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from movierec.base import Recommender

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "benchmarks" / "results"
QUICK_DIR = RESULTS_DIR / "quick"
# The random_state of every model a suite builds.
SEED = 0

# The accuracy suite's ensemble entries (also read by render, which must not import the suites).
ENSEMBLE3 = "WeightedEnsemble (SVD+ALS+FM)"
ENSEMBLE4 = "WeightedEnsemble (SVD+ALS+FM+MyFMBayes)"
# The ranking suite's rows of the main job's ranking ensemble start with this (one per candidate mode).
RANKING_ENSEMBLE = "WeightedEnsemble ranking (EASE+ALS+FM, forward)"
# The same ensemble recipe with members chosen on the suite's own grids (not the main job's settings).
TUNED_ENSEMBLE = "WeightedEnsemble ranking, grid-tuned members"
# The scale suite's end-to-end entry: `movierec recommend` with its defaults, as a command.
SCALE_MAIN_JOB = "movierec recommend (main job)"

logger = logging.getLogger("benchmarks")

# Distributions whose versions go into every result file (absent ones are left out).
_DISTRIBUTIONS = {
    "movierec": "movierec",
    "numpy": "numpy",
    "pandas": "pandas",
    "scipy": "scipy",
    "pyspark": "pyspark",
    "pyarrow": "pyarrow",
    "surprise": "scikit-surprise",
    "myfm": "myfm",
}


def data_home() -> Path:
    """Return the MovieLens folder: $MOVIEREC_DATA, else ../shared/data next to the repository."""
    return Path(os.environ.get("MOVIEREC_DATA", ROOT.parent / "shared" / "data")).resolve()


def results_dir(quick: bool) -> Path:
    """Return where a suite writes: ``results/`` for real runs, ``results/quick/`` for ``--quick``."""
    return QUICK_DIR if quick else RESULTS_DIR


def memory_total_gb() -> float | None:
    """Return the machine's memory in GiB from /proc/meminfo (None where there is no /proc)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def machine() -> dict[str, Any]:
    """Return the platform, CPU count, memory and the load average when the suite started."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "memory_gb": memory_total_gb(),
    }
    try:
        info["load_average_at_start"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    return info


def java_version() -> str | None:
    """Return the first line of ``java -version`` (Spark's JVM), or None without Java."""
    try:
        out = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = (out.stderr or out.stdout).strip().splitlines()
    return lines[0] if lines else None


def versions() -> dict[str, Any]:
    """Return Python's and the installed libraries' versions (read from metadata: nothing is imported)."""
    found: dict[str, Any] = {"python": platform.python_version()}
    for key, dist in _DISTRIBUTIONS.items():
        try:
            found[key] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    found["java"] = java_version()
    return found


def timed(func: Callable[[], Any], repeats: int = 1) -> tuple[float, list[float], Any]:
    """Return (median seconds, every run's seconds, the last result) of ``repeats`` calls of ``func``."""
    times, result = [], None
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times, result


def mean_sd(values: list[float]) -> dict[str, float]:
    """Return the mean and sample standard deviation (0 for a single value)."""
    values = [float(v) for v in values]
    return {
        "mean": statistics.fmean(values),
        "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
        "n": len(values),
    }


def build(name: str, task: str | None = None, **kwargs: Any) -> Recommender:
    """Return a new model of the registered ``name`` with its defaults and ``random_state=SEED``.

    ``name`` is a registry name, short (``"als"``) or the class name (``"SparkALS"``); with
    ``task`` (``"ranking"`` or ``"rating"``, short names only) the registry's parameters for that
    task come first, as in the main job. ``kwargs`` go to the constructor (e.g. ``spark=`` for
    SparkALS) and override them. A model without a ``random_state`` (BiasedBaseline) gets none.
    Each adapter is imported only when asked for, so a suite's process loads only the libraries
    of the model it runs.
    """
    from movierec import registry

    return registry.make_model(name, task, seed=SEED, **kwargs)


def available(names: Iterable[str]) -> dict[str, type[Recommender]]:
    """Return the registry's class for each of ``names`` whose extra is installed; log and skip the others."""
    from movierec import registry

    found: dict[str, type[Recommender]] = {}
    for name in names:
        try:
            found[name] = registry.model_class(name)
        except ImportError as err:
            logger.warning("%s is not available and is skipped: %s", name, err)
    return found


def close(model: Recommender) -> None:
    """Close ``model`` (an ensemble closes its fitted members). Kept for the scripts that import it."""
    model.close()


def peak_rss_mb() -> float:
    """Return this process's peak resident memory in MiB.

    Read from /proc (VmHWM), not ``ru_maxrss``: Linux carries ``ru_maxrss`` across ``execve``, so a
    spawned child would report the parent's size at fork time whenever that is larger than its own.
    """
    peak = _status_mb("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def reset_peak_rss() -> bool:
    """Reset this process's peak RSS (VmHWM) to its current RSS; return False where Linux does not allow it.

    Writing 5 to /proc/self/clear_refs does it (Linux >= 4.0), so a later :func:`peak_rss_mb`
    gives the peak of what ran in between (e.g. one top_n) rather than of the whole process.
    """
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def current_rss_mb() -> float:
    """Return this process's resident memory now, in MiB (from /proc; the peak where there is none)."""
    rss = _status_mb("VmRSS")
    return rss if rss is not None else peak_rss_mb()


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def descendants(pid: int) -> list[int]:
    """Return the process ids below ``pid`` (Linux /proc; empty elsewhere)."""
    out, stack = [], [pid]
    while stack:
        for child in _children(stack.pop()):
            out.append(child)
            stack.append(child)
    return out


def _status(pid: int | str) -> dict[str, str]:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return {}
    return dict(line.split(":", 1) for line in lines if ":" in line)


def _status_mb(key: str, pid: int | str = "self", status: dict[str, str] | None = None) -> float | None:
    """Return the ``key`` line (e.g. VmHWM, in kB) of /proc/<pid>/status (or of ``status``, already
    read) in MiB, or None if absent."""
    value = (_status(pid) if status is None else status).get(key)
    return int(value.split()[0]) / 1024 if value is not None else None


def jvm_peak_rss_mb(root: int | None = None) -> float | None:
    """Return the largest peak RSS (VmHWM, MiB) of the java processes below ``root`` (default: this one).

    Spark's driver JVM is a child of the Python process that started the session, so its memory is
    not in the Python process's ``ru_maxrss``; read it here before the session stops.
    """
    peaks = []
    for pid in descendants(root or os.getpid()):
        status = _status(pid)
        if status.get("Name", "").strip() == "java" and (peak := _status_mb("VmHWM", status=status)) is not None:
            peaks.append(peak)
    return max(peaks) if peaks else None


def run_tree(command: list[str], *, timeout: float | None = None, interval: float = 0.5,
             **popen: Any) -> dict[str, Any]:
    """Run ``command`` to its end; return its exit code, wall seconds, output and its process tree's memory.

    /proc is polled every ``interval`` seconds for the command and every process below it (a
    Spark driver JVM started by a ``movierec`` command included): ``peak_rss_mb`` is the command's
    own peak (VmHWM), ``jvm_peak_rss_mb`` the largest peak of a java process below it,
    ``tree_peak_rss_mb`` the largest sum of the tree's resident memory at one poll (a sample: a
    spike shorter than ``interval`` can be missed) and ``peak_rss_sum_mb`` the sum of every
    process's own peak (an upper bound of the tree's peak). ``children_maxrss_mb`` is what
    ``getrusage(RUSAGE_CHILDREN)`` reports afterwards: the largest single process of the tree.
    Past ``timeout`` seconds the tree is killed and ``error`` says so. ``popen`` goes to
    :class:`subprocess.Popen` (``cwd``, ``env``).
    """
    import signal
    import tempfile

    peaks: dict[int, tuple[str, float]] = {}
    tree_peak = 0.0
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=err, start_new_session=True, **popen)
        timed_out = False
        while process.poll() is None:
            total = 0.0
            for pid in [process.pid, *descendants(process.pid)]:
                status = _status(pid)
                rss, peak = _status_mb("VmRSS", status=status), _status_mb("VmHWM", status=status)
                if peak is not None:
                    name = status.get("Name", "").strip()
                    peaks[pid] = (name, max(peak, peaks.get(pid, (name, 0.0))[1]))
                total += rss or 0.0
            tree_peak = max(tree_peak, total)
            if timeout is not None and time.perf_counter() - start > timeout:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                timed_out = True
                break
            time.sleep(interval)
        seconds = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    own = peaks.get(process.pid, ("", None))[1]
    jvm = [peak for name, peak in peaks.values() if name == "java"]
    result: dict[str, Any] = {
        "exit_code": process.returncode,
        "wall_seconds": seconds,
        "peak_rss_mb": own,
        "jvm_peak_rss_mb": max(jvm) if jvm else None,
        "tree_peak_rss_mb": tree_peak,
        "peak_rss_sum_mb": sum(peak for _, peak in peaks.values()),
        "children_maxrss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "stdout": stdout,
        "stderr": stderr,
    }
    if timed_out:
        result["error"] = f"timed out after {timeout:.0f} s"
    elif process.returncode != 0:
        result["error"] = f"exit code {process.returncode}: " + (stderr.strip().splitlines() or ["no output"])[-1]
    return result


def _child_main(target: str, kwargs: dict[str, Any], conn) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    warnings.simplefilter("ignore")
    try:
        module, _, name = target.partition(":")
        result = getattr(importlib.import_module(module), name)(**kwargs)
        result = dict(result or {})
        result.setdefault("peak_rss_mb", peak_rss_mb())
        conn.send(("ok", result))
    except BaseException as err:  # noqa: BLE001 - every failure goes to the parent, which carries on
        conn.send(("error", f"{type(err).__name__}: {err}\n{traceback.format_exc()}"))
    finally:
        conn.close()


def run_isolated(target: str, *, timeout: float | None = None, **kwargs: Any) -> dict[str, Any]:
    """Run ``module:function(**kwargs)`` in a fresh (spawned) process and return its dict.

    The child adds ``peak_rss_mb`` (its own peak RSS, VmHWM) unless the function set it, so each
    model's memory is measured alone. A failure or a timeout gives ``{"error": message}`` instead
    of raising, so one broken model does not stop a suite.
    """
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe(duplex=False)
    process = context.Process(target=_child_main, args=(target, kwargs, child), daemon=False)
    start = time.perf_counter()
    process.start()
    child.close()
    try:
        if not parent.poll(timeout):
            process.kill()
            process.join()
            return {"error": f"timed out after {timeout:.0f} s"}
        status, payload = parent.recv()
    except EOFError:
        status, payload = "error", f"the child process died (exit code {process.exitcode})"
    process.join()
    if status == "error":
        logger.error("%s(%s) failed: %s", target, kwargs, payload)
        return {"error": payload.strip().splitlines()[0] if payload else "failed", "traceback": payload}
    payload["wall_seconds"] = time.perf_counter() - start
    return payload


def command_line(argv: list[str] | None = None) -> str:
    """Return the command that reproduces this run, as typed from the repository root."""
    args = sys.argv[1:] if argv is None else argv
    return " ".join(["python -m benchmarks", *map(shlex.quote, args)]).strip()


def machine_paths() -> list[tuple[str, str]]:
    """Return (path, placeholder) pairs for the folders of the machine that ran a suite, longest first.

    Committed results name ``$MOVIEREC_DATA``, ``$TMPDIR``, ``$HOME`` and the repository as ``.``,
    not where they were on that machine.
    """
    pairs = [(str(data_home()), "$MOVIEREC_DATA"), (tempfile.gettempdir(), "$TMPDIR"), (str(ROOT), "."),
             (str(Path.home()), "$HOME")]
    return sorted(((p, name) for p, name in pairs if len(p) > 1), key=lambda pair: -len(pair[0]))


def scrubbed(text: str) -> str:
    """Return ``text`` with the machine's folders replaced by their placeholders (:func:`machine_paths`)."""
    for path, name in machine_paths():
        text = text.replace(path, name)
    return text


def _jsonable(value: Any) -> Any:
    if isinstance(value, str):
        return scrubbed(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if hasattr(value, "to_dict") and callable(value.to_dict):  # pandas frames from tune()
        return _jsonable(value.to_dict(orient="records"))
    return value


def write_result(suite: str, results: dict[str, Any], *, quick: bool, command: str, started: float,
                 machine_info: dict[str, Any] | None = None, notes: list[str] | None = None) -> Path:
    """Write ``<results dir>/<suite>.json`` with the machine, versions, date, command and duration."""
    document = {
        "suite": suite,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": scrubbed(command),
        "quick": quick,
        "duration_seconds": round(time.perf_counter() - started, 1),
        "machine": machine_info or machine(),
        "versions": versions(),
        "notes": [scrubbed(note) for note in notes or []],
        "results": _jsonable(results),
    }
    folder = results_dir(quick)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{suite}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(document, indent=2) + "\n")
    tmp.replace(path)
    logger.info("wrote %s", path.relative_to(ROOT))
    return path


def quiet() -> None:
    """Silence the warnings the suites trigger on purpose (cold-start drops, pyspark on pandas 3)."""
    warnings.simplefilter("ignore")
