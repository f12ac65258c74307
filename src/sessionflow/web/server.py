"""How the dashboard is served: one uvicorn configuration for ``serve`` and the tests.

The WebSocket implementation is websockets' sans-I/O one (the legacy one is
deprecated); it supports the denial response the token check uses (401 on the
handshake). Frames are not compressed (permessage-deflate): the server compressed every
frame once per viewer, on the loop's thread, which took the engine's CPU with 100 tabs
open; the page's frames are small and local. Access logs hold method, path, query and
status: the token never travels in a URL the page makes, and one a user puts in a query
(``?token=``, refused with 401) has its value replaced by ``[redacted]`` before the line
is written.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Any
from urllib.parse import unquote

import uvicorn
from fastapi import FastAPI

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})  # Host names a loopback bind answers


def is_loopback(host: str) -> bool:
    """127.0.0.1, ::1 or localhost: only this machine can connect."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class DenialNoise(logging.Filter):
    """Drops the ERROR websockets-sansio logs after every WebSocket denial response (our
    401): the client got its answer, nothing failed (fixed upstream by Kludex/uvicorn#3138).
    Our endpoint accepts every connection it lets through, so no real case is hidden."""

    MESSAGE = "ASGI callable returned without completing handshake."

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != self.MESSAGE


SECRET_PARAMS = ("token", "password", "secret")  # a query parameter naming one is redacted
REDACTED = "[redacted]"


def redact_query(target: str) -> str:
    """``target`` (a path with its query) with the values of secret-looking parameters
    replaced; names are compared percent-decoded (``%74oken`` is ``token``)."""
    path, sep, query = target.partition("?")
    if not sep:
        return target
    parts = []
    for part in query.split("&"):
        name, eq, _ = part.partition("=")
        secret = eq and any(word in unquote(name).lower() for word in SECRET_PARAMS)
        parts.append(f"{name}={REDACTED}" if secret else part)
    return f"{path}?{'&'.join(parts)}"


class RedactSecrets(logging.Filter):
    """Rewrites the request target in uvicorn's access lines (``uvicorn.access``) and
    WebSocket lines (``uvicorn.error``) so a token given in a query never reaches a log."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(
            isinstance(a, str) and "?" in a for a in record.args
        ):
            record.args = tuple(redact_query(a) if isinstance(a, str) else a for a in record.args)
        return True


def _add_filter(name: str, kind: type[logging.Filter]) -> None:
    logger = logging.getLogger(name)
    if not any(isinstance(f, kind) for f in logger.filters):
        logger.addFilter(kind())


def uvicorn_config(
    app: FastAPI, host: str, port: int, log_config: dict[str, Any] | None = None
) -> uvicorn.Config:
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        ws="websockets-sansio",
        ws_per_message_deflate=False,  # compressing each frame for each viewer held the GIL
        log_config=log_config,
        server_header=False,
        timeout_graceful_shutdown=3,
    )  # logging is configured now: add the filters after it
    _add_filter("uvicorn.error", DenialNoise)
    _add_filter("uvicorn.error", RedactSecrets)
    _add_filter("uvicorn.access", RedactSecrets)
    return config
