"""The Starlette application: the routes over one loaded model, JSON errors, an optional API key."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

import numpy as np
import pandas as pd
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from movierec._core.validation import ITEM, USER
from movierec.base import Recommender
from movierec.model_card import json_safe
from movierec.serve._guard import ApiKey, error_response
from movierec.serve._openapi import describe
from movierec.serve._requests import (
    History,
    RequestError,
    pairs_frame,
    parse_flag,
    parse_history,
    parse_n,
    parse_pairs,
)
from movierec.serve._scoring import Scorer

__all__ = ["Limits", "create_app"]

# Scoring a catalogue this size or smaller takes well under a millisecond of numpy: done on the
# event loop, since a worker thread's hop costs more than the work. Larger ones go to a thread.
_INLINE_ITEMS = 20_000


@dataclass(frozen=True)
class Limits:
    """Bounds on what one request may ask, and on the server's connections.

    Attributes
    ----------
    max_batch : int
        Pairs one ``POST /predict`` may hold; more is answered 413.
    max_body : int
        Bytes of a request body; more is answered 413 before it is parsed.
    max_n : int
        Largest ``n`` of the recommendation and similar-movie routes; larger is answered 422.
    default_n : int
        ``n`` when the request does not give one.
    kept_n : int
        Length of each known user's top list ranked at load; a request for up to this ``n`` is
        answered from it without scoring.
    max_history : int
        Movies a visitor's ``history`` (and its ``exclude``) may hold in ``POST /recommendations``;
        more is answered 413. A thousand is past any one person's ratings in MovieLens' median
        user and keeps one request's scoring under a few milliseconds.
    read_timeout : float
        Seconds a client has to send a whole request (headers and body) once it starts one or
        connects; a connection still sending after that is closed.
    keep_alive : int
        Seconds an idle keep-alive connection stays open between requests.
    max_connections : int
        Open connections (and requests in flight) before new requests are answered 503.
    backlog : int
        Connections the system queues before the server accepts them.
    """

    max_batch: int = 10_000
    max_body: int = 4 << 20
    max_n: int = 1_000
    default_n: int = 10
    kept_n: int = 100
    max_history: int = 1_000
    read_timeout: float = 5.0
    keep_alive: int = 5
    max_connections: int = 1_000
    backlog: int = 2_048


def create_app(model: Recommender, *, card: dict[str, Any] | None = None, items: pd.DataFrame | None = None,
               api_key: str | None = None, limits: Limits | None = None) -> Starlette:
    """Return the ASGI app serving the fitted ``model``.

    Every known user's top list is ranked here, before the app is returned (`Scorer`).

    Parameters
    ----------
    model : Recommender
        A fitted model with the ``users_`` and ``items_`` id indexes (every movierec model has them).
    card : dict, optional
        What ``GET /model`` answers ([`movierec.model_card.read_card`][movierec.model_card.read_card]), the data file shown
        by its name only; without one, the model's class and parameters.
    items : pandas.DataFrame, optional
        ``movieId, title[, ...]`` ([`movierec.model_card.read_items`][movierec.model_card.read_items]): titles in every answer.
    api_key : str, optional
        When given, every route but ``/health`` needs it, as ``Authorization: Bearer KEY`` (the
        scheme in any case) or ``X-API-Key: KEY``; otherwise 401.
    limits : Limits, optional
        The request bounds (``Limits()`` when not given).
    """
    limits = limits or Limits()
    scorer = Scorer(model, items, kept_n=limits.kept_n)
    described = _public_card(card) if card is not None else {"model": json_safe(model)}
    inline = len(model.items_) <= _INLINE_ITEMS

    async def compute(function: Any, *args: Any) -> Any:
        try:
            return function(*args) if inline else await run_in_threadpool(function, *args)
        except NotImplementedError as err:  # the model cannot score a history, or compare movies
            raise RequestError(501, f"{type(model).__name__} cannot answer this: {str(err)[:300]}") from None

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "model": type(model).__name__})

    async def about(request: Request) -> JSONResponse:
        return JSONResponse(described)

    async def openapi(request: Request) -> JSONResponse:
        return JSONResponse(document)

    async def user_recommendations(request: Request) -> Response:
        raw = request.path_params["user"]
        user = scorer.user_in_path(raw)
        if user is None:
            raise RequestError(404, f"unknown user {raw[:100]!r}: not in the model's data")
        n = parse_n(request.query_params.get("n"), limits.default_n, limits.max_n)
        explain = parse_flag(request.query_params.get("explain"), "explain")
        key = (user, n, explain)
        answer = scorer.answers.get(key)
        if answer is None:
            kept = scorer.kept_list(user, n)
            found = kept if kept is not None else await compute(scorer.rank_user, user, n)
            reasons = await compute(scorer.user_reasons, user, found[0]) if explain else None
            rows = scorer.user_rows(user, *found, reasons)
            answer = JSONResponse({USER: scorer.user_ids[user], "n": n, "recommendations": rows}).body
            if n <= scorer.kept_n:  # the answers of larger n are not kept: they are rare and large
                scorer.answers.put(key, answer)
        return Response(answer, media_type="application/json")

    async def visitor_recommendations(request: Request) -> JSONResponse:
        explain = parse_flag(request.query_params.get("explain"), "explain")
        body = parse_history(await _body(request, limits.max_body), largest=limits.max_history,
                             default_n=limits.default_n, max_n=limits.max_n)
        history, ratings, unknown, excluded = _known_history(scorer, body)
        items, scores = await compute(scorer.visitor, history, ratings, body.n, excluded)
        reasons = await compute(scorer.reasons, history, ratings, items) if explain else None
        rows = [scorer.movie(item, score=score, rank=rank) for rank, (item, score) in enumerate(zip(items, scores), 1)]
        for row, why in zip(rows, reasons or []):
            row["reasons"] = why
        return JSONResponse({"n": body.n, "recommendations": rows, "unknown": unknown})

    async def similar(request: Request) -> JSONResponse:
        raw = request.path_params["movie"]
        item = scorer.movie_in_path(raw)
        if item is None:
            raise RequestError(404, f"unknown movie {raw[:100]!r}: not in the model's data")
        n = parse_n(request.query_params.get("n"), limits.default_n, limits.max_n)
        rows = await compute(scorer.similar, item, n)
        return JSONResponse({**scorer.movie(item), "n": n, "similar": rows})

    async def predict(request: Request) -> JSONResponse:
        pairs = parse_pairs(await _body(request, limits.max_body), limits.max_batch)
        if not pairs:
            return JSONResponse({"predictions": []})
        frame, typed = pairs_frame(pairs, model.users_, model.items_)
        scores = np.full(len(pairs), np.nan)
        if typed.any():
            scores[typed] = (await run_in_threadpool(model.predict, frame)).to_numpy(dtype=float)
        where = scorer.movie_index([i for _, i in pairs]) if scorer.titles is not None else None
        out = []
        for position, ((u, i), s) in enumerate(zip(pairs, scores)):
            row = {USER: u, ITEM: i}
            if where is not None:
                row["title"] = scorer.titles[where[position]] if where[position] >= 0 else None  # type: ignore[index]
            row["score"] = float(s) if np.isfinite(s) else None
            out.append(row)
        return JSONResponse({"predictions": out})

    routes = [
        Route("/health", health, methods=["GET"]),
        Route("/model", about, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/users/{user}/recommendations", user_recommendations, methods=["GET"]),
        Route("/recommendations", visitor_recommendations, methods=["POST"]),
        Route("/movies/{movie}/similar", similar, methods=["GET"]),
        Route("/predict", predict, methods=["POST"]),
    ]
    document = describe(limits, titles=scorer.titles is not None, keyed=bool(api_key))
    handlers = {RequestError: _request_error, HTTPException: _http_error, Exception: _server_error}
    app = Starlette(routes=routes, exception_handlers=handlers)  # type: ignore[arg-type]
    # "/model/" is a 404, not a redirect to the Host header's idea of this server.
    app.router.redirect_slashes = False
    if api_key:
        app.add_middleware(ApiKey, key=api_key)
    app.state.scorer = scorer
    return app


def _known_history(scorer: Scorer, body: History) -> tuple[np.ndarray, np.ndarray | None, list[Any], np.ndarray]:
    """Return the item indexes of the visitor's known movies and their ratings (or None), the unknown
    ids, and the item indexes of the known movies of ``exclude``."""
    where = scorer.movie_index(body.movies)
    known = where >= 0
    if not known.any():
        shown = ", ".join(map(repr, body.movies[:5])) + (" ..." if len(body.movies) > 5 else "")
        raise RequestError(422, f"none of the history's movies is known to the model ({shown[:200]})")
    if len(np.unique(where[known])) != int(known.sum()):
        raise RequestError(422, "history: a movie is given twice (as a number and as text)")
    ratings = None if body.ratings is None else np.asarray(body.ratings, dtype=np.float64)[known]
    excluded = scorer.movie_index(body.exclude)
    unknown = [movie for movie, good in zip(body.movies, known) if not good]
    return where[known], ratings, unknown, excluded[excluded >= 0]


def _public_card(card: dict[str, Any]) -> dict[str, Any]:
    """Return ``card`` with the data file's path cut to its name: the path says how the machine is laid out."""
    shown = dict(card)
    for section, key in (("data", "file"), ("extra", "source")):
        part = shown.get(section)
        if isinstance(part, dict) and isinstance(part.get(key), str) and (os.sep in part[key] or "/" in part[key]):
            shown[section] = {**part, key: PurePath(part[key].replace("\\", "/")).name}
    return shown


async def _body(request: Request, largest: int) -> bytes:
    """Return the request body, refusing (413) one over ``largest`` bytes before reading past it."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > largest:
        raise RequestError(413, f"the body is {declared} bytes; at most {largest} are allowed")
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > largest:
                raise RequestError(413, f"the body is over {largest} bytes")
            chunks.append(chunk)
    except ClientDisconnect:  # the client left (or was too slow): nobody reads the answer
        raise RequestError(400, "the client left before sending the whole body") from None
    return b"".join(chunks)


async def _request_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestError)
    return error_response(exc.status, str(exc))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    # Starlette's own: 404 for an unknown path, 405 (with its Allow header) for a wrong method.
    assert isinstance(exc, HTTPException)
    return error_response(exc.status_code, exc.detail, dict(exc.headers or {}))


async def _server_error(request: Request, exc: Exception) -> JSONResponse:
    # The traceback goes to the server's log (uvicorn writes it); the client learns nothing more.
    return error_response(500, "internal error")
