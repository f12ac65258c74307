"""Thread 1 in live mode: feed sink -> session_data -> events; upkeep checks on clock time.

Everything after the data source is the backtest path: bars are written with
``SessionData.add_bars`` (duplicates and late bars rejected and counted there),
the upkeep worker's ``check`` finds gaps, fills them (here from the vendor's
REST), derives 5m/15m bars and sets quality, events go through the same
``EventPublisher``, and each session ends with ``SessionData.report()``.

What differs is where items and time come from, and so:

- a check for minute ``m`` runs ``grace`` seconds after ``m`` ends (bars arrive
  just after their minute), on the ``check_interval`` grid; checks run on the
  upkeep thread without blocking delivery, one at a time;
- after a reconnect a check runs at once, so missed minutes are backfilled
  without waiting for the grid; a silent socket (no data for
  ``silence_timeout``) is dropped and reconnected;
- the session opens at the calendar open (joining late backfills from the open),
  ends at the close plus ``grace`` after a final check; between sessions the
  coordinator idles, and data stamped before the next session is counted, not written;
- a live bar that arrives after its minute was marked missing clears that gap;
- an item that arrives before it can exist (available later than the clock
  plus ``future_tolerance``) is counted as ``from_future`` and never delivered;
- accepted data goes to the store in micro-batches (``live.store``); whatever
  consumers were given is stored before the thread ends, on stop() too.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

from sessionflow.data_upkeep import CheckResult, SessionLoader, UpkeepWorker
from sessionflow.events import BatchEvent, SessionEndEvent, SessionStartEvent
from sessionflow.feeds.base import Feed, FeedError, FeedSink, FeedState, SinkItem
from sessionflow.models import from_us, to_us
from sessionflow.session_data import SessionData, SessionReport
from sessionflow.stream_coordinator.coordinator import (
    CoordinatorHooks,
    Stopped,
    await_unless_stopped,
    check_events,
    run_coordinator,
    wait_while_paused,
)
from sessionflow.stream_coordinator.live.delivery import Delivery, Window
from sessionflow.stream_coordinator.live.health import counters_of, session_delta
from sessionflow.stream_coordinator.live.store import StoreBatcher
from sessionflow.stream_coordinator.publisher import EventPublisher
from sessionflow.time_provider import SessionInfo
from sessionflow.time_provider.live_clock import WaitableClock
from sessionflow.time_provider.schedule import SessionSchedule
from sessionflow.worker_thread import WorkerThread

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class LiveTiming:
    check_interval_s: float = 60.0
    grace_s: float = 10.0
    silence_timeout_s: float = 90.0
    connect_timeout_s: float = 15.0
    max_sessions: int | None = None
    future_tolerance_s: float = 2.0  # in clock time (already scaled for a faster clock)
    stop_flush_s: float = 1.0  # how long stop() waits for a store write already running


@dataclass
class _Run:
    """Per-session loop state."""

    window: Window
    last_data: datetime
    subscribed: int
    next_check: datetime
    force_check: bool = False
    pending: Future[CheckResult] | None = field(default=None, repr=False)


class LiveCoordinator(WorkerThread):
    def __init__(
        self,
        schedule: SessionSchedule,
        session_data: SessionData,
        upkeep: UpkeepWorker,
        loader: SessionLoader,
        clock: WaitableClock,
        feed: Feed,
        publisher: EventPublisher,
        hooks: CoordinatorHooks,
        batcher: StoreBatcher,
        timing: LiveTiming,
        source_counters: Callable[[], dict[str, int]] | None = None,
    ) -> None:
        self.schedule = schedule
        self.session_data = session_data
        self.upkeep = upkeep
        self.loader = loader
        self.clock = clock
        self.feed = feed
        self.publisher = publisher
        self.hooks = hooks
        self.batcher = batcher
        self.timing = timing
        self.source_counters = source_counters  # the fill source's own (REST 429s)
        self.grace = timedelta(seconds=timing.grace_s)
        self._interval = timedelta(seconds=timing.check_interval_s)
        self._silence = timedelta(seconds=timing.silence_timeout_s)
        self._wake = threading.Event()
        self._tolerance = timedelta(seconds=timing.future_tolerance_s)
        self.sink = FeedSink(self._wake, self._horizon)
        self.delivery = Delivery(session_data, batcher, self._publish)
        self.reports: list[SessionReport] = []
        self.health: list[dict[str, int]] = []
        self._connected = False
        self.checks = 0  # checks announced so far (a lockstep replay waits on it)
        self._announced = threading.Condition()
        super().__init__(self._run, "sessionflow-live")

    def connect(self) -> None:
        """Start the feed and wait for its first subscription; raise (e.g. bad keys) otherwise."""
        if self._connected:
            return
        self.feed.start(self.sink)
        state = self.sink.wait_for(
            (FeedState.SUBSCRIBED, FeedState.FAILED), self.timing.connect_timeout_s
        )
        if state is FeedState.SUBSCRIBED:
            self._connected = True
            return
        self.feed.stop()
        error = self.sink.error
        if error is None:
            last = self.sink.health().last_error or "no reply"
            error = FeedError(
                f"feed not subscribed within {self.timing.connect_timeout_s:g}s (last: {last})"
            )
        raise error

    def start(self) -> None:
        self.connect()
        self._thread.start()

    def counters(self) -> dict[str, int]:
        out = counters_of(self)
        if self.source_counters is not None:
            out.update(self.source_counters())
        return out

    def _run(self) -> None:
        run_coordinator(
            "live coordinator", self._run_sessions, self.publisher, self.hooks, self._release_feed
        )

    def _horizon(self) -> datetime:
        """The latest availability an arriving item may have now."""
        return self.clock.now() + self._tolerance

    def _release_feed(self) -> None:
        """The thread's last act (end, stop() or error): store what was delivered, stop the feed."""
        try:
            self.batcher.flush_on_stop(self.timing.stop_flush_s)
        finally:
            self.feed.stop()
            self.hooks.counters.update(self.counters())

    def _run_sessions(self) -> None:
        played = 0
        sessions = self._future_sessions()
        session = next(sessions, None)
        while session is not None:
            upcoming = next(sessions, None)
            early = self._idle_until(self.loader.window(session)[0])
            self._play(session, played == 0, early)
            played += 1
            last = self.timing.max_sessions is not None and played >= self.timing.max_sessions
            self._await(self.upkeep.roll(session, None if last else upcoming))
            if last:
                return
            session = upcoming

    def _future_sessions(self) -> Iterator[SessionInfo]:
        """Sessions from the schedule whose end (plus grace) has not passed yet."""
        for s in self.schedule.upcoming(self.clock.now()):
            if self.clock.now() < self._end_of(s) + self.grace:
                yield s

    def _end_of(self, session: SessionInfo) -> datetime:
        return max(self.loader.window(session)[1], session.close)

    def _idle_until(self, start: datetime) -> list[SinkItem]:
        """Wait for the session; data stamped before it is counted and dropped, the rest kept."""
        keep: list[SinkItem] = []
        while True:
            self._check_stop()
            self._wake.clear()
            keep += self.delivery.before_session(self.sink.drain(), start)
            self._raise_if_failed()
            if self.clock.now() >= start:
                return keep
            self.clock.wait_until(start, self._wake)

    def _play(self, session: SessionInfo, first: bool, early: list[SinkItem]) -> None:
        self._await(self.upkeep.begin_session(session, first, None))
        now = self.clock.now()
        before = self.counters()
        start = self.loader.window(session)[0]
        window = Window(session, start, self._end_of(session), start != session.open)
        run = _Run(
            window,
            last_data=now,
            subscribed=self.sink.subscriptions,
            next_check=self._next_grid(session, now),
            force_check=self._as_of(session, now) > session.open,  # joined late: backfill now
        )
        self._publish([SessionStartEvent(session.date, session.open, session.close, now)])
        self._deliver(run, early, now)
        end_at = window.end + self.grace
        while True:
            self._gate()
            self._wake.clear()
            now = self.clock.now()
            self._deliver(run, self.sink.drain(), now)
            self._supervise(run, now)
            self._schedule_check(run, now, end_at)
            self.batcher.maybe_flush(now)
            if now >= end_at and run.pending is None:
                break
            self.clock.wait_until(self._deadline(run, end_at), self._wake)
        self._finish(run, before)

    def _finish(self, run: _Run, before: dict[str, int]) -> None:
        now = self.clock.now()
        session = run.window.session
        self._deliver(run, self.sink.drain(), now)
        self.delivery.quote_bars(run.window, self.delivery.quotes.close_all(), now)
        self._checked(self._await(self.upkeep.check(session.close, final=True)), now)
        self.session_data.end_session()
        report = self.session_data.report()
        self.reports.append(report)
        flushed = self.batcher.flush()
        if flushed is not None:
            self._await(flushed)
        after = self.counters()
        self.health.append(session_delta(before, after))
        self.hooks.counters.update(after)
        self._publish([SessionEndEvent(session.date, now, report, False)])

    def _deliver(self, run: _Run, items: list[SinkItem], now: datetime) -> None:
        if items:
            run.last_data = now
            self.delivery.items(run.window, items, now)

    def _supervise(self, run: _Run, now: datetime) -> None:
        """Reconnects trigger an immediate backfill check; a silent socket is reconnected."""
        self._raise_if_failed()
        subscribed = self.sink.subscriptions
        if subscribed > run.subscribed:
            run.subscribed, run.last_data, run.force_check = subscribed, now, True
        if (
            self.sink.state is FeedState.SUBSCRIBED
            and run.window.start <= now < run.window.end
            and now - run.last_data >= self._silence
        ):
            self.feed.reconnect(f"no data for {self.timing.silence_timeout_s:g}s")
            run.last_data = now
        ended = self.delivery.quotes.close_ended(to_us(now - self.grace))
        if ended:
            self.delivery.quote_bars(run.window, ended, now)

    def _schedule_check(self, run: _Run, now: datetime, end_at: datetime) -> None:
        if run.pending is not None and run.pending.done():
            result = run.pending.result()
            run.pending = None
            self._checked(result, now)
        if run.pending is None and now < end_at and (run.force_check or now >= run.next_check):
            run.pending = self.upkeep.check(self._as_of(run.window.session, now))
            run.pending.add_done_callback(lambda _: self._wake.set())
            run.force_check = False
            run.next_check = self._next_grid(run.window.session, now)

    def _deadline(self, run: _Run, end_at: datetime) -> datetime:
        times = [end_at, run.next_check]
        if (due := self.batcher.due_at()) is not None:
            times.append(due)
        if (q := self.delivery.quotes.next_close_us()) is not None:
            times.append(from_us(q) + self.grace)
        if self.sink.state is FeedState.SUBSCRIBED:
            times.append(run.last_data + self._silence)
        return min(times)

    def _as_of(self, session: SessionInfo, now: datetime) -> datetime:
        """The instant a check covers: minutes that ended at least ``grace`` ago."""
        t = now - self.grace
        t = from_us(to_us(t) - to_us(t) % 60_000_000)
        return min(max(t, session.open), session.close)

    def _next_grid(self, session: SessionInfo, now: datetime) -> datetime:
        """The next ``open + k*interval + grace`` after ``now`` (k >= 1)."""
        k = max(1, int((now - self.grace - session.open) / self._interval) + 1)
        return session.open + k * self._interval + self.grace

    def _checked(self, result: CheckResult, now: datetime) -> None:
        """Store the bars a check filled and announce fills and derived bars."""
        if len(result.filled):
            self.batcher.add(list(result.filled.iter_bars(filled=True)), (), now)
        self._publish(check_events(result, now))  # the backtest's events
        with self._announced:
            self.checks += 1
            self._announced.notify_all()

    def wait_checks(self, count: int, timeout: float) -> bool:
        """Until ``count`` checks in all have been announced to consumers."""
        with self._announced:
            return self._announced.wait_for(lambda: self.checks >= count, timeout)

    def _publish(self, events: list[BatchEvent]) -> None:
        self.publisher.publish(events)

    def _raise_if_failed(self) -> None:
        if self.sink.error is not None:
            raise self.sink.error

    def _check_stop(self) -> None:
        if self.hooks.stop.is_set():
            raise Stopped

    def _gate(self) -> None:
        """While paused nothing is delivered; the sink keeps everything until resume."""
        self._check_stop()
        wait_while_paused(self.hooks)

    def _await(self, fut: Future[T]) -> T:
        return await_unless_stopped(fut, self.hooks.stop)
