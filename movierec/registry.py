"""The one registry of models: short names for the command line, class names for saved models.

``movierec recommend --models als,svd``, the benchmarks, the docs and :func:`movierec.load` all read
:data:`MODELS`. A saved model names its class by the registry's class name, and loading resolves
that name here only, so nothing a model folder says is imported (docs/architecture.md, "Trust").
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # pragma: no cover
    from movierec.base import Recommender

__all__ = ["MODELS", "ModelSpec", "make_model", "model_class", "register", "registered_name"]


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
    task : {"rating", "ranking"}
        What the model is trained for: predicting ratings or ranking movies.
    summary : str
        One line for ``--help`` and the docs.
    """

    name: str
    class_name: str
    module: str
    extra: str | None
    task: Literal["rating", "ranking"]
    summary: str

    def load_class(self) -> type[Recommender]:
        """Return the class, importing its module (which may need the extra)."""
        return getattr(importlib.import_module(self.module), self.class_name)


#: Every model movierec ships, by short name, in the order the command line lists them.
MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec("baseline", "BiasedBaseline", "movierec.baseline", None, "rating",
                  "global mean plus damped user and movie biases (numpy)"),
        ModelSpec("pop", "Popularity", "movierec.popularity", None, "ranking",
                  "the most-rated movies the user has not seen: the reference for ranking"),
        ModelSpec("ease", "EASE", "movierec.ease", None, "ranking",
                  "closed-form item-item model (Steck 2019) on who rated what"),
        ModelSpec("als", "SparkALS", "movierec.adapters.spark", "spark", "rating",
                  "Spark MLlib ALS matrix factorization"),
        ModelSpec("svd", "SurpriseSVD", "movierec.adapters.surprise_svd", "surprise", "rating",
                  "scikit-surprise SVD (biased matrix factorization by SGD)"),
        ModelSpec("fm", "SageMakerFM", "movierec.adapters.fm", "sagemaker", "rating",
                  "SageMaker's Factorization Machines (local backend by default)"),
        ModelSpec("bfm", "MyFMBayes", "movierec.adapters.myfm_bayes", "myfm", "rating",
                  "Bayesian factorization machine by Gibbs sampling (myfm)"),
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
    known = sorted({s.class_name for s in MODELS.values()} | set(_OTHER_CLASSES) | set(_EXTRA_CLASSES) | set(MODELS))
    raise KeyError(f"no model named {name!r} is registered; known: {known}")


def make_model(name: str, **params: Any) -> Recommender:
    """Return a new, unfitted model of the registered ``name`` built with ``params``."""
    return model_class(name)(**params)


def registered_name(cls: type) -> str:
    """Return the class name under which ``cls`` is saved; raise if it is not registered."""
    for spec in MODELS.values():
        if spec.class_name == cls.__name__ and spec.module == _public_module(cls):
            return spec.class_name
    if _OTHER_CLASSES.get(cls.__name__) == cls.__module__ or _EXTRA_CLASSES.get(cls.__name__) is cls:
        return cls.__name__
    raise KeyError(
        f"{cls.__module__}.{cls.__qualname__} is not registered: call movierec.registry.register({cls.__name__}) "
        "before saving or loading it"
    )


def register(cls: type) -> type:
    """Register a ``Recommender`` subclass of your own so it can be saved and loaded; return it.

    Usable as a class decorator. Its class name must not clash with a movierec model.
    """
    # Checked by the class's MRO, so the registry imports no model code.
    if not (isinstance(cls, type) and any(f"{c.__module__}.{c.__name__}" == "movierec.base.Recommender" for c in cls.__mro__)):
        raise TypeError(f"only Recommender subclasses can be registered, got {cls!r}")
    if any(spec.class_name == cls.__name__ for spec in MODELS.values()) or cls.__name__ in _OTHER_CLASSES:
        raise ValueError(f"{cls.__name__} is the name of a movierec model; choose another class name")
    _EXTRA_CLASSES[cls.__name__] = cls
    return cls


def _public_module(cls: type) -> str:
    """Return the registry module of ``cls``: the package that re-exports it, or its own module."""
    for spec in MODELS.values():
        if spec.class_name == cls.__name__ and cls.__module__.startswith(spec.module):
            return spec.module
    return cls.__module__
