"""Who may use the API: a bearer token checked in constant time, and same-origin writes.

The page and its assets are public (they hold no data and no secret); everything
under ``/api`` and ``/ws``, and the API's schema (``/openapi.json``, which names every
route), needs the token when one is set, given either as
``Authorization: Bearer <token>`` (scripts) or as the HttpOnly cookie that
``POST /api/login`` sets (the page, and the WebSocket handshake, which a browser
cannot give headers). Without it: 401, on REST and on the WebSocket handshake.
POSTs and WebSocket handshakes from another origin are refused (403), so a web
page the user happens to visit cannot drive a dashboard on 127.0.0.1; with
``hosts`` set (``serve`` on a loopback address), a request naming any other host
is refused too (400), which defeats DNS rebinding.
"""

from __future__ import annotations

import hmac
import json
import secrets
from http.cookies import SimpleCookie
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

COOKIE = "sessionflow_token"
LOGIN_PATH = "/api/login"
_GUARDED = ("/api/", "/ws/", "/openapi.json", "/docs", "/redoc")


def new_token() -> str:
    return secrets.token_urlsafe(24)


def token_matches(given: str | None, token: str) -> bool:
    """Constant-time comparison (hmac.compare_digest), also when ``given`` is missing."""
    return hmac.compare_digest((given or "").encode(), token.encode())


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


def presented_token(headers: dict[str, str]) -> str | None:
    """The bearer token, else the login cookie, else None."""
    auth = headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    cookie = SimpleCookie()
    try:
        cookie.load(headers.get("cookie", ""))
    except Exception:  # a malformed Cookie header is no token
        return None
    morsel = cookie.get(COOKIE)
    return None if morsel is None else morsel.value


def _host_name(headers: dict[str, str]) -> str:
    """The Host header's name without port: "[::1]:8765" gives "::1"."""
    try:
        return urlsplit("//" + headers.get("host", "")).hostname or ""
    except ValueError:
        return ""


def _cross_origin(headers: dict[str, str]) -> bool:
    origin = headers.get("origin")
    if not origin or origin == "null":
        return origin == "null"
    return urlsplit(origin).netloc.lower() != headers.get("host", "").lower()


class GuardMiddleware:
    """ASGI middleware for both HTTP and WebSocket scopes."""

    def __init__(
        self, app: ASGIApp, token: str | None, hosts: frozenset[str] | None = None
    ) -> None:
        self.app = app
        self.token = token
        self.hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        if self.hosts is not None and _host_name(headers) not in self.hosts:
            await _deny(scope, receive, send, 400, "unknown host")
            return
        if not scope["path"].startswith(_GUARDED):
            await self.app(scope, receive, send)
            return
        writes = kind == "websocket" or scope.get("method") == "POST"
        if writes and _cross_origin(headers):
            await _deny(scope, receive, send, 403, "cross-origin request refused")
            return
        if (
            self.token is not None
            and scope["path"] != LOGIN_PATH
            and not token_matches(presented_token(headers), self.token)
        ):
            await _deny(scope, receive, send, 401, "missing or wrong token")
            return
        await self.app(scope, receive, send)


async def _deny(scope: Scope, receive: Receive, send: Send, status: int, reason: str) -> None:
    body = json.dumps({"error": reason}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return
    await receive()  # websocket.connect
    if "websocket.http.response" in scope.get("extensions", {}):
        headers = headers[2:]  # the server adds content-type/length (duplicates otherwise)
        await send({"type": "websocket.http.response.start", "status": status, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body})
    else:  # a server without the denial-response extension: 403 at the handshake
        await send({"type": "websocket.close", "code": 1008})
