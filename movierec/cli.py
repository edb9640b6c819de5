"""The ``movierec`` command: ``recommend``, ``evaluate``, ``download`` and ``datasets``.

This is the one module of movierec that prints. Exit codes: 0 on success; 2 for bad arguments
(argparse's usage line and message); 1 for a runtime failure, reported as one line
``movierec: error: ...`` on stderr (``--debug`` shows the traceback instead).
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from movierec._version import __version__

__all__ = ["MODELS", "build_parser", "main"]

logger = logging.getLogger("movierec.cli")


def _baseline(seed: int) -> Any:
    from movierec.baseline import BiasedBaseline

    return BiasedBaseline()


def _lazy(class_name: str) -> Callable[[int], Any]:
    def make(seed: int) -> Any:
        import movierec

        return getattr(movierec, class_name)(random_state=seed)

    make.__name__ = class_name
    return make


#: Model names the command accepts, and what each one builds (adapters are imported only when named).
MODELS: dict[str, tuple[str, Callable[[int], Any]]] = {
    "baseline": ("BiasedBaseline", _baseline),
    "als": ("SparkALS", _lazy("SparkALS")),
    "svd": ("SurpriseSVD", _lazy("SurpriseSVD")),
    "fm": ("SageMakerFM", _lazy("SageMakerFM")),
}
ENSEMBLE = "ensemble"
DEFAULT_MODELS = "als,svd,fm"
DEFAULT_CANDIDATES = 20
REPORT_USERS = 3


# -- argument types (an ArgumentTypeError becomes argparse's usage line and exit 2) ------------
def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {text!r}")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be a number strictly between 0 and 1, got {text!r}")
    return value


def _model_list(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError("give at least one model, e.g. als,svd,fm")
    unknown = [name for name in names if name not in MODELS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(MODELS)}")
    if len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"a model is named twice in {text!r}")
    return names


def _fold_list(text: str) -> list[str]:
    """Parse ``u1-u5``, ``u1,u3`` or ``ua,ub`` into fold names."""
    from movierec._datasets._registry import ML100K_FOLDS

    folds: list[str] = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        match = re.fullmatch(r"u(\d)-u(\d)", part)
        if match:
            first, last = int(match.group(1)), int(match.group(2))
            if not 1 <= first <= last <= 5:
                raise argparse.ArgumentTypeError(f"fold range {part!r} must lie within u1-u5")
            folds += [f"u{i}" for i in range(first, last + 1)]
        elif part in ML100K_FOLDS:
            folds.append(part)
        else:
            raise argparse.ArgumentTypeError(
                f"unknown fold {part!r}; use names among {', '.join(ML100K_FOLDS)} or a range such as u1-u5"
            )
    if not folds:
        raise argparse.ArgumentTypeError("give at least one fold, e.g. u1-u5")
    if len(set(folds)) != len(folds):
        raise argparse.ArgumentTypeError(f"a fold is named twice in {text!r}")
    return folds


def _user_list(text: str) -> list[int]:
    try:
        return [int(u) for u in text.split(",") if u.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be comma-separated user ids, got {text!r}") from None


# -- the parser ------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """Return the ``movierec`` argument parser (subcommands recommend, evaluate, download, datasets)."""
    from movierec._datasets._registry import LAYOUTS, ML100K_FOLDS

    datasets = list(LAYOUTS)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--quiet", "-q", action="store_true", help="no progress bars and no info messages")
    common.add_argument("--debug", action="store_true", help="debug logging; show the traceback of a failure")
    data = argparse.ArgumentParser(add_help=False)
    data.add_argument("--data-home", metavar="DIR", type=Path,
                      help="folder holding the MovieLens archives (default: $MOVIEREC_DATA, else ~/.cache/movierec)")

    parser = argparse.ArgumentParser(
        prog="movierec",
        description="Movie recommenders from pluggable models on MovieLens.",
        epilog="Run 'movierec COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"movierec {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    models_help = (f"comma-separated models among {', '.join(MODELS)} "
                   f"(default {DEFAULT_MODELS}): " + ", ".join(f"{k}={v[0]}" for k, v in MODELS.items()))

    rec = commands.add_parser(
        "recommend", parents=[common, data], help="fit models and the ensemble; write recommendations and a report",
        description="Fit the chosen models and their WeightedEnsemble on a training part, print each "
        "one's RMSE and MAE on the test part, and write recommendations.csv and report.html to --out.",
    )
    rec.add_argument("--dataset", default="ml-100k", choices=datasets, help="MovieLens dataset (default ml-100k)")
    rec.add_argument("--models", type=_model_list, default=_model_list(DEFAULT_MODELS), metavar="LIST", help=models_help)
    rec.add_argument("--n", type=_positive_int, default=5, help="recommendations per user (default 5)")
    split = rec.add_mutually_exclusive_group()
    split.add_argument("--fold", choices=ML100K_FOLDS, help="official ml-100k fold (default u1 on ml-100k)")
    split.add_argument("--test-size", type=_fraction, metavar="FRACTION",
                       help="share of each user's ratings held out for test (stratified_split; "
                       "default 0.2 on datasets without official folds)")
    rec.add_argument("--seed", type=_seed, default=0, help="random_state of the models, ensemble and split (default 0)")
    rec.add_argument("--ensemble", choices=("candidates", "full"), default="candidates",
                     help="candidates: each member proposes its own top K; full: every member scores "
                     "every unseen movie (default candidates)")
    rec.add_argument("--candidates", type=_positive_int, default=DEFAULT_CANDIDATES, metavar="K",
                     help=f"K of --ensemble candidates (default {DEFAULT_CANDIDATES})")
    rec.add_argument("--recommender", metavar="MODEL", default=ENSEMBLE,
                     help="whose lists go to recommendations.csv: 'ensemble' (default) or one of --models")
    rec.add_argument("--k", type=_positive_int, default=10, help="cut-off of precision@k and nDCG@k (default 10)")
    rec.add_argument("--users", type=_user_list, metavar="IDS",
                     help=f"users shown in the report (default the first {REPORT_USERS} user ids)")
    rec.add_argument("--out", type=Path, default=Path("movierec-out"), metavar="DIR",
                     help="output folder, created if needed (default ./movierec-out)")
    rec.set_defaults(func=_recommend)

    ev = commands.add_parser(
        "evaluate", parents=[common, data], help="cross-validate the models and the ensemble",
        description="Fit the models and their WeightedEnsemble on each official fold; print mean ± sd "
        "of RMSE and MAE as a Markdown table, and write it as CSV with --out.",
    )
    ev.add_argument("--dataset", default="ml-100k", choices=datasets,
                    help="MovieLens dataset (default ml-100k; only ml-100k has official folds)")
    ev.add_argument("--folds", type=_fold_list, default=_fold_list("u1-u5"), metavar="FOLDS",
                    help="official folds: a range u1-u5 and/or names such as u1,u3 or ua,ub (default u1-u5)")
    ev.add_argument("--models", type=_model_list, default=_model_list(DEFAULT_MODELS), metavar="LIST", help=models_help)
    ev.add_argument("--seed", type=_seed, default=0, help="random_state of the models and ensemble (default 0)")
    ev.add_argument("--out", type=Path, metavar="FILE", help="also write the table as CSV to FILE")
    ev.set_defaults(func=_evaluate)

    dl = commands.add_parser("download", parents=[common, data], help="download a MovieLens archive",
                             description="Download a MovieLens archive into the data folder (verified, atomic).")
    dl.add_argument("name", choices=datasets, metavar="NAME", help=f"one of {', '.join(datasets)}")
    dl.add_argument("--force", action="store_true", help="download again even if the archive is present")
    dl.set_defaults(func=_download)

    ds = commands.add_parser("datasets", parents=[common, data], help="list the known archives and which are present",
                             description="List the MovieLens archives movierec knows and which are in the data folder.")
    ds.set_defaults(func=_datasets)
    return parser


def _check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Checks that involve several arguments; failures exit 2 through ``parser.error``."""
    if args.command == "recommend":
        if args.fold is not None and args.dataset != "ml-100k":
            parser.error(f"argument --fold: only ml-100k has official folds, not {args.dataset}; use --test-size")
        if args.recommender != ENSEMBLE and args.recommender not in args.models:
            parser.error(f"argument --recommender: {args.recommender!r} is not one of ensemble, {', '.join(args.models)}")
        if args.ensemble == "candidates" and max(args.n, args.k) > args.candidates:
            parser.error(f"argument --candidates: K={args.candidates} is smaller than --n/--k "
                         f"({max(args.n, args.k)}); raise --candidates or use --ensemble full")
    elif args.command == "evaluate" and args.dataset != "ml-100k":
        parser.error(f"argument --dataset: only ml-100k has official folds, not {args.dataset}")


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
        text = _one_line(message)
        if text not in seen:
            seen.add(text)
            logger.warning("warning: %s", text)

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = show
        yield


def _one_line(error: object) -> str:
    return " ".join(str(error).split())


def _bar(args: argparse.Namespace, total: int, desc: str) -> Any:
    from tqdm import tqdm

    # disable=None hides the bar when stderr is not a terminal (CI logs, pipes).
    return tqdm(total=total, desc=desc, unit="step", disable=True if args.quiet else None, leave=False,
                file=sys.stderr, dynamic_ncols=True)


class _Tracked:
    """Wraps a member so each of its fits advances a progress bar and adds to its fit time."""

    def __init__(self, name: str, model: Any, bar: Any) -> None:
        self.name, self.model, self.bar = name, model, bar
        self.fit_seconds = 0.0

    def fit(self, ratings: pd.DataFrame) -> _Tracked:
        self.bar.set_postfix_str(f"fitting {self.name} on {len(ratings):,} ratings")
        start = time.perf_counter()
        self.model.fit(ratings)
        self.fit_seconds += time.perf_counter() - start
        logger.info("fitted %s on %d ratings (%.1f s)", self.name, len(ratings), time.perf_counter() - start)
        self.bar.update()
        return self

    def predict(self, pairs: pd.DataFrame) -> pd.Series:
        return self.model.predict(pairs)

    def top_n(self, users: Any = None, n: int = 5, *, exclude_seen: bool = True) -> pd.DataFrame:
        return self.model.top_n(users=users, n=n, exclude_seen=exclude_seen)

    def rmse(self, test: pd.DataFrame, **kwargs: Any) -> float:
        # The ensemble calls rmse only on its hold-out: say so in the warnings it raises.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            value = self.model.rmse(test, **kwargs)
        for warning in caught:
            warnings.warn_explicit(f"ensemble hold-out: {warning.message}", warning.category,
                                   warning.filename, warning.lineno)
        return value


def _build_models(names: Sequence[str], seed: int) -> dict[str, Any]:
    return {name: MODELS[name][1](seed) for name in names}


def _close(models: dict[str, Any]) -> None:
    """Release what members hold (SparkALS's own Spark session); never masks the run's own error."""
    for name, model in models.items():
        close = getattr(model, "close", None)
        if callable(close):
            try:
                close()
            except Exception as err:  # noqa: BLE001
                logger.warning("warning: could not close %s: %s", name, _one_line(err))


def _fit_ensemble(args: argparse.Namespace, models: dict[str, Any], train: pd.DataFrame,
                  candidates: int | None, desc: str) -> tuple[Any, dict[str, float]]:
    """Fit a WeightedEnsemble of ``models`` once (hold-out fits, then refits); return it and fit times."""
    from movierec.ensemble import WeightedEnsemble

    with _bar(args, 2 * len(models), desc) as bar:
        tracked = [_Tracked(name, model, bar) for name, model in models.items()]
        ensemble = WeightedEnsemble(tracked, candidates=candidates, random_state=args.seed)
        ensemble.fit(train)
    # Members are fitted in place; the ensemble keeps working on the unwrapped models.
    ensemble.models = list(models.values())
    return ensemble, {t.name: t.fit_seconds for t in tracked}


def _markdown(frame: pd.DataFrame) -> str:
    """Return ``frame`` (index included) as an aligned Markdown table of strings."""
    header = [frame.index.name or "", *map(str, frame.columns)]
    rows = [[str(index), *map(str, row)] for index, row in zip(frame.index, frame.itertuples(index=False))]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                 for i, (c, w) in enumerate(zip(cells, widths))) + " |"

    rule = "|" + "|".join(("-" * (w + 2)) if i == 0 else ("-" * (w + 1) + ":") for i, w in enumerate(widths)) + "|"
    return "\n".join([line(header), rule, *map(line, rows)])


# -- commands --------------------------------------------------------------------------------
def _load(args: argparse.Namespace) -> tuple[Any, pd.DataFrame, pd.DataFrame, str]:
    """Return (MovieLens, train, test, description of the split)."""
    from movierec.datasets import load_movielens, official_folds
    from movierec.split import stratified_split

    start = time.perf_counter()
    data = load_movielens(args.dataset, data_home=args.data_home)
    if args.test_size is None and args.dataset == "ml-100k":
        fold = official_folds(args.dataset, which=(args.fold or "u1",), data_home=args.data_home, download=False)[0]
        train, test, split = fold.train, fold.test, f"official fold {fold.name}"
    else:
        size = 0.2 if args.test_size is None else args.test_size
        train, test = stratified_split(data.ratings, size, random_state=args.seed)
        split = f"stratified {size:g} of each user's ratings (seed {args.seed})"
    logger.info("loaded %s, %s: %d train / %d test ratings (%.1f s)",
                args.dataset, split, len(train), len(test), time.perf_counter() - start)
    return data, train, test, split


def _recommend(args: argparse.Namespace) -> int:
    from movierec.report import ReportData, evaluate, write_report

    started = time.perf_counter()
    data, train, test, split = _load(args)
    candidates = args.candidates if args.ensemble == "candidates" else None
    models = _build_models(args.models, args.seed)
    try:
        ensemble, fit_seconds = _fit_ensemble(args, models, train, candidates, "fitting")
        everyone: dict[str, Any] = {**models, ENSEMBLE: ensemble}
        depth = max(args.n, args.k)
        top = {}
        with _bar(args, len(everyone), "top-N") as bar:
            for name, model in everyone.items():
                bar.set_postfix_str(name)
                start = time.perf_counter()
                top[name] = model.top_n(n=depth)
                logger.info("top %d of %s for %d users (%.1f s)", depth, name,
                            top[name]["userId"].nunique(), time.perf_counter() - start)
                bar.update()
        metrics = evaluate(everyone, test, top=top, k=args.k)

        args.out.mkdir(parents=True, exist_ok=True)
        chosen = top[args.recommender]
        recommendations = _with_titles(chosen[chosen["rank"] <= args.n], data.items)
        csv_path = args.out / "recommendations.csv"
        recommendations.to_csv(csv_path, index=False, float_format="%.6g")

        titles = data.items.set_index("movieId")["title"]
        shown_users = args.users or sorted(train["userId"].unique())[:REPORT_USERS]
        settings = {
            "ensemble": ("every unseen movie scored by every member" if candidates is None
                         else f"candidates: each member's top {candidates}"),
            "recommendations.csv": f"{args.recommender}'s top {args.n}",
            "seed": str(args.seed),
            "fit seconds": ", ".join(f"{k} {v:.1f}" for k, v in fit_seconds.items()),
        }
        report = ReportData(dataset=args.dataset, split=split, train=train, test=test, titles=titles,
                            members=models, ensemble=ensemble, metrics=metrics, top=top, k=args.k,
                            users=shown_users, settings=settings, seed=args.seed)
        report_path = write_report(report, args.out / "report.html")
    finally:
        _close(models)

    shown = metrics.assign(fit_s=pd.Series(fit_seconds)).rename(
        columns={"rmse": "RMSE", "mae": "MAE", f"ndcg@{args.k}": f"nDCG@{args.k}", "fit_s": "fit s"})
    table = shown.drop(columns="scored").map(lambda v: "" if pd.isna(v) else f"{v:.4f}")
    table["fit s"] = shown["fit s"].map(lambda v: "" if pd.isna(v) else f"{v:.1f}")
    table.index.name = "model"
    print(_markdown(table))
    unscored = len(test) - int(metrics["scored"].min())
    print(f"\n{split}: {len(train):,} train / {len(test):,} test ratings"
          + (f"; {unscored} test pairs with a user or movie unseen in train are left out" if unscored else ""))
    print("ensemble weights 1/RMSE(hold-out): "
          + ", ".join(f"{name} {w:.3f}" for name, w in zip(models, ensemble.weights_)))
    n_users = recommendations["userId"].nunique()
    print(f"wrote {csv_path} ({len(recommendations):,} rows: {n_users} users x top {args.n} of {args.recommender})")
    print(f"wrote {report_path}")
    print(f"done in {time.perf_counter() - started:.0f} s")
    return 0


def _with_titles(top: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    """Return ``top`` as ``userId, movieId, title, score, rank``, sorted by user then rank."""
    frame = top.merge(items[["movieId", "title"]], on="movieId", how="left", validate="many_to_one")
    return frame[["userId", "movieId", "title", "score", "rank"]].sort_values(["userId", "rank"], kind="stable")


def _evaluate(args: argparse.Namespace) -> int:
    from movierec.datasets import official_folds
    from movierec.report import evaluate

    start = time.perf_counter()
    folds = official_folds(args.dataset, which=tuple(args.folds), data_home=args.data_home)
    logger.info("loaded %s folds %s (%.1f s)", args.dataset, ",".join(args.folds), time.perf_counter() - start)
    models = _build_models(args.models, args.seed)
    rows = []
    try:
        for fold in folds:
            ensemble, _ = _fit_ensemble(args, models, fold.train, None, f"fold {fold.name}")
            table = evaluate({**models, ENSEMBLE: ensemble}, fold.test)
            logger.info("fold %s: %s", fold.name,
                        ", ".join(f"{name} RMSE {row.rmse:.4f}" for name, row in table.iterrows()))
            rows.append(table.assign(fold=fold.name).reset_index())
    finally:
        _close(models)
    per_fold = pd.concat(rows, ignore_index=True)
    grouped = per_fold.groupby("model", sort=False)
    summary = pd.DataFrame({
        "rmse_mean": grouped["rmse"].mean(), "rmse_sd": grouped["rmse"].std(ddof=1),
        "mae_mean": grouped["mae"].mean(), "mae_sd": grouped["mae"].std(ddof=1),
        "folds": grouped.size(),
    })
    summary.index.name = "model"

    def pm(mean: float, sd: float) -> str:
        return f"{mean:.4f}" if pd.isna(sd) else f"{mean:.4f} ± {sd:.4f}"

    shown = pd.DataFrame({
        "RMSE": [pm(m, s) for m, s in zip(summary["rmse_mean"], summary["rmse_sd"])],
        "MAE": [pm(m, s) for m, s in zip(summary["mae_mean"], summary["mae_sd"])],
    }, index=summary.index)
    print(_markdown(shown))
    print(f"\n{args.dataset}, folds {','.join(args.folds)}: mean ± sample sd over {len(folds)} folds")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        summary.to_csv(args.out, float_format="%.6f")
        print(f"wrote {args.out}")
    return 0


def _download(args: argparse.Namespace) -> int:
    from movierec.datasets import download_movielens, is_present

    present = is_present(args.name, args.data_home)
    path = download_movielens(args.name, data_home=args.data_home, force=args.force)
    print(f"{args.name}: {path}" + (" (already present)" if present and not args.force else ""))
    return 0


def _datasets(args: argparse.Namespace) -> int:
    from movierec._datasets._registry import archive_url
    from movierec.datasets import data_home, is_present, known_datasets

    home = data_home(args.data_home)
    rows = []
    for name in known_datasets():
        present = is_present(name, args.data_home)
        rows.append({"dataset": name, "present": "yes" if present else "no",
                     "source": "" if present else archive_url(name)})
    table = pd.DataFrame(rows).set_index("dataset")
    print(f"data folder: {home}")
    print(_markdown(table))
    return 0


# -- entry point -----------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``movierec`` command with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _check_args(parser, args)
    _configure_logging(args.quiet, args.debug)
    try:
        with _warnings_once():
            return args.func(args)
    except KeyboardInterrupt:
        print("movierec: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        if args.debug:
            raise
        from movierec.exceptions import MovieRecError

        if isinstance(err, (MovieRecError, ImportError, OSError)):
            message = _one_line(err)
        else:
            message = f"{type(err).__name__}: {_one_line(err)} (run with --debug for the traceback)"
        print(f"movierec: error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
