"""Fan-out of a running system's events to WebSocket clients, without ever slowing it.

The hub is one batch consumer of the system (``SystemManager.on_batch``); it runs on
the coordinator thread and only hands each event to every client's queue on the
server's event loop; the WebSocket turns it into JSON there, when it sends it, so
the engine's thread does no formatting and a lost message costs nothing. Events
are immutable, so handing them to another thread is safe. A client that falls behind
loses messages (counted and announced as ``{"type": "dropped"}``), because a browser
tab must never apply backpressure to a backtest or a live feed. It also keeps the
filled minutes per session and symbol, which the per-session report shows.
"""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict
from datetime import date
from typing import Any

from sessionflow.events import (
    BarSliceEvent,
    BatchEvent,
    DerivedSliceEvent,
    QuoteEvent,
    SessionEndEvent,
    SessionStartEvent,
    TickEvent,
)
from sessionflow.store import BarBatch

MAX_PENDING = 256  # messages per client before it starts losing them
Message = BatchEvent | dict[str, Any]  # an event, or a ready message (status)


class Client:
    """One WebSocket connection's queue; ``dropped`` counts what it lost."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.queue: asyncio.Queue[Message] = asyncio.Queue(MAX_PENDING)
        self.dropped = 0

    def offer(self, message: Message) -> None:
        """On the loop's thread: queue ``message`` or count it lost."""
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            self.dropped += 1


class EventHub:
    """One per app; attached to each system the app runs."""

    def __init__(self) -> None:
        self._clients: set[Client] = set()
        self._lock = threading.Lock()
        self.filled: dict[tuple[date, str], list[int]] = defaultdict(list)
        self._session: date | None = None

    def add(self, client: Client) -> None:
        with self._lock:
            self._clients.add(client)

    def remove(self, client: Client) -> None:
        with self._lock:
            self._clients.discard(client)

    def reset(self) -> None:
        """A new system starts: forget the previous one's fills."""
        with self._lock:
            self.filled.clear()
            self._session = None

    def __call__(self, ev: BatchEvent) -> None:
        """The batch consumer (coordinator thread): record fills, then fan out."""
        if isinstance(ev, SessionStartEvent):
            self._session = ev.session
        elif isinstance(ev, BarSliceEvent) and ev.filled and self._session is not None:
            with self._lock:
                for sym, ts in zip(ev.bars.symbol.tolist(), ev.bars.ts_us.tolist(), strict=True):
                    self.filled[(self._session, str(sym))].append(int(ts))
        if isinstance(ev, (QuoteEvent, TickEvent)):
            return  # not streamed
        with self._lock:
            clients = list(self._clients)
        for c in clients:
            try:
                c.loop.call_soon_threadsafe(c.offer, ev)
            except RuntimeError:  # the server's loop has closed
                self.remove(c)

    def broadcast(self, message: dict[str, Any]) -> None:
        """From any thread: a message to every client (status after a control action)."""
        with self._lock:
            clients = list(self._clients)
        for c in clients:
            try:
                c.loop.call_soon_threadsafe(c.offer, message)
            except RuntimeError:
                self.remove(c)


def _bars(batch: BarBatch) -> list[dict[str, Any]]:
    cols = (batch.symbol, batch.ts_us, batch.open, batch.high, batch.low, batch.close)
    return [
        {"symbol": str(s), "time": int(t) // 1_000_000, "open": o, "high": h, "low": lo,
         "close": c, "volume": v}
        for (s, t, o, h, lo, c), v in zip(
            zip(*(col.tolist() for col in cols), strict=True), batch.volume.tolist(), strict=True
        )
    ]  # fmt: skip


def to_message(ev: Message) -> dict[str, Any] | None:
    """The WebSocket form of one event (docs/web.md); quotes and ticks are not streamed."""
    if isinstance(ev, dict):
        return ev
    at = ev.time.isoformat()
    if isinstance(ev, BarSliceEvent):
        return {"type": "bars", "at": at, "filled": ev.filled, "bars": _bars(ev.bars)}
    if isinstance(ev, DerivedSliceEvent):
        return {
            "type": "derived",
            "at": at,
            "interval": ev.interval,
            "minutes": ev.minutes,
            "revised": ev.revised,
            "bars": _bars(ev.bars),
        }
    if isinstance(ev, SessionStartEvent):
        return {"type": "session_start", "at": at, "session": ev.session.isoformat()}
    if isinstance(ev, SessionEndEvent):
        return {
            "type": "session_end",
            "at": at,
            "session": ev.session.isoformat(),
            "timer_expired": ev.timer_expired,
        }
    return None
