"""``python -m benchmarks [--suite accuracy,ranking,speed,scale,history] [--quick] [--dataset ml-1m]``: run suites, then render.

Each suite writes ``benchmarks/results/<suite>.json`` (``--quick``: ``benchmarks/results/quick/``,
tiny versions for checking the harness) and ``docs/benchmarks.md`` is regenerated from every
result file present (``--quick``: ``benchmarks/results/quick/benchmarks.md``). A failing suite is
logged and the others still run; the exit status is then 1.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import time

from benchmarks import SUITES
from benchmarks._common import RESULTS_DIR, ROOT, command_line, machine, results_dir, write_result

logger = logging.getLogger("benchmarks")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--suite",
        default=",".join(SUITES),
        help=f"comma-separated suites among {', '.join(SUITES)} (default: all)",
    )
    parser.add_argument("--quick", action="store_true", help="tiny versions, written to results/quick/")
    parser.add_argument("--no-render", action="store_true", help="do not regenerate the markdown page")
    parser.add_argument("--sizes", help="scale suite only: comma-separated numbers of ratings, e.g. 1000000,10000000 "
                        "(default 1M, 10M, 25M); results merge into the existing scale.json")
    parser.add_argument("--models", help="scale suite only: comma-separated entries to run (default all), e.g. "
                        "'EASE,SparkALS implicit'")
    parser.add_argument("--dataset", help="history suite only: the MovieLens archive to run on (default ml-100k), "
                        "any name the loader knows, e.g. ml-1m")
    args = parser.parse_args(argv)
    suites = [s.strip() for s in args.suite.split(",") if s.strip()]
    unknown = [s for s in suites if s not in SUITES]
    if unknown or not suites:
        parser.error(f"--suite must name suites among {', '.join(SUITES)}, got {args.suite!r}")
    args.suites = suites
    args.scale_options = {}
    args.history_options = {}
    if args.dataset:
        from movierec.data.movielens import known_datasets

        if suites != ["history"]:
            parser.error("--dataset goes with --suite history alone")
        if args.dataset not in known_datasets():
            parser.error(f"--dataset must be one of {', '.join(known_datasets())}, got {args.dataset!r}")
        args.history_options = {"dataset": args.dataset}
    if args.sizes or args.models:
        if suites != ["scale"]:
            parser.error("--sizes and --models go with --suite scale alone")
        try:
            sizes = [int(float(s)) for s in (args.sizes or "").split(",") if s.strip()]
        except ValueError:
            parser.error(f"--sizes must be comma-separated numbers of ratings, got {args.sizes!r}")
        if any(s <= 0 for s in sizes):
            parser.error(f"--sizes must be positive, got {args.sizes!r}")
        models = [m.strip() for m in (args.models or "").split(",") if m.strip()]
        from benchmarks.scale import ENTRIES

        if unknown := [m for m in models if m not in ENTRIES]:
            parser.error(f"--models: unknown {', '.join(unknown)}; choose among {', '.join(ENTRIES)}")
        args.scale_options = {k: v for k, v in (("sizes", sizes), ("models", models)) if v}
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    for noisy in ("py4j", "pyspark"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    failed = []
    total = time.perf_counter()
    for suite in args.suites:
        started = time.perf_counter()
        machine_info = machine()
        options = args.scale_options if suite == "scale" else args.history_options if suite == "history" else {}
        command = command_line(["--suite", suite, *(["--quick"] if args.quick else []),
                                *(["--sizes", args.sizes] if "sizes" in options else []),
                                *(["--models", args.models] if "models" in options else []),
                                *(["--dataset", args.dataset] if "dataset" in options else [])])
        logger.info("suite %s: starting (%s)", suite, command)
        try:
            results, notes = importlib.import_module(f"benchmarks.{suite}").run(quick=args.quick, **options)
        except Exception:
            logger.exception("suite %s failed", suite)
            failed.append(suite)
            continue
        write_result(_result_name(suite, options), results, quick=args.quick, command=command, started=started,
                     machine_info=machine_info, notes=notes)
        logger.info("suite %s: done in %.0f s", suite, time.perf_counter() - started)
        if not args.no_render:
            _render(args.quick)
    logger.info("all suites done in %.0f s%s", time.perf_counter() - total,
                f"; failed: {', '.join(failed)}" if failed else "")
    return 1 if failed else 0


def _result_name(suite: str, options: dict) -> str:
    """Return the result file's stem: the suite, or ``history-<dataset>`` for the history suite off ml-100k."""
    dataset = options.get("dataset")
    return f"{suite}-{dataset}" if suite == "history" and dataset and dataset != "ml-100k" else suite


def _render(quick: bool) -> None:
    from benchmarks import render

    folder = results_dir(quick)
    output = folder / "benchmarks.md" if quick else ROOT / "docs" / "benchmarks.md"
    render.write(folder, output)
    logger.info("rendered %s from %s", output.relative_to(ROOT), folder.relative_to(ROOT) if folder != RESULTS_DIR
                else "benchmarks/results")


if __name__ == "__main__":
    sys.exit(main())
