"""Exception hierarchy shared by every part of movierec."""

from __future__ import annotations

__all__ = [
    "MovieRecError",
    "NotFittedError",
    "DataValidationError",
    "DatasetError",
    "ChecksumError",
    "BackendError",
    "MovieRecWarning",
]


class MovieRecError(Exception):
    """Base class of every error movierec raises on purpose."""


class NotFittedError(MovieRecError, ValueError, AttributeError):
    """A method that needs a fitted model was called before ``fit``."""


class DataValidationError(MovieRecError, ValueError):
    """Input data breaks the ratings-frame contract (columns, types, NaN, duplicates)."""


class DatasetError(MovieRecError, ValueError):
    """A dataset is unknown, missing, truncated or corrupt."""


class ChecksumError(DatasetError):
    """A file's SHA-256 differs from the expected value."""


class BackendError(MovieRecError, RuntimeError):
    """A backend (Spark, Surprise, SageMaker) failed; the original error is chained."""


class MovieRecWarning(UserWarning):
    """Something the caller should know about: skipped pairs, unknown users, a version mismatch."""
