"""Exception hierarchy shared by every part of movierec."""

from __future__ import annotations

__all__ = [
    "BackendError",
    "ChecksumError",
    "DataValidationError",
    "DatasetError",
    "InvalidParameterError",
    "ModelFileError",
    "MovieRecError",
    "MovieRecWarning",
    "NotFittedError",
]


class MovieRecError(Exception):
    """Base class of every error movierec raises on purpose."""


class NotFittedError(MovieRecError, ValueError, AttributeError):
    """A method that needs a fitted model was called before ``fit``."""


class DataValidationError(MovieRecError, ValueError):
    """Input data breaks the ratings-frame contract (columns, types, NaN, duplicates)."""


class InvalidParameterError(MovieRecError, ValueError, TypeError):
    """A hyperparameter (a constructor argument, or an option of tune) is out of range or of the wrong type.

    Raised at the start of ``fit`` (or ``tune``), not by ``__init__``, which only stores its arguments.
    """


class DatasetError(MovieRecError, ValueError):
    """A dataset is unknown, missing, truncated or corrupt."""


class ChecksumError(DatasetError):
    """A file's SHA-256 differs from the expected value."""


class BackendError(MovieRecError, RuntimeError):
    """A backend (Spark, Surprise, SageMaker) failed; the original error is chained."""


class ModelFileError(MovieRecError, ValueError):
    """A saved model folder is incomplete, changed or malformed, or names a class movierec does not know.

    Raised by ``load``, never later: the message names the file and what is wrong with it.
    """


class MovieRecWarning(UserWarning):
    """Something the caller should know about: skipped pairs, unknown users, a version mismatch."""
