"""movierec's one rule for randomness (Scientific Python SPEC 7, as LensKit's ``random`` module).

Every ``random_state`` in movierec -- a model's parameter, a splitter's argument, the main job's
``Settings`` and the command line's ``--seed`` -- is None (fresh entropy from the operating system)
or an int in ``[0, 2**32 - 1]`` (the range every backend accepts: Surprise and numpy's legacy
``RandomState``). Functions that draw (splitters, samplers) also take a ``numpy.random.Generator``,
which they use as it is.

One value feeds several draws through named streams: `rng` with a ``purpose`` gives a
Generator of its own for that purpose (``SeedSequence(seed, spawn_key=(key(purpose),))``), so the
hold-out, the stacking folds and the tuning split are independent instead of reseeding one integer,
and adding a new purpose changes no other draw. Without a purpose it is the plain
``default_rng(seed)`` stream.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np

from movierec.exceptions import InvalidParameterError

__all__ = ["MAX_SEED", "RandomState", "check_random_state", "derive", "rng"]

#: The largest ``random_state`` (Surprise and numpy's legacy RandomState take up to 2**32 - 1).
MAX_SEED = 2**32 - 1
#: What a function that draws accepts; a model's ``random_state`` is ``int | None`` only (it is saved).
RandomState = int | np.random.Generator | None


def check_random_state(value: Any, owner: str, *, generator: bool = False) -> Any:
    """Return ``value`` as movierec's ``random_state`` (None or a Python int), or raise naming ``owner``.

    With ``generator=True`` a ``numpy.random.Generator`` is accepted too and returned as it is.
    Booleans, floats, negative ints and ints above `MAX_SEED` raise InvalidParameterError.
    """
    if value is None or (generator and isinstance(value, np.random.Generator)):
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)) and 0 <= value <= MAX_SEED:
        return int(value)
    # One message everywhere; the functions that also take a Generator say so in their docstrings.
    raise InvalidParameterError(f"{owner}: random_state must be None or an int in [0, {MAX_SEED}], got {value!r}")


def _key(purpose: str) -> int:
    """Return the stable spawn key of ``purpose`` (CRC-32 of its name: the same on every machine)."""
    return zlib.crc32(purpose.encode())


def rng(random_state: RandomState, purpose: str | None = None) -> np.random.Generator:
    """Return the Generator for ``random_state`` and ``purpose``.

    A Generator passes through (its caller chose the stream). None draws fresh entropy. An int gives
    ``default_rng(seed)`` without a purpose, and an independent named stream with one.
    """
    if isinstance(random_state, np.random.Generator):
        return random_state
    seed = check_random_state(random_state, "rng")
    if purpose is None or seed is None:
        return np.random.default_rng(seed)
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_key(purpose),)))


def derive(random_state: int | None, purpose: str) -> int | None:
    """Return the ``random_state`` to hand to another component for ``purpose`` (None stays None).

    A model built or tuned inside another (the main job tuning EASE, say) gets its own integer, drawn
    from the named stream, so its draws do not repeat the caller's.
    """
    seed = check_random_state(random_state, "derive")
    if seed is None:
        return None
    return int(np.random.SeedSequence(seed, spawn_key=(_key(purpose),)).generate_state(1)[0])
