"""SparkALS's parameter constraints, their Spark names, block sizing and Spark error wrapping."""

from __future__ import annotations

import contextlib
import math
import numbers
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from movierec.exceptions import BackendError, DataValidationError

__all__ = ["PARAMS", "TUNABLE", "als_blocks", "backend_errors", "check_param", "spark_name"]

_SEED_RANGE = (-(2**63), 2**63 - 1)


def _positive_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)) and value >= 1


def _non_negative(value: Any) -> bool:
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, (bool, np.bool_))
        and math.isfinite(value)
        and value >= 0
    )


def _is_bool(value: Any) -> bool:
    return isinstance(value, (bool, np.bool_))


def _seed(value: Any) -> bool:
    return value is None or (
        isinstance(value, numbers.Integral)
        and not isinstance(value, (bool, np.bool_))
        and _SEED_RANGE[0] <= value <= _SEED_RANGE[1]
    )


def _same(value: Any) -> Any:
    return value


# name -> (check, what the check wants, cast to a plain Python value, Spark's Param name or None)
PARAMS: dict[str, tuple[Callable[[Any], bool], str, Callable[[Any], Any], str | None]] = {
    "rank": (_positive_int, "a positive int", int, "rank"),
    "max_iter": (_positive_int, "a positive int", int, "maxIter"),
    "reg_param": (_non_negative, "a finite float >= 0", float, "regParam"),
    "implicit_prefs": (_is_bool, "a bool", bool, "implicitPrefs"),
    "alpha": (_non_negative, "a finite float >= 0", float, "alpha"),
    "nonnegative": (_is_bool, "a bool", bool, "nonnegative"),
    "cold_start_strategy": (lambda v: v in ("drop", "nan"), "'drop' or 'nan'", _same, None),
    "random_state": (_seed, "None or a 64-bit int", lambda v: None if v is None else int(v), None),
}
#: Parameters a tune() grid may vary: those Spark's ALS has a Param for.
TUNABLE = tuple(name for name, spec in PARAMS.items() if spec[3] is not None)

# Spark's ALS splits users and movies into 10 blocks whatever the data size; on data that fits
# one machine most of that is task overhead (fits ran 3-4x faster with 2 blocks on ml-100k).
# The count follows the data only, never the cores, so a seed gives the same model everywhere.
RATINGS_PER_BLOCK = 500_000
MIN_BLOCKS, MAX_BLOCKS = 2, 10


def check_param(name: str, value: Any) -> Any:
    """Return ``value`` as a plain Python value after checking it suits parameter ``name``."""
    check, wanted, cast, _ = PARAMS[name]
    if not check(value):
        raise DataValidationError(f"{name} must be {wanted}, got {value!r}")
    return cast(value)


def spark_name(name: str) -> str:
    """Return the name of Spark's ALS Param for our parameter ``name``."""
    return PARAMS[name][3]


def als_blocks(n_ratings: int) -> int:
    """Return the user (and movie) block count for ALS on ``n_ratings`` ratings."""
    return int(min(MAX_BLOCKS, max(MIN_BLOCKS, math.ceil(n_ratings / RATINGS_PER_BLOCK))))


@contextlib.contextmanager
def backend_errors(action: str) -> Iterator[None]:
    """Re-raise Spark and py4j failures inside the block as BackendError, the original chained."""
    from py4j.protocol import Py4JError
    from pyspark.errors import PySparkException

    try:
        yield
    except (Py4JError, PySparkException) as err:
        first_line = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise BackendError(f"Spark failed to {action}: {first_line}") from err
