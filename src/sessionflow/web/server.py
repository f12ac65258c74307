"""How the dashboard is served: one uvicorn configuration for ``serve`` and the tests.

The WebSocket implementation is websockets' sans-I/O one (the legacy one is
deprecated); it supports the denial response the token check uses (401 on the
handshake). Access logs hold method, path and status only: the token never
travels in a URL, so it cannot reach them.
"""

from __future__ import annotations

import ipaddress
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


def uvicorn_config(
    app: FastAPI, host: str, port: int, log_config: dict[str, Any] | None = None
) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        ws="websockets-sansio",
        log_config=log_config,
        server_header=False,
        timeout_graceful_shutdown=3,
    )
