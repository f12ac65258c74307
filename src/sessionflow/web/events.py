"""Fan-out of a running system's events to WebSocket clients, without ever slowing it.

The hub is one batch consumer of the system (``SystemManager.on_batch``); on the
coordinator thread it only appends each event to one inbox per server loop and wakes
that loop at most once per send window, whatever the number of viewers (a wake-up per
event and viewer cost 30 s instead of 1.1 s of run time with 300 tabs). On the loop, one
sender per loop (``Fanout``) gathers a window's events, turns them into messages once
(bars of consecutive minutes merged into one message per kind), encodes each once, and
hands the texts to every client's bounded queue; each connection writes what it has as
one frame (one message, or a JSON array of a window's messages).
When a window holds more bars than a viewer can use (a replay at full speed), they become
one ``dropped`` notice counting the events left out, and the page reloads from REST. A
client that falls behind loses its oldest texts (counted, announced as ``dropped``): a
browser tab never applies backpressure to a backtest or a live feed. Connections beyond
``max_clients`` are refused with the reason. The hub also keeps the filled minutes per
session and symbol, which the per-session report shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections import defaultdict, deque
from collections.abc import Callable
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

MAX_PENDING = 256  # texts per client before it loses the oldest
MAX_CLIENTS = 256  # connections per app; more are refused with the reason
SEND_WINDOW_S = 0.5  # a sender gathers events this long, then fans them out once
MAX_WINDOW_BARS = 2000  # bars in one window beyond which they become a `dropped` notice
Message = BatchEvent | dict[str, Any]  # an event, or a ready message (status)


class Client:
    """One WebSocket connection's texts to send; ``dropped`` counts what it lost."""

    def __init__(self) -> None:
        self.pending: deque[str] = deque()
        self.ready = asyncio.Event()
        self.dropped = 0

    def offer(self, text: str) -> None:
        """On the loop's thread: queue ``text``, losing the oldest when full."""
        if len(self.pending) >= MAX_PENDING:
            self.pending.popleft()
            self.dropped += 1
        self.pending.append(text)
        self.ready.set()

    def take(self) -> str | None:
        """What to send now as ONE frame (a send per wake, however many messages): the
        message, or a JSON array of them, a ``dropped`` notice first if this client lost
        any; None if there is nothing."""
        out = [json.dumps({"type": "dropped", "count": self.dropped})] if self.dropped else []
        self.dropped = 0
        out.extend(self.pending)
        self.pending.clear()
        self.ready.clear()
        if len(out) <= 1:
            return out[0] if out else None
        return "[" + ",".join(out) + "]"


class Fanout:
    """One server loop's inbox (filled from any thread) and its sender task."""

    def __init__(self, loop: asyncio.AbstractEventLoop, status: Callable[[], dict[str, Any]],
                 status_interval_s: float) -> None:  # fmt: skip
        self.loop = loop
        self.clients: set[Client] = set()
        self.dropped_windows = 0  # windows whose bars became a `dropped` notice
        self._inbox: deque[Message] = deque()
        self._lock = threading.Lock()
        self._scheduled = False
        self._wake = asyncio.Event()
        self._status = status
        self._tasks = [
            loop.create_task(self._send_loop()),
            loop.create_task(self._status_loop(status_interval_s)),
        ]

    def put(self, item: Message) -> None:
        """From any thread; wakes the loop once per window, not once per event."""
        self._inbox.append(item)
        with self._lock:
            if self._scheduled:
                return
            self._scheduled = True
        self.loop.call_soon_threadsafe(self._wake.set)

    async def _send_loop(self) -> None:
        while True:
            await self._wake.wait()
            await asyncio.sleep(SEND_WINDOW_S)  # gather the window: one fan-out for all
            with self._lock:
                self._scheduled = False
                self._wake.clear()
            items = [self._inbox.popleft() for _ in range(len(self._inbox))]
            messages, left_out = coalesce(items)
            if left_out:
                self.dropped_windows += 1
                messages.insert(0, {"type": "dropped", "count": left_out})
            texts = [json.dumps(m) for m in messages]
            for client in list(self.clients):
                for text in texts:
                    client.offer(text)

    async def _status_loop(self, interval: float) -> None:
        """The status every ``interval``, read once for all clients."""
        while True:
            await asyncio.sleep(interval)
            if self.clients:
                self.put({"type": "status", "status": self._status()})

    def close(self) -> None:
        for t in self._tasks:
            t.cancel()


def coalesce(items: list[Message]) -> tuple[list[dict[str, Any]], int]:
    """A window's messages: bars merged per kind (live, filled; derived per interval and
    revision), other events and ready messages as they are. More than MAX_WINDOW_BARS
    bars: none of them, and the count of bar events left out."""
    bar_events = [i for i in items if isinstance(i, (BarSliceEvent, DerivedSliceEvent))]
    left_out = 0
    if sum(len(ev.bars) for ev in bar_events) > MAX_WINDOW_BARS:
        left_out = len(bar_events)
    out: list[dict[str, Any]] = []
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    for item in items:
        if isinstance(item, dict):
            out.append(item)
            continue
        if isinstance(item, (BarSliceEvent, DerivedSliceEvent)):
            if left_out:
                continue
            msg = to_message(item)
            assert msg is not None
            key = (msg["type"], msg.get("filled"), msg.get("interval"), msg.get("revised"))
            if key in merged and not msg.get("revised"):
                into = merged[key]
                into["bars"].extend(msg["bars"])
                into["at"] = msg["at"]
                if "minutes" in msg:
                    into["minutes"] = msg["minutes"]
                continue
            merged[key] = msg
            out.append(msg)
            continue
        msg = to_message(item)
        if msg is not None:
            out.append(msg)
    return out, left_out


class EventHub:
    """One per app; attached to each system the app runs."""

    def __init__(
        self,
        status: Callable[[], dict[str, Any]] | None = None,
        status_interval_s: float = 0.5,
        max_clients: int = MAX_CLIENTS,
    ) -> None:
        self._fanouts: dict[asyncio.AbstractEventLoop, Fanout] = {}
        self._lock = threading.Lock()
        self.filled: dict[tuple[date, str], list[int]] = defaultdict(list)
        self._session: date | None = None
        self.status = status or (lambda: {})
        self.status_interval_s = status_interval_s
        self.max_clients = max_clients
        self.refused = 0  # connections refused for the cap

    def add(self, client: Client) -> bool:
        """On the client's loop: register it; False (and counted) beyond the cap."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if sum(len(f.clients) for f in self._fanouts.values()) >= self.max_clients:
                self.refused += 1
                return False
            fan = self._fanouts.get(loop)
            if fan is None:
                fan = self._fanouts[loop] = Fanout(loop, self.status, self.status_interval_s)
            fan.clients.add(client)
        return True

    def remove(self, client: Client) -> None:
        with self._lock:
            for loop, fan in list(self._fanouts.items()):
                fan.clients.discard(client)
                if not fan.clients:
                    fan.close()
                    del self._fanouts[loop]

    def reset(self) -> None:
        """A new system starts: forget the previous one's fills."""
        with self._lock:
            self.filled.clear()
            self._session = None

    def __call__(self, ev: BatchEvent) -> None:
        """The batch consumer (coordinator thread): record fills, then hand on."""
        if isinstance(ev, SessionStartEvent):
            self._session = ev.session
        elif isinstance(ev, BarSliceEvent) and ev.filled and self._session is not None:
            with self._lock:
                for sym, ts in zip(ev.bars.symbol.tolist(), ev.bars.ts_us.tolist(), strict=True):
                    self.filled[(self._session, str(sym))].append(int(ts))
        if isinstance(ev, (QuoteEvent, TickEvent)):
            return  # not streamed
        self.broadcast(ev)

    def broadcast(self, message: Message) -> None:
        """From any thread: to every client (status after a control action, events)."""
        with self._lock:
            fans = list(self._fanouts.items())
        for loop, fan in fans:
            try:
                fan.put(message)
            except RuntimeError:  # the server's loop has closed
                with self._lock, contextlib.suppress(KeyError):
                    del self._fanouts[loop]

    def close(self) -> None:
        with self._lock:
            for fan in self._fanouts.values():
                fan.close()
            self._fanouts.clear()


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
