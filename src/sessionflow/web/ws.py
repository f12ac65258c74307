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
from sessionflow.web.events import Client, Message, to_message


def build_ws_router(slot: SystemSlot, status_interval_s: float) -> APIRouter:
    router = APIRouter()

    @router.websocket("/ws/events")
    async def events(ws: WebSocket) -> None:
        await ws.accept()
        client = Client(asyncio.get_running_loop())
        slot.hub.add(client)
        reader = asyncio.create_task(_drain(ws))
        loop = asyncio.get_running_loop()
        try:
            await ws.send_json({"type": "status", "status": status_of(slot)})
            due = loop.time() + status_interval_s
            while not reader.done():
                try:
                    msg = await asyncio.wait_for(client.queue.get(), max(0.0, due - loop.time()))
                    await _send(ws, client, msg)
                except TimeoutError:
                    pass
                if loop.time() >= due:  # also while events stream without a pause
                    await ws.send_json({"type": "status", "status": status_of(slot)})
                    due = loop.time() + status_interval_s
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


async def _send(ws: WebSocket, client: Client, item: Message) -> None:
    if client.dropped:  # tell the page it missed some, so it can reload what it shows
        await ws.send_json({"type": "dropped", "count": client.dropped})
        client.dropped = 0
    msg = to_message(item)  # formatted here, on the server's loop, not the engine's thread
    if msg is not None:
        await ws.send_json(msg)
