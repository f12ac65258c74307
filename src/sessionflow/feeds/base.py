"""The vendor-neutral feed interface: a Feed pushes items and its connection state into a sink.

Why a sink and not callbacks into the engine: a feed runs on its own thread (an
asyncio loop for websockets) and must never wait for the engine, or a slow
consumer would stall the socket and the vendor would drop us. The sink is an
unbounded, locked deque: ``put`` never blocks and nothing is dropped; the live
coordinator drains it in batches. Every put or state change sets ``wake`` so the
coordinator sleeps until there is work.

The sink is also where "from the future" is judged, because only it sees each
item when it arrives: with a ``horizon`` (the latest availability the live clock
allows now, tolerance included), an item that would become available after it
is wrapped as :class:`FromFuture`. It keeps its place in the stream, so the
coordinator counts it against its symbol and session, and never delivers it.
"""

from __future__ import annotations

import enum
import logging
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from sessionflow.models import Bar, Quote, Tick, to_us

log = logging.getLogger(__name__)

FeedItem = Bar | Quote | Tick


class FeedState(enum.Enum):
    IDLE = "idle"
    CONNECTING = "connecting"
    AUTHENTICATED = "authenticated"
    SUBSCRIBED = "subscribed"
    DISCONNECTED = "disconnected"
    FAILED = "failed"
    STOPPED = "stopped"


class FeedError(RuntimeError):
    """A feed problem that retrying will not fix (bad keys, no subscription)."""


class FeedAuthError(FeedError):
    """The vendor refused our credentials; the message never contains them."""


@dataclass(frozen=True)
class QuoteUpdate:
    """One top-of-book update; the coordinator folds these into one-minute quote bars."""

    symbol: str
    ts_us: int
    bid: float
    bid_size: int
    ask: float
    ask_size: int


@dataclass(frozen=True, slots=True)
class Correction:
    """A corrected 1m bar (Alpaca ``updatedBars``): it replaces whatever holds its minute."""

    bar: Bar

    @property
    def ts(self) -> datetime:
        return self.bar.ts

    @property
    def available_at(self) -> datetime:
        return self.bar.available_at


Arrival = FeedItem | QuoteUpdate | Correction


@dataclass(frozen=True, slots=True)
class FromFuture:
    """An item stamped later than the live clock allowed when it arrived; never delivered."""

    item: Arrival


SinkItem = Arrival | FromFuture


def _in_time(item: Arrival, limit: datetime) -> bool:
    """Whether an item is complete by ``limit`` (compared as datetimes: to_us is slower)."""
    if isinstance(item, QuoteUpdate):
        return item.ts_us <= to_us(limit)
    return item.available_at <= limit


@dataclass
class FeedHealth:
    """Counters a feed reports; cumulative since the sink was created."""

    subscribed: int = 0  # times a (re)subscription was confirmed; > 1 means reconnects
    disconnects: int = 0
    forced_reconnects: int = 0
    auth_retries: int = 0
    malformed: Counter[str] = field(default_factory=Counter)  # by kind: bar, quote, frame
    server_errors: Counter[str] = field(default_factory=Counter)
    items: int = 0
    max_backlog: int = 0
    last_error: str | None = None
    malformed_reasons: Counter[str] = field(default_factory=Counter)
    from_future: int = 0

    def copy(self) -> FeedHealth:
        return FeedHealth(
            self.subscribed,
            self.disconnects,
            self.forced_reconnects,
            self.auth_retries,
            Counter(self.malformed),
            Counter(self.server_errors),
            self.items,
            self.max_backlog,
            self.last_error,
            Counter(self.malformed_reasons),
            self.from_future,
        )


class FeedSink:
    """Thread-safe hand-off from a feed thread to the coordinator; never blocks, never drops."""

    def __init__(
        self, wake: threading.Event | None = None, horizon: Callable[[], datetime] | None = None
    ) -> None:
        self.wake = wake or threading.Event()
        self._horizon = horizon  # latest availability accepted now; None: no check
        self._items: deque[SinkItem] = deque()
        self._cond = threading.Condition()
        self._state = FeedState.IDLE
        self._error: FeedError | None = None
        self._health = FeedHealth()
        self._taken = 0

    def put(self, items: Iterable[Arrival]) -> None:
        limit = None if self._horizon is None else self._horizon()
        future: Arrival | None = None
        with self._cond:
            before = len(self._items)
            if limit is None:
                self._items.extend(items)
            else:
                for item in items:
                    if _in_time(item, limit):
                        self._items.append(item)
                    else:
                        self._items.append(FromFuture(item))
                        self._health.from_future += 1
                        future = item
            n = len(self._items)
            self._health.items += n - before
            self._health.max_backlog = max(self._health.max_backlog, n)
            count = self._health.from_future
            self._cond.notify_all()
        self.wake.set()
        if future is not None and (count <= 5 or count % 1000 == 0):
            log.warning(
                "feed: %r is from the future (latest allowed now: %s), refused [%d so far]; "
                "if this repeats, check this machine's clock",
                future,
                limit,
                count,
            )

    def drain(self) -> list[SinkItem]:
        with self._cond:
            out = list(self._items)
            self._items.clear()
            self._taken += len(out)
            self._cond.notify_all()
        return out

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)

    def set_state(self, state: FeedState, detail: str | None = None) -> None:
        with self._cond:
            if state is FeedState.SUBSCRIBED:
                self._health.subscribed += 1
            elif state is FeedState.DISCONNECTED and self._state is not FeedState.DISCONNECTED:
                self._health.disconnects += 1
            if detail:
                self._health.last_error = detail
            self._state = state
            self._cond.notify_all()
        self.wake.set()

    def fail(self, error: FeedError) -> None:
        with self._cond:
            self._error = error
        self.set_state(FeedState.FAILED, str(error))

    def malformed(self, kind: str, detail: str, reason: str | None = None) -> int:
        """Count one malformed message (by kind and reason); returns how many of this kind."""
        with self._cond:
            self._health.malformed[kind] += 1
            if reason:
                self._health.malformed_reasons[reason] += 1
            self._health.last_error = f"malformed {kind}: {detail}"
            return self._health.malformed[kind]

    def server_error(self, code: str, detail: str) -> None:
        with self._cond:
            self._health.server_errors[code] += 1
            self._health.last_error = detail

    def count(self, what: str) -> None:
        """Bump a plain counter (``forced_reconnects`` or ``auth_retries``)."""
        with self._cond:
            setattr(self._health, what, getattr(self._health, what) + 1)

    @property
    def state(self) -> FeedState:
        with self._cond:
            return self._state

    @property
    def subscriptions(self) -> int:
        """Confirmed (re)subscriptions so far; it grows by one per reconnect."""
        with self._cond:
            return self._health.subscribed

    @property
    def error(self) -> FeedError | None:
        with self._cond:
            return self._error

    def health(self) -> FeedHealth:
        with self._cond:
            return self._health.copy()

    def wait_for(self, states: Iterable[FeedState], timeout: float) -> FeedState | None:
        """Block until the state is one of ``states``; None on timeout."""
        wanted = set(states)
        with self._cond:
            ok = self._cond.wait_for(lambda: self._state in wanted, timeout)
            return self._state if ok else None

    def wait_items(self, count: int, timeout: float) -> bool:
        """Block until ``count`` items have been put in total."""
        with self._cond:
            return self._cond.wait_for(lambda: self._health.items >= count, timeout)

    def wait_taken(self, count: int, timeout: float) -> bool:
        """Block until the consumer has drained ``count`` items in total."""
        with self._cond:
            return self._cond.wait_for(lambda: self._taken >= count, timeout)

    def wait_subscribed(self, count: int, timeout: float) -> bool:
        """Block until ``count`` subscriptions have been confirmed (1 = first connect)."""
        with self._cond:
            return self._cond.wait_for(lambda: self._health.subscribed >= count, timeout)


class Feed(Protocol):
    """A market-data source. ``start`` returns at once; the feed runs on its own thread."""

    def start(self, sink: FeedSink) -> None: ...

    def reconnect(self, reason: str) -> None:
        """Drop the current connection; the feed reconnects with backoff and re-subscribes."""
        ...

    def stop(self, timeout: float = 2.0) -> None: ...
