"""Delivery of events to consumers, per bar or per slice.

Batch consumers get the columnar events the coordinator produces (one
``BarSliceEvent`` per instant); per-bar consumers get the same events expanded
to one ``BarEvent`` per bar, in the same order. Expansion happens once per step
and only if someone asked for per-bar events. Callbacks run on the coordinator
thread; async subscribers get a bounded buffer: when a slow consumer falls
behind, the coordinator blocks (backpressure) instead of dropping events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

from sessionflow.events import BatchEvent, Event, bar_rows, expand

log = logging.getLogger(__name__)


class ConsumerError(RuntimeError):
    """A consumer callback raised; the system stops and keeps the original exception."""


class _Subscription:
    def __init__(self, loop: asyncio.AbstractEventLoop, max_pending: int, per_bar: bool) -> None:
        self.loop = loop
        self.per_bar = per_bar
        self.queue: asyncio.Queue[list[Any] | None] = asyncio.Queue()
        self.slots = threading.Semaphore(max_pending)


class EventPublisher:
    def __init__(self, stop: threading.Event, max_pending_batches: int = 64) -> None:
        self._callbacks: list[Callable[[Event], None]] = []
        self._batch_callbacks: list[Callable[[BatchEvent], None]] = []
        self._subs: list[_Subscription] = []
        self._stop = stop
        self._max_pending = max_pending_batches
        self._lock = threading.Lock()
        self.closed = False

    def add_callback(self, callback: Callable[[Event], None]) -> None:
        with self._lock:
            self._callbacks.append(callback)

    def add_batch_callback(self, callback: Callable[[BatchEvent], None]) -> None:
        with self._lock:
            self._batch_callbacks.append(callback)

    def subscribe(self, loop: asyncio.AbstractEventLoop, per_bar: bool = True) -> _Subscription:
        sub = _Subscription(loop, self._max_pending, per_bar)
        with self._lock:
            self._subs.append(sub)
            if self.closed:
                sub.queue.put_nowait(None)
        return sub

    @property
    def wants_per_bar(self) -> bool:
        return bool(self._callbacks) or any(s.per_bar for s in self._subs)

    def publish(self, events: list[BatchEvent]) -> None:
        """Hand a batch to every consumer; raises ConsumerError if a callback fails."""
        if not events:
            return
        for cb in self._batch_callbacks:
            self._call(cb, events)
        callbacks = self._callbacks
        if not self._subs and len(callbacks) < 2:  # the usual case, decided in two reads
            if callbacks:
                self._feed(callbacks[0], events)
            return
        per_bar: list[Event] = []
        if len(self._callbacks) == 1 and not any(s.per_bar for s in self._subs):
            # the usual per-bar consumer: each event built as it takes it, dropped after
            self._feed(self._callbacks[0], events)
        elif self.wants_per_bar:
            per_bar = expand(events)
            for per_bar_cb in self._callbacks:
                self._call(per_bar_cb, per_bar)
        for sub in self._subs:
            while not sub.slots.acquire(timeout=0.05):
                if self._stop.is_set():
                    return
            try:
                items = per_bar if sub.per_bar else events
                sub.loop.call_soon_threadsafe(sub.queue.put_nowait, list(items))
            except RuntimeError:  # the consumer's loop is gone
                sub.slots.release()

    @staticmethod
    def _feed(cb: Callable[[Event], None], events: list[BatchEvent]) -> None:
        """``events`` to one per-bar consumer, each slice's bars built in C and handed
        over by a C loop (``BarRows.feed``) that reuses an event the consumer let go."""
        for ev in events:
            rows = bar_rows(ev)
            try:
                if rows is None:
                    cb(ev)  # type: ignore[arg-type]
                else:
                    rows.feed(cb)
            except Exception as exc:
                raise ConsumerError(f"consumer callback {cb!r} raised {exc!r}") from exc

    @staticmethod
    def _call(cb: Callable[[Any], None], items: Iterable[Any]) -> None:
        for ev in items:
            try:
                cb(ev)
            except Exception as exc:
                raise ConsumerError(f"consumer callback {cb!r} raised {exc!r}") from exc

    def close(self) -> None:
        with self._lock:
            self.closed = True
            for sub in self._subs:
                with contextlib.suppress(RuntimeError):  # the consumer's loop is gone
                    sub.loop.call_soon_threadsafe(sub.queue.put_nowait, None)

    async def iterate(self, sub: _Subscription) -> AsyncIterator[Any]:
        while True:
            batch = await sub.queue.get()
            if batch is None:
                return
            sub.slots.release()
            for ev in batch:
                yield ev
