"""``/ws/events``: the running system's bar, derived bar and session events, live.

Each connection gets the hub's messages (docs/web.md) and, every
``status_interval_s``, a ``status`` message (mode, state, clock, speed,
session) read through ``SystemManager.status()``, so the page's clock moves even
while nothing else does. Only the server speaks; what the client sends is ignored.
"""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from sessionflow.web.control import SystemSlot, status_of
from sessionflow.web.events import Client


def build_ws_router(slot: SystemSlot, status_interval_s: float) -> APIRouter:
    router = APIRouter()

    @router.websocket("/ws/events")
    async def events(ws: WebSocket) -> None:
        await ws.accept()
        client = Client(asyncio.get_running_loop())
        slot.hub.add(client)
        reader = asyncio.create_task(_drain(ws))
        try:
            await ws.send_json({"type": "status", "status": status_of(slot)})
            while not reader.done():
                try:
                    msg = await asyncio.wait_for(client.queue.get(), status_interval_s)
                except TimeoutError:
                    msg = {"type": "status", "status": status_of(slot)}
                if client.dropped:
                    await ws.send_json({"type": "dropped", "count": client.dropped})
                    client.dropped = 0
                await ws.send_json(msg)
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            slot.hub.remove(client)
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
                await reader

    return router


async def _drain(ws: WebSocket) -> None:
    """Read (and ignore) client messages until it disconnects."""
    while True:
        msg = await ws.receive()
        if msg["type"] == "websocket.disconnect":
            return
