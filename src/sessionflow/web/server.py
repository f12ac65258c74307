"""How the dashboard is served: one uvicorn configuration for ``serve`` and the tests.

The WebSocket implementation is websockets' sans-I/O one (the legacy one is
deprecated); it supports the denial response the token check uses (401 on the
handshake). Access logs hold method, path and status only: the token never
travels in a URL, so it cannot reach them.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

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


def uvicorn_config(
    app: FastAPI, host: str, port: int, log_config: dict[str, Any] | None = None
) -> uvicorn.Config:
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        ws="websockets-sansio",
        log_config=log_config,
        server_header=False,
        timeout_graceful_shutdown=3,
    )  # logging is configured now: add the filter after it
    errors = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, DenialNoise) for f in errors.filters):
        errors.addFilter(DenialNoise())
    return config
