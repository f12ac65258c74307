"""``/ws/events``: the running system's bar, derived bar and session events, live.

Each connection gets a ``status`` message at once, then the hub's texts (docs/web.md):
events and, every ``status_interval_s``, the status (mode, state, clock, speed,
session), both made once per loop by the hub's sender, so a connection only writes.
Beyond the hub's cap a handshake is refused (503, with the reason). Only the server
speaks; what the client sends is ignored.
"""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse

from sessionflow.web.control import SystemSlot, status_of
from sessionflow.web.events import Client


def build_ws_router(slot: SystemSlot) -> APIRouter:
    router = APIRouter()

    @router.websocket("/ws/events")
    async def events(ws: WebSocket) -> None:
        client = Client()
        if not slot.hub.add(client):
            reason = f"too many viewers ({slot.hub.max_clients}); close another tab"
            await ws.send_denial_response(JSONResponse({"error": reason}, status_code=503))
            return
        await ws.accept()
        reader = asyncio.create_task(_drain(ws))
        reader.add_done_callback(lambda _: client.ready.set())  # wakes the loop below
        try:
            await ws.send_json({"type": "status", "status": status_of(slot)})
            while not reader.done():
                await client.ready.wait()
                frame = client.take()
                if frame is not None:
                    await ws.send_text(frame)
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
