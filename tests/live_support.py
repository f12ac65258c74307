"""Live-test harness: a real local Alpaca-protocol server, the real SDK, a test-driven clock.

Time is a ManualClock: the test moves it minute by minute and pushes that minute's
bars over the websocket, then waits (on a condition, with a timeout) until the
coordinator has taken them from the feed sink. Nothing sleeps.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from sessionflow import Settings, SystemManager, build_system
from sessionflow.data_manager.live import LiveParts
from sessionflow.demo import synthetic_bars
from sessionflow.events import BatchEvent, Event, SessionEndEvent, SessionStartEvent
from sessionflow.models import MINUTE, Bar
from sessionflow.store import Store
from sessionflow.stream_coordinator.live import LiveCoordinator
from sessionflow.testing.alpaca_server import FakeAlpaca, bar_msg
from sessionflow.time_provider import ExchangeCalendar, SessionInfo
from sessionflow.time_provider.live_clock import ManualClock
from sessionflow.time_provider.schedule import FixedSchedule

KEY = "PKTEST7F3A9C1E5B"
SECRET = "sk-live-secret-DO-NOT-LOG-4d2b8e"
SYMBOLS = ["AAPL", "MSFT"]
DAY = date(2024, 11, 29)  # early close: 13:00 ET = 18:00Z, 210 minutes
WAIT = 10.0
GRACE = timedelta(seconds=10)


def day_bars(calendar: ExchangeCalendar, symbols: Iterable[str] = SYMBOLS) -> list[Bar]:
    return list(synthetic_bars(calendar, list(symbols), DAY, DAY).iter_bars())


def short_session(minutes: int = 20) -> SessionInfo:
    """A session of our own (the calendar's date and open, an early close of ours)."""
    o = datetime.fromisoformat("2024-11-29T14:30:00+00:00")
    return SessionInfo(DAY, o, o + minutes * MINUTE)


def by_minute(bars: Iterable[Bar]) -> dict[datetime, list[Bar]]:
    out: dict[datetime, list[Bar]] = defaultdict(list)
    for b in bars:
        out[b.ts].append(b)
    return dict(sorted(out.items()))


def live_settings(tmp_path: Path, server: FakeAlpaca, **live: Any) -> Settings:
    base: dict[str, Any] = {
        "feed_url": server.ws_url,
        "rest_url": server.rest_url,
        "key_id": KEY,
        "secret_key": SECRET,
        "reconnect_min_seconds": 0.02,
        "reconnect_max_seconds": 0.1,
        "silence_timeout_seconds": 3600,
        "connect_timeout_seconds": WAIT,
        "sessions": 1,
    }
    base.update(live)
    return Settings.load(
        mode="live",
        store_path=tmp_path / "live.duckdb",
        symbols=SYMBOLS,
        trailing_days=0,
        live=base,
    )


class Collector:
    """Thread-safe event list with waits (the coordinator calls it on its thread)."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self._cond = threading.Condition()

    def __call__(self, ev: Event | BatchEvent) -> None:
        with self._cond:
            self.events.append(ev)
            self._cond.notify_all()

    def of(self, kind: type) -> list[Any]:
        with self._cond:
            return [e for e in self.events if isinstance(e, kind)]

    def wait_for(self, pred: Callable[[list[Any]], bool], timeout: float = WAIT) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: pred(self.events), timeout)


class LiveRun:
    """One live system against ``server``; the test drives time and data."""

    def __init__(
        self,
        settings: Settings,
        server: FakeAlpaca,
        session: SessionInfo | None = None,
        start: datetime | None = None,
        store: Store | None = None,
    ) -> None:
        self.server = server
        self.grace = timedelta(seconds=settings.live.bar_grace_seconds)
        self.session = session or ExchangeCalendar().session(DAY)
        self.clock = ManualClock(start or self.session.open - timedelta(seconds=30))
        server.follow(self.clock.now)  # "recent" REST data is recent in the session's time
        schedule = FixedSchedule([session]) if session is not None else None
        self.system: SystemManager = build_system(
            settings, store=store, live=LiveParts(clock=self.clock, schedule=schedule)
        )
        self.events = Collector()
        self.system.on_event(self.events)
        coordinator = self.system.data_manager.coordinator
        assert isinstance(coordinator, LiveCoordinator)
        self.coordinator = coordinator
        self.sent = 0  # well-formed items pushed so far

    def start(self) -> None:
        self.system.start()
        self.clock.set(max(self.clock.now(), self.session.open))
        assert self.events.wait_for(lambda evs: any(isinstance(e, SessionStartEvent) for e in evs))

    def minute(self, ts: datetime, bars: list[Bar], extra: list[Any] | None = None) -> None:
        """Move the clock to the end of minute ``ts`` and stream its bars (+ extra messages)."""
        self.clock.set(max(self.clock.now(), ts + MINUTE))
        if bars or extra:
            self.push([bar_msg(b) for b in bars] + (extra or []), len(bars))

    def push(self, messages: list[Any], well_formed: int) -> None:
        self.server.push(messages)
        self.sent += well_formed
        assert self.coordinator.sink.wait_taken(self.sent, WAIT), "coordinator took nothing"

    def finish(self, end: datetime | None = None) -> None:
        """Move past the session's end (the close, or ``end``) and wait for its report."""
        end = end or self.session.close
        self.clock.set(max(self.clock.now(), end + self.grace + timedelta(seconds=1)))
        assert self.events.wait_for(lambda evs: any(isinstance(e, SessionEndEvent) for e in evs))
        assert self.system.wait(WAIT)
        self.system.stop()
        if self.system.error is not None:
            raise self.system.error
