"""The OpenAPI 3.1 description ``GET /openapi.json`` answers: every route, its parameters, bodies and answers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from movierec._version import __version__

if TYPE_CHECKING:  # pragma: no cover
    from movierec.serve._app import Limits

__all__ = ["describe"]

_ID = {"oneOf": [{"type": "integer"}, {"type": "string", "minLength": 1}],
       "description": "an id as the data file has it: an integer or a string"}
_ERROR = {"type": "object", "required": ["error", "status"],
          "properties": {"error": {"type": "string"}, "status": {"type": "integer"}}}


def _errors(*codes: int) -> dict[str, Any]:
    said = {401: "missing or wrong API key", 404: "unknown user, movie or path", 413: "request too large",
            422: "malformed request", 501: "the model cannot answer this"}
    return {str(code): {"description": said[code], "content": {"application/json": {"schema": _ERROR}}}
            for code in (*codes, 401)}


def _ok(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"200": {"description": description, "content": {"application/json": {"schema": schema}}}}


def _movie(titles: bool, **fields: Any) -> dict[str, Any]:
    properties = {"movieId": _ID, **({"title": {"type": ["string", "null"]}} if titles else {}), **fields}
    return {"type": "object", "properties": properties}


def describe(limits: Limits, *, titles: bool = True, keyed: bool = False) -> dict[str, Any]:
    """Return the OpenAPI document of the app's routes under ``limits``: titles shown when the model
    has them, the API key's schemes when the server needs one (``keyed``)."""
    n = {"name": "n", "in": "query", "required": False,
         "schema": {"type": "integer", "minimum": 1, "maximum": limits.max_n, "default": limits.default_n}}
    explain = {"name": "explain", "in": "query", "required": False, "schema": {"type": "boolean", "default": False},
               "description": "add each movie's reasons: the history movies behind it, with their share"}
    reason = _movie(titles, share={"type": "number"})
    reasons = {"reasons": {"type": "array", "items": reason}}
    ranked = {"score": {"type": "number"}, "rank": {"type": "integer"}}
    history_entry = {"oneOf": [_ID, {"type": "object", "required": ["movieId"], "additionalProperties": False,
                                     "properties": {"movieId": _ID, "rating": {"type": "number"}}}]}
    paths = {
        "/health": {"get": {"summary": "Whether the server is up (no API key needed)", "security": [],
                            "responses": _ok("up", {"type": "object"})}},
        "/model": {"get": {"summary": "The model card: class, parameters, data (file name only), validation",
                           "responses": {**_ok("the card", {"type": "object"}), **_errors()}}},
        "/openapi.json": {"get": {"summary": "This description", "responses": {**_ok("OpenAPI", {"type": "object"}),
                                                                               **_errors()}}},
        "/users/{user}/recommendations": {"get": {
            "summary": "A known user's top-n unseen movies",
            "parameters": [{"name": "user", "in": "path", "required": True, "schema": {"type": "string"}}, n, explain],
            "responses": {**_ok("the list", {"type": "object", "properties": {
                "userId": _ID, "n": {"type": "integer"},
                "recommendations": {"type": "array", "items": _movie(titles, userId=_ID, **ranked, **reasons)}}}),
                **_errors(404, 422)}}},
        "/recommendations": {"post": {
            "summary": "A visitor's top-n from the movies they liked (a history), not from a user id",
            "parameters": [explain],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["history"], "additionalProperties": False, "properties": {
                    "history": {"type": "array", "items": history_entry, "minItems": 1,
                                "maxItems": limits.max_history, "uniqueItems": True},
                    "n": n["schema"],
                    "exclude": {"type": "array", "items": _ID, "maxItems": limits.max_history}}}}}},
            "responses": {**_ok("the list; unknown history movies are listed and left out", {
                "type": "object", "properties": {
                    "n": {"type": "integer"}, "unknown": {"type": "array", "items": _ID},
                    "recommendations": {"type": "array", "items": _movie(titles, **ranked, **reasons)}}}),
                **_errors(413, 422)}}},
        "/movies/{movie}/similar": {"get": {
            "summary": "The movies most like one movie, by the model's item similarity",
            "parameters": [{"name": "movie", "in": "path", "required": True, "schema": {"type": "string"}}, n],
            "responses": {**_ok("the list", {"type": "object", "properties": {
                "movieId": _ID, "n": {"type": "integer"},
                "similar": {"type": "array", "items": _movie(titles, similarity={"type": "number"},
                                                             rank={"type": "integer"})}}}),
                **_errors(404, 422, 501)}}},
        "/predict": {"post": {
            "summary": "Scores of (user, movie) pairs; null where the model knows either not",
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "array", "maxItems": limits.max_batch, "items": {
                    "type": "object", "required": ["userId", "movieId"],
                    "properties": {"userId": _ID, "movieId": _ID}}}}}},
            "responses": {**_ok("one score per pair, in order", {"type": "object", "properties": {
                "predictions": {"type": "array", "items": _movie(titles, userId=_ID,
                                                                 score={"type": ["number", "null"]})}}}),
                **_errors(413, 422)}}},
    }
    document = {
        "openapi": "3.1.0",
        "info": {"title": "movierec", "version": __version__,
                 "description": f"A kept movierec model. Bodies up to {limits.max_body:,} bytes."},
        "paths": paths,
    }
    if keyed:
        document["components"] = {"securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}}}
        document["security"] = [{"bearer": []}, {"apiKey": []}]
    else:
        for operations in paths.values():
            for operation in operations.values():
                operation["responses"].pop("401", None)
                operation.pop("security", None)
    return document
