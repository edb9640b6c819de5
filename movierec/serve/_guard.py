"""The API key check (ASGI middleware) and the JSON error answer every refusal uses."""

from __future__ import annotations

import hmac

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["OPEN_PATHS", "ApiKey", "error_response", "given_key"]

OPEN_PATHS = frozenset({"/health"})  # answered without the API key: load balancers probe it


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """Return the JSON answer ``{"error": message, "status": status}``."""
    return JSONResponse({"error": message, "status": status}, status_code=status, headers=headers)


def given_key(headers: dict[bytes, bytes]) -> bytes | None:
    """Return the key a request's headers carry: ``X-API-Key: KEY`` or ``Authorization: Bearer KEY``.

    The scheme is matched in any case (RFC 7235: ``bearer KEY`` is the same); an ``Authorization``
    without a scheme (a bare ``KEY``), or with another scheme, carries no key.
    """
    if b"x-api-key" in headers:
        return headers[b"x-api-key"]
    scheme, _, token = headers.get(b"authorization", b"").strip().partition(b" ")
    token = token.strip()
    return token if scheme.lower() == b"bearer" and token else None


class ApiKey:
    """ASGI middleware: every path but `OPEN_PATHS` needs the key."""

    def __init__(self, app: ASGIApp, key: str) -> None:
        self.app = app
        self.key = key.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] not in OPEN_PATHS and not self._allowed(scope):
            response = error_response(401, "missing or wrong API key", {"WWW-Authenticate": "Bearer"})
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _allowed(self, scope: Scope) -> bool:
        given = given_key(dict(scope.get("headers") or []))
        return given is not None and hmac.compare_digest(given, self.key)
