"""The one registry of models: short names for the command line, class names for saved models.

``movierec recommend --models als,svd``, the benchmarks, the docs and model loading all read
[`MODELS`][movierec.registry.MODELS]. A saved model names its class by the registry's class name, and loading resolves
that name here only, so nothing a model folder says is imported (docs/architecture.md, "Trust").

Classes of other packages join in two ways: [`register`][movierec.registry.register] (at run time), or an entry point in
the group ``movierec.models`` of the package's metadata, e.g. in its ``pyproject.toml``::

    [project.entry-points."movierec.models"]
    MyModel = "my_package.models:MyModel"

An entry point's module is imported only when a name asked for is that entry point's name.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from movierec.base import Recommender

__all__ = ["ENTRY_POINT_GROUP", "MODELS", "ModelSpec", "make_model", "model_class", "register", "registered_name"]

#: The entry-point group through which installed packages register Recommender classes.
ENTRY_POINT_GROUP = "movierec.models"


@dataclass(frozen=True)
class ModelSpec:
    """One model the registry knows.

    Attributes
    ----------
    name : str
        The short name the command line and benchmarks use (``"als"``).
    class_name : str
        The class name, as ``movierec`` exports it (``"SparkALS"``).
    module : str
        The module that defines the class; imported on first use.
    extra : str or None
        The ``pip install 'movierec[extra]'`` the model needs, None for the core.
    tasks : mapping
        The tasks the main job can use the model for (``"rating"``: predicting ratings;
        ``"ranking"``: top-N lists), each with the parameters it takes for that task. For example
        SparkALS ranks with ``implicit_prefs=True``. A model without a task is not offered for it.
    summary : str
        One line for ``--help`` and the docs.
    tuned_for : tuple of str
        The tasks for which the main job tunes the model on a validation split of its training part
        before fitting (``model.tune(train, metric=..., random_state=..., refit=False)``, default grid:
        it only sets the chosen values, since the ensemble fits clones).
    default_max_ratings : mapping
        Task -> the most training ratings for which the main job takes the model among its default
        members (for example ``{"ranking": 5_000_000}``); a task not named has no limit. Members named
        with ``--models`` are always kept.
    """

    name: str
    class_name: str
    module: str
    extra: str | None
    tasks: Mapping[str, Mapping[str, Any]]
    summary: str
    tuned_for: tuple[str, ...] = ()
    default_max_ratings: Mapping[str, int] = field(default_factory=dict)

    def is_default_for(self, task: str, ratings: int) -> bool:
        """Whether the main job takes the model among its default ``task`` members for ``ratings`` ratings."""
        return ratings <= self.default_max_ratings.get(task, ratings)

    def load_class(self) -> type[Recommender]:
        """Return the class, importing its module (which may need the extra)."""
        return getattr(importlib.import_module(self.module), self.class_name)


#: SparkALS for top-N: confidence-weighted implicit feedback (Hu, Koren, Volinsky 2008). alpha 0.3
#: (confidence 1.3 to 2.5 on a 1-5 scale) was chosen on validation splits of two training sets,
#: ml-100k u1.base and the ranking suite's 75 %: with EASE it gave the best hold-out nDCG@10 of
#: alpha 0.1, 0.3 and 1 (u1.base: 0.2424 against 0.2407 and 0.2401).
RANKING_ALS = {"implicit_prefs": True, "rank": 20, "reg_param": 0.1, "alpha": 0.3}
#: SageMakerFM for top-N: every rated pair a positive, one sampled unrated pair per positive.
RANKING_FM = {"predictor_type": "binary_classifier", "positive_rating": None, "negatives_per_positive": 1.0}
#: Above this many training ratings the main job's default ranking members leave out the binary FM:
#: its local fit grows faster than the data (~12x per 10x) and is the slowest member's (about 35 min
#: at 25M ratings), and forward selection left it out on ml-100k u1 and on the ranking suite.
RANKING_FM_MAX_RATINGS = 5_000_000
#: MyFMBayes for ratings: the configuration benchmarks/bfm.py chose on u1.base only (rank 16, one
#: prior for all features, side, month and implicit features; 0.884 RMSE on u1 alone, and the stacked
#: ensemble's 0.883 in benchmarks/stacked.py). "auto" takes the side frames and timestamps the data
#: has (MovieLens users and items, or --items), so a ratings file without them fits on ids.
RATING_BFM = {"rank": 16, "grouped": False, "implicit": True, "side_features": "auto", "time_features": "auto"}

#: Every model movierec ships, by short name, in the order the command line lists them.
MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec("baseline", "BiasedBaseline", "movierec.models.baseline", None, {"rating": {}},
                  "global mean plus damped user and movie biases (numpy)"),
        ModelSpec("pop", "Popularity", "movierec.models.popularity", None, {"ranking": {}},
                  "the most-rated movies the user has not seen: the reference for ranking"),
        ModelSpec("ease", "EASE", "movierec.models.ease", None, {"ranking": {}},
                  "closed-form item-item model (Steck 2019) on who rated what", ("ranking",)),
        # Ranking settings chosen on a 10% validation split of ml-100k u1.base (docs/benchmarks.md).
        ModelSpec("als", "SparkALS", "movierec.models.spark_als", "spark",
                  {"rating": {}, "ranking": dict(RANKING_ALS)},
                  "Spark MLlib ALS matrix factorization (implicit feedback for ranking)"),
        ModelSpec("svd", "SurpriseSVD", "movierec.models.surprise_svd", "surprise", {"rating": {}},
                  "scikit-surprise SVD (biased matrix factorization by SGD)"),
        ModelSpec("fm", "SageMakerFM", "movierec.models.sagemaker_fm", "sagemaker",
                  {"rating": {}, "ranking": dict(RANKING_FM)},
                  "SageMaker's Factorization Machines (local backend; a binary classifier on sampled "
                  "negatives for ranking)", default_max_ratings={"ranking": RANKING_FM_MAX_RATINGS}),
        ModelSpec("bfm", "MyFMBayes", "movierec.models.myfm_bayes", "myfm", {"rating": dict(RATING_BFM)},
                  "Bayesian factorization machine by Gibbs sampling (myfm), with the side, month and "
                  "implicit features the data has"),
    )
}

# Loadable classes that are not ensemble members, by class name -> module.
_OTHER_CLASSES = {"WeightedEnsemble": "movierec.ensemble"}
# Classes registered by users (register), by class name.
_EXTRA_CLASSES: dict[str, type] = {}


def model_class(name: str) -> type[Recommender]:
    """Return the class a short name (``"als"``) or a class name (``"SparkALS"``) stands for.

    Raises
    ------
    KeyError
        If the registry knows no such name; nothing is imported for an unknown name.
    """
    if name in MODELS:
        return MODELS[name].load_class()
    for spec in MODELS.values():
        if spec.class_name == name:
            return spec.load_class()
    if name in _OTHER_CLASSES:
        return getattr(importlib.import_module(_OTHER_CLASSES[name]), name)
    if name in _EXTRA_CLASSES:
        return _EXTRA_CLASSES[name]
    entry_points = _entry_points()
    for entry in entry_points:
        if entry.name == name:
            return _checked(entry.load(), f"entry point {name} = {entry.value}")
    known = sorted(
        {s.class_name for s in MODELS.values()}
        | set(_OTHER_CLASSES)
        | set(_EXTRA_CLASSES)
        | set(MODELS)
        | {e.name for e in entry_points}
    )
    raise KeyError(f"no model named {name!r} is registered; known: {known}")


def make_model(name: str, task: str | None = None, *, seed: int | None = None, **params: Any) -> Recommender:
    """Return a new, unfitted model of the registered ``name`` built with ``params``.

    With ``task`` (``"rating"`` or ``"ranking"``), the model's parameters for that task come first
    and ``params`` override them; a model the registry does not offer for the task raises KeyError.
    ``seed`` becomes the ``random_state`` of a model that takes one (BiasedBaseline does not), unless
    ``params`` gives one.
    """
    if task is not None:
        spec = MODELS[name]
        if task not in spec.tasks:
            offered = [n for n, s in MODELS.items() if task in s.tasks]
            raise KeyError(f"{name!r} is not a {task} model; for {task} choose among {offered}")
        params = {**spec.tasks[task], **params}
    model = model_class(name)(**params)
    if seed is not None and "random_state" in model.get_params() and "random_state" not in params:
        model.set_params(random_state=seed)
    return model


def registered_name(cls: type) -> str:
    """Return the class name under which ``cls`` is saved; raise if it is not registered."""
    known = cls.__name__ in _builtin_names() or _EXTRA_CLASSES.get(cls.__name__) is cls
    if known and model_class(cls.__name__) is cls:  # its module is imported already: cls exists
        return cls.__name__
    # Only entry points naming a class of this name are loaded, to compare them with cls.
    for entry in _entry_points():
        if entry.attr == cls.__qualname__ and entry.name not in _builtin_names() and entry.load() is cls:
            return entry.name
    raise KeyError(
        f"{cls.__module__}.{cls.__qualname__} is not registered: call movierec.registry.register({cls.__name__}) "
        "before saving or loading it"
    )


def register(cls: type) -> type:
    """Register a ``Recommender`` subclass of your own so it can be saved and loaded; return it.

    Usable as a class decorator. Its class name must not clash with a movierec model.
    """
    _checked(cls, "register")
    if cls.__name__ in _builtin_names():
        raise ValueError(f"{cls.__name__} is the name of a movierec model; choose another class name")
    _EXTRA_CLASSES[cls.__name__] = cls
    return cls


def _checked(cls: Any, source: str) -> type:
    """Return ``cls`` if it is a Recommender subclass; raise TypeError naming ``source`` if not."""
    from movierec.base import Recommender  # here, not at the top: base imports the registry

    if not (isinstance(cls, type) and issubclass(cls, Recommender)):
        raise TypeError(f"{source}: only Recommender subclasses can be registered, got {cls!r}")
    return cls


def _builtin_names() -> set[str]:
    return {spec.class_name for spec in MODELS.values()} | set(MODELS) | set(_OTHER_CLASSES)


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    """Return the installed ``movierec.models`` entry points that do not shadow a movierec name (none loaded)."""
    return [e for e in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP) if e.name not in _builtin_names()]
