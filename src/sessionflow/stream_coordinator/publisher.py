"""Delivery of events to consumers: callbacks on the coordinator thread, or async iterators.

Async subscribers get a bounded buffer: when a slow consumer falls behind, the
coordinator blocks (backpressure) instead of dropping events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Callable

from sessionflow.events import Event

log = logging.getLogger(__name__)

Callback = Callable[[Event], None]


class ConsumerError(RuntimeError):
    """A consumer callback raised; the system stops and keeps the original exception."""


class _Subscription:
    def __init__(self, loop: asyncio.AbstractEventLoop, max_pending: int) -> None:
        self.loop = loop
        self.queue: asyncio.Queue[list[Event] | None] = asyncio.Queue()
        self.slots = threading.Semaphore(max_pending)


class EventPublisher:
    def __init__(self, stop: threading.Event, max_pending_batches: int = 64) -> None:
        self._callbacks: list[Callback] = []
        self._subs: list[_Subscription] = []
        self._stop = stop
        self._max_pending = max_pending_batches
        self._lock = threading.Lock()
        self.closed = False

    def add_callback(self, callback: Callback) -> None:
        with self._lock:
            self._callbacks.append(callback)

    def subscribe(self, loop: asyncio.AbstractEventLoop) -> _Subscription:
        sub = _Subscription(loop, self._max_pending)
        with self._lock:
            self._subs.append(sub)
        return sub

    def publish(self, events: list[Event]) -> None:
        """Hand a batch to every consumer; raises ConsumerError if a callback fails."""
        if not events:
            return
        for cb in self._callbacks:
            for ev in events:
                try:
                    cb(ev)
                except Exception as exc:
                    raise ConsumerError(f"consumer callback {cb!r} raised {exc!r}") from exc
        for sub in self._subs:
            while not sub.slots.acquire(timeout=0.05):
                if self._stop.is_set():
                    return
            try:
                sub.loop.call_soon_threadsafe(sub.queue.put_nowait, events)
            except RuntimeError:  # the consumer's loop is gone
                sub.slots.release()

    def close(self) -> None:
        with self._lock:
            self.closed = True
            for sub in self._subs:
                with contextlib.suppress(RuntimeError):  # the consumer's loop is gone
                    sub.loop.call_soon_threadsafe(sub.queue.put_nowait, None)

    async def iterate(self, sub: _Subscription) -> AsyncIterator[Event]:
        while True:
            batch = await sub.queue.get()
            if batch is None:
                return
            sub.slots.release()
            for ev in batch:
                yield ev
