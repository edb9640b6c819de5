"""Data in and out of the models: MovieLens, your own ratings files, splits, sampled negatives.

One module per job: ``movielens`` (loaders, official folds, checksums, download), ``ratings_file``
(your own CSV, TSV or Parquet), ``split`` (train/test splits and user samples), ``negatives``
(unrated movies drawn for implicit-feedback training) and ``features`` (the side-feature columns
both factorization machines build).
"""

from __future__ import annotations

from movierec.data.movielens import (
    Fold,
    MovieLens,
    data_home,
    download_movielens,
    is_present,
    known_datasets,
    load_movielens,
    official_folds,
)
from movierec.data.negatives import sample_negatives
from movierec.data.ratings_file import RatingsFile, load_ratings
from movierec.data.split import random_split, sample_users, stratified_split, temporal_split

__all__ = [
    "Fold",
    "MovieLens",
    "RatingsFile",
    "data_home",
    "download_movielens",
    "is_present",
    "known_datasets",
    "load_movielens",
    "load_ratings",
    "official_folds",
    "random_split",
    "sample_negatives",
    "sample_users",
    "stratified_split",
    "temporal_split",
]
