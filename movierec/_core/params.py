"""One way to check hyperparameters: constraints declared as data next to each class, checked once.

A class lists ``_parameter_constraints = {"n_iter": Int(1), "alpha": Real(0, None), ...}`` and calls
`check_params` at the start of ``fit`` (``ArrayRecommender.fit`` does it for its subclasses).
Every failure is an [`InvalidParameterError`][movierec.exceptions.InvalidParameterError] naming the class, the
argument and the value. The same constraints check ``tune`` grids, one value at a time.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from movierec._core.random import MAX_SEED, check_random_state
from movierec.exceptions import InvalidParameterError

__all__ = [
    "MAX_SEED",
    "AnyOf",
    "Bool",
    "Constraint",
    "Instance",
    "Int",
    "Options",
    "Real",
    "Seed",
    "check_grid",
    "check_params",
    "check_value",
    "seed_sequence",
]



class Constraint:
    """A rule one parameter value must follow; `check` returns the value, normalized."""

    def accepts(self, value: Any) -> bool:  # pragma: no cover - overridden
        raise NotImplementedError

    def describe(self) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    def convert(self, value: Any) -> Any:
        return value


@dataclass(frozen=True)
class Int(Constraint):
    """An int (not a bool) in ``[low, high]``; ``high=None`` is unbounded; ``none`` allows None."""

    low: int | None = None
    high: int | None = None
    none: bool = False

    def accepts(self, value: Any) -> bool:
        if value is None:
            return self.none
        return (
            isinstance(value, numbers.Integral)
            and not isinstance(value, (bool, np.bool_))
            and (self.low is None or value >= self.low)
            and (self.high is None or value <= self.high)
        )

    def convert(self, value: Any) -> Any:
        return None if value is None else int(value)

    def describe(self) -> str:
        if self.low == 1 and self.high is None:
            text = "a positive int"
        elif self.high is None:
            text = "an int" + ("" if self.low is None else f" >= {self.low}")
        else:
            text = f"an int in [{self.low}, {self.high}]"
        return text + (" or None" if self.none else "")


@dataclass(frozen=True)
class Real(Constraint):
    """A finite real number (ints included, bools not) in a range; ``none`` allows None.

    ``low`` and ``high`` are inclusive unless ``open_low`` / ``open_high``.
    """

    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False
    none: bool = False

    def accepts(self, value: Any) -> bool:
        if value is None:
            return self.none
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.open_low else value < self.low):
            return False
        return not (self.high is not None and (value >= self.high if self.open_high else value > self.high))

    def convert(self, value: Any) -> Any:
        return None if value is None else float(value)

    def describe(self) -> str:
        if self.low is None and self.high is None:
            text = "a finite float"
        elif self.high is None:
            text = f"a float {'>' if self.open_low else '>='} {self.low:g}"
        elif self.low is None:
            text = f"a float {'<' if self.open_high else '<='} {self.high:g}"
        else:
            text = (f"a float in {'(' if self.open_low else '['}{self.low:g}, {self.high:g}"
                    f"{')' if self.open_high else ']'}")
        return text + (" or None" if self.none else "")


@dataclass(frozen=True)
class Options(Constraint):
    """One of a fixed set of values."""

    choices: tuple[Any, ...]

    def accepts(self, value: Any) -> bool:
        # isinstance keeps True from passing for 1 and "1" for 1.
        return any(
            isinstance(value, type(c)) and not (isinstance(value, bool) and not isinstance(c, bool)) and value == c
            for c in self.choices
        )

    def describe(self) -> str:
        return f"one of {self.choices}"


@dataclass(frozen=True)
class Bool(Constraint):
    """True or False (numpy's bool too); strings such as ``"False"`` are refused."""

    def accepts(self, value: Any) -> bool:
        return isinstance(value, (bool, np.bool_))

    def convert(self, value: Any) -> Any:
        return bool(value)

    def describe(self) -> str:
        return "True or False"


@dataclass(frozen=True)
class Seed(Constraint):
    """The package's one rule for ``random_state`` (`movierec._core.random`): None, or an int in
    ``[0, 2**32 - 1]``."""

    def accepts(self, value: Any) -> bool:
        try:
            check_random_state(value, "Seed")
        except InvalidParameterError:
            return False
        return True

    def convert(self, value: Any) -> Any:
        return None if value is None else int(value)

    def describe(self) -> str:
        return f"None or an int in [0, {MAX_SEED}]"


@dataclass(frozen=True)
class Instance(Constraint):
    """An instance of ``kinds`` (or None when ``none``); ``what`` names it in messages."""

    kinds: tuple[type, ...] | Callable[[], tuple[type, ...]]
    what: str
    none: bool = False

    def accepts(self, value: Any) -> bool:
        if value is None:
            return self.none
        kinds = self.kinds() if callable(self.kinds) else self.kinds
        return isinstance(value, kinds)

    def describe(self) -> str:
        return self.what + (" or None" if self.none else "")


@dataclass(frozen=True)
class AnyOf(Constraint):
    """A value that passes at least one of ``constraints``."""

    constraints: tuple[Constraint, ...]

    def accepts(self, value: Any) -> bool:
        return any(c.accepts(value) for c in self.constraints)

    def convert(self, value: Any) -> Any:
        return next(c for c in self.constraints if c.accepts(value)).convert(value)

    def describe(self) -> str:
        return " or ".join(c.describe() for c in self.constraints)


def check_value(owner: str, name: str, value: Any, constraint: Constraint) -> Any:
    """Return ``value`` normalized after checking it against ``constraint``.

    Raises
    ------
    InvalidParameterError
        Naming ``owner`` (a class or function), the argument and the value.
    """
    if not constraint.accepts(value):
        raise InvalidParameterError(f"{owner}: {name} must be {constraint.describe()}, got {value!r}")
    return constraint.convert(value)


def check_params(obj: Any, constraints: Mapping[str, Constraint] | None = None) -> dict[str, Any]:
    """Return ``obj``'s constrained parameters, normalized, after checking each against its constraint.

    ``constraints`` defaults to ``type(obj)._parameter_constraints``. The object's attributes are not
    changed: a model keeps the arguments it was given (scikit-learn's convention).
    """
    constraints = type(obj)._parameter_constraints if constraints is None else constraints
    owner = type(obj).__name__
    return {name: check_value(owner, name, getattr(obj, name), rule) for name, rule in constraints.items()}


def check_grid(owner: str, grid: Any, constraints: Mapping[str, Constraint]) -> dict[str, list[Any]]:
    """Return ``grid`` as {parameter: list of checked values}.

    Every key must be one of ``constraints`` and name a non-empty list of values, each of which
    passes its parameter's constraint.
    """
    if not isinstance(grid, Mapping) or not grid:
        raise InvalidParameterError(
            f"{owner}: grid must be a non-empty dict of parameter -> values, got {grid!r}"
        )
    candidates = {}
    for name, values in grid.items():
        if name not in constraints:
            raise InvalidParameterError(
                f"{owner}: grid parameter {name!r} cannot be tuned; tunable: {list(constraints)}"
            )
        listed = not isinstance(values, (str, bytes)) and isinstance(values, Iterable)
        checked = [check_value(owner, name, value, constraints[name]) for value in values] if listed else []
        if not checked:
            raise InvalidParameterError(
                f"{owner}: grid[{name!r}] must be a non-empty list of values, got {values!r}"
            )
        candidates[name] = checked
    return candidates


def seed_sequence(random_state: int | None) -> np.random.SeedSequence:
    """Return the SeedSequence every derived random stream of a model comes from (``spawn`` it)."""
    return np.random.SeedSequence(check_random_state(random_state, "seed_sequence"))
