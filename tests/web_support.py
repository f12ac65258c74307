"""Shared by the web tests: the app over a read-only demo store, and a real uvicorn server."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI

from sessionflow import SystemManager, build_system
from sessionflow.demo import synthetic_bars
from sessionflow.store import open_store
from sessionflow.time_provider import ExchangeCalendar
from sessionflow.web import create_app
from sessionflow.web.server import uvicorn_config
from tests.helpers import demo_settings


@contextmanager
def demo_app(
    path: Path | str, system_over: dict[str, Any] | None = None, token: str | None = None
) -> Iterator[tuple[FastAPI, SystemManager | None]]:
    """The dashboard over the demo store (opened read-only, as ``serve`` does).

    ``path`` is a DuckDB file or a PostgreSQL URL holding a copy of the demo store.

    With ``system_over``, a backtest system is built from those settings (not started).
    """
    store = open_store(path, read_only=True)
    settings = demo_settings(path)
    system = None
    if system_over is not None:
        system = build_system(demo_settings(path, **system_over), store=store)
    try:
        yield create_app(system, store, settings=settings, token=token), system
    finally:
        if system is not None:
            system.stop()
        store.close()


def late_store(path: Path) -> Path:
    """AAA stored 2024-11-20..27, BBB only from 2024-11-25: sessions BBB is not charged for."""
    store = open_store(path)
    cal = ExchangeCalendar()
    try:
        store.upsert_bars(synthetic_bars(cal, ["AAA"], date(2024, 11, 20), date(2024, 11, 27)))
        store.upsert_bars(synthetic_bars(cal, ["BBB"], date(2024, 11, 25), date(2024, 11, 27)))
    finally:
        store.close()
    return path


def ws_messages(ws: Any) -> Iterator[dict[str, Any]]:
    """The messages a test WebSocket receives, one by one (a frame holds one message or
    a JSON array of a send window's messages)."""
    while True:
        data = ws.receive_json()
        yield from data if isinstance(data, list) else [data]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def serving(app: FastAPI, log_config: dict[str, Any] | None = None) -> Iterator[str]:
    """uvicorn on 127.0.0.1:<free port> in a thread; yields the base URL once it is up."""
    port = free_port()
    server = uvicorn.Server(uvicorn_config(app, "127.0.0.1", port, log_config))
    thread = threading.Thread(target=server.run, name="test-uvicorn", daemon=True)
    thread.start()
    try:
        for _ in range(1000):  # readiness: uvicorn sets `started` once it listens
            if server.started or not thread.is_alive():
                break
            thread.join(0.01)
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
