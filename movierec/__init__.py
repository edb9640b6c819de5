"""movierec: movie recommenders from pluggable models, on the MovieLens data.

Light parts are imported here; the Spark, Surprise and SageMaker adapters are imported on first
use, so ``import movierec`` loads none of pyspark, surprise, boto3 or sagemaker.
"""

from __future__ import annotations

import importlib
from typing import Any

from movierec import pipeline
from movierec._core.instances import clone, load_model
from movierec._version import __version__
from movierec.base import ArrayRecommender, Recommender, TuneResult
from movierec.data.movielens import Fold, MovieLens, download_movielens, load_movielens, official_folds
from movierec.data.ratings_file import RatingsFile, load_ratings
from movierec.data.split import random_split, stratified_split, temporal_split
from movierec.ensemble import FitEvent, WeightedEnsemble
from movierec.exceptions import (
    BackendError,
    ChecksumError,
    DatasetError,
    DataValidationError,
    InvalidParameterError,
    ModelFileError,
    MovieRecError,
    MovieRecWarning,
    NotFittedError,
)
from movierec.models.baseline import BiasedBaseline
from movierec.models.ease import EASE
from movierec.models.popularity import Popularity
from movierec.registry import MODELS

# Models whose module needs an optional extra, imported on first use: class name -> module.
_LAZY = {spec.class_name: spec.module for spec in MODELS.values() if spec.extra is not None}

__all__ = [  # noqa: PLE0604 - the lazily imported model names are strings too
    "__version__",
    "Recommender",
    "ArrayRecommender",
    "TuneResult",
    "BiasedBaseline",
    "Popularity",
    "EASE",
    "WeightedEnsemble",
    "FitEvent",
    "clone",
    "load_model",
    "pipeline",
    *_LAZY,
    "MovieLens",
    "Fold",
    "load_movielens",
    "load_ratings",
    "RatingsFile",
    "official_folds",
    "download_movielens",
    "random_split",
    "stratified_split",
    "temporal_split",
    "MovieRecError",
    "NotFittedError",
    "DataValidationError",
    "InvalidParameterError",
    "ModelFileError",
    "DatasetError",
    "ChecksumError",
    "BackendError",
    "MovieRecWarning",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'movierec' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
