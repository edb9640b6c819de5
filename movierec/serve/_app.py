"""The Starlette application: four routes over one loaded model, JSON errors, an optional API key."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from movierec._core.ranking import TOP_N_COLUMNS
from movierec.base import Recommender
from movierec.model_card import json_safe
from movierec.serve._requests import RequestError, model_id, pairs_frame, parse_n, parse_pairs

__all__ = ["Limits", "create_app"]

_OPEN_PATHS = frozenset({"/health"})  # answered without the API key: load balancers probe it


@dataclass(frozen=True)
class Limits:
    """Bounds on what one request may ask.

    Attributes
    ----------
    max_batch : int
        Pairs one ``POST /predict`` may hold; more is answered 413.
    max_body : int
        Bytes of a request body; more is answered 413 before it is parsed.
    max_n : int
        Largest ``n`` of ``/recommendations``; larger is answered 422.
    default_n : int
        ``n`` when the query does not give one.
    """

    max_batch: int = 10_000
    max_body: int = 4 << 20
    max_n: int = 1_000
    default_n: int = 10


def create_app(model: Recommender, *, card: dict[str, Any] | None = None, api_key: str | None = None,
               limits: Limits | None = None) -> Starlette:
    """Return the ASGI app serving the fitted ``model``.

    Parameters
    ----------
    model : Recommender
        A fitted model with the ``users_`` and ``items_`` id indexes (every movierec model has them).
    card : dict, optional
        What ``GET /model`` answers (:func:`movierec.model_card.read_card`); without one, the
        model's class and parameters.
    api_key : str, optional
        When given, every route but ``/health`` needs it, as ``Authorization: Bearer KEY`` or
        ``X-API-Key: KEY``; otherwise 401.
    limits : Limits, optional
        The request bounds (``Limits()`` when not given).
    """
    limits = limits or Limits()
    described = card if card is not None else {"model": json_safe(model)}

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "model": type(model).__name__})

    async def about(request: Request) -> JSONResponse:
        return JSONResponse(described)

    async def recommendations(request: Request) -> JSONResponse:
        user = model_id(request.path_params["user"], model.users_)
        if user is None:
            raise RequestError(404, f"unknown user {request.path_params['user'][:100]!r}: not in the model's data")
        n = parse_n(request.query_params.get("n"), limits.default_n, limits.max_n)
        # Scoring is CPU-bound numpy: a worker thread keeps the event loop answering others.
        top = await run_in_threadpool(model.top_n, [user], n)
        return JSONResponse({"userId": user, "n": n, "recommendations": _records(top, TOP_N_COLUMNS)})

    async def predict(request: Request) -> JSONResponse:
        pairs = parse_pairs(await _body(request, limits.max_body), limits.max_batch)
        if not pairs:
            return JSONResponse({"predictions": []})
        frame, typed = pairs_frame(pairs, model.users_, model.items_)
        scores = np.full(len(pairs), np.nan)
        if typed.any():
            scores[typed] = (await run_in_threadpool(model.predict, frame)).to_numpy(dtype=float)
        return JSONResponse({"predictions": [
            {"userId": u, "movieId": i, "score": float(s) if np.isfinite(s) else None}
            for (u, i), s in zip(pairs, scores)
        ]})

    routes = [
        Route("/health", health, methods=["GET"]),
        Route("/model", about, methods=["GET"]),
        Route("/users/{user}/recommendations", recommendations, methods=["GET"]),
        Route("/predict", predict, methods=["POST"]),
    ]
    handlers = {RequestError: _request_error, HTTPException: _http_error, Exception: _server_error}
    app = Starlette(routes=routes, exception_handlers=handlers)  # type: ignore[arg-type]
    if api_key:
        app.add_middleware(_ApiKey, key=api_key)
    return app


async def _body(request: Request, largest: int) -> bytes:
    """Return the request body, refusing (413) one over ``largest`` bytes before reading past it."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > largest:
        raise RequestError(413, f"the body is {declared} bytes; at most {largest} are allowed")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > largest:
            raise RequestError(413, f"the body is over {largest} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _records(frame: pd.DataFrame, columns: list[str]) -> list[dict[str, Any]]:
    # tolist() gives Python ints, floats and strings, which JSON takes as they are.
    return [dict(zip(columns, row)) for row in zip(*(frame[c].tolist() for c in columns))]


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "status": status}, status_code=status, headers=headers)


async def _request_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestError)
    return _error(exc.status, str(exc))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    # Starlette's own: 404 for an unknown path, 405 (with its Allow header) for a wrong method.
    assert isinstance(exc, HTTPException)
    return _error(exc.status_code, exc.detail, dict(exc.headers or {}))


async def _server_error(request: Request, exc: Exception) -> JSONResponse:
    # The traceback goes to the server's log (uvicorn prints it); the client learns nothing more.
    return _error(500, "internal error")


class _ApiKey:
    """ASGI middleware: every path but :data:`_OPEN_PATHS` needs the key."""

    def __init__(self, app: ASGIApp, key: str) -> None:
        self.app = app
        self.key = key.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] not in _OPEN_PATHS and not self._allowed(scope):
            response = _error(401, "missing or wrong API key", {"WWW-Authenticate": "Bearer"})
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _allowed(self, scope: Scope) -> bool:
        headers = dict(scope.get("headers") or [])
        given = headers.get(b"x-api-key") or headers.get(b"authorization", b"").removeprefix(b"Bearer ")
        return bool(given) and hmac.compare_digest(given, self.key)
