"""The main job as one call: fit the task's ensemble on a training part, rank, and measure on a test part.

``movierec recommend`` is this module plus reading the data and writing the files; the benchmarks
call the same functions, so the command, a notebook and a benchmark build the same ensemble::

    >>> import movierec as mr
    >>> fold = mr.official_folds("ml-100k", which=("u1",))[0]
    >>> result = mr.pipeline.run(fold.train, fold.test, mr.pipeline.Settings(n=10))  # doctest: +SKIP
    >>> result.metrics.loc["ensemble", "ndcg@10"]  # doctest: +SKIP

`Settings` holds what the command line's options set; `build_ensemble` gives the
task's unfitted ensemble (members tuned first where the registry says so), `fit_ensemble`
fits it, and `run` also ranks every model and measures them (`Result`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from movierec import registry
from movierec._core import random
from movierec._core.validation import ITEM, USER, check_ratings
from movierec.exceptions import DataValidationError, InvalidParameterError

if TYPE_CHECKING:  # pragma: no cover
    from movierec.base import Recommender
    from movierec.ensemble import FitEvent, WeightedEnsemble

__all__ = [
    "DEFAULT_MODELS",
    "ENSEMBLE",
    "FULL_ENSEMBLE_CELLS",
    "HOLDOUT_USERS",
    "REFERENCE",
    "REFIT_USERS",
    "TASKS",
    "Progress",
    "Result",
    "Settings",
    "build_ensemble",
    "fit_ensemble",
    "run",
]

logger = logging.getLogger(__name__)

#: The members of the main job per task: ranking members are trained for top-N lists.
DEFAULT_MODELS: Mapping[str, tuple[str, ...]] = {"ranking": ("ease", "als", "fm"), "rating": ("als", "svd", "fm")}
TASKS = tuple(DEFAULT_MODELS)
#: The name of the ensemble's row and lists; ``REFERENCE`` is the ranking task's Popularity row.
ENSEMBLE = "ensemble"
REFERENCE = "popularity"
#: The ranking ensemble measures its members on the hold-out ratings of at most this many users (a
#: random sample): nDCG@10 over 20,000 users has a standard error near 0.002, and the cost of the
#: hold-out stage stops growing with the number of users.
HOLDOUT_USERS = 20_000
#: Up to this many users the members are refitted on all the training part after the hold-out; above,
#: the hold-out is under about 2% of the ratings and the hold-out fits are kept (one fit per member).
REFIT_USERS = 5 * HOLDOUT_USERS
#: Above this many users x movies the ranking ensemble defaults to candidates: scoring every unseen
#: movie with every member costs ~50 min at ml-25m's 9.6e9, and candidates=20 ranked as well on the
#: ranking suite (nDCG@10 0.4928 against 0.4927 for full; docs/benchmarks.md).
FULL_ENSEMBLE_CELLS = 1_000_000_000

#: ``progress(stage, done, total, detail)``: called as each stage ("fitting", "top-N") moves.
Progress = Callable[[str, int, int, str], None]


@dataclass(frozen=True)
class Settings:
    """What the main job does: the options of ``movierec recommend``, checked when made.

    Attributes
    ----------
    task : {"ranking", "rating"}
        ``"ranking"``: members trained for top-N lists, weighted by ``1 - nDCG@k`` on a hold-out and
        chosen there by forward selection, with a Popularity reference row. ``"rating"``: members
        predicting ratings, weighted by 1/RMSE on a hold-out.
    models : tuple of str or None
        Registry names of the members; None takes the task's `DEFAULT_MODELS`, without those
        the registry leaves out at the data's size (``ModelSpec.default_max_ratings``).
    weights : {"inverse_error", "stacked"}
        How the members are weighted; ``"stacked"`` (learned from ratings) needs the rating task.
    n, k : int
        Recommendations per user, and the cut-off of the ranking metrics.
    ensemble : {"full", "candidates"} or None
        ``"full"``: every member scores every unseen movie; ``"candidates"``: each member proposes its
        own top ``candidates``. None: by size for ranking (full up to `FULL_ENSEMBLE_CELLS`
        users x movies), candidates for rating.
    candidates : int
        K of the candidates mode (raised to ``max(n, k)`` when smaller).
    recommender : str
        Whose lists `Result.recommendations` holds: ``"ensemble"`` or one of the members.
    random_state : int or None
        The run's randomness (movierec's one rule: None or an int in ``[0, 2**32 - 1]``); each use
        draws its own named stream from it (``movierec._core.random``).
    """

    task: Literal["ranking", "rating"] = "ranking"
    models: tuple[str, ...] | None = None
    weights: Literal["inverse_error", "stacked"] = "inverse_error"
    n: int = 10
    k: int = 10
    ensemble: Literal["full", "candidates"] | None = None
    candidates: int = 20
    recommender: str = ENSEMBLE
    random_state: int | None = 0

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise InvalidParameterError(f"task must be one of {', '.join(TASKS)}, got {self.task!r}")
        if self.models is not None:
            models = tuple(self.models)
            object.__setattr__(self, "models", models)
            unknown = [name for name in models if name not in registry.MODELS]
            if unknown or not models or len(set(models)) != len(models):
                raise InvalidParameterError(f"models must be distinct names among {', '.join(registry.MODELS)}, "
                                            f"got {models!r}")
            wrong = [name for name in models if self.task not in registry.MODELS[name].tasks]
            if wrong:
                offered = [name for name, spec in registry.MODELS.items() if self.task in spec.tasks]
                raise InvalidParameterError(f"models: {', '.join(wrong)} cannot be used for the {self.task} task; "
                                            f"choose among {', '.join(offered)}")
        if self.weights not in ("inverse_error", "stacked"):
            raise InvalidParameterError(f"weights must be inverse_error or stacked, got {self.weights!r}")
        if self.weights == "stacked" and self.task != "rating":
            raise InvalidParameterError("weights: stacked weights are learned from ratings: they need the rating task")
        for name in ("n", "k", "candidates"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidParameterError(f"{name} must be a positive int, got {value!r}")
        if self.ensemble not in (None, "full", "candidates"):
            raise InvalidParameterError(f"ensemble must be full, candidates or None, got {self.ensemble!r}")
        mode = self.ensemble or ("candidates" if self.task == "rating" else None)
        if mode == "candidates" and max(self.n, self.k) > self.candidates:
            raise InvalidParameterError(f"candidates: K={self.candidates} is smaller than n/k ({max(self.n, self.k)}); "
                                        "raise candidates or use ensemble='full'")
        if self.recommender != ENSEMBLE and self.recommender not in self.members:
            raise InvalidParameterError(f"recommender must be {ENSEMBLE} or one of {', '.join(self.members)}, "
                                        f"got {self.recommender!r}")
        object.__setattr__(self, "random_state", random.check_random_state(self.random_state, "Settings"))

    @property
    def members(self) -> tuple[str, ...]:
        """The members asked for: ``models``, else the task's defaults."""
        return self.models if self.models is not None else DEFAULT_MODELS[self.task]

    @property
    def metric(self) -> str:
        """The error the ensemble weighs and chooses by: ``rmse`` or ``ndcg@k``."""
        return "rmse" if self.task == "rating" else f"ndcg@{self.k}"


@dataclass
class Result:
    """What `run` produced.

    Attributes
    ----------
    settings : Settings
    ensemble : WeightedEnsemble
        Fitted; its members are closed when `run` returns (their numpy state stays usable).
    names : list of str
        Every member asked for, in the order of ``ensemble.models``.
    members : dict
        The members the ensemble kept, by name, fitted.
    reference : dict
        The ranking task's Popularity reference (``{"popularity": model}``), empty for rating.
    top : dict
        Each model's ranked lists (``userId, movieId, score, rank``), ``max(n, k)`` deep (deeper
        with `run`'s ``depth``).
    metrics : pandas.DataFrame
        One row per model ([`movierec.metrics.evaluate`][movierec.metrics.evaluate]), indexed by name.
    fit_seconds : dict
        Each member's fit time (hold-out fit plus final fit).
    timings : dict
        Seconds of each stage: ``build`` (tuning included), ``fit``, ``top_n``, ``evaluate``.
    candidates : int or None
        The ensemble's candidates K, None when it scored every unseen movie.
    """

    settings: Settings
    ensemble: WeightedEnsemble
    names: list[str]
    members: dict[str, Recommender]
    reference: dict[str, Recommender]
    top: dict[str, pd.DataFrame]
    metrics: pd.DataFrame
    fit_seconds: dict[str, float]
    timings: dict[str, float] = field(default_factory=dict)
    candidates: int | None = None

    @property
    def recommendations(self) -> pd.DataFrame:
        """The recommender's top ``n`` per user: ``userId, movieId, score, rank``."""
        chosen = self.top[self.settings.recommender]
        return chosen[chosen["rank"] <= self.settings.n].reset_index(drop=True)

    @property
    def models(self) -> dict[str, Recommender]:
        """Every ranked model by name: the reference, the chosen members and the ensemble."""
        return {**self.reference, **self.members, ENSEMBLE: self.ensemble}


def _member_names(settings: Settings, train: pd.DataFrame) -> list[str]:
    """Return the members to build: the given ones, or the task's defaults the data's size allows."""
    if settings.models is not None:
        return list(settings.models)
    names = [name for name in DEFAULT_MODELS[settings.task]
             if registry.MODELS[name].is_default_for(settings.task, len(train))]
    left_out = [name for name in DEFAULT_MODELS[settings.task] if name not in names]
    if left_out:
        logger.info("default members without %s at %s training ratings (docs/cli.md)", ",".join(left_out),
                    f"{len(train):,}")
    return names


def candidates_for(settings: Settings, train: pd.DataFrame) -> int | None:
    """Return the ensemble's ``candidates``: None to score every unseen movie, else K (at least n and k)."""
    mode = settings.ensemble
    if mode is None and settings.task == "rating":
        mode = "candidates"
    if mode is None:  # ranking: by size
        cells = train[USER].nunique() * train[ITEM].nunique()
        mode = "full" if cells <= FULL_ENSEMBLE_CELLS else "candidates"
        logger.info("ensemble mode %s (%s users x movies)", mode, f"{cells:,}")
    return max(settings.candidates, settings.n, settings.k) if mode == "candidates" else None


def build_ensemble(
    train: pd.DataFrame, settings: Settings = Settings(), candidates: int | None = None
) -> tuple[WeightedEnsemble, list[str]]:
    """Return the task's unfitted ensemble and its members' names, in order.

    Ranking: each member's hold-out error is ``1 - nDCG@k`` over at most `HOLDOUT_USERS`
    users, members are chosen on that hold-out (forward selection) and refitted up to
    `REFIT_USERS` users, and members the registry tunes for ranking (EASE's l2) are tuned
    first on a validation split of ``train`` drawn apart from the ensemble's hold-out. Rating: the
    members weighted by 1/RMSE (or stacked weights).
    """
    from movierec.ensemble import WeightedEnsemble

    names = _member_names(settings, train)
    seed = settings.random_state
    members = {name: registry.make_model(name, settings.task, seed=seed) for name in names}
    if settings.task == "rating":
        return WeightedEnsemble(list(members.values()), weights=settings.weights, candidates=candidates,
                                random_state=seed), names
    metric = settings.metric
    for name, model in members.items():
        if settings.task in registry.MODELS[name].tuned_for:
            start = time.perf_counter()
            try:
                # Tuned on a split drawn apart from the ensemble's hold-out, which would favour it otherwise.
                result = model.tune(train, metric=metric, random_state=random.derive(seed, "tuning"), refit=False)
            except DataValidationError as err:  # too few ratings per user for a validation split
                logger.warning("warning: %s kept its default settings: %s", name, " ".join(str(err).split()))
                continue
            logger.info("tuned %s on a validation split of the training part: %s (%s %.4f, %.1f s)", name,
                        result.best_params, metric, result.best_score, time.perf_counter() - start)
    refit = train[USER].nunique() <= REFIT_USERS
    logger.info("hold-out: at most %s users; members %s", f"{HOLDOUT_USERS:,}",
                "refitted on all after it" if refit else f"kept from it (over {REFIT_USERS:,} users)")
    return WeightedEnsemble(list(members.values()), metric=metric, select="forward", candidates=candidates,
                            holdout_users=HOLDOUT_USERS, refit=refit, random_state=seed), names


def fit_ensemble(
    ensemble: WeightedEnsemble, names: Sequence[str], train: pd.DataFrame, *, progress: Progress | None = None,
    users: pd.DataFrame | None = None, items: pd.DataFrame | None = None,
) -> dict[str, float]:
    """Fit ``ensemble`` (hold-out fits, then fits on all); return each member's fit seconds by name.

    ``users`` and ``items`` (``MovieLens.users`` / ``.items``) go to the members that use side data
    (the registry's ``bfm``).
    """
    total = 2 * len(names)
    done = 0

    def on_fit(event: FitEvent) -> None:
        nonlocal done
        done += 1
        name = names[event.position]
        logger.info("fitted %s on %s ratings (%.1f s)", name, f"{event.n_ratings:,}", event.seconds)
        if progress is not None:
            progress("fitting", done, total, f"fitted {name} on {event.n_ratings:,} ratings")

    ensemble.fit(train, callback=on_fit, users=users, items=items)
    return dict(zip(names, (float(s) for s in ensemble.fit_seconds_)))


def chosen_members(names: Sequence[str], ensemble: WeightedEnsemble) -> dict[str, Recommender]:
    """Return the ensemble's fitted members by name (the chosen ones, with ``select="forward"``)."""
    return {names[position]: model for position, model in zip(ensemble.members_, ensemble.models_)}


def close_quietly(ensemble: WeightedEnsemble) -> None:
    """Release what the fitted members hold (a SparkALS's Spark session); never masks the run's own error."""
    try:
        ensemble.close()
    except Exception as err:  # noqa: BLE001
        logger.warning("warning: could not close a member of the ensemble: %s", " ".join(str(err).split()))


def check_something_to_rank(train: pd.DataFrame) -> None:
    """Raise DataValidationError if every user of ``train`` rated all its movies: no list could hold one."""
    movies = train[ITEM].nunique()
    if (train.groupby(USER, sort=False)[ITEM].size() >= movies).all():
        raise DataValidationError(f"every user of the training part rated all of its movies ({movies:,}): there is "
                                  "nothing left to recommend (top-N lists need movies a user has not rated)")


def run(train: pd.DataFrame, test: pd.DataFrame, settings: Settings = Settings(), *,
        progress: Progress | None = None, depth: int | None = None,
        users: pd.DataFrame | None = None, items: pd.DataFrame | None = None) -> Result:
    """Fit the task's ensemble on ``train``, rank every model, and measure them on ``test``.

    The main job of ``movierec recommend``. Returns a `Result` with the fitted ensemble,
    each model's lists, the metrics table and the timings. The members are closed (a SparkALS's
    Spark session stopped) before it returns, on success or failure. ``depth`` ranks the lists
    deeper than ``max(n, k)`` (the report's metric@k curves need 20); the metrics stay at ``k``.
    ``users`` and ``items`` go to the members that use side data (`fit_ensemble`).

    Raises
    ------
    DataValidationError
        If ``train`` or ``test`` breaks the data contract (an empty frame included), or (ranking)
        every user of ``train`` rated all its movies.
    """
    from movierec.metrics import evaluate

    check_ratings(test, name="test")  # train is checked once, by the ensemble's fit
    if settings.task == "ranking":
        check_something_to_rank(train)
    timings: dict[str, float] = {}
    start = time.perf_counter()
    candidates = candidates_for(settings, train)
    ensemble, names = build_ensemble(train, settings, candidates)
    timings["build"] = time.perf_counter() - start
    try:
        start = time.perf_counter()
        fit_seconds = fit_ensemble(ensemble, names, train, progress=progress, users=users, items=items)
        timings["fit"] = time.perf_counter() - start
        members = chosen_members(names, ensemble)
        if settings.recommender not in (ENSEMBLE, *members):
            raise InvalidParameterError(
                f"recommender {settings.recommender}: the ensemble left it out on the hold-out (members chosen: "
                f"{', '.join(members)}); give one of those, or ensemble")
        reference: dict[str, Recommender] = {}
        if settings.task == "ranking":
            from movierec.models.popularity import Popularity

            reference = {REFERENCE: Popularity().fit(train)}
        start = time.perf_counter()
        top = _rank(settings, ensemble, {**reference, **members}, candidates, progress, depth)
        timings["top_n"] = time.perf_counter() - start
        start = time.perf_counter()
        everyone = {**reference, **members, ENSEMBLE: ensemble}
        metrics = evaluate(everyone, test, top=top, k=settings.k, task=settings.task,
                           catalogue=train[ITEM].unique())
        timings["evaluate"] = time.perf_counter() - start
    finally:
        close_quietly(ensemble)
    return Result(settings=settings, ensemble=ensemble, names=list(names), members=members, reference=reference,
                  top=top, metrics=metrics, fit_seconds=fit_seconds, timings=timings, candidates=candidates)


def _rank(settings: Settings, ensemble: WeightedEnsemble, models: dict[str, Recommender], candidates: int | None,
          progress: Progress | None, depth: int | None = None) -> dict[str, pd.DataFrame]:
    """Return every model's and the ensemble's lists, ``max(n, k, depth)`` deep; no member ranks twice."""
    depth = max(settings.n, settings.k, depth or 0)
    members = [name for name in models if name != REFERENCE]
    top, proposed = {}, {}  # proposed: each member's top K, which the candidates ensemble re-ranks
    everyone: dict[str, Any] = {**models, ENSEMBLE: ensemble}
    for done, (name, model) in enumerate(everyone.items(), start=1):
        start = time.perf_counter()
        if name == ENSEMBLE and candidates is not None:
            top[name] = ensemble.rank_proposals([proposed[m] for m in members], n=depth)
        else:
            ranked = model.top_n(n=max(depth, candidates or 0) if name in members else depth)
            # the proposals stay K deep when the lists go deeper, so depth never changes the ensemble's pool
            proposed[name] = ranked if candidates is None else ranked[ranked["rank"] <= candidates]
            top[name] = ranked[ranked["rank"] <= depth].reset_index(drop=True)
        logger.info("top %d of %s for %s users (%.1f s)", depth, name, f"{top[name][USER].nunique():,}",
                    time.perf_counter() - start)
        if progress is not None:
            progress("top-N", done, len(everyone), name)
    return top
