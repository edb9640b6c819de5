"""What a request carries, checked: ``n``, flags, the bodies of ``/predict`` and ``/recommendations``,
and ids typed as the model's.

Every check raises `RequestError` with the HTTP status to answer (422 malformed, 413 too
large); nothing a client sends can raise anything else.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from movierec._core.ids import IdIndex
from movierec._core.validation import ITEM, USER

__all__ = ["History", "RequestError", "model_id", "pairs_frame", "parse_flag", "parse_history", "parse_n",
           "parse_pairs", "typed_ids"]

_DIGITS = re.compile(r"[+-]?\d{1,18}")
_INT64 = (-(2**63), 2**63 - 1)


class RequestError(Exception):
    """A request the API refuses; ``status`` is the HTTP status of the answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def parse_n(text: str | None, default: int, largest: int) -> int:
    """Return the ``n`` query parameter: an int in ``[1, largest]`` (``default`` when absent)."""
    if text is None:
        return default
    if not _DIGITS.fullmatch(text.strip()) or not 1 <= int(text) <= largest:
        raise RequestError(422, f"n must be an integer from 1 to {largest}, got {text[:40]!r}")
    return int(text)


def parse_flag(text: str | None, name: str) -> bool:
    """Return a true/false query parameter (``true``/``false``/``1``/``0``, any case; absent is false)."""
    if text is None:
        return False
    value = text.strip().lower()
    if value not in ("true", "false", "1", "0"):
        raise RequestError(422, f"{name} must be true or false, got {text[:40]!r}")
    return value in ("true", "1")


def model_id(raw: str, index: IdIndex) -> Any:
    """Return the id ``raw`` (from a URL) names in ``index``: as an int if the model knows that
    int, else as the string; None when the model knows neither."""
    if _DIGITS.fullmatch(raw) and index.lookup([int(raw)])[0] >= 0:
        return int(raw)
    return raw if index.lookup(np.array([raw], dtype=object))[0] >= 0 else None


def parse_pairs(body: bytes, largest: int) -> list[tuple[Any, Any]]:
    """Return the (userId, movieId) pairs of a ``/predict`` body: a JSON list of objects.

    Ids are JSON integers (within int64) or non-empty strings; other keys of an object are ignored.
    """
    document = _json(body)
    if not isinstance(document, list):
        raise RequestError(422, 'the body must be a JSON list of {"userId": ..., "movieId": ...} objects')
    if len(document) > largest:
        raise RequestError(413, f"{len(document)} pairs in one request; at most {largest} are allowed")
    pairs = []
    for position, entry in enumerate(document):
        if not isinstance(entry, dict) or USER not in entry or ITEM not in entry:
            raise RequestError(422, f"pair {position} must be an object with {USER!r} and {ITEM!r}")
        pairs.append((_check_id(entry[USER], position, USER), _check_id(entry[ITEM], position, ITEM)))
    return pairs


@dataclass(frozen=True)
class History:
    """A checked ``POST /recommendations`` body: a visitor's movies, their ratings when given, ``n``, ``exclude``."""

    movies: list[Any]
    ratings: list[float] | None
    n: int
    exclude: list[Any]


_HISTORY_KEYS = frozenset({"history", "n", "exclude"})


def parse_history(body: bytes, *, largest: int, default_n: int, max_n: int) -> History:
    """Return the ``POST /recommendations`` body: ``{"history": [...], "n": 10, "exclude": [...]}``.

    ``history`` holds 1 to ``largest`` movie ids (JSON integers or non-empty strings), or as many
    ``{"movieId": id, "rating": number}`` objects (``rating`` optional in each, but all or none);
    a movie given twice is refused. ``exclude`` (optional) holds at most ``largest`` ids. Unknown
    keys are refused, so a misspelt ``"exlude"`` is not silently ignored.
    """
    document = _json(body)
    if not isinstance(document, dict) or "history" not in document:
        raise RequestError(422, 'the body must be a JSON object {"history": [movieId, ...], "n": 10, "exclude": [...]}')
    unknown = sorted(set(document) - _HISTORY_KEYS)
    if unknown:
        raise RequestError(422, f"unknown key(s) {', '.join(map(repr, unknown))[:200]}; the body takes "
                                "history, n and exclude")
    history, exclude = document["history"], document.get("exclude", [])
    for name, value in (("history", history), ("exclude", exclude)):
        if not isinstance(value, list):
            raise RequestError(422, f"{name} must be a JSON list, got {_show(value)}")
        if len(value) > largest:
            raise RequestError(413, f"{len(value)} movies in {name}; at most {largest} are allowed")
    if not history:
        raise RequestError(422, "history must name at least one movie")
    n = document.get("n", default_n)
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= max_n:
        raise RequestError(422, f"n must be an integer from 1 to {max_n}, got {_show(n)}")
    movies, ratings = _history_entries(history)
    _no_repeats(movies, "history")
    excluded = [_check_id(value, position, ITEM, "exclude") for position, value in enumerate(exclude)]
    return History(movies, ratings, n, excluded)


def _history_entries(history: list[Any]) -> tuple[list[Any], list[float] | None]:
    if not all(isinstance(entry, dict) for entry in history):
        return [_check_id(value, position, ITEM, "history") for position, value in enumerate(history)], None
    movies, ratings = [], []
    for position, entry in enumerate(history):
        if ITEM not in entry or not set(entry) <= {ITEM, "rating"}:
            raise RequestError(422, f"history {position} must be an object with {ITEM!r} and an optional 'rating'")
        movies.append(_check_id(entry[ITEM], position, ITEM, "history"))
        if "rating" in entry:
            rating = entry["rating"]
            if isinstance(rating, bool) or not isinstance(rating, (int, float)) or not math.isfinite(rating):
                raise RequestError(422, f"history {position}: rating must be a number, got {_show(rating)}")
            ratings.append(float(rating))
    if ratings and len(ratings) != len(movies):
        raise RequestError(422, "history: give a rating for every movie or for none")
    return movies, ratings or None


def _no_repeats(values: list[Any], name: str) -> None:
    seen: set[Any] = set()
    for value in values:
        key = str(value)  # 7 and "7" name one movie of a model with integer ids
        if key in seen:
            raise RequestError(422, f"{name}: movie {_show(value)} is given twice")
        seen.add(key)


def typed_ids(values: Sequence[Any], index: IdIndex) -> tuple[np.ndarray, np.ndarray]:
    """Return ``values`` as an array of the model's id type, and which of them could be converted.

    For a model with integer ids, digit strings become ints and other strings cannot be converted
    (they are cold); for a model with string ids, ints become their decimal text.
    """
    if index.ids.dtype.kind in "iu":
        ok = np.array([isinstance(v, int) or bool(_DIGITS.fullmatch(v)) for v in values], dtype=bool)
        typed = np.array([int(v) if good else 0 for v, good in zip(values, ok)], dtype=np.int64)
        return typed, ok
    typed = np.empty(len(values), dtype=object)
    typed[:] = [str(v) for v in values]
    return typed, np.ones(len(values), dtype=bool)


def pairs_frame(pairs: list[tuple[Any, Any]], users: IdIndex, items: IdIndex) -> tuple[pd.DataFrame, np.ndarray]:
    """Return the pairs whose ids fit the model's id types as a ``userId, movieId`` frame, and
    a mask of which pairs those are (the others are cold: the model cannot know them)."""
    user_ids, item_ids = zip(*pairs)
    (u, u_ok), (i, i_ok) = typed_ids(user_ids, users), typed_ids(item_ids, items)
    ok = u_ok & i_ok
    return pd.DataFrame({USER: u[ok], ITEM: i[ok]}), ok


def _check_id(value: Any, position: int, key: str, where: str = "pair") -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise RequestError(422, f"{where} {position}: {key} must be an integer or a string, got {_show(value)}")
    if isinstance(value, int) and not _INT64[0] <= value <= _INT64[1]:
        raise RequestError(422, f"{where} {position}: {key} {value} is out of the 64-bit range")
    if isinstance(value, str) and not value:
        raise RequestError(422, f"{where} {position}: {key} must not be empty")
    return value


def _show(value: Any) -> str:
    """Return a short JSON rendering of ``value`` for a message (containers by kind: they may nest deeply)."""
    if isinstance(value, list):
        return f"a list of {len(value)}"
    if isinstance(value, dict):
        return "an object"
    return json.dumps(value)[:40]


def _json(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8"), parse_constant=_refuse)
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise RequestError(422, f"the body is not valid JSON ({' '.join(str(err).split())[:200]})") from None


def _refuse(constant: str) -> None:
    raise ValueError(f"{constant} is not a number JSON allows")
