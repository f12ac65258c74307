"""A websocket server on an asyncio loop of its own thread, and a threaded HTTP server
beside it, both on 127.0.0.1: the plumbing of a local Alpaca-protocol server.

Why apart: starting, stopping and reaching the loop is not the protocol. The data
server (``alpaca_server.FakeAlpaca``) and the trading server both stand on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from websockets.asyncio.server import Server, ServerConnection, serve

from sessionflow.feeds.alpaca import NoFrameDebug

WsHandler = Callable[[ServerConnection], Awaitable[None]]


class LocalServers:
    """Ports 0 are chosen by the OS; ``start`` returns the bound (websocket, REST) ports."""

    def __init__(self, name: str, ws_port: int = 0, rest_port: int = 0) -> None:
        self.name = name
        self.ports = (ws_port, rest_port)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._server: Server | None = None
        self._http: ThreadingHTTPServer | None = None

    def _start(
        self, ws_handler: WsHandler, http_handler: type[BaseHTTPRequestHandler]
    ) -> tuple[int, int]:
        self._thread.start()
        self._server = self.run(self._open(ws_handler))
        self._http = ThreadingHTTPServer(("127.0.0.1", self.ports[1]), http_handler)
        self._http.daemon_threads = True
        threading.Thread(
            target=self._http.serve_forever, name=f"{self.name}-rest", daemon=True
        ).start()
        ws_port = next(iter(self._server.sockets)).getsockname()[1]
        return ws_port, self._http.server_address[1]

    async def _open(self, handler: WsHandler) -> Server:
        quiet = NoFrameDebug(logging.getLogger(type(self).__module__), {})
        return await serve(handler, "127.0.0.1", self.ports[0], max_size=2**24, logger=quiet)

    def close(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                self.run(self._server.wait_closed())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)

    def start(self) -> Self:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, coro: Any, timeout: float = 10.0) -> Any:
        """Run a coroutine on the server's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)


__all__ = ["LocalServers"]
